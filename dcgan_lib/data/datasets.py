"""Datasets on disk: find each one's local source, fetch it when missing, and say where it came from.

A dataset (see dcgan_lib.data.registry) is read from its official release when that is on disk, else from
its mirror archive, copied from the offline mirror named by DCGAN_MIRROR and checked against its pinned
sha256 before use (a stamp beside it spares re-hashing it on every run). find_source says which,
fetch brings one on disk, status lists them all and describe is the provenance written into records.
A combined dataset (the bedrooms and faces stand-ins) reads its parts in turn; its splits come from item ids
alone (assign_splits): its committed removal list (if it has one) drops duplicates, then a seeded hash of the ids holds
images out, so the held-out split never depends on pixels, caches or the order anything ran in.
It never decodes pixels: dcgan_lib.data.data turns the raw items into the uint8 caches training reads.
"""
from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from dcgan_lib.config.paths import ROOT, data_root, mirror_root
from dcgan_lib.data.archives import ChecksumMismatch, Item, verify
from dcgan_lib.data.registry import DATASETS, DatasetMissing, DatasetSpec, get_spec, official_present


@dataclass(frozen=True)
class Source:
    """One place a split can come from: `items(split)` and `count(split)` over a local path."""

    kind: str  # "mirror" or "official"
    path: Path  # archive (mirror) or folder/lmdb (official)
    items: Callable[[str], Iterator[Item]]
    count: Callable[[str], int]
    sha256: str | None = None
    parts: tuple[Source, ...] = ()  # a combined dataset's part sources
    fingerprint: str | None = None  # a combined dataset: digest of its parts' checksums and its split rule
    split_info: Callable[[], dict] | None = None  # a combined dataset: its split rule and counts, for records


# ---------------------------------------------------------------------------------------------
# Fetch and find
# ---------------------------------------------------------------------------------------------

def _archive_path(spec: DatasetSpec) -> Path:
    return data_root() / "archives" / spec.archive


def _official_path(spec: DatasetSpec) -> Path:
    return Path(spec.official_dir) if spec.name.startswith("folder:") else data_root() / "official" / spec.official_dir


def fetch_command(name: str) -> str:
    return f"python -m dcgan_lib data fetch {name}"


def fetch(dataset: str | DatasetSpec, official: bool = False) -> Source:
    """Bring a dataset (its name or spec) on disk: copy + verify its mirror archive, or download the official
    release."""
    spec = get_spec(dataset)
    name = spec.name
    if spec.parts:
        for part in spec.parts:
            fetch(part, official)
        return find_source(spec)
    mirror = mirror_root()
    if spec.archive and not official and mirror and (mirror / spec.archive).exists():
        target = _archive_path(spec)
        target.parent.mkdir(parents=True, exist_ok=True)
        if not (target.exists() and _stamp_ok(target, spec.sha256)):
            verify(mirror / spec.archive, spec.sha256)  # check before anything is copied
            tmp = target.with_name(f"{target.name}.part{os.getpid()}")
            shutil.copyfile(mirror / spec.archive, tmp)
            verify(tmp, spec.sha256)
            os.replace(tmp, target)
            _write_stamp(target, spec.sha256)
        return find_source(spec)
    if spec.official_fetch is None:
        raise DatasetMissing(f"{name} has no official download; set DCGAN_MIRROR to a folder holding "
                             f"{spec.archive} (see ../shared/data/README.md)")
    root = _official_path(spec)
    root.mkdir(parents=True, exist_ok=True)
    try:
        spec.official_fetch(root)
    except (DatasetMissing, ChecksumMismatch):
        raise
    except Exception as err:
        hint = f" or set DCGAN_MIRROR to a folder holding {spec.archive}" if spec.archive else ""
        raise DatasetMissing(f"could not download {name} ({type(err).__name__}: {err}); check the "
                             f"internet connection{hint}, then run `{fetch_command(name)}`") from err
    return find_source(spec)


