"""Decode once into uint8 caches: any raw item -> RGB at the training size, sliced by training (Paper §4).

Whatever dcgan_lib.data.datasets reads (a mirror archive or an official release), its items are decoded ONCE
into a uint8 array at the training size (min-resize + centre crop) under data/cache/; training slices
batches from that array and scales them to [-1, 1] on the fly (to_float). Decoding is kept apart from the
registry, so adding a dataset touches only dcgan_lib.data.registry and changing the preprocessing only this module.
Bad files never crash a run: they are skipped, counted and listed. A dataset with a held-out split (the
bedrooms and faces stand-ins) serves it by `heldout_of`; no training path reads it.
"""
from __future__ import annotations

import hashlib
import io
import json
import os
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageFile
from tqdm.auto import tqdm

from dcgan_lib.config import paths
from dcgan_lib.data import archives, datasets, registry

ImageFile.LOAD_TRUNCATED_IMAGES = False  # a truncated file is an error, never a half-grey image


class BadImage(ValueError):
    """A file that cannot be decoded as an image (truncated, empty, not an image)."""


# ---------------------------------------------------------------------------------------------
# Decoding: any image file -> RGB uint8, min-resized and centre-cropped
# ---------------------------------------------------------------------------------------------

def to_rgb(img: Image.Image) -> Image.Image:
    """Convert CMYK, RGBA, palette, 16-bit and greyscale images to 8-bit RGB."""
    if img.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        arr = np.asarray(img, dtype=np.float64)
        hi = 65535.0 if img.mode.startswith("I;16") or arr.max() > 255 else 255.0
        img = Image.fromarray(np.clip(arr / hi * 255.0 + 0.5, 0, 255).astype(np.uint8), "L")
    if img.mode == "P":
        img = img.convert("RGBA")
    if img.mode in ("RGBA", "LA", "PA"):
        background = Image.new("RGBA", img.size, (255, 255, 255, 255))
        img = Image.alpha_composite(background, img.convert("RGBA"))
    return img.convert("RGB")


def resize_crop(img: Image.Image, size: int) -> Image.Image:
    """Min-resize so the short side is `size`, then take the centre square (Paper §4.3)."""
    w, h = img.size
    scale = size / min(w, h)
    if scale != 1:
        img = img.resize((max(size, round(w * scale)), max(size, round(h * scale))), Image.BICUBIC,
                         reducing_gap=2.0)
    w, h = img.size
    left, top = (w - size) // 2, (h - size) // 2
    return img.crop((left, top, left + size, top + size))


def decode_image(source: str | Path | bytes | np.ndarray, size: int | None = None) -> np.ndarray:
    """Decode a file, bytes or array into an HxWx3 uint8 image (resized if `size`); BadImage if not."""
    try:
        if isinstance(source, np.ndarray):
            img = Image.fromarray(source)
        else:
            data = source if isinstance(source, bytes) else Path(source).read_bytes()
            if not data:
                raise BadImage("empty file")
            img = Image.open(io.BytesIO(data))
            img.load()
        img = to_rgb(img)
        if size is not None:
            img = resize_crop(img, size)
        return np.asarray(img, dtype=np.uint8)
    except BadImage:
        raise
    except Exception as err:  # PIL raises many types for broken files
        raise BadImage(f"{type(err).__name__}: {err}") from None


def to_float(batch: np.ndarray | torch.Tensor) -> torch.Tensor:
    """uint8 NHWC batch -> float32 NCHW in [-1, 1], the tanh range (Paper §4's only preprocessing)."""
    x = torch.as_tensor(batch)
    return x.permute(0, 3, 1, 2).float().div_(127.5).sub_(1.0)


# ---------------------------------------------------------------------------------------------
# Decode once into a uint8 cache
# ---------------------------------------------------------------------------------------------

