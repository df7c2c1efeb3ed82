"""Image grids and figure saving (every paper figure is a PNG in figures/)."""
from __future__ import annotations

import math
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import torch
from PIL import Image


def to_uint8(images) -> np.ndarray:
    """Images as uint8 NHWC: from a [-1, 1] float tensor/array (NCHW or NHWC) or uint8 NHWC."""
    if isinstance(images, torch.Tensor):
        images = images.detach().float().cpu().numpy()
    images = np.asarray(images)
    if images.ndim == 3:
        images = images[None]
    if images.dtype != np.uint8:
        if images.shape[1] in (1, 3) and images.shape[-1] not in (1, 3):
            images = images.transpose(0, 2, 3, 1)
        images = np.clip((images + 1) * 127.5 + 0.5, 0, 255).astype(np.uint8)
    if images.shape[-1] == 1:
        images = np.repeat(images, 3, axis=-1)
    return images


def image_grid(images, nrow: int | None = None, pad: int = 2, pad_value: int = 255) -> np.ndarray:
    """Tile N images into one HxWx3 uint8 array, `nrow` images per row."""
    images = to_uint8(images)
    n, h, w, c = images.shape
    nrow = nrow or math.ceil(math.sqrt(n))
    rows = math.ceil(n / nrow)
    grid = np.full((rows * (h + pad) + pad, nrow * (w + pad) + pad, c), pad_value, np.uint8)
    for i, img in enumerate(images):
        r, col = divmod(i, nrow)
        grid[pad + r * (h + pad): pad + r * (h + pad) + h, pad + col * (w + pad): pad + col * (w + pad) + w] = img
    return grid


def save_grid(images, path: str | Path, nrow: int | None = None, scale: int = 1) -> Path:
    """Save a grid of images as a PNG (optionally upscaled by nearest neighbour)."""
    grid = image_grid(images, nrow)
    if scale > 1:
        grid = grid.repeat(scale, 0).repeat(scale, 1)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(grid).save(path)
    return path


def show_grid(images, nrow: int | None = None, title: str | None = None, ax=None, size: float = 6):
    """Draw a grid in a notebook (or onto `ax`) and return the axes."""
    if ax is None:
        _, ax = plt.subplots(figsize=(size, size))
    ax.imshow(image_grid(images, nrow))
    ax.set_axis_off()
    if title:
        ax.set_title(title)
    return ax


def save_figure(fig, path: str | Path, dpi: int = 120) -> Path:
    """Save a matplotlib figure as PNG, creating folders."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=dpi, bbox_inches="tight")
    return path


def draw_generator(shapes: list[tuple[int, int]], nz: int, title: str = "", kernel: int = 4):
    """Fig. 1-style diagram of G: z, then one box per feature map (channels, side). Returns the figure."""
    fig, ax = plt.subplots(figsize=(2.2 * (len(shapes) + 1), 3.6))
    x, depth = 0.0, 0.35
    ax.add_patch(plt.Rectangle((x, 1.5), 0.15, 2.0, color="#9ecae1"))
    ax.text(x + 0.07, 1.2, f"z\n{nz}", ha="center", va="top", fontsize=9)
    x += 0.8
    for i, (channels, side) in enumerate(shapes):
        h = 0.6 + 3.0 * (np.log2(side) - 1) / 5  # 4 px -> short box, 64 px -> tall box
        w = 0.15 + 0.9 * np.log2(max(channels, 2)) / 10
        y = 2.5 - h / 2
        face = "#fdae6b" if i < len(shapes) - 1 else "#a1d99b"
        ax.add_patch(plt.Polygon([(x + w, y), (x + w + depth, y + depth), (x + w + depth, y + h + depth),
                                  (x + w, y + h)], color="#d9d9d9", ec="k", lw=0.5))
        ax.add_patch(plt.Polygon([(x, y + h), (x + depth, y + h + depth), (x + w + depth, y + h + depth),
                                  (x + w, y + h)], color="#f0f0f0", ec="k", lw=0.5))
        ax.add_patch(plt.Rectangle((x, y), w, h, color=face, ec="k", lw=0.5))
        ax.text(x + w / 2, y - 0.15, f"{channels} x {side} x {side}", ha="center", va="top", fontsize=8)
        up = side // shapes[i - 1][1] if i else 1
        label = "project and\nreshape" if i == 0 else f"conv {i}\n{kernel}x{kernel}" + (f", up x{up}" if up > 1 else "")
        ax.annotate("", xy=(x - 0.05, 2.5), xytext=(x - 0.6, 2.5), arrowprops=dict(arrowstyle="->"))
        ax.text(x - 0.33, 2.65, label, ha="center", va="bottom", fontsize=7)
        x += w + depth + 0.9
    ax.set_xlim(-0.2, x)
    ax.set_ylim(-0.3, 5.0)
    ax.set_axis_off()
    if title:
        ax.set_title(title)
    return fig
