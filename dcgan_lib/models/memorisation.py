"""Is G copying its training set? Nearest neighbours of samples, in pixels and in D's features.

Paper §4.1 argues against memorisation with samples after one pass (Fig. 2) and §6.1 with smooth
latent walks; it calls nearest-neighbour search a poor metric (§6) and shows none. The authors'
code still logged one every epoch: the mean Euclidean distance from each of 10,000 held-out
images to its nearest generated sample (`nnd_score` in their lib/metrics.py). This module gives
both views:

- `nearest`: for each query image, its k nearest reference images, streamed over the references
  in chunks (any number of references, one chunk in memory), in pixel space or in D's feature
  space (every conv layer max-pooled to 4x4, as in Paper §5.1, unit-normalised);
- `epoch_curve`: per epoch snapshot, the authors' held-out -> nearest-sample distance and the
  sample -> nearest-training-image distance, beside the distance from real images to their
  nearest OTHER training image (the baseline a copying G would fall far below).

Pixel distances are root-mean-square differences of pixels scaled to [0, 1] (the authors'
Euclidean distance divided by sqrt(pixels x 3)), so they read the same at 32 and 64 px.
"""
from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

import matplotlib.pyplot as plt
import numpy as np
import torch
from tqdm.auto import tqdm

from dcgan_lib.figures import plots
from dcgan_lib.gan import nets
from dcgan_lib.measure import features
from dcgan_lib.models import store

SPACES = ("pixel", "dfeat")


@dataclass(frozen=True)
class NNConfig:
    """How neighbours are searched."""

    space: str = "pixel"  # "pixel" (RMS pixel distance) or "dfeat" (distance of unit D-feature vectors)
    chunk: int = 2048  # reference images embedded at a time
    batch_size: int = 256  # images per D forward pass in "dfeat"
    grid: int = 4  # D features: each layer max-pooled to grid x grid (Paper §5.1)


def embed(images: np.ndarray, space: str = "pixel", d: nets.Discriminator | None = None,
          cfg: NNConfig = NNConfig(), device: torch.device | str = "cpu") -> torch.Tensor:
    """uint8 NHWC images -> (N, dim) float vectors whose Euclidean distances are the search metric."""
    if space not in SPACES:
        raise ValueError(f"space must be one of {SPACES}, got {space!r}")
    if space == "pixel":
        x = torch.from_numpy(np.ascontiguousarray(images)).to(device).flatten(1).float()  # (N, H*W*3)
        return x.div_(255.0 * math.sqrt(x.shape[1]))  # Euclidean distance = RMS pixel difference
    if d is None:
        raise ValueError("space='dfeat' needs D: pass the trained discriminator (with BatchNorm prepared)")
    parts = []
    with torch.no_grad():
        for start in range(0, len(images), cfg.batch_size):
            x = features.uint8_to_float(images[start:start + cfg.batch_size], device)  # (B, 3, H, W)
            parts.append(features.pooled_features(d, x, cfg.grid))  # (B, dim)
    f = torch.cat(parts)
    return f / f.norm(dim=1, keepdim=True).clamp_min(1e-12)  # unit vectors: distance^2 = 2 - 2 cos


def prepare_d(d: nets.Discriminator, train_images: np.ndarray, device: torch.device | str = "cpu",
              bn_images: int = 10_000) -> nets.Discriminator:
    """A copy of D for feature search, BatchNorm statistics frozen from training images (as §5's probes)."""
    cfg = features.FeatureConfig(bn_stats="train_set", bn_images=bn_images)
    return features.prepare_bn(d, cfg, bn_images=train_images, device=device)


