"""Hashing a whole dataset, streamed, and the groups file it yields (Paper §4.1; `python -m dcgan_lib dedup`).

hash_dataset streams a registry dataset through the semantic hash one batch at a time (LSUN's 3M
images never sit in memory), optionally keeping what the shift-robust search of dcgan_lib.dedup.dedup_robust
needs; groups_document turns the keys into the groups file (each group a list of item ids) and
data.datasets.keep_mask reads one back for the data registry's `--dedup FILE`, which keeps one image per group.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Iterable, Iterator

import numpy as np
import torch
from tqdm.auto import tqdm

from dcgan_lib.data import data
from dcgan_lib.data.datasets import GROUPS_FORMAT
from dcgan_lib.dedup.dedup import DedupConfig, HashAutoencoder, group_within, groups_from_labels, hash_images
from dcgan_lib.dedup.dedup_robust import grey_thumbs, probe_boxes, probe_keys, robust_groups


@dataclass
class HashedSet:
    """The keys of a whole dataset, hashed batch by batch, and how fast that went."""

    dataset: str
    ids: list
    keys: np.ndarray  # (N, 16) uint8
    seconds: float  # decode + hash, end to end
    hash_seconds: float  # the autoencoder alone
    threads: int

    @property
    def images_per_s(self) -> float:
        return len(self.ids) / self.seconds if self.seconds else float("nan")


@dataclass
class ProbedSet(HashedSet):
    """A HashedSet plus what the robust search needs: every window's key and a grey thumbnail (~2 KB an image)."""

    probes: np.ndarray = None  # (N, P, 16) uint8, column 0 the centre window's key
    grey: np.ndarray = None  # (N, S, S) uint8
    probe_seconds: float = 0.0  # the window keys and thumbnails alone


def hash_batches(model: HashAutoencoder, batches: Iterable[tuple[list, np.ndarray]], dataset: str = "",
                 total: int | None = None, probe: bool = False) -> HashedSet:
    """Hash (ids, uint8 batch) pairs one batch at a time: memory holds one batch of pixels.

    probe=True also keeps each image's window keys and grey thumbnail for `robust_groups` (a ProbedSet).
    """
    ids: list = []
    keys: list[np.ndarray] = []
    probes: list[np.ndarray] = []
    greys: list[np.ndarray] = []
    boxes = probe_boxes(model.cfg) if probe else None
    hash_s = probe_s = 0.0
    start = time.perf_counter()
    for batch_ids, batch in tqdm(batches, desc=f"hashing {dataset}", total=total, unit="batch"):
        t = time.perf_counter()
        keys.append(hash_images(model, batch))  # (B, 16)
        hash_s += time.perf_counter() - t
        if probe:
            t = time.perf_counter()
            probes.append(probe_keys(model, batch, boxes))  # (B, P, 16)
            greys.append(grey_thumbs(batch))  # (B, S, S)
            probe_s += time.perf_counter() - t
        ids.extend(_plain(i) for i in batch_ids)
    n_bytes, size = model.encoder.out_features // 8, model.cfg.image_size
    packed = np.concatenate(keys) if keys else np.zeros((0, n_bytes), np.uint8)
    args = (dataset, ids, packed, time.perf_counter() - start, hash_s, torch.get_num_threads())
    if not probe:
        return HashedSet(*args)
    return ProbedSet(*args, probe_seconds=probe_s,
                     probes=np.concatenate(probes) if probes else np.zeros((0, len(boxes), n_bytes), np.uint8),
                     grey=np.concatenate(greys) if greys else np.zeros((0, size, size), np.uint8))


def hash_dataset(model: HashAutoencoder, dataset: str, batch_size: int = 256, split: str = "train",
                 limit: int | None = None, probe: bool = False) -> HashedSet:
    """Stream a registry dataset through the hash without caching it (Paper §4.1, LSUN's 3M images).

    probe=True adds what the robust search needs (a ProbedSet; see hash_batches).
    """
    batches: Iterator = data.stream(dataset, model.cfg.image_size, batch_size=batch_size, split=split)
    if limit is not None:
        batches = _take_images(batches, limit)
    return hash_batches(model, batches, dataset, probe=probe)


def _take_images(batches: Iterator, limit: int) -> Iterator:
    left = limit
    for ids, batch in batches:
        if left <= 0:
            return
        yield ids[:left], batch[:left]
        left -= len(batch)


def _plain(item_id):
    return item_id.item() if hasattr(item_id, "item") else item_id


def groups_document(hashed: HashedSet, radius: int, model_path: str | None = None, robust: bool = False,
                    cfg: DedupConfig | None = None, min_ncc: float | None = None, split: str | None = None,
                    limit: int | None = None) -> dict:
    """The groups file: duplicate groups as lists of item ids plus a summary (`--dedup FILE`).

    robust=True groups a ProbedSet with `robust_groups` (cfg: the hash's DedupConfig; radius is
    then the probe radius), else the keys within `radius` bits (0: the paper's exact key).
    `split` and `limit` say what was hashed ("scanned"): a combined dataset's removal list must be a
    scan of its whole "all" split (dcgan_lib.data.datasets refuses any other).
    """
    if robust:
        if not isinstance(hashed, ProbedSet) or cfg is None:
            raise ValueError("the robust search needs hash_dataset(..., probe=True) and the hash's DedupConfig")
        labels, stats = robust_groups(hashed.probes, hashed.grey, cfg, radius, min_ncc)
        method = (f"semantic hash of shifted and zoomed windows, radius {stats['radius']}, verified by aligned "
                  f"correlation >= {stats['min_ncc']} (beyond the paper)")
    else:
        labels, stats = group_within(hashed.keys, radius)
        method = ("semantic hash, exact key (Paper §4.1)" if radius == 0
                  else f"semantic hash, Hamming radius {radius} (multi-index hashing)")
    groups = [[hashed.ids[i] for i in g] for g in groups_from_labels(labels)]
    in_groups = sum(len(g) for g in groups)
    return {
        "format": GROUPS_FORMAT, "dataset": hashed.dataset, "radius": stats.get("radius", radius), "method": method,
        "model": model_path, "scanned": {"split": split, "limit": limit},
        "summary": {"images": len(hashed.ids), "groups": len(groups), "images_in_groups": in_groups,
                    "images_removed": in_groups - len(groups), "images_per_s": round(hashed.images_per_s, 1)},
        "search": stats,
        "groups": groups,
    }
