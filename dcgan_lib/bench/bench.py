"""Training speed benchmark: our Trainer against a plain reference loop.

In one process, on the same image files, `Ours` (the Trainer's fast path in fp32) and `Reference` (written
the way pytorch/examples' dcgan is) run the same nets; both loops, their shared files and the benchmark's
config are dcgan_lib.bench.bench_loops. The headline ratio is at EQUAL numerics (fp32 against fp32); bf16 autocast
is a separate row, shown as a win only next to a check that it trains alike (dcgan_lib.bench.bench_quality: the
loss and D(x), D(G(z)) curves of fp32 and bf16 runs from one seed); so is each torch.compile row (its curves and
KID after the same steps beside fp32's).
Timed windows of each loop are interleaved (A B A B ...) so a machine shared with other jobs slows them
alike; warm-up steps before every window are excluded; the median window is reported. Ablations switch
one fast-path choice off at a time (fp32), so every choice is justified by a measured number; the
machine-limit row (dcgan_lib.bench.flops) says what fraction of this machine's measured conv and GEMM
throughput the trainer reaches, and a profile says where the rest of the time goes.

The CIFAR-10 probe timing is dcgan_lib.bench.bench_probe; the one-command GPU check and the bench.md
table, which combine both benchmarks, are dcgan_lib.bench.bench_report.
"""
from __future__ import annotations

import dataclasses
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import torch
from tqdm.auto import tqdm

from dcgan_lib.bench import bench_loops, flops
from dcgan_lib.bench.bench_loops import (
    ABLATION_MEANING,
    BenchConfig,
    Ours,
    Reference,
    file_loader,
    ours_specs,
    prepare_files,
)
from dcgan_lib.bench.bench_quality import bf16_quality
from dcgan_lib.config import profiles
from dcgan_lib.config.device import get_device
from dcgan_lib.gan import nets, train
from dcgan_lib.gan.train import Trainer
from dcgan_lib.records import results

PAPER_DATA = {"lsun64": "lsun_bedroom", "imagenet32": "imagenet"}  # each timed variant's data; files: its stand-in
LSUN_IMAGES = 3_033_043  # Paper §4.1
# Dense bf16 tensor-core peaks (FLOP/s) from the vendors' data sheets; matched in this order.
BF16_PEAKS = (("H100 PCIe", 756e12), ("H100 NVL", 835e12), ("H100", 989e12), ("H200", 989e12),
              ("GH200", 989e12), ("A100", 312e12), ("L40S", 362e12), ("L4", 121e12))
TARGETS = {"gpu_images_per_s": 10_000, "gpu_ratio": 4.0, "cpu_ratio": 1.5, "cpu_conv_fraction": 0.6,
           "probe_gpu_s": 300, "probe_cpu_s": 1800}  # the speed targets the course set itself


# ---- timing -------------------------------------------------------------------------------------

def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _with_threads(loop, fn):
    """Run fn with the loop's torch thread count (its `threads`, when set), then restore the process's."""
    n = getattr(loop, "threads", None)
    if not n:
        return fn()
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        return fn()
    finally:
        torch.set_num_threads(before)


def time_window(loop, seconds: float, warmup: int, batch_size: int, device: torch.device) -> float:
    """Images/s of one window: `warmup` untimed steps, then steps until `seconds` have passed."""
    for _ in range(warmup):
        loop.step()
    _sync(device)
    start, steps = time.perf_counter(), 0
    while steps == 0 or time.perf_counter() - start < seconds:
        loop.step()
        steps += 1
    _sync(device)
    return steps * batch_size / (time.perf_counter() - start)


def interleaved(loops: list, cfg: BenchConfig, device: torch.device, progress: bool = True) -> dict[str, list]:
    """Each loop's images/s in every window, windows taken in turn (A B C A B C ...), each loop with its
    own thread count."""
    rates: dict[str, list[float]] = {loop.name: [] for loop in loops}
    bar = tqdm(total=cfg.windows * len(loops), desc="bench windows", disable=not progress)
    for _ in range(cfg.windows):
        for loop in loops:
            warmup = cfg.warmup_steps + getattr(loop, "prefetched", 0)  # drain the loader's ready batches
            rates[loop.name].append(_with_threads(loop, lambda loop=loop, warmup=warmup: time_window(
                loop, cfg.seconds / cfg.windows, warmup, cfg.batch_size, device)))
            bar.update(1)
    bar.close()
    return rates


