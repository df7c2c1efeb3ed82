"""`python -m dcgan_lib bench [gpu-check] [--variant lsun64|imagenet32] [--width W] [--seconds S] [--tiny]`.

`bench` times our trainer (fp32) against the fp32 reference, with ablations, the machine-limit row and
the probe; `bench gpu-check` is the one-command check for a machine lent a GPU (one record, < 10 min on
an H100/H200; `--tiny` runs it in seconds on a CPU, as CI does)."""
from __future__ import annotations

import dataclasses
from pathlib import Path

import torch

from dcgan_lib.bench import bench, bench_report
from dcgan_lib.bench.bench_loops import ABLATIONS, BenchConfig, compile_modes
from dcgan_lib.bench.bench_probe import ProbeBenchConfig, bench_probe
from dcgan_lib.config import profiles
from dcgan_lib.gan.train_config import COMPILE_MODES
from dcgan_lib.records import results

# torch.compile modes the GPU check times by default: the default mode, and CUDA graphs (reduce-overhead), which
# remove the per-kernel launch cost that was 45% of the H200 step; each also gets its KID at equal steps
GPU_CHECK_COMPILE = ("default", "reduce-overhead")


def register(sub) -> None:
    p = sub.add_parser("bench", help="time our trainer against a plain reference loop, and the probe pipeline")
    p.add_argument("mode", nargs="?", default="run", choices=("run", "gpu-check"),
                   help="gpu-check: lsun64 at batch 128 (fp32, bf16, reference), bf16 quality, peak fraction, "
                        "probe timing, in one record")
    p.add_argument("--variant", default="lsun64", choices=sorted(bench.PAPER_DATA))
    p.add_argument("--batch", type=int, default=128, help="batch size (Paper §4: 128)")
    p.add_argument("--seconds", type=float, default=None,
                   help="timed seconds per loop, split over --windows (default 20; gpu-check 10)")
    p.add_argument("--windows", type=int, default=5, help="interleaved timed windows per loop (median reported)")
    p.add_argument("--profile", default="auto", choices=list(profiles.NAMES),
                   help="sets the width (and the probe sizes); auto: gpu on a machine with a GPU, else cpu")
    p.add_argument("--width", type=float, default=None, help="override the profile's width multiplier")
    p.add_argument("--files", type=int, default=2048, help="image files both loops read")
    p.add_argument("--dataset", default=None, help="images to read (default: the variant's mirror stand-in)")
    p.add_argument("--workers", type=int, default=2, help="reference DataLoader workers (pytorch/examples: 2)")
    p.add_argument("--threads", type=int, default=None,
                   help="torch threads (default: torch's, one per core); 1 is steadier on a busy shared machine. "
                        "Records of runs with fewer threads than cores get a _Nthread(s) suffix")
    p.add_argument("--compile", action="store_true", help="also time the trainer under torch.compile (slow start)")
    p.add_argument("--compile-modes", default=None,
                   help="comma-separated torch.compile modes to time beside ours, each also trained in the quality "
                        f"check for KID at equal steps ({', '.join(COMPILE_MODES)}; gpu-check on CUDA default: "
                        f"{','.join(GPU_CHECK_COMPILE)}; '' for none)")
    p.add_argument("--device", default="auto", help="auto (CUDA, then MPS, then the CPU), cpu, cuda, cuda:N, mps")
    p.add_argument("--no-ablation", action="store_true", help="skip the one-choice-off runs")
    p.add_argument("--ablations", default=None,
                   help="comma-separated choices to switch off one at a time (default all: "
                        f"{','.join(ABLATIONS)})")
    p.add_argument("--warmup", type=int, default=2, help="untimed steps before every window")
    p.add_argument("--no-limits", action="store_true", help="skip the GEMM/conv throughput, FLOP count and profile")
    p.add_argument("--no-bf16", action="store_true", help="skip the bf16 row (timed only where bf16 is fast)")
    p.add_argument("--quality-steps", type=int, default=None,
                   help="steps of the fp32 vs bf16 curve comparison (default 200; gpu-check 300)")
    p.add_argument("--fid-samples", type=int, default=None,
                   help="G samples per fp32/bf16 quality run for FID/KID (default 0; gpu-check 1000)")
    p.add_argument("--samples-dir", default=None,
                   help="where those samples are saved when the FID Inception weights are not installed")
    p.add_argument("--no-probe", action="store_true", help="skip the CIFAR-10 probe timing")
    p.add_argument("--probe-only", action="store_true", help="time only the CIFAR-10 probe")
    p.add_argument("--tiny", action="store_true", help="seconds-long smoke run for CI (smoke profile, tiny nets)")
    p.add_argument("--out", default=None, help="folder for the records (default: the profile's figures folder)")
    p.set_defaults(func=run)


