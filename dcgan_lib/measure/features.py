"""D's features as a representation (Paper §5): every conv layer max-pooled to 4x4, concatenated.

The authors' ImageNet D (6 layers, 1792 channels) gives 1792 x 16 = 28,672 features; their SVHN D
(3 layers, 448 channels) gives 7,168. Extraction streams in batches into a float32 array (in memory
or a .npy memmap on disk), so only one batch of images is ever on the device.

BatchNorm statistics: the authors' SVHN probe (svhn_semisup_analysis.py) ran D over the probe's
TRAIN images once, averaged the per-batch means and variances of each BN layer, and froze them
for every later image ("train_set" here, the default). "running" uses the running averages kept
during GAN training (a mix of real and generated batches); "batch" normalises each batch by its
own statistics, so an image's features depend on the rest of its batch.
"""
from __future__ import annotations

import copy
import resource
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from dcgan_lib.config.device import to_float64
from dcgan_lib.data.data import to_float
from dcgan_lib.gan.nets import Discriminator, NetConfig

BN_MODES = ("train_set", "running", "batch")


@dataclass(frozen=True)
class FeatureConfig:
    """How features are extracted (Paper §5.1: every layer, max-pooled to a 4x4 grid)."""

    grid: int = 4  # each layer is max-pooled to grid x grid
    batch_size: int = 256
    bn_stats: str = "train_set"  # one of BN_MODES (see the module docstring)
    bn_images: int | None = 10_000  # images used to estimate train-set statistics (None: all given)


@dataclass(frozen=True)
class FeatureSet:
    """Extracted features and what the extraction cost."""

    x: np.ndarray  # (N, dim) float32, in memory or a memmap
    layer_dims: tuple[int, ...]  # features contributed by each conv layer
    seconds: float
    peak_memory_mb: float  # peak anonymous resident memory during extraction (memmaps excluded)
    peak_device_mb: float | None  # peak CUDA memory, when run on a GPU
    bn_stats: str

    @property
    def images_per_s(self) -> float:
        """Throughput of the extraction."""
        return len(self.x) / max(self.seconds, 1e-9)

    def summary(self) -> dict:
        """Numbers for a record (Paper §5.1)."""
        device_mb = None if self.peak_device_mb is None else round(self.peak_device_mb, 1)
        return {"images": len(self.x), "dim": int(self.x.shape[1]), "layer_dims": list(self.layer_dims),
                "seconds": round(self.seconds, 2), "images_per_s": round(self.images_per_s, 1),
                "feature_mb": round(self.x.nbytes / 2**20, 1),
                "peak_memory_mb": round(self.peak_memory_mb, 1), "peak_device_mb": device_mb,
                "bn_stats": self.bn_stats}


def layer_dims(cfg: NetConfig, grid: int = 4) -> tuple[int, ...]:
    """Features each conv layer of D contributes: channels x grid x grid (Paper §5.1)."""
    dims, side = [], cfg.image_size
    for channels, stride in cfg.d_layers:
        side //= stride
        if side < grid:
            raise ValueError(f"layer with side {side} is smaller than the {grid}x{grid} pooling grid")
        dims.append(channels * grid * grid)
    return tuple(dims)


def feature_dim(cfg: NetConfig, grid: int = 4) -> int:
    """Length of the concatenated feature vector: 28,672 for imagenet32, 7,168 for svhn32 (Paper §5)."""
    return sum(layer_dims(cfg, grid))


def pooled_features(d: Discriminator, x: torch.Tensor, grid: int = 4) -> torch.Tensor:
    """Every conv layer of D max-pooled to grid x grid, flattened and concatenated (Paper §5.1)."""
    parts = []
    for h in d.features(x):  # each (N, C, side, side)
        pooled = F.adaptive_max_pool2d(h, grid)  # (N, C, grid, grid); side/grid windows, no overlap
        parts.append(pooled.flatten(1))  # (N, C * grid * grid)
    return torch.cat(parts, dim=1)  # (N, sum of C) * grid * grid


def uint8_to_float(batch: np.ndarray, device: torch.device | str = "cpu") -> torch.Tensor:
    """uint8 NHWC images -> float NCHW in [-1, 1], D's input range (Paper §4)."""
    x = torch.from_numpy(np.array(batch, dtype=np.uint8)).to(device)  # (N, H, W, 3) uint8, a writable copy
    return to_float(x)  # (N, 3, H, W) float


def _batches(n: int, batch_size: int, desc: str | None):
    starts = range(0, n, batch_size)
    return tqdm(starts, desc=desc, leave=False, disable=desc is None or len(starts) < 4)