@dataclass
class ImageSet:
    """A decoded split: uint8 images (N, H, W, 3), labels (N,) or None, item ids, provenance."""

    images: np.ndarray
    labels: np.ndarray | None
    ids: list[str]
    info: dict

    def __len__(self) -> int:
        return len(self.images)

    def provenance(self) -> dict:
        """Where the images came from, for records: dataset, split, source, path, checksum, count, bad files
        (and, for a combined dataset, its parts, removal list, held-out rule and split counts)."""
        keys = ("dataset", "split", "source", "path", "sha256", "n", "bad", "splits", "dedup", "removed")
        return {k: self.info.get(k) for k in keys if k in self.info or k in keys[:7]}


def subset_indices(n: int, limit: int | None) -> np.ndarray:
    """Evenly spaced indices: a `limit`-sized subset that spans every class of a sorted set."""
    if limit is None or limit >= n:
        return np.arange(n)
    return np.unique(np.linspace(0, n - 1, limit).round().astype(np.int64))


def _decode_job(args: tuple[object, int]) -> np.ndarray | str:
    payload, size = args
    try:
        return decode_image(payload, size)
    except BadImage as err:
        return str(err)


def _decoded(items: Iterator[archives.Item], size: int, workers: int) -> Iterator[tuple[str, np.ndarray | str, int]]:
    """Decode items in order, in worker processes when there are several cores."""
    if workers <= 1:
        for item_id, payload, label in items:
            yield item_id, _decode_job((payload, size)), label
        return
    chunk: list[archives.Item] = []
    with ProcessPoolExecutor(workers) as pool:
        def flush():
            results = pool.map(_decode_job, [(p, size) for _, p, _ in chunk], chunksize=64)
            for (item_id, _, label), result in zip(chunk, results, strict=True):
                yield item_id, result, label
        for item in items:
            chunk.append(item)
            if len(chunk) >= 4096:
                yield from flush()
                chunk = []
        yield from flush()


def cache_path(name: str, split: str, size: int, limit: int | None) -> Path:
    safe = name.replace("folder:", "folder-").replace("/", "_").replace(":", "_").strip("_")
    tail = "" if limit is None else f"_limit{limit}"
    return paths.data_root() / "cache" / f"{safe}_{split}_{size}px{tail}.npy"


def prepare(dataset: str | registry.DatasetSpec, size: int, split: str = "train", limit: int | None = None,
            workers: int | None = None, progress: bool = True) -> ImageSet:
    """Decode a split of a dataset (its name or spec) once into data/cache (uint8, min-resize + centre crop) and
    return it memory-mapped.

    `limit` takes an evenly spaced subset. Bad files are skipped, counted and listed in `info`.
    """
    spec = registry.get_spec(dataset)
    name = spec.name
    if split not in spec.splits:
        raise ValueError(f"{name} has splits {', '.join(spec.splits)}, not {split!r}")
    source = datasets.find_source(spec)
    full = cache_path(name, split, size, None)
    path = full if (limit is None or full.exists()) else cache_path(name, split, size, limit)
    meta_path = path.with_suffix(".json")
    fingerprint = _folder_fingerprint(source.path) if name.startswith("folder:") else source.fingerprint
    stale = meta_path.exists() and json.loads(meta_path.read_text()).get("fingerprint") != fingerprint
    if stale or not (path.exists() and meta_path.exists()):
        _build_cache(source, name, split, size, None if path == full else limit, path, workers, progress,
                     fingerprint)
    meta = json.loads(meta_path.read_text())
    images = np.load(path, mmap_mode="r")
    labels = np.asarray(meta.pop("labels"), np.int64) if meta.get("labelled") else None
    ids = meta.pop("ids")
    if limit is not None and path == full:
        keep = subset_indices(len(images), limit)
        images, ids = images[keep], [ids[i] for i in keep]
        labels = None if labels is None else labels[keep]
    meta["n"] = len(images)
    return ImageSet(images, labels, ids, meta)