def step_flops(trainer: Trainer) -> float:
    """FLOPs of one of the Trainer's steps (D step + G step, forward + backward), counted by torch."""
    return flops.count_flops(trainer.train_step)


def bf16_peak(device: torch.device) -> float | None:
    """The GPU's dense bf16 peak in FLOP/s, when it is a known part; None on CPUs and unknown GPUs."""
    if device.type != "cuda":
        return None
    name = torch.cuda.get_device_name(device)
    return next((peak for key, peak in BF16_PEAKS if key in name), None)


def load_average() -> list[float] | None:
    """The 1, 5 and 15 minute load averages (None where the OS has none): how busy the machine was."""
    return [round(x, 2) for x in os.getloadavg()] if hasattr(os, "getloadavg") else None


def cpu_pressure() -> float | None:
    """Share of the last 60 s in which some runnable task waited for a CPU (Linux PSI; None elsewhere)."""
    try:
        line = Path("/proc/pressure/cpu").read_text().splitlines()[0]  # some avg10=.. avg60=.. avg300=..
    except (OSError, IndexError):
        return None
    fields = dict(part.split("=") for part in line.split()[1:])
    return round(float(fields["avg60"]) / 100, 3)


def host() -> dict:
    """The CPU this ran on: model name, cores, torch threads, hardware bf16 (AMX)."""
    return {"cpu_model": results.cpu_model(), "cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads(),
            "cpu_amx_bf16": train.fast_cpu_bf16()}


# ---- the training benchmark ---------------------------------------------------------------------

def _limits(cfg: BenchConfig, loops: list, device: torch.device, median: dict[str, float]) -> dict:
    """Step FLOPs of ours and of the reference, the machine's measured GEMM and conv throughput (fp32, and
    bf16 when a bf16 row ran), the fractions reached, and the profile of one of our steps."""
    by_name = {loop.name: loop for loop in loops}
    net_cfg = nets.get_config(cfg.variant, None, cfg.width)
    step = {"ours": step_flops(by_name["ours"].trainer), "reference": flops.count_flops(by_name["reference"].step)}
    out = {"step_flops": step, "train_gflop_per_image": round(step["ours"] / cfg.batch_size / 1e9, 4),
           "reference_gflop_per_image": round(step["reference"] / cfg.batch_size / 1e9, 4)}
    dtypes = [("fp32", torch.float32, "ours")] + ([("bf16", torch.bfloat16, "ours bf16")] if "ours bf16" in median
                                                   else [])
    for label, dtype, loop_name in dtypes:
        gemm = flops.gemm_throughput(device, dtype, seconds=cfg.limit_seconds / 2)
        conv = flops.conv_throughput(net_cfg, cfg.batch_size, device, dtype, seconds=cfg.limit_seconds)
        achieved = step["ours"] / cfg.batch_size * median[loop_name]
        ref = step["reference"] / cfg.batch_size * median["reference"]
        out[label] = {
            "gemm_gflop_per_s": round(gemm["flop_per_s"] / 1e9, 1), "gemm_n": gemm["n"],
            "conv_gflop_per_s": round(conv["flop_per_s"] / 1e9, 1),
            "conv_layers": [{**r, "flop_per_s": round(r["flop_per_s"] / 1e9, 1)} for r in conv["layers"]],
            "achieved_gflop_per_s": round(achieved / 1e9, 1), "reference_gflop_per_s": round(ref / 1e9, 1),
            "fraction_of_conv": round(achieved / conv["flop_per_s"], 3),
            "fraction_of_gemm": round(achieved / gemm["flop_per_s"], 3),
            "reference_fraction_of_conv": round(ref / conv["flop_per_s"], 3)}
    ours = by_name["ours"]
    out["profile"] = flops.time_breakdown(ours.step, cfg.profile_steps, data_fn=(ours.trainer, "_batch"),
                                          device=device)
    out["note"] = ("FLOPs: torch.utils.flop_counter over one real step (convs and matmuls; BatchNorm, activations "
                   "and Adam are not counted); conv throughput: the best of the nets' largest D conv and G "
                   "transposed conv at this batch, forward + input and weight gradients, channels_last and NCHW")
    return out