def _stamp_ok(path: Path, sha: str) -> bool:
    stamp = path.with_name(path.name + ".sha256")
    st = path.stat()
    return stamp.exists() and stamp.read_text().split() == [sha, str(st.st_size), str(int(st.st_mtime))]


def _write_stamp(path: Path, sha: str) -> None:
    st = path.stat()
    path.with_name(path.name + ".sha256").write_text(f"{sha} {st.st_size} {int(st.st_mtime)}\n")


def find_source(dataset: str | DatasetSpec, auto_fetch: bool = True) -> Source:
    """The local source of a dataset (its name or spec): official files if present, else the verified mirror archive.

    With `auto_fetch`, a mirror archive named by DCGAN_MIRROR is copied and verified on first use
    (no internet needed). Otherwise a missing dataset raises DatasetMissing naming the fetch command.
    """
    spec = get_spec(dataset)
    name = spec.name
    if spec.parts:
        return _combined_source(spec, auto_fetch)
    if spec.official_items is not None:
        root = _official_path(spec)
        if root.exists() and official_present(spec, root):
            return Source("official", root, lambda s: spec.official_items(root, s),
                          lambda s: spec.official_count(root, s))
    if spec.archive:
        archive = _archive_path(spec)
        if archive.exists():
            if not _stamp_ok(archive, spec.sha256):
                verify(archive, spec.sha256)
                _write_stamp(archive, spec.sha256)
            return Source("mirror", archive, lambda s: spec.mirror_items(archive, s),
                          lambda s: spec.mirror_count(archive, s), spec.sha256)
        mirror = mirror_root()
        if auto_fetch and mirror and (mirror / spec.archive).exists():
            return fetch(spec)
    where = f"set DCGAN_MIRROR to a folder holding {spec.archive}, or " if spec.archive else ""
    raise DatasetMissing(f"dataset {name!r} is not on disk. Fetch it: {where}run `{fetch_command(name)}`")


def status() -> list[dict]:
    """One row per registered dataset: where it would be read from now (nothing is fetched)."""
    rows, mirror = [], mirror_root()
    for name, spec in DATASETS.items():
        try:
            where = find_source(name, auto_fetch=False).kind
        except DatasetMissing:
            needed = [get_spec(p).archive for p in spec.parts] if spec.parts else [spec.archive]
            in_mirror = bool(mirror and all(a and (mirror / a).exists() for a in needed))
            where = "in mirror, not fetched" if in_mirror else "missing"
        rows.append({"dataset": name, "where": where, "about": spec.about, "licence": spec.licence})
    return rows


def describe(name: str) -> dict:
    """Where a dataset comes from, for records: dataset, source kind, path, checksum."""
    src = find_source(name)
    if src.parts:
        return {"dataset": name, "source": f"{src.kind}: " + " + ".join(p.path.name for p in src.parts),
                "sha256": None, "parts": [describe(p) for p in get_spec(name).parts]}
    return {"dataset": name, "source": f"{src.kind}: {src.path.name}", "sha256": src.sha256}


# ---------------------------------------------------------------------------------------------
# Combined datasets: parts read in turn, split by item ids (removal list, seeded held-out part)
# ---------------------------------------------------------------------------------------------

SPLIT_RULE_VERSION = 1
_SPLITS: dict[str, dict[str, list[str]]] = {}  # fingerprint -> split ids, computed once per process
_WARNED: set[str] = set()


def full_split(dataset: str | DatasetSpec) -> str:
    """The split holding every image of a dataset (name or spec) before any removal: what a duplicate scan reads."""
    return "all" if get_spec(dataset).parts else "train"


def duplicates_path(spec: DatasetSpec) -> Path:
    """Where a combined dataset's committed removal list lives (a dedup groups file)."""
    return ROOT / spec.duplicates