def with_train_set_bn(d: Discriminator, images, batch_size: int = 256, device="cpu",
                      desc: str | None = "BN statistics") -> Discriminator:
    """A copy of D in eval mode, BatchNorm statistics averaged over `images` (authors' §5.2 code).

    Exactly the authors' `infer_bnorm_stats`: D runs over the images in batches with batch-statistic
    BatchNorm; each BN layer's per-batch mean and BIASED variance (the ones that batch was normalised
    with) are averaged over the batches, and frozen as that layer's statistics.
    """
    d = copy.deepcopy(d).to(device)
    norms = [m for m in d.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    sums = {m: [0.0, 0.0] for m in norms}

    def record(module, inputs):
        x = to_float64(inputs[0].detach())  # on the CPU where the device has no float64 (MPS)
        dims = [0] + list(range(2, x.dim()))  # every axis but the channel (or unit) axis
        mean = x.mean(dims)
        var = (x - mean.view(1, -1, *[1] * (x.dim() - 2))).pow(2).mean(dims)  # biased, as normalised
        sums[module][0] = sums[module][0] + mean
        sums[module][1] = sums[module][1] + var

    hooks = [m.register_forward_pre_hook(record) for m in norms]
    d.train()
    batches = 0
    try:
        with torch.no_grad():
            for start in _batches(len(images), batch_size, desc):
                d.features(uint8_to_float(images[start:start + batch_size], device))
                batches += 1
    finally:
        for h in hooks:
            h.remove()
    if batches == 0:
        raise ValueError("BatchNorm statistics need at least one image")
    for m, (mean, var) in sums.items():
        m.running_mean.copy_(mean / batches)
        m.running_var.copy_(var / batches)
    return d.eval()


def prepare_bn(d: Discriminator, cfg: FeatureConfig, bn_images=None, device="cpu") -> Discriminator:
    """A copy of D set to the BatchNorm mode of `cfg` (train_set, running or batch), on `device`."""
    if cfg.bn_stats not in BN_MODES:
        raise ValueError(f"bn_stats must be one of {BN_MODES}, got {cfg.bn_stats!r}")
    if cfg.bn_stats == "train_set":
        if bn_images is None:
            raise ValueError("bn_stats='train_set' needs bn_images: the probe's training images")
        if cfg.bn_images is not None and len(bn_images) > cfg.bn_images:
            bn_images = bn_images[:cfg.bn_images]
        return with_train_set_bn(d, bn_images, cfg.batch_size, device)
    d = copy.deepcopy(d).to(device)
    return d.train() if cfg.bn_stats == "batch" else d.eval()


def peak_rss_mb() -> float:
    """The process's peak resident memory so far (anonymous and file-backed pages alike)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # bytes on macOS, KiB elsewhere
    return peak / 2**20 if sys.platform == "darwin" else peak / 2**10


def memory_mb() -> float:
    """Anonymous resident memory (Linux RssAnon: excludes memory-mapped caches), else the peak RSS."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("RssAnon:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return peak_rss_mb()


def extract(d: Discriminator, images, cfg: FeatureConfig | None = None, bn_images=None,
            device: torch.device | str = "cpu", out: str | Path | None = None,
            desc: str | None = "features", bn_ready: bool = False, dtype=np.float32) -> FeatureSet:
    """Stream uint8 NHWC `images` through D in batches into float32 features (Paper §5.1).

    `bn_images` are the probe's training images, used for the train-set BatchNorm statistics
    (pass `bn_ready=True` with a D already made by `prepare_bn`); `out` (a .npy path) stores the
    features as a memmap on disk instead of in memory; `dtype` float16 halves the store (Table 1 at
    the paper's size: 60,000 x 28,672 features in 3.4 GB).
    """
    cfg = cfg or FeatureConfig()
    device = torch.device(device)
    dims = layer_dims(d.cfg, cfg.grid)
    n, dim = len(images), sum(dims)
    start_time = time.perf_counter()
    net = d.to(device) if bn_ready else prepare_bn(d, cfg, bn_images, device)
    if out is not None:
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        x = np.lib.format.open_memmap(out, mode="w+", dtype=dtype, shape=(n, dim))
    else:
        x = np.empty((n, dim), dtype)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    peak = memory_mb()
    with torch.no_grad():
        for start in _batches(n, cfg.batch_size, desc):
            batch = uint8_to_float(images[start:start + cfg.batch_size], device)  # (B, 3, H, W)
            x[start:start + len(batch)] = pooled_features(net, batch, cfg.grid).cpu().numpy()  # (B, dim)
            peak = max(peak, memory_mb())
    if out is not None:
        x.flush()
    device_mb = torch.cuda.max_memory_allocated(device) / 2**20 if device.type == "cuda" else None
    return FeatureSet(x=x, layer_dims=dims, seconds=time.perf_counter() - start_time, peak_memory_mb=peak,
                      peak_device_mb=device_mb, bn_stats=cfg.bn_stats)


def extract_parts(d: Discriminator, parts: dict, cfg: FeatureConfig | None = None, bn_images=None,
                  device: torch.device | str = "cpu") -> dict[str, FeatureSet]:
    """Features of several image arrays (train, val, test) under ONE set of BatchNorm statistics (§5)."""
    cfg = cfg or FeatureConfig()
    net = prepare_bn(d, cfg, bn_images, device)
    return {name: extract(net, images, cfg, device=device, desc=f"features: {name}", bn_ready=True)
            for name, images in parts.items()}

