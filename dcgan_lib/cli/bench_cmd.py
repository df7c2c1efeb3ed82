"""`python -m dcgan_lib bench [--variant lsun64|imagenet32] [--batch 128] [--seconds S] [--tiny]`."""
from __future__ import annotations

import dataclasses
from pathlib import Path

import torch

from dcgan_lib import bench, profiles, results


def register(sub) -> None:
    p = sub.add_parser("bench", help="time our trainer against a plain reference loop, and the probe pipeline")
    p.add_argument("--variant", default="lsun64", choices=sorted(bench.STAND_INS))
    p.add_argument("--batch", type=int, default=128, help="batch size (Paper §4: 128)")
    p.add_argument("--seconds", type=float, default=20.0, help="timed seconds per loop, split over --windows")
    p.add_argument("--windows", type=int, default=5, help="interleaved timed windows per loop (median reported)")
    p.add_argument("--profile", default="auto", choices=list(profiles.NAMES),
                   help="sets the width (and the probe sizes); auto: paper on a GPU, else cpu")
    p.add_argument("--width", type=float, default=None, help="override the profile's width multiplier")
    p.add_argument("--files", type=int, default=2048, help="image files both loops read")
    p.add_argument("--dataset", default=None, help="images to read (default: the variant's mirror stand-in)")
    p.add_argument("--workers", type=int, default=2, help="reference DataLoader workers (pytorch/examples: 2)")
    p.add_argument("--threads", type=int, default=None,
                   help="torch threads (default: torch's, one per core); 1 is steadier on a busy shared machine. "
                        "Records of runs with fewer threads than cores get a _Nthread(s) suffix")
    p.add_argument("--compile", action="store_true", help="also time the trainer under torch.compile (slow start)")
    p.add_argument("--no-ablation", action="store_true", help="skip the one-flag-off runs")
    p.add_argument("--no-probe", action="store_true", help="skip the CIFAR-10 probe timing")
    p.add_argument("--probe-only", action="store_true", help="time only the CIFAR-10 probe")
    p.add_argument("--tiny", action="store_true", help="seconds-long smoke run for CI (smoke profile, tiny nets)")
    p.add_argument("--out", default=None, help="folder for the records (default: the profile's figures folder)")
    p.set_defaults(func=run)


def configs(args) -> tuple[str, bench.BenchConfig, bench.ProbeBenchConfig]:
    """The profile name and both benchmark configs a command line asks for."""
    profile = "smoke" if args.tiny else profiles.resolve_name(args.profile)
    prof = profiles.get_profile(profile)
    width = args.width if args.width is not None else prof.width
    cfg = bench.BenchConfig(variant=args.variant, batch_size=args.batch, width=width, seconds=args.seconds,
                            windows=args.windows, n_files=args.files, dataset=args.dataset, workers=args.workers,
                            ablations=() if args.no_ablation else bench.ABLATIONS, all_off=not args.no_ablation,
                            compile=args.compile, seed=prof.seed)
    if args.tiny:
        cfg = dataclasses.replace(cfg, batch_size=min(args.batch, 16), seconds=0.4, windows=2, warmup_steps=1,
                                  n_files=64, dataset=args.dataset or "bedrooms",
                                  ablations=cfg.ablations[-1:], all_off=False)
    from dcgan_lib.probes import settings_for  # sklearn: imported only when the command runs

    settings = settings_for(prof)
    probe = bench.ProbeBenchConfig(width=width, train_images=None if settings.full_extraction else prof.probe_train,
                                   test_images=None if settings.full_extraction else prof.probe_test,
                                   svm_train=settings.cifar_train, seed=prof.seed)
    return profile, cfg, probe


def run(args) -> int:
    if args.batch < 2 or args.seconds <= 0 or args.windows < 1:
        raise ValueError("--batch must be >= 2 (BatchNorm), --seconds > 0 and --windows >= 1")
    if args.threads is not None:
        if args.threads < 1:
            raise ValueError("--threads must be >= 1")
        torch.set_num_threads(args.threads)
    profile, cfg, probe = configs(args)
    out = Path(args.out) if args.out else results.figures_dir(profile)
    device = profiles.get_device("auto")
    if not args.probe_only:
        path = bench.bench_training(cfg, profile, device, out)
        m = results.read_record(path)["metrics"]
        print(f"{cfg.variant} (width {cfg.width:g}, batch {cfg.batch_size}) on {results.device_name(device)}:")
        print(f"  ours      {m['ours_images_per_s']:>10,.1f} images/s")
        print(f"  reference {m['reference_images_per_s']:>10,.1f} images/s")
        print(f"  ratio     {m['ratio']:>10.2f}x  (target met: {m['targets']['met']})")
        for name, rate in m["ablation_images_per_s"].items():
            print(f"  {name:28s} {rate:>10,.1f} images/s")
        if m["targets"].get("not_measured"):
            print(f"  not measured: {m['targets']['not_measured']}")
        print(f"record: {path}")
    if not args.no_probe:
        path = bench.bench_probe(probe, profile, device, out)
        m = results.read_record(path)["metrics"]
        print(f"probe: features of {m['images_featurised']:,} images in {m['features_s']} s, SVM fit on "
              f"{m['svm_train_images']:,} in {m['svm_fit_s']} s; total {m['features_plus_svm_s']} s "
              f"(target {m['targets']['seconds']} s met: {m['targets']['met']})")
        if m["reference_svm_fit_s"] is not None:
            print(f"  the same SVM fit with sklearn's LinearSVC: {m['reference_svm_fit_s']} s")
        print(f"record: {path}")
    print(f"table: {bench.write_table(out)}")
    return 0