def duplicates_command(dataset: str | DatasetSpec) -> str:
    """The command that writes a combined dataset's removal list (notebook 02 runs the same scan)."""
    spec = get_spec(dataset)
    return (f"python -m dcgan_lib dedup --dataset {spec.name} --split {full_split(spec)} --profile cpu "
            f"--out {spec.duplicates}")


def part_of(dataset: str | DatasetSpec) -> dict[str, str]:
    """item id -> the part it comes from, for a combined dataset (one pass over the parts' files)."""
    return {str(item_id): part for part in get_spec(dataset).parts
            for item_id, _, _ in find_source(part).items("train")}


GROUPS_FORMAT = "dcgan_lib.dedup/1"  # the dedup groups-file format (written by `python -m dcgan_lib dedup`)


def keep_mask(groups_json, ids) -> np.ndarray:
    """bool (N,) over `ids`: False for every duplicate but the first of its group (registry `--dedup`)."""
    doc = groups_json if isinstance(groups_json, dict) else json.loads(Path(groups_json).read_text())
    if doc.get("format") != GROUPS_FORMAT or "groups" not in doc:
        raise ValueError(f"not a dedup groups file (format {GROUPS_FORMAT}); write one with "
                         "`python -m dcgan_lib dedup --dataset NAME --out FILE.json`")
    where = {str(i): n for n, i in enumerate(ids)}
    mask = np.ones(len(where), bool)
    seen = 0
    for group in doc["groups"]:
        present = sorted(where[str(i)] for i in group if str(i) in where)
        seen += len(present)
        mask[present[1:]] = False
    if doc["groups"] and not seen:
        raise ValueError(f"none of the ids in this dedup file (dataset {doc.get('dataset')!r}) are in "
                         "the data being loaded; write one for this dataset")
    return mask


def assign_splits(ids: list[str], duplicates: dict | None, heldout: int, seed: int) -> dict[str, list[str]]:
    """Split ids (dataset order) into removed duplicates, a held-out part and the training part.

    `duplicates` is a dedup groups file (None: nothing removed); each group keeps its first member in dataset
    order (keep_mask). Of the kept ids, the `heldout` whose sha256(f"{seed}:{id}") sorts first
    are held out: a fixed pick from ids alone, so adding or removing one image moves no other.
    """
    if len(set(ids)) != len(ids):
        raise ValueError("the parts of a combined dataset share item ids; their images cannot be told apart")
    keep = keep_mask(duplicates, ids) if duplicates is not None else np.ones(len(ids), bool)
    kept = [i for i, k in zip(ids, keep, strict=True) if k]
    if not 0 <= heldout < len(kept):
        raise ValueError(f"cannot hold out {heldout} of {len(kept)} images")
    rank = sorted(kept, key=lambda i: hashlib.sha256(f"{seed}:{i}".encode()).digest())
    held = set(rank[:heldout])
    return {"all": list(ids), "removed": [i for i, k in zip(ids, keep, strict=True) if not k],
            "heldout": [i for i in kept if i in held], "train": [i for i in kept if i not in held]}


def groups_digest(duplicates: dict) -> str:
    """sha256 of a removal list's groups in canonical JSON: the part of the list that decides the splits."""
    return hashlib.sha256(json.dumps(duplicates.get("groups", []), sort_keys=True).encode()).hexdigest()