def training_metrics(cfg: BenchConfig, device: torch.device, progress: bool) -> tuple[dict, dict]:
    """Time every loop; returns the metrics and the record's context."""
    dataset = cfg.dataset or profiles.STAND_INS[PAPER_DATA[cfg.variant]]  # a few thousand files: the mirror has them
    size = nets.get_config(cfg.variant).image_size
    load_before = load_average()
    with results.stopwatch() as wall, tempfile.TemporaryDirectory(prefix="dcgan_bench_") as tmp:
        tmp = Path(tmp)
        folder, images, source = prepare_files(dataset, cfg.n_files, size, tmp)
        specs = ours_specs(cfg, device)
        loops = [Ours(name, spec, images, tmp / name.replace(" ", "_").replace(",", ""), device,
                      loader=None if spec.array_batches else file_loader(cfg, folder, size))
                 for name, spec in specs.items()]
        loops.insert(1, Reference(cfg, folder, device))
        compiled = {bench_loops.compile_row(mode): mode for mode in bench_loops.compile_modes(cfg)}
        compile_s = {}
        for loop in loops:  # first steps: allocation, oneDNN/cuDNN plans, torch.compile
            with results.stopwatch() as first:
                _with_threads(loop, lambda loop=loop: [loop.step() for _ in range(2)])
                _sync(device)
            if loop.name in compiled:
                compile_s[loop.name] = round(first(), 1)
        rates = interleaved(loops, cfg, device, progress)
        finals = {loop.name: loop.check() for loop in loops}
        median = {name: statistics.median(r) for name, r in rates.items()}
        limits = _limits(cfg, loops, device, median) if cfg.limits else None
        quality = None
        if cfg.quality_steps and ("ours bf16" in median or cfg.quality_always):
            quality = bf16_quality(cfg.variant, cfg.width, cfg.batch_size, images, cfg.quality_steps, device,
                                   tmp / "quality", cfg.seed, fid_samples=cfg.fid_samples,
                                   samples_dir=Path(cfg.samples_dir) if cfg.samples_dir else None,
                                   compile_modes=tuple(compiled.values()))
        for loop in loops:
            loop.close()
        shutil.rmtree(tmp / "files", ignore_errors=True)
    ours, ref = median["ours"], median["reference"]
    bf16 = {"numerics": "NOT equal: bf16 autocast (weights, optimizer and losses fp32)", "used": "ours bf16" in median,
            "quality": quality}
    if bf16["used"]:
        bf16.update(images_per_s=round(median["ours bf16"], 1),
                    ratio_to_reference=round(paired_ratio(rates["ours bf16"], rates["reference"]), 2),
                    ratio_to_ours_fp32=round(paired_ratio(rates["ours bf16"], rates["ours"]), 2),
                    shown_as_win=bool(quality and quality["passed"]))
    else:
        bf16["reason"] = ("not timed: this CPU has no AMX (bf16 would be emulated, slower than fp32), so the "
                          "Trainer does not use bf16 here" if device.type == "cpu" and cfg.bf16 else "not asked")
    metrics = {
        "numerics": "fp32 against fp32 (equal numerics)",
        "ours_images_per_s": round(ours, 1), "reference_images_per_s": round(ref, 1),
        "ratio": round(paired_ratio(rates["ours"], rates["reference"]), 2),  # median of per-round ratios
        "bf16": bf16,
        "ablation_images_per_s": {k: round(v, 1) for k, v in median.items() if k not in ("ours", "reference")},
        "speedups": _speedups(rates),
        "windows_images_per_s": {k: [round(x, 1) for x in v] for k, v in rates.items()},
        "spread": round(max(max(v) / min(v) for v in rates.values()), 2),  # worst max/min over windows
        "lsun_epoch_minutes": round(LSUN_IMAGES / ours / 60, 1) if cfg.variant == "lsun64" else None,
        "limits": limits,
        # per torch.compile row: seconds of its first 2 steps (small when torch's on-disk compile cache is warm)
        "compile_first_steps_s": compile_s or None,
        "final_losses": finals,
    }
    metrics["targets"] = _training_targets(metrics, device)
    context = dict(
        data={**source, "files": cfg.n_files, "size": size}, wall_s=wall(),
        bench_config=dataclasses.asdict(cfg), threads=torch.get_num_threads(), host=host(),
        load_average_before=load_before, load_average_after=load_average(), cpu_pressure_after=cpu_pressure(),
        reference_loop="pytorch/examples dcgan style: fp32, NCHW, torchvision ImageFolder + DataLoader decoding "
                       f"files every step ({cfg.workers} workers, persistent, drop_last), Adam (default "
                       "implementation), BCELoss on sigmoid, .item() every step, D weight grads in the G step",
        fast_path="Trainer.train_step in fp32: uint8 array batches, channels_last, fused Adam, no host sync, "
                  "no D weight grads in the G step; bf16 autocast only in the separate bf16 row "
                  f"({'timed' if bf16['used'] else 'not timed here'})",
        ablation_meaning=ABLATION_MEANING)
    return metrics, context


