"""Datasets on disk: find each one's local source, fetch it when missing, and say where it came from.

A dataset (see dcgan_lib.registry) is read from its official release when that is on disk, else from
its mirror archive, copied from the offline mirror named by DCGAN_MIRROR and checked against its pinned
sha256 before use (a stamp beside it spares re-hashing it on every run). find_source says which,
fetch brings one on disk, status lists them all and describe is the provenance written into records.
It never decodes pixels: dcgan_lib.data turns the raw items into the uint8 caches training reads.
"""
from __future__ import annotations

import io
import os
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from dcgan_lib.archives import ChecksumMismatch, Item, verify
from dcgan_lib.registry import DATASETS, DatasetMissing, DatasetSpec, get_spec, official_present
from dcgan_lib.results import ROOT


def data_root() -> Path:
    """Where fetched archives, official downloads and caches live (DCGAN_DATA, default data/)."""
    return Path(os.environ.get("DCGAN_DATA", ROOT / "data"))


def mirror_root() -> Path | None:
    """The offline mirror folder named by DCGAN_MIRROR, if any."""
    value = os.environ.get("DCGAN_MIRROR")
    return Path(value).expanduser().resolve() if value else None


@dataclass(frozen=True)
class Source:
    """One place a split can come from: `items(split)` and `count(split)` over a local path."""

    kind: str  # "mirror" or "official"
    path: Path  # archive (mirror) or folder/lmdb (official)
    items: Callable[[str], Iterator[Item]]
    count: Callable[[str], int]
    sha256: str | None = None


# ---------------------------------------------------------------------------------------------
# Fetch and find
# ---------------------------------------------------------------------------------------------

def _archive_path(spec: DatasetSpec) -> Path:
    return data_root() / "archives" / spec.archive


def _official_path(spec: DatasetSpec) -> Path:
    return Path(spec.official_dir) if spec.name.startswith("folder:") else data_root() / "official" / spec.official_dir


def fetch_command(name: str) -> str:
    return f"python -m dcgan_lib data fetch {name}"


def fetch(name: str, official: bool = False) -> Source:
    """Bring a dataset on disk: copy + verify its mirror archive, or download the official release."""
    spec = get_spec(name)
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
        return find_source(name)
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
    return find_source(name)


def _stamp_ok(path: Path, sha: str) -> bool:
    stamp = path.with_name(path.name + ".sha256")
    st = path.stat()
    return stamp.exists() and stamp.read_text().split() == [sha, str(st.st_size), str(int(st.st_mtime))]


def _write_stamp(path: Path, sha: str) -> None:
    st = path.stat()
    path.with_name(path.name + ".sha256").write_text(f"{sha} {st.st_size} {int(st.st_mtime)}\n")


def find_source(name: str, auto_fetch: bool = True) -> Source:
    """The local source of a dataset: official files if present, else the verified mirror archive.

    With `auto_fetch`, a mirror archive named by DCGAN_MIRROR is copied and verified on first use
    (no internet needed). Otherwise a missing dataset raises DatasetMissing naming the fetch command.
    """
    spec = get_spec(name)
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
            return fetch(name)
    where = f"set DCGAN_MIRROR to a folder holding {spec.archive}, or " if spec.archive else ""
    raise DatasetMissing(f"dataset {name!r} is not on disk. Fetch it: {where}run `{fetch_command(name)}`")


def status() -> list[dict]:
    """One row per registered dataset: where it would be read from now (nothing is fetched)."""
    rows, mirror = [], mirror_root()
    for name, spec in DATASETS.items():
        try:
            where = find_source(name, auto_fetch=False).kind
        except DatasetMissing:
            in_mirror = bool(mirror and spec.archive and (mirror / spec.archive).exists())
            where = "in mirror, not fetched" if in_mirror else "missing"
        rows.append({"dataset": name, "where": where, "about": spec.about, "licence": spec.licence})
    return rows


def describe(name: str) -> dict:
    """Where a dataset comes from, for records: dataset, source kind, path, checksum."""
    src = find_source(name)
    return {"dataset": name, "source": f"{src.kind}: {src.path.name}", "sha256": src.sha256}


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