def _read_duplicates(spec: DatasetSpec) -> tuple[dict | None, dict]:
    """A combined dataset's removal list (None when it is missing: nothing is removed) and what records say
    about it (when missing: why, and the command that writes it)."""
    if spec.duplicates is None:
        return None, {"list": None, "applied": False, "why": f"{spec.name} has no removal list"}
    path = duplicates_path(spec)
    if not path.exists():
        why = (f"{spec.duplicates} is missing, so {spec.name} is NOT de-duplicated. Write it with "
               f"`{duplicates_command(spec)}` (or run notebook 02 at the cpu profile)")
        return None, {"list": spec.duplicates, "applied": False, "why": why}
    doc = json.loads(path.read_bytes())
    scanned = doc.get("scanned") or {}
    if doc.get("dataset") != spec.name or scanned.get("split") != full_split(spec) or scanned.get("limit"):
        raise ValueError(f"{spec.duplicates} is not a scan of every image of {spec.name} (dataset "
                         f"{doc.get('dataset')!r}, scanned {scanned or 'unknown'}): write it with "
                         f"`{duplicates_command(spec)}`")
    # the digest covers the groups (all that decides the splits), not the scan's timings: a rescan that finds the
    # same groups keeps the dataset's fingerprint and its decoded caches
    return doc, {"list": spec.duplicates, "applied": True, "groups_sha256": groups_digest(doc),
                 "method": doc.get("method"), "model": doc.get("model"), "groups": len(doc.get("groups", []))}


def _combined_source(spec: DatasetSpec, auto_fetch: bool) -> Source:
    parts, missing = [], []
    for part in spec.parts:
        try:
            parts.append(find_source(part, auto_fetch))
        except DatasetMissing as err:
            missing.append(str(err))
    if missing:
        raise DatasetMissing(f"dataset {spec.name!r} is made of {' + '.join(spec.parts)}: " + "; ".join(missing)
                             + f". `{fetch_command(spec.name)}` fetches every part")
    doc, dup_info = _read_duplicates(spec)
    rule = {"parts": [{"dataset": n, "source": f"{p.kind}: {p.path.name}", "sha256": p.sha256}
                      for n, p in zip(spec.parts, parts, strict=True)],
            "duplicates": dup_info,
            "heldout": {"split": "heldout", "n": spec.heldout, "seed": spec.heldout_seed,
                        "rule": "the kept images whose sha256(f'{seed}:{id}') sorts first"}}
    fingerprint = hashlib.sha256(json.dumps([SPLIT_RULE_VERSION, rule], sort_keys=True).encode()).hexdigest()

    def everything() -> Iterator[Item]:
        for part in parts:
            yield from part.items("train")

    def splits() -> dict[str, list[str]]:
        # once per process, when a split needs a removal list the dataset should have
        if doc is None and spec.duplicates and dup_info["why"] not in _WARNED:
            _WARNED.add(dup_info["why"])
            warnings.warn(dup_info["why"], stacklevel=4)
        if fingerprint not in _SPLITS:
            ids = [str(item_id) for item_id, _, _ in everything()]
            _SPLITS[fingerprint] = assign_splits(ids, doc, spec.heldout, spec.heldout_seed)
        return _SPLITS[fingerprint]

    def items(split: str) -> Iterator[Item]:
        if split not in spec.splits:
            raise ValueError(f"{spec.name} has splits {', '.join(spec.splits)}, not {split!r}")
        wanted = None if split == "all" else set(splits()[split])
        return (item for item in everything() if wanted is None or str(item[0]) in wanted)

    def count(split: str) -> int:
        return sum(p.count("train") for p in parts) if split == "all" else len(splits()[split])

    def split_info() -> dict:
        return {**rule, "counts": {k: len(v) for k, v in splits().items()}}

    kinds = sorted({p.kind for p in parts})
    return Source("+".join(kinds), parts[0].path.parent, items, count, None, tuple(parts), fingerprint, split_info)


# ---------------------------------------------------------------------------------------------
# Raw items for pipelines that decode themselves
# ---------------------------------------------------------------------------------------------

def iter_raw(name: str, split: str = "train") -> Iterator[tuple[str, bytes]]:
    """The original encoded files of a split, as (item id, bytes), for pipelines that need full size."""
    for item_id, payload, _ in find_source(name).items(split):
        if isinstance(payload, np.ndarray):
            buf = io.BytesIO()
            Image.fromarray(payload).save(buf, format="PNG")
            payload = buf.getvalue()
        yield item_id, payload
