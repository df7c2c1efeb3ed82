"""Hashing a whole dataset, streamed, and the groups file it yields (Paper §4.1; `python -m dcgan_lib dedup`).

hash_dataset streams a registry dataset through the semantic hash one batch at a time (LSUN's 3M
images never sit in memory), optionally keeping what the shift-robust search of dcgan_lib.dedup.dedup_robust
needs; groups_document turns the keys into the groups file (each group a list of item ids) and
data.datasets.keep_mask reads one back for the data registry's `--dedup FILE`, which keeps one image per group.
"""
from __future__ import annotations

import itertools
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np
import torch
from tqdm.auto import tqdm

from dcgan_lib.data import data, datasets
from dcgan_lib.data.datasets import GROUPS_FORMAT
from dcgan_lib.dedup import dedup
from dcgan_lib.dedup.dedup import (
    DedupConfig,
    HashAutoencoder,
    file_hash,
    group_exact,
    group_within,
    groups_from_labels,
    hash_images,
    paper_claims,
)
from dcgan_lib.dedup.dedup_robust import grey_thumbs, probe_boxes, probe_keys, probe_workers, robust_groups
from dcgan_lib.figures import plots
from dcgan_lib.records import results


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
    probe_workers: int = 1  # Python threads that hashed the windows (dedup_robust.probe_keys: the same keys)


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
    workers = probe_workers()
    hash_s = probe_s = 0.0
    start = time.perf_counter()
    for batch_ids, batch in tqdm(batches, desc=f"hashing {dataset}", total=total, unit="batch"):
        t = time.perf_counter()
        keys.append(hash_images(model, batch))  # (B, 16)
        hash_s += time.perf_counter() - t
        if probe:
            t = time.perf_counter()
            probes.append(probe_keys(model, batch, boxes, workers=workers))  # (B, P, 16)
            greys.append(grey_thumbs(batch))  # (B, S, S)
            probe_s += time.perf_counter() - t
        ids.extend(_plain(i) for i in batch_ids)
    n_bytes, size = model.encoder.out_features // 8, model.cfg.image_size
    packed = np.concatenate(keys) if keys else np.zeros((0, n_bytes), np.uint8)
    args = (dataset, ids, packed, time.perf_counter() - start, hash_s, torch.get_num_threads())
    if not probe:
        return HashedSet(*args)
    return ProbedSet(*args, probe_seconds=probe_s, probe_workers=workers,
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

    It holds nothing that varies between two scans that find the same groups (timings go in the scan's
    record), so a rescan rewrites a tracked removal list byte for byte and leaves the tree clean.

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
                    "images_removed": in_groups - len(groups)},  # no timings: the same groups, the same bytes
        "search": stats,
        "groups": groups,
    }


def file_hash_groups(dataset: str, split: str = "train", limit: int | None = None) -> list[list]:
    """Groups of byte-identical files (SHA-256), the exact-copy baseline on a whole dataset."""
    ids, keys = [], []
    for item_id, raw in itertools.islice(dedup._raw(dataset, split), limit):
        ids.append(item_id)
        keys.append(file_hash(raw))
    if not ids:
        return []
    return [[ids[i] for i in g] for g in groups_from_labels(group_exact(np.stack(keys)))]


def scan(model: HashAutoencoder, dataset: str, cfg: DedupConfig, out_dir: Path | None = None,
         model_path: str | None = None) -> dict:
    """De-duplicate a whole dataset by streaming: groups at r=0, the default radius and robust, plus SHA-256.

    Reads every image before any removal (datasets.full_split). "seconds" covers decoding, the keys and
    the robust search's window keys; "robust" times its parts. "document" is the robust search's groups
    file (the removal list `python -m dcgan_lib dedup` writes; also written to out_dir), "groups" its groups.
    For a combined dataset, "across_parts" counts the groups whose members come from different parts.
    """
    split = datasets.full_split(dataset)
    hashed = hash_dataset(model, dataset, split=split, limit=cfg.scan_limit, probe=True)
    docs = {r: groups_document(hashed, r, split=split, limit=cfg.scan_limit) for r in sorted({0, cfg.radius})}
    t = time.perf_counter()
    robust = groups_document(hashed, cfg.robust_radius, model_path=model_path, robust=True, cfg=cfg, split=split,
                             limit=cfg.scan_limit)
    robust_s = time.perf_counter() - t
    if out_dir is not None:
        Path(out_dir).mkdir(parents=True, exist_ok=True)
        (Path(out_dir) / f"{dataset.replace(':', '_').replace('/', '_')}.json").write_text(
            json.dumps(robust, indent=1) + "\n")
    files = file_hash_groups(dataset, split, limit=cfg.scan_limit)
    out = {"dataset": dataset, "split": split, "images": len(hashed.ids), "threads": hashed.threads,
           "images_per_s": hashed.images_per_s, "hash_images_per_s": len(hashed.ids) / hashed.hash_seconds,
           "seconds": hashed.seconds,
           **{f"r{r}": {**d["summary"], "search": d["search"]} for r, d in docs.items()},
           "robust": {**robust["summary"], "search": robust["search"], "probe_seconds": hashed.probe_seconds,
                      "probe_workers": hashed.probe_workers,
                      "group_seconds": robust_s},
           "sha256": {"groups": len(files), "images_removed": sum(len(g) - 1 for g in files)},
           "groups": robust["groups"], "document": robust}
    if datasets.get_spec(dataset).parts:
        part = datasets.part_of(dataset)
        out["across_parts"] = {name: sum(len({part[str(i)] for i in g}) > 1 for g in groups)
                               for name, groups in (("sha256", files), (f"r{cfg.radius}", docs[cfg.radius]["groups"]),
                                                    ("robust", robust["groups"]))}
    return out