def record_stem(prefix: str, cfg: BenchConfig, device: torch.device) -> str:
    """bench_<variant>_w<width>_<device>[_<n>thread(s)]: CPU runs with fewer threads than cores say so."""
    threads = torch.get_num_threads()
    suffix = f"_{threads}thread{'s' * (threads > 1)}" if device.type == "cpu" and threads != os.cpu_count() else ""
    return f"{prefix}_{cfg.variant}_w{cfg.width:g}_{device.type}{suffix}"


def bench_training(cfg: BenchConfig, profile: str, device: torch.device | None = None,
                   out_dir: Path | None = None, progress: bool = True) -> Path:
    """Time our Trainer against the reference loop on the same files; write bench_<variant>_w<width>_<device>.json."""
    device = device or get_device()
    metrics, context = training_metrics(cfg, device, progress)
    wall_s = context.pop("wall_s")
    return results.write_record(
        record_stem("bench", cfg, device), name=f"training speed {cfg.variant}", profile=profile,
        metrics=metrics, out_dir=out_dir, device=device, seed=cfg.seed, wall_s=wall_s,
        paper={"note": "the paper reports no training speed", "batch_size": 128, "lsun_images": LSUN_IMAGES},
        **context)


def paired_ratio(a: list[float], b: list[float]) -> float:
    """Median over rounds of a[i] / b[i]: windows of one round ran back to back, so load drift cancels."""
    return statistics.median(x / y for x, y in zip(a, b, strict=True))


def _speedups(rates: dict[str, list[float]]) -> dict[str, float]:
    """What each fast-path choice buys (paired per round): ours over ours-without-it, compile over ours,
    bf16 over ours fp32, and ours with every choice off over the reference (about 1: the same work)."""
    ours = rates["ours"]
    gains = {k.removeprefix("ours without "): paired_ratio(ours, v) for k, v in rates.items()
             if k.startswith("ours without ")}
    if "ours, all choices off" in rates:
        gains["all choices"] = paired_ratio(ours, rates["ours, all choices off"])
        gains["all choices off vs reference"] = paired_ratio(rates["ours, all choices off"], rates["reference"])
    for name, r in rates.items():
        if name.startswith("ours + compile"):
            gains[name.removeprefix("ours + ")] = paired_ratio(r, ours)
    if "ours bf16" in rates:
        gains["bf16 (not equal numerics)"] = paired_ratio(rates["ours bf16"], ours)
    return {k: round(v, 2) for k, v in gains.items()}


def _training_targets(metrics: dict, device: torch.device) -> dict:
    if device.type == "cuda":
        bf16 = metrics["bf16"]  # judged on the faster path: bf16 counts only where its quality check passed
        use_bf16 = bool(bf16.get("shown_as_win")) and bf16["images_per_s"] > metrics["ours_images_per_s"]
        best = bf16["images_per_s"] if use_bf16 else metrics["ours_images_per_s"]
        ratio = bf16["ratio_to_reference"] if use_bf16 else metrics["ratio"]
        return {"gpu_images_per_s": TARGETS["gpu_images_per_s"], "gpu_ratio": TARGETS["gpu_ratio"],
                "judged_on": "bf16 (faster, and its quality check passed)" if use_bf16 else "fp32 (the faster path)"
                if bf16.get("used") else "fp32",
                "images_per_s": best, "ratio": ratio,
                "met": best >= TARGETS["gpu_images_per_s"] and ratio >= TARGETS["gpu_ratio"]}
    limits = metrics.get("limits") or {}
    fraction = (limits.get("fp32") or {}).get("fraction_of_conv")
    ratio_met = metrics["ratio"] >= TARGETS["cpu_ratio"]
    conv_met = None if fraction is None else fraction >= TARGETS["cpu_conv_fraction"]
    return {"cpu_ratio": TARGETS["cpu_ratio"], "ratio_met": ratio_met,
            "cpu_conv_fraction": TARGETS["cpu_conv_fraction"], "conv_fraction_met": conv_met,
            "met": ratio_met and conv_met is not False,
            "not_measured": "GPU targets (H100, lsun64, batch 128: >= 10,000 images/s and >= 4x the "
                            "reference; fraction of bf16 peak): no GPU was at hand for this run; "
                            "`python -m dcgan_lib bench gpu-check` measures them on one"}
