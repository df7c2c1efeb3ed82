"""Shift-robust duplicate search (beyond the paper): the semantic hash of shifted and zoomed windows.

A key of dcgan_lib.dedup.dedup changes when a copy is shifted or cropped by a few pixels, so this search
hashes a centre window of each image with the same autoencoder, looks up the keys of shifted and
zoomed windows ("probes") within a small radius, and keeps a candidate pair only when the two
images correlate after alignment (normalised cross-correlation of grey 32x32 windows). It finds
1-3 px shifts and crops, heavy JPEG, noise and contrast changes.
"""
from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components
from torch.nn import functional as F

from dcgan_lib.dedup.dedup import DedupConfig, HashAutoencoder, hamming


def probe_boxes(cfg: DedupConfig) -> np.ndarray:
    """float (P, 3) windows (x0, y0, size) in image pixels: row 0 the centre window, then the probes.

    A copy shifted by d px has the centre window of its original shifted by d, so the original's
    window at that shift hashes like the copy's centre; a copy cropped by c px and scaled back up
    has the original's window shrunk by (S - c) / S at the crop's offset. Shifts cover one half of
    the offsets: each image is probed, so a pair is found from whichever side holds the other half.
    """
    size, m, r = cfg.image_size, cfg.robust_margin, cfg.robust_shift
    if not 0 <= r <= m < size // 4:
        raise ValueError(f"robust_shift {r} must be at most robust_margin {m} (< {size // 4}): "
                         "shifted windows must stay inside the image")
    win = size - 2 * m
    boxes = [(m, m, win)]
    boxes += [(m + dx, m + dy, win) for dx in range(r + 1) for dy in range(-r, r + 1) if dx > 0 or dy > 0]
    for c in cfg.robust_crops:
        k = (size - c) / size
        boxes += [(left + m * k, top + m * k, win * k) for left in range(c + 1) for top in range(c + 1)]
    return np.array(boxes, np.float32)


def windows(images: np.ndarray | torch.Tensor, boxes: np.ndarray) -> torch.Tensor:
    """float (N, P, S, S, C): every box of every image resampled (bilinear) to the full S x S size.

    `images` is uint8 or float (N, S, S, C) (or (N, S, S) grey); values keep their scale.
    """
    x = torch.as_tensor(np.ascontiguousarray(images) if isinstance(images, np.ndarray) else images).float()
    if x.ndim == 3:
        x = x[..., None]
    n, size, _, c = x.shape
    b = torch.as_tensor(boxes, dtype=torch.float32)
    theta = torch.zeros(len(b), 2, 3)
    theta[:, 0, 0] = theta[:, 1, 1] = b[:, 2] / size
    theta[:, 0, 2] = (2 * b[:, 0] + b[:, 2] - size) / size
    theta[:, 1, 2] = (2 * b[:, 1] + b[:, 2] - size) / size
    grid = F.affine_grid(theta, [len(b), 1, size, size], align_corners=False)  # (P, S, S, 2)
    grid = grid.reshape(1, len(b) * size, size, 2).expand(n, -1, -1, -1)  # the P windows stacked vertically
    out = F.grid_sample(x.permute(0, 3, 1, 2), grid, mode="bilinear", padding_mode="border", align_corners=False)
    return out.reshape(n, c, len(b), size, size).permute(0, 2, 3, 4, 1)  # (N, P, S, S, C)