def group_images(dataset: str, groups: list[list], n_groups: int = 8, max_per_group: int = 4,
                 size: int = 32, split: str | None = None) -> tuple[np.ndarray, int]:
    """Members of the first groups for a gallery: uint8 (n_groups * k, size, size, 3), blank-padded, and k.

    `split` holds the members (default: every image before any removal, datasets.full_split)."""
    chosen = [g[:max_per_group] for g in groups[:n_groups]]
    per_group = max((len(g) for g in chosen), default=0)
    wanted = {str(i) for g in chosen for i in g}
    found: dict[str, np.ndarray] = {}
    for item_id, raw in dedup._raw(dataset, split or datasets.full_split(dataset)):  # one pass, decoding members
        if str(item_id) in wanted:
            found[str(item_id)] = data.decode_image(raw, size)
            if len(found) == len(wanted):
                break
    blank = np.full((size, size, 3), 255, np.uint8)
    tiles = [found.get(str(g[k]), blank) if k < len(g) else blank for g in chosen for k in range(per_group)]
    return (np.stack(tiles) if tiles else np.zeros((0, size, size, 3), np.uint8)), per_group


def removed_groups(s: dict, cfg: DedupConfig, profile: str, seed: int = 0, out_dir: Path | None = None,
                   n_groups: int = 16, size: int = 64) -> tuple[Path, Path]:
    """Show and record what a scan's removal list (the robust search's groups) drops from its dataset.

    Writes dedup_groups_<dataset>.png (one group a row, up to 4 members, the first of each kept; for a
    combined dataset the groups that join its parts first, then the largest) and its record, which lists
    every group. Returns (png, record).
    """
    out_dir = Path(out_dir) if out_dir is not None else results.figures_dir(profile)
    doc, name = s["document"], s["dataset"]
    part = datasets.part_of(name) if datasets.get_spec(name).parts else {}
    across = [len({part[str(i)] for i in g}) > 1 if part else False for g in doc["groups"]]
    order = sorted(range(len(doc["groups"])), key=lambda k: (not across[k], -len(doc["groups"][k]), k))
    groups = [doc["groups"][k] for k in order]
    stem = f"dedup_groups_{name.replace(':', '_').replace('/', '_')}"
    png = out_dir / f"{stem}.png"
    if groups:
        shown, per_group = group_images(name, groups, n_groups=n_groups, size=size, split=doc["scanned"]["split"])
        plots.save_grid(shown, png, nrow=per_group, scale=max(1, 128 // size))
    rec = results.write_record(
        stem, name=f"Duplicate groups the robust search removes from {name} (§4.1)", profile=profile, seed=seed,
        wall_s=s["seconds"], out_dir=out_dir,
        metrics={"images": doc["summary"]["images"], "groups": len(groups),
                 "images_removed": doc["summary"]["images_removed"], "groups_shown": min(n_groups, len(groups)),
                 "groups_across_parts": sum(across), "byte_identical": s["sha256"],
                 "across_parts": s.get("across_parts"), "method": doc["method"], "scanned": doc["scanned"],
                 "figure": png.name if groups else None, "groups_listed": groups},
        paper=paper_claims(), data=datasets.describe(name), model={"path": doc["model"]})
    return png, rec


def save_scans(scans: list[dict], cfg: DedupConfig, profile: str, seed: int, model_info: dict,
               out_dir: Path | None = None) -> Path:
    """Record how many duplicates each scanned dataset holds and how fast hashing ran (Paper §4.1)."""
    metrics = {s["dataset"]: {k: v for k, v in s.items() if k not in ("groups", "document")} for s in scans}
    largest = max(scans, key=lambda s: s["images"])
    return results.write_record(
        "dedup_scans", name="De-duplicating the mirror's datasets with the semantic hash (§4.1)",
        profile=profile, seed=seed, wall_s=sum(s["seconds"] for s in scans), out_dir=out_dir,
        metrics={"datasets": metrics, "default_radius": cfg.radius,
                 "throughput": {"dataset": largest["dataset"], "images": largest["images"],
                                "images_per_s_decode_and_hash": largest["images_per_s"],
                                "images_per_s_hash_only": largest["hash_images_per_s"],
                                "torch_threads": largest["threads"], "cpu_count": os.cpu_count(),
                                "load_average_1min": os.getloadavg()[0]}},
        paper=paper_claims(), data={"scanned": [datasets.describe(s["dataset"]) for s in scans],
                                    "autoencoder": model_info.get("data")},
        model={k: v for k, v in model_info.items() if k != "losses"})
