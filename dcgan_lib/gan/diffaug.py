"""DiffAugment (Zhao, Liu, Lin, Zhu and Han, NeurIPS 2020): augmentations D sees on every image, real and fake.

A GAN trained on a few thousand images lets D memorise them; augmenting only the real images would teach G
to draw the augmentations. DiffAugment applies the same random, differentiable transforms to every batch
D sees, real and fake, in the D step and in the G step, so G's gradient flows back through them. It is not
part of the DCGAN paper: the trainer applies it only when `TrainConfig.diffaug` names a policy (off by
default, so the paper's recipe stays the reference row).

Each transform draws its randomness from a torch.Generator that the trainer checkpoints, so a resumed
run replays the same augmentations. Images are B x 3 x H x W in [-1, 1]. The three policies follow the
authors' reference code (github.com/mit-han-lab/data-efficient-gans, DiffAugment_pytorch.py).
"""
from __future__ import annotations

import torch
from torch.nn import functional as F


def _uniform(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """One U(0, 1) number per image, shaped to broadcast over B x C x H x W."""
    return torch.rand(x.shape[0], 1, 1, 1, generator=gen).to(x.device, x.dtype)


def color(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Random brightness (+-0.5), saturation (x0 to x2) and contrast (x0.5 to x1.5), per image."""
    x = x + (_uniform(x, gen) - 0.5)
    mean = x.mean(dim=1, keepdim=True)
    x = (x - mean) * (_uniform(x, gen) * 2) + mean
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    return (x - mean) * (_uniform(x, gen) + 0.5) + mean


def _pixel_grid(x: torch.Tensor, rows: torch.Tensor, cols: torch.Tensor) -> torch.Tensor:
    """x sampled at integer (row, col) grids of shape B x H x W (zero padding of 1 px around x)."""
    padded = F.pad(x, [1, 1, 1, 1]).permute(0, 2, 3, 1)
    batch = torch.arange(x.shape[0], device=x.device)[:, None, None]
    return padded[batch, rows + 1, cols + 1].permute(0, 3, 1, 2)


def translation(x: torch.Tensor, gen: torch.Generator, ratio: float = 0.125) -> torch.Tensor:
    """Shift each image by up to `ratio` of its size in each direction, filling with zeros (mid grey)."""
    b, _, h, w = x.shape
    sh, sw = int(h * ratio + 0.5), int(w * ratio + 0.5)
    dy = torch.randint(-sh, sh + 1, (b, 1, 1), generator=gen).to(x.device)
    dx = torch.randint(-sw, sw + 1, (b, 1, 1), generator=gen).to(x.device)
    rows = torch.arange(h, device=x.device)[None, :, None] + dy
    cols = torch.arange(w, device=x.device)[None, None, :] + dx
    return _pixel_grid(x, rows.clamp(-1, h).expand(b, h, w), cols.clamp(-1, w).expand(b, h, w))


def cutout(x: torch.Tensor, gen: torch.Generator, ratio: float = 0.5) -> torch.Tensor:
    """Zero (mid grey) one square of `ratio` x the image's size at a random place in each image."""
    b, _, h, w = x.shape
    ch, cw = int(h * ratio + 0.5), int(w * ratio + 0.5)
    top = torch.randint(0, h + (1 - ch % 2), (b, 1, 1), generator=gen).to(x.device) - ch // 2
    left = torch.randint(0, w + (1 - cw % 2), (b, 1, 1), generator=gen).to(x.device) - cw // 2
    rows = torch.arange(h, device=x.device)[None, :, None]
    cols = torch.arange(w, device=x.device)[None, None, :]
    inside = (rows >= top) & (rows < top + ch) & (cols >= left) & (cols < left + cw)
    return x * (~inside).unsqueeze(1).to(x.dtype)


POLICIES = {"color": color, "translation": translation, "cutout": cutout}
DEFAULT = "color,translation,cutout"  # the authors' policy for low-data training


def parse(policy: str) -> list[str]:
    """The transforms a policy string names, in order ("" -> none)."""
    return [p.strip() for p in policy.split(",") if p.strip()]


def valid_policy(policy: str) -> bool:
    return all(p in POLICIES for p in parse(policy))


def augment(x: torch.Tensor, policy: str, gen: torch.Generator) -> torch.Tensor:
    """x with the policy's transforms applied in order (differentiable; x itself is not changed)."""
    for name in parse(policy):
        x = POLICIES[name](x, gen)
    return x