def probe_keys(model: HashAutoencoder, images: np.ndarray, boxes: np.ndarray, batch_size: int = 128,
               workers: int | None = None) -> np.ndarray:
    """uint8 (N, P, 16): the semantic hash of every window of every image (row 0: the centre window).

    Batches are hashed on `workers` Python threads (default: `probe_workers()`), each running torch at its
    thread count: every batch is computed exactly as on one thread, so the keys are the same bit for bit.
    """
    starts = range(0, len(images), batch_size)
    workers = max(1, min(workers or probe_workers(), len(starts)))
    with ThreadPoolExecutor(workers) as pool:  # torch and numpy release the GIL while they compute
        out = list(pool.map(lambda start: _batch_probe_keys(model, images[start:start + batch_size], boxes), starts))
    return np.concatenate(out) if out else np.zeros((0, len(boxes), model.encoder.out_features // 8), np.uint8)


def probe_workers() -> int:
    """How many Python threads hash the windows by default: the CPU cores over torch's threads (each worker runs
    torch ops with that many), so the workers together use every core once."""
    return max(1, (os.cpu_count() or 1) // torch.get_num_threads())


@torch.no_grad()
def _batch_probe_keys(model: HashAutoencoder, images: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    weight, bias = model.encoder.weight, model.encoder.bias
    w = windows(images, boxes)  # (B, P, S, S, 3), 0-255
    u = w.reshape(-1, w[0, 0].numel())  # (B * P, 3072)
    # the sign of encoder(as_input(u)) without building the scaled input: multiply through by its positive scale
    if model.cfg.standardize:  # x = (u - mean) / (std + 6.375) up to the [-1, 1] scaling
        sd, mean = torch.std_mean(u, 1, keepdim=True)
        pre = u @ weight.T - mean * weight.sum(1) + (sd + 0.05 * 127.5) * bias
    else:  # x = u / 127.5 - 1
        pre = u @ weight.T - 127.5 * weight.sum(1) + 127.5 * bias
    bits = (pre > 0).numpy()[:, model.bit_order.numpy()]
    return np.packbits(bits, axis=1).reshape(len(w), len(boxes), -1)


def grey_thumbs(images: np.ndarray) -> np.ndarray:
    """uint8 (N, S, S) luma of uint8 (N, S, S, 3) images: what the verification compares."""
    grey = images.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)
    return (grey + 0.5).astype(np.uint8)


def _chunk_codes(keys: np.ndarray, chunk: np.ndarray) -> np.ndarray:
    """uint64 (N,) one code per key chunk (chunks over 8 bytes are folded: collisions only add candidates)."""
    sub = np.zeros((len(keys), -(-len(chunk) // 8) * 8), np.uint8)
    sub[:, :len(chunk)] = keys[:, chunk]
    words = sub.view(np.uint64)
    code = words[:, 0].copy()
    for k in range(1, words.shape[1]):
        code = code * np.uint64(0x9E3779B97F4A7C15) ^ words[:, k]
    return code


def probe_pairs(keys: np.ndarray, probes: np.ndarray, radius: int, block: int = 1 << 14) -> tuple[np.ndarray, int]:
    """(2, E) image pairs i < j where a probe key of one is within `radius` bits of the other's centre key.

    Multi-index hashing as in `group_within`: the centre keys are sorted by each of radius + 1
    chunks, every probe key is looked up chunk by chunk, and only shared-chunk candidates are
    compared in full. Returns the pairs and the number of candidates compared.
    """
    n, p, n_bytes = probes.shape
    if radius + 1 > n_bytes:
        raise ValueError(f"radius {radius} needs {radius + 1} chunks but keys have {n_bytes} bytes")
    flat = probes.reshape(n * p, n_bytes)
    owner = np.repeat(np.arange(n), p)
    found, candidates = [np.zeros((2, 0), np.int64)], 0
    for chunk in np.array_split(np.arange(n_bytes), radius + 1):
        code = _chunk_codes(keys, chunk)
        order = np.argsort(code, kind="stable")
        ordered = code[order]
        for start in range(0, len(flat), block):
            query = _chunk_codes(flat[start:start + block], chunk)
            lo, hi = np.searchsorted(ordered, query, "left"), np.searchsorted(ordered, query, "right")
            count = hi - lo
            q = np.repeat(np.arange(len(query)), count) + start  # one row per candidate
            at = np.repeat(lo - np.cumsum(count) + count, count) + np.arange(count.sum())
            other = order[at]
            candidates += len(q)
            near = (owner[q] != other) & (hamming(flat[q], keys[other]) <= radius)
            a, b = owner[q[near]], other[near]
            found.append(np.unique(np.stack([np.minimum(a, b), np.maximum(a, b)]), axis=1))
    return np.unique(np.concatenate(found, axis=1), axis=1), candidates


@torch.no_grad()
def aligned_ncc(grey: np.ndarray, pairs: np.ndarray, boxes: np.ndarray, batch_size: int = 512) -> np.ndarray:
    """float (E,): the best normalised cross-correlation of a pair's grey windows over all alignments.

    One image's centre window against every probe window of the other, both ways round: a shifted
    or cropped copy lines up at one of them; a different image correlates weakly at all of them.
    """
    out = [np.zeros(0, np.float32)]
    for start in range(0, pairs.shape[1], batch_size):
        a, b = pairs[:, start:start + batch_size]
        wa, wb = _standardised(windows(grey[a], boxes)), _standardised(windows(grey[b], boxes))  # (B, P, S*S)
        ab = (wa * wb[:, :1]).sum(-1).amax(1)
        ba = (wb * wa[:, :1]).sum(-1).amax(1)
        out.append(torch.maximum(ab, ba).numpy())
    return np.concatenate(out)


def _standardised(w: torch.Tensor) -> torch.Tensor:
    w = w.reshape(w.shape[0], w.shape[1], -1)
    w = w - w.mean(-1, keepdim=True)
    return w / (w.norm(dim=-1, keepdim=True) + 1e-3)  # + eps: a flat window correlates with nothing


def robust_groups(probes: np.ndarray, grey: np.ndarray, cfg: DedupConfig, radius: int | None = None,
                  min_ncc: float | None = None) -> tuple[np.ndarray, dict]:
    """Group labels (N,) by shifted/zoomed probes and verification, plus search stats (beyond the paper).

    `probes` (N, P, 16) from `probe_keys` (column 0: centre keys), `grey` (N, S, S) from `grey_thumbs`.
    A pair is kept when a probe key of one image is within `radius` bits of the other's centre key
    and their aligned grey windows correlate at `min_ncc` or more; groups are connected components.
    """
    radius = cfg.robust_radius if radius is None else radius
    min_ncc = cfg.robust_ncc if min_ncc is None else min_ncc
    boxes = probe_boxes(cfg)
    if probes.shape[1] != len(boxes):
        raise ValueError(f"probes have {probes.shape[1]} windows but this config makes {len(boxes)}; "
                         "compute them with probe_keys(model, images, probe_boxes(cfg))")
    pairs, candidates = probe_pairs(np.ascontiguousarray(probes[:, 0]), probes, radius)
    ncc = aligned_ncc(grey, pairs, boxes) if min_ncc > -1 else np.ones(pairs.shape[1], np.float32)
    kept = pairs[:, ncc >= min_ncc]
    graph = coo_matrix((np.ones(kept.shape[1]), (kept[0], kept[1])), shape=(len(probes), len(probes)))
    _, labels = connected_components(graph, directed=False)
    stats = {"probes": len(boxes), "candidates": candidates, "pairs": int(pairs.shape[1]),
             "verified_pairs": int(kept.shape[1]), "radius": radius, "min_ncc": min_ncc}
    return labels.astype(np.int64), stats