def compile_modes_of(args, device: torch.device) -> tuple[str, ...]:
    """The torch.compile modes asked for: --compile-modes, else GPU_CHECK_COMPILE for gpu-check on CUDA."""
    if args.compile_modes is not None:
        return tuple(m for m in args.compile_modes.split(",") if m)
    return GPU_CHECK_COMPILE if args.mode == "gpu-check" and device.type == "cuda" and not args.tiny else ()


def configs(args, device: torch.device | None = None) -> tuple[str, BenchConfig, ProbeBenchConfig]:
    """The profile name and both benchmark configs a command line asks for."""
    profile = "smoke" if args.tiny else profiles.resolve_name(args.profile)
    prof = profiles.get_profile(profile)
    width = args.width if args.width is not None else prof.width
    ablations = ABLATIONS if args.ablations is None else tuple(a for a in args.ablations.split(",") if a)
    unknown = set(ablations) - set(ABLATIONS)
    if unknown:
        raise ValueError(f"unknown --ablations {', '.join(sorted(unknown))}; valid: {', '.join(ABLATIONS)}")
    if args.mode == "gpu-check":  # Paper §4's lsun64 at batch 128 on the paper's nets; ablations that matter on a GPU
        if args.ablations is None:
            ablations = ("channels_last", "fused_adam", "no_host_sync", "array_batches")
        width = args.width if args.width is not None else 1.0
    cfg = BenchConfig(variant="lsun64" if args.mode == "gpu-check" else args.variant, batch_size=args.batch,
                      width=width, seconds=args.seconds, windows=args.windows, warmup_steps=args.warmup,
                      n_files=args.files, dataset=args.dataset, workers=args.workers,
                      ablations=() if args.no_ablation else ablations, all_off=not args.no_ablation,
                      compile=args.compile, compile_modes=compile_modes_of(args, device or torch.device("cpu")),
                      bf16=not args.no_bf16, limits=not args.no_limits,
                      quality_steps=args.quality_steps if args.quality_steps is not None
                      else 300 if args.mode == "gpu-check" else 200, seed=prof.seed,
                      fid_samples=args.fid_samples if args.fid_samples is not None
                      else 1000 if args.mode == "gpu-check" else 0, samples_dir=args.samples_dir)
    if args.tiny:
        cfg = dataclasses.replace(cfg, batch_size=min(args.batch, 16),
                                  width=args.width if args.width is not None else prof.width, seconds=0.4, windows=2,
                                  warmup_steps=1, n_files=64, dataset=args.dataset or "bedrooms",
                                  ablations=cfg.ablations[:1], all_off=False, limit_seconds=0.3, profile_steps=1,
                                  quality_steps=min(cfg.quality_steps, 6), fid_samples=min(cfg.fid_samples, 8))
    from dcgan_lib.measure.probes import settings_for  # sklearn: imported only when the command runs

    settings = settings_for(prof)
    probe = ProbeBenchConfig(width=cfg.width, train_images=None if settings.full_extraction else settings.cifar_train,
                             test_images=None if settings.full_extraction else settings.cifar_test,
                             svm_train=settings.cifar_train, seed=prof.seed)
    return profile, cfg, probe