def nearest(queries: np.ndarray, refs: np.ndarray, k: int = 1, cfg: NNConfig = NNConfig(),
            d: nets.Discriminator | None = None, exclude: np.ndarray | None = None,
            device: torch.device | str = "cpu", progress: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """(distances, indices), each (Q, k) and sorted, of each query's k nearest reference images.

    `exclude[i]` is a reference index query i may not match (itself, for leave-one-out); -1 for none.
    """
    if k > len(refs) - (exclude is not None):
        raise ValueError(f"asked for {k} neighbours among {len(refs)} references")
    q = embed(queries, cfg.space, d, cfg, device)  # (Q, dim)
    best_d = torch.full((len(q), k), math.inf, device=q.device)
    best_i = torch.full((len(q), k), -1, dtype=torch.long, device=q.device)
    excl = None if exclude is None else torch.as_tensor(exclude, device=q.device).long()
    starts = range(0, len(refs), cfg.chunk)
    for start in tqdm(starts, desc=f"nearest ({cfg.space})", disable=not progress or len(starts) < 3):
        r = embed(refs[start:start + cfg.chunk], cfg.space, d, cfg, device)  # (C, dim)
        dist = torch.cdist(q, r, compute_mode="use_mm_for_euclid_dist")  # (Q, C)
        idx = torch.arange(start, start + len(r), device=q.device).expand(len(q), -1)  # (Q, C)
        if excl is not None:
            dist = dist.masked_fill(idx == excl[:, None], math.inf)
        all_d = torch.cat([best_d, dist], 1)  # (Q, k + C)
        all_i = torch.cat([best_i, idx], 1)
        best_d, order = all_d.topk(k, dim=1, largest=False)  # (Q, k), ascending
        best_i = all_i.gather(1, order)
    # The matrix-multiply distances lose ~1e-4 to cancellation; recompute the k winners exactly.
    flat = best_i.flatten().cpu().numpy()  # (Q * k,)
    r = embed(refs[flat], cfg.space, d, cfg, device).view(len(q), k, -1)  # (Q, k, dim)
    best_d = (q[:, None] - r).norm(dim=2)  # (Q, k)
    best_d, order = best_d.sort(dim=1)
    best_i = best_i.gather(1, order)
    return best_d.cpu().numpy(), best_i.cpu().numpy()


def nnd_score(samples: np.ndarray, refs: np.ndarray, cfg: NNConfig = NNConfig(), d=None,
              device: torch.device | str = "cpu") -> float:
    """The authors' per-epoch metric: mean distance from each real reference image to its nearest sample."""
    dist, _ = nearest(refs, samples, 1, cfg, d, device=device)
    return float(dist.mean())


def leave_one_out(images: np.ndarray, n: int = 500, seed: int = 0, cfg: NNConfig = NNConfig(),
                  d=None, device: torch.device | str = "cpu") -> float:
    """Mean distance from `n` random images to their nearest OTHER image of the same set (the baseline)."""
    pick = np.sort(np.random.default_rng(seed).choice(len(images), min(n, len(images)), replace=False))
    dist, _ = nearest(images[pick], images, 1, cfg, d, exclude=pick, device=device)
    return float(dist.mean())


@dataclass(frozen=True)
class CurveConfig:
    """The per-epoch check: how many samples and reference images (the authors: 1k-100k vs 10k)."""

    n_samples: int = 1000
    n_refs: int = 1000  # real images whose nearest sample is measured (the authors' 10k held-out)
    max_train: int | None = 100_000  # training images searched (a fixed random subset beyond this; LSUN: 3M)
    seed: int = 0  # one fixed z for every epoch, one fixed choice of reference images
    cfg: NNConfig = NNConfig()


def curve_point(g: nets.Generator, z: torch.Tensor, train_images: np.ndarray, refs: np.ndarray,
                device: torch.device | str = "cpu") -> dict[str, float]:
    """One epoch's pixel distances: refs -> nearest sample (authors'), samples -> nearest training image."""
    samples = store.sample(g, z)  # (n_samples, H, W, 3) uint8
    to_train, _ = nearest(samples, train_images, device=device)
    return {"refs_to_samples": nnd_score(samples, refs, device=device),
            "samples_to_train": float(to_train.mean()),
            "samples_to_train_min": float(to_train.min())}


def curve(generators: Iterable[tuple[int, nets.Generator]], train_images: np.ndarray,
          heldout: np.ndarray | None = None, cc: CurveConfig = CurveConfig(),
          device: torch.device | str = "cpu", progress: bool = True, total: int | None = None) -> dict:
    """The memorisation curve over (epoch, G) pairs, with its real-image baselines (pixel space).

    Reference images are `heldout` when given (as the authors), else a fixed subset of the training
    images; the baseline is the distance from the same real images to their nearest training image
    (leave-one-out when they are training images themselves).
    """
    rng = np.random.default_rng(cc.seed)
    if cc.max_train is not None and len(train_images) > cc.max_train:
        train_images = train_images[np.sort(rng.choice(len(train_images), cc.max_train, replace=False))]
    source = heldout if heldout is not None else train_images
    pick = np.sort(rng.choice(len(source), min(cc.n_refs, len(source)), replace=False))
    refs = np.ascontiguousarray(source[pick])
    exclude = None if heldout is not None else pick
    base, _ = nearest(refs, train_images, exclude=exclude, device=device)
    rows, z = [], None
    bar = tqdm(generators, desc="memorisation curve", unit="epoch", total=total, disable=not progress)
    for epoch, g in bar:
        if z is None:
            z = g.cfg.sample_z(cc.n_samples, torch.Generator().manual_seed(cc.seed))
        rows.append({"epoch": epoch, **curve_point(g, z, train_images, refs, device)})
    return {"rows": rows, "real_to_train": float(base.mean()), "real_to_train_min": float(base.min()),
            "refs": "heldout" if heldout is not None else "train", "n_samples": cc.n_samples,
            "n_refs": len(refs), "n_train_searched": len(train_images)}


def epoch_curve(dataset: str, variant: str, profile: str, epochs: Iterable[int], train_images: np.ndarray,
                heldout: np.ndarray | None = None, cc: CurveConfig = CurveConfig(),
                device: torch.device | str = "cpu", progress: bool = True) -> dict:
    """`curve` over the stored per-epoch G snapshots of a model (BatchNorm-calibrated, eval mode)."""
    epochs = list(epochs)
    gens = ((e, store.load_snapshot(dataset, variant, profile, e, device)) for e in epochs)
    return curve(gens, train_images, heldout, cc, device, progress, total=len(epochs))


def neighbour_rows(samples: np.ndarray, train_images: np.ndarray, pixel_idx: np.ndarray,
                   dfeat_idx: np.ndarray, gap: int = 6) -> np.ndarray:
    """One uint8 canvas: each row is a sample | its k pixel neighbours | its k D-feature neighbours."""
    k, pad = pixel_idx.shape[1], 2
    rows = []
    for s, pi, di in zip(samples, pixel_idx, dfeat_idx, strict=True):
        left = plots.image_grid(s[None], nrow=1, pad=pad)
        mid = plots.image_grid(train_images[pi], nrow=k, pad=pad)
        right = plots.image_grid(train_images[di], nrow=k, pad=pad)
        space = np.full((left.shape[0], gap, 3), 255, np.uint8)
        rows.append(np.concatenate([left, space, mid, space, right], axis=1))  # one row: H x W_total x 3
    return np.concatenate(rows, axis=0)


def neighbours_figure(samples, train_images, pixel_idx, dfeat_idx, size: float = 1.1):
    """The figure: generated sample, then its nearest training images in pixel and in D-feature space."""
    canvas = neighbour_rows(samples, train_images, pixel_idx, dfeat_idx)
    h, w = canvas.shape[:2]
    side = samples.shape[1] + 2
    fig, ax = plt.subplots(figsize=(size * w / side, size * h / side + 0.4))
    ax.imshow(canvas)
    ax.set_axis_off()
    k, gap = pixel_idx.shape[1], 6
    centres = [side / 2, side + gap + k * side / 2, 2 * gap + side * (1 + 1.5 * k)]
    for x, label in zip(centres, ("sample", "nearest training images: pixels",
                                  "nearest training images: D features"), strict=True):
        ax.text(x, -6, label, ha="center", va="bottom", fontsize=9)
    return fig


def curve_figure(result: dict, title: str = ""):
    """Plot the per-epoch distances and the real-image baseline (the authors' nnd curve, Paper §4.1)."""
    epochs = [r["epoch"] for r in result["rows"]]
    refs = "held-out" if result["refs"] == "heldout" else "training"
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.plot(epochs, [r["refs_to_samples"] for r in result["rows"]], "o-",
            label=f"{result['n_refs']} {refs} images -> nearest of {result['n_samples']} samples "
                  "(authors' nnd)")
    ax.plot(epochs, [r["samples_to_train"] for r in result["rows"]], "s-",
            label="each sample -> nearest training image")
    ax.axhline(result["real_to_train"], color="k", ls="--",
               label=f"{refs} images -> nearest other training image (baseline)")
    ax.set_xlabel("epoch (passes over the training set)")
    ax.set_ylabel("RMS pixel distance (0-1 scale)")
    ax.set_title(title or "nearest-neighbour distance per epoch (a copying G drives the squares to ~0)",
                 fontsize=10)
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    return fig
