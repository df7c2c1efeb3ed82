"""Walking and doing arithmetic in G's latent space Z (Paper §6.1 Fig. 4, §6.3.2 Figs. 7-8).

Everything here works on plain z tensors (n, nz) and on images in [-1, 1]; a generator is only
called through `generate`, so the functions test on tiny nets.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn


@torch.no_grad()
def generate(G: nn.Module, z: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
    """G(z) in batches, without gradients, as a CPU float tensor in [-1, 1] (Paper §6)."""
    device = next(G.parameters()).device
    out = [G(z[i:i + batch_size].to(device)).float().cpu() for i in range(0, len(z), batch_size)]
    return torch.cat(out)  # n x 3 x H x W


def fingerprint(net: nn.Module) -> str:
    """A short hash of a net's parameters: ties committed picks and boxes to the model they were made on."""
    h = hashlib.sha256()
    for name, p in sorted(net.named_parameters()):
        h.update(name.encode())
        h.update(p.detach().float().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()[:12]


# ----------------------------------------------------------------------------- interpolation
def lerp(z0: torch.Tensor, z1: torch.Tensor, steps: int) -> torch.Tensor:
    """`steps` points on the straight line from z0 to z1, both ends included (Paper §6.1)."""
    t = torch.linspace(0, 1, steps, dtype=z0.dtype).unsqueeze(1)  # steps x 1
    return (1 - t) * z0 + t * z1  # steps x nz


def slerp(z0: torch.Tensor, z1: torch.Tensor, steps: int) -> torch.Tensor:
    """`steps` points on the great-circle arc from z0 to z1 (norm interpolated linearly).

    Not in the paper: a common alternative (White 2016) that avoids the shrunken norms of the
    straight line's middle. Falls back to `lerp` for (anti-)parallel ends.
    """
    n0, n1 = z0.norm(), z1.norm()
    cos = torch.clamp(torch.dot(z0 / n0, z1 / n1), -1.0, 1.0)
    omega = torch.arccos(cos)
    if omega.abs() < 1e-6 or (torch.pi - omega).abs() < 1e-6:
        return lerp(z0, z1, steps)
    t = torch.linspace(0, 1, steps, dtype=z0.dtype).unsqueeze(1)  # steps x 1
    u0, u1 = z0 / n0, z1 / n1
    direction = (torch.sin((1 - t) * omega) * u0 + torch.sin(t * omega) * u1) / torch.sin(omega)
    return direction * ((1 - t) * n0 + t * n1)  # steps x nz


def walk(points: torch.Tensor, steps: int, mode: str = "linear") -> torch.Tensor:
    """Interpolate along a series of k points: (k-1) segments of `steps` frames each (Fig. 4).

    Returns (k-1) x steps x nz; segment i runs from points[i] to points[i+1], ends included,
    so each row of the figure starts where the previous row ended.
    """
    interp = {"linear": lerp, "spherical": slerp}.get(mode)
    if interp is None:
        raise ValueError(f"mode must be 'linear' or 'spherical', got {mode!r}")
    if points.ndim != 2 or len(points) < 2:
        raise ValueError(f"points must be (k >= 2, nz), got shape {tuple(points.shape)}")
    return torch.stack([interp(points[i], points[i + 1], steps) for i in range(len(points) - 1)])


# ----------------------------------------------------------------------------- smoothness
@dataclass(frozen=True)
class Smoothness:
    """Frame-to-frame distances along interpolation rows and the steps flagged as jumps."""

    pixel: np.ndarray  # rows x (steps-1): RMS pixel change in [-1, 1] units
    feature: np.ndarray  # rows x (steps-1): relative change of D's last-conv features
    jump_factor: float  # a step is a jump when it exceeds jump_factor x its row's median step
    pixel_jumps: np.ndarray  # rows x (steps-1) bool
    feature_jumps: np.ndarray  # rows x (steps-1) bool

    def summary(self) -> dict:
        """The numbers a record keeps: mean steps, worst step / median step, jump counts."""
        def worst(d: np.ndarray) -> float:
            return float((d.max(1) / np.maximum(np.median(d, 1), 1e-12)).max())
        return {
            "rows": int(self.pixel.shape[0]), "steps_per_row": int(self.pixel.shape[1]),
            "pixel_step_mean": float(self.pixel.mean()),
            "feature_step_mean": float(self.feature.mean()),
            "pixel_worst_over_median": worst(self.pixel),
            "feature_worst_over_median": worst(self.feature),
            "jump_factor": self.jump_factor,
            "pixel_jumps": int(self.pixel_jumps.sum()),
            "feature_jumps": int(self.feature_jumps.sum()),
            "rows_with_jumps": int((self.pixel_jumps | self.feature_jumps).any(1).sum()),
        }


def flag_jumps(steps: np.ndarray, factor: float = 3.0) -> np.ndarray:
    """Mark steps larger than `factor` x the median step of their row (sharp transitions, §6.1)."""
    steps = np.asarray(steps, dtype=np.float64)
    median = np.median(steps, axis=-1, keepdims=True)
    return steps > factor * np.maximum(median, 1e-12)


@torch.no_grad()
def smoothness(frames: torch.Tensor, D: nn.Module | None = None, factor: float = 3.0) -> Smoothness:
    """Distances between consecutive frames of each row, in pixels and in D's features (§6.1).

    frames: rows x steps x 3 x H x W in [-1, 1]. Feature distance is |f(a) - f(b)| / mean |f| of
    D's last conv layer (D run as it is given: put it in eval mode for per-image determinism).
    """
    rows, steps = frames.shape[:2]
    flat = frames.flatten(0, 1)  # (rows*steps) x 3 x H x W
    pix = flat.flatten(1)
    pixel = ((pix[1:] - pix[:-1]).pow(2).mean(1).sqrt()).view(-1)
    if D is not None:
        device = next(D.parameters()).device
        feats = torch.cat([D.features(flat[i:i + 256].to(device))[-1].flatten(1).float().cpu()
                           for i in range(0, len(flat), 256)])  # (rows*steps) x F
        scale = feats.norm(dim=1).mean().clamp_min(1e-12)
        feature = (feats[1:] - feats[:-1]).norm(dim=1) / scale
    else:
        feature = torch.zeros_like(pixel)
    # keep only steps inside a row (drop the step from one row's end to the next row's start)
    keep = torch.ones(rows * steps - 1, dtype=torch.bool)
    keep[steps - 1::steps] = False
    pixel = pixel[keep].view(rows, steps - 1).numpy()
    feature = feature[keep].view(rows, steps - 1).numpy()
    return Smoothness(pixel, feature, factor, flag_jumps(pixel, factor), flag_jumps(feature, factor))


# ----------------------------------------------------------------------------- arithmetic
def concept_mean(z: torch.Tensor, picks) -> torch.Tensor:
    """Average the z of a concept's exemplars (three in the paper; one was unstable) (§6.3.2)."""
    picks = list(picks)
    if not picks:
        raise ValueError("a concept needs at least one exemplar index")
    if max(picks) >= len(z) or min(picks) < -len(z):
        raise ValueError(f"exemplar index out of range for {len(z)} samples: {picks}")
    return z[picks].mean(0)  # nz


def arithmetic(a: torch.Tensor, b: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
    """Y = a - b + c, e.g. smiling woman - neutral woman + neutral man (Paper §6.3.2, Fig. 7)."""
    return a - b + c


def with_noise(y: torch.Tensor, n: int = 8, scale: float = 0.25,
               generator: torch.Generator | None = None) -> torch.Tensor:
    """Y first, then n copies of Y plus uniform noise in [-scale, scale] (Fig. 7's 3x3 blocks)."""
    noise = (torch.rand(n, y.numel(), generator=generator, dtype=y.dtype) * 2 - 1) * scale  # n x nz
    return torch.cat([y.view(1, -1), y.view(1, -1) + noise])  # (1+n) x nz


def equation_results(G: nn.Module, z: torch.Tensor, triples: dict, n: int = 8, scale: float = 0.25,
                     generator: torch.Generator | None = None) -> torch.Tensor:
    """G's images for each Y of an equation: (n_y, 1 + n, 3, H, W), G(Y) first, then G(Y + noise) (Fig. 7).

    triples: {"a"/"b"/"c": (n_y, k) indices into z}, each row one Y's exemplars (attributes.pick_triples);
    Y = mean z of a - mean z of b + mean z of c, as the paper averaged its three exemplars per concept.
    """
    n_y = len(triples["a"])
    ys = [with_noise(arithmetic(*(concept_mean(z, triples[r][i]) for r in "abc")), n, scale, generator)
          for i in range(n_y)]  # n_y of (1 + n) x nz
    images = generate(G, torch.cat(ys))
    return images.view(n_y, 1 + n, *images.shape[1:])


def pixel_arithmetic(a: torch.Tensor, b: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
    """The same a - b + c on exemplar images (each k x 3 x H x W, averaged), clipped to [-1, 1].

    The paper's contrast (Fig. 7, bottom rows): pixel space gives noisy overlaps.
    """
    return (a.mean(0) - b.mean(0) + c.mean(0)).clamp(-1, 1)  # 3 x H x W


def turn_vector(z_left: torch.Tensor, z_right: torch.Tensor) -> torch.Tensor:
    """The "turn" direction: mean z of faces looking right minus looking left (Paper Fig. 8)."""
    return z_right.mean(0) - z_left.mean(0)  # nz


def along(z: torch.Tensor, direction: torch.Tensor, alphas) -> torch.Tensor:
    """Each z plus alpha x direction for every alpha: rows x len(alphas) x nz (Fig. 8's rows)."""
    alphas = torch.as_tensor(alphas, dtype=z.dtype).view(1, -1, 1)  # 1 x steps x 1
    return z.unsqueeze(1) + alphas * direction.view(1, 1, -1)


def rank_correlation(x, y) -> float:
    """Spearman's rank correlation of two 1-D sequences (ties broken by order), NaN if constant."""
    rx = np.argsort(np.argsort(np.asarray(x, dtype=float), kind="stable"), kind="stable")
    ry = np.argsort(np.argsort(np.asarray(y, dtype=float), kind="stable"), kind="stable")
    if np.ptp(np.asarray(y, dtype=float)) == 0 or np.ptp(np.asarray(x, dtype=float)) == 0:
        return float("nan")
    return float(np.corrcoef(rx, ry)[0, 1])


# Two images differ visibly when their RMS difference is at least this on G's [-1, 1] scale: 0.05 is 2.5% of
# the range (about 6 of 255 grey levels), above the 1-2% contrast a viewer tells apart side by side.
VISIBLE_RMS = 0.05


def mean_pairwise_rms(images: torch.Tensor) -> float:
    """The RMS pixel distance between two of the images (m x 3 x H x W in [-1, 1]), averaged over all pairs."""
    flat = images.flatten(1).double()
    if len(flat) < 2:
        raise ValueError("the spread of images needs at least two of them")
    d = torch.cdist(flat, flat, compute_mode="donot_use_mm_for_euclid_dist") / flat.shape[1] ** 0.5  # m x m RMS
    m = len(flat)
    return float(d.sum() / (m * (m - 1)))