def _folder_fingerprint(folder: Path) -> str:
    """A digest of a folder's file names, sizes and modification times: a changed folder is re-decoded."""
    digest = hashlib.sha256()
    for p in archives.folder_files(folder):
        st = p.stat()
        digest.update(f"{p.relative_to(folder)}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return digest.hexdigest()


def _build_cache(source: datasets.Source, name: str, split: str, size: int, limit: int | None, path: Path,
                 workers: int | None, progress: bool, fingerprint: str | None = None) -> None:
    total = source.count(split)
    keep = set(subset_indices(total, limit).tolist())
    items = (item for i, item in enumerate(source.items(split)) if i in keep)
    workers = workers or min(os.cpu_count() or 1, 8)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.stem}.part{os.getpid()}.npy")
    array = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.uint8, shape=(len(keep), size, size, 3))
    ids, labels, bad = [], [], []
    bar = tqdm(_decoded(items, size, workers if len(keep) > 2000 else 1), total=len(keep),
               desc=f"decode {name}/{split} @{size}px", disable=not progress, unit="img")
    for item_id, result, label in bar:
        if isinstance(result, str):
            bad.append({"id": item_id, "error": result})
            continue
        array[len(ids)] = result
        ids.append(item_id)
        labels.append(label)
    array.flush()
    del array
    n = len(ids)
    if bad:  # shrink to the good images, in chunks (never the whole set in memory)
        src = np.load(tmp, mmap_mode="r")
        tmp2 = path.with_name(f"{path.stem}.part{os.getpid()}b.npy")
        dst = np.lib.format.open_memmap(tmp2, mode="w+", dtype=np.uint8, shape=(n, size, size, 3))
        for i in range(0, n, 4096):
            dst[i:i + 4096] = src[i:min(i + 4096, n)]
        dst.flush()
        del src, dst
        os.replace(tmp2, tmp)
        print(f"{name}/{split}: skipped {len(bad)} bad file(s) of {len(keep)}: "
              + ", ".join(b["id"] for b in bad[:10]) + (" ..." if len(bad) > 10 else ""))
    labelled = any(label >= 0 for label in labels)
    meta = {"dataset": name, "split": split, "size": size, "source": source.kind,
            "path": str(source.path), "sha256": source.sha256, "n": n, "bad": len(bad),
            "bad_files": bad, "labelled": labelled, "fingerprint": fingerprint, "ids": ids, "labels": labels}
    if source.split_info is not None:
        meta["splits"] = source.split_info()
    meta_tmp = path.with_name(f"{path.stem}.part{os.getpid()}.json")
    meta_tmp.write_text(json.dumps(meta))
    os.replace(tmp, path)
    os.replace(meta_tmp, path.with_suffix(".json"))


def heldout_of(images: ImageSet, limit: int | None = None) -> ImageSet | None:
    """The held-out split of a training set's dataset, at its size (`limit`: evenly spaced), or None when the
    dataset has none. Quality and memorisation are measured against it; no model trains on it."""
    name = images.info.get("dataset")
    if name not in registry.DATASETS or "heldout" not in registry.DATASETS[name].splits:
        return None
    return prepare(name, images.info["size"], split="heldout", limit=limit, progress=False)


def content_digests(images: np.ndarray) -> list[str]:
    """sha256 of each uint8 image's pixels: equal digests are identical images, wherever they came from."""
    return [hashlib.sha256(np.ascontiguousarray(img).tobytes()).hexdigest() for img in images]


def stream(name: str, size: int, batch_size: int = 256, split: str = "train",
           skipped: list | None = None) -> Iterator[tuple[list[str], np.ndarray]]:
    """Decode a split on the fly in batches (no cache; never more than one batch in memory).

    Bad files are skipped; pass a list as `skipped` to collect their ids.
    """
    ids, batch = [], []
    for item_id, payload, _ in datasets.find_source(name).items(split):
        try:
            batch.append(decode_image(payload, size))
            ids.append(item_id)
        except BadImage:
            if skipped is not None:
                skipped.append(item_id)
            continue
        if len(batch) == batch_size:
            yield ids, np.stack(batch)
            ids, batch = [], []
    if batch:
        yield ids, np.stack(batch)