def run(args) -> int:
    if args.seconds is None:
        args.seconds = 10.0 if args.mode == "gpu-check" else 20.0
    if args.batch < 2 or args.seconds <= 0 or args.windows < 1:
        raise ValueError("--batch must be >= 2 (BatchNorm), --seconds > 0 and --windows >= 1")
    if args.threads is not None:
        if args.threads < 1:
            raise ValueError("--threads must be >= 1")
        torch.set_num_threads(args.threads)
    device = profiles.get_device(args.device)
    profile, cfg, probe = configs(args, device)
    compile_modes(cfg)  # an unknown --compile-modes: one clear error before any work
    out = Path(args.out) if args.out else results.figures_dir(profile)
    if args.mode == "gpu-check":
        return gpu_check(args, profile, cfg, probe, device, out)
    if not args.probe_only:
        path = bench.bench_training(cfg, profile, device, out)
        m = results.read_record(path)["metrics"]
        print(f"{cfg.variant} (width {cfg.width:g}, batch {cfg.batch_size}) on {results.device_name(device)}:")
        print(f"  ours fp32      {m['ours_images_per_s']:>10,.1f} images/s")
        print(f"  reference fp32 {m['reference_images_per_s']:>10,.1f} images/s")
        print(f"  ratio          {m['ratio']:>10.2f}x  at equal numerics (target met: {m['targets']['met']})")
        for name, rate in m["ablation_images_per_s"].items():
            print(f"  {name:36s} {rate:>10,.1f} images/s")
        if m["limits"]:
            f = m["limits"]["fp32"]
            print(f"  achieved {f['achieved_gflop_per_s']:,.1f} GFLOP/s = {f['fraction_of_conv']:.0%} of the measured "
                  f"conv ({f['conv_gflop_per_s']:,.1f}), {f['fraction_of_gemm']:.0%} of GEMM "
                  f"({f['gemm_gflop_per_s']:,.1f})")
            shares = m["limits"]["profile"]["fraction"].items()
            print("  time per step: " + ", ".join(f"{k} {v:.0%}" for k, v in shares))
        if not m["bf16"]["used"]:
            print(f"  bf16: {m['bf16'].get('reason')}")
        if m["targets"].get("not_measured"):
            print(f"  not measured: {m['targets']['not_measured']}")
        print(f"record: {path}")
    if not args.no_probe:
        path = bench_probe(probe, profile, device, out)
        m = results.read_record(path)["metrics"]
        print(f"probe: features of {m['images_featurised']:,} images in {m['features_s']} s, SVM fit on "
              f"{m['svm_train_images']:,} in {m['svm_fit_s']} s; total {m['features_plus_svm_s']} s "
              f"(target {m['targets']['seconds']} s met: {m['targets']['met']})")
        if m["reference_svm_fit_s"] is not None:
            print(f"  the same SVM fit with sklearn's LinearSVC: {m['reference_svm_fit_s']} s")
        print(f"record: {path}")
    print(f"table: {bench_report.write_table(out)}")
    return 0


def gpu_check(args, profile: str, cfg: BenchConfig, probe: ProbeBenchConfig,
              device: torch.device, out: Path) -> int:
    """`bench gpu-check`: one record, bench_gpu_check_<device>.json."""
    if device.type != "cuda" and not args.tiny:
        raise ValueError("bench gpu-check needs a CUDA GPU (none here); `bench gpu-check --tiny` runs its "
                         "seconds-long CPU mode, as CI does")
    path = bench_report.gpu_check(cfg, None if args.no_probe else probe, profile, device, out)
    m = results.read_record(path)["metrics"]
    print(f"GPU check on {m['gpu']}: ours fp32 {m['ours_fp32_images_per_s']:,.1f} img/s ({m['ratio_fp32']:.2f}x), "
          f"bf16 {m['ours_bf16_images_per_s']} img/s ({m['ratio_bf16']}x), reference "
          f"{m['reference_images_per_s']:,.1f} img/s")
    print(f"  bf16 curves within tolerance: {m['bf16_quality_passed']}; fraction of bf16 peak "
          f"{m['fraction_of_bf16_peak']} (measured bf16 matmul {m['measured_bf16_matmul_tflops']} TFLOP/s)")
    print(f"  FID/KID of the fp32 and bf16 quality runs: {m['fid']}")
    for mode, c in m["compile"].items():
        print(f"  torch.compile {mode}: {c['images_per_s']} img/s ({c['ratio_to_ours_fp32']}x ours fp32), first steps "
              f"{c['first_steps_s']} s, curves within tolerance: {c['curves_within_tolerance']}, KID {c['kid']} "
              f"(fp32 {c['kid_fp32']})")
    print(f"  targets met: {m['targets']['met']}; probe: {m['probe']}")
    print(f"record: {path}")
    return 0
