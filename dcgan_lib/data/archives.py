"""The files datasets ship as: their items read in a fixed order, and their sha256 checked.

Readers turn each format (tar.gz archives, folders of image files, CIFAR-10's python batches,
LSUN's lmdb) into (item id, payload, label) items in an order that never changes, so a cache or
a subset built from them is reproducible. sha256_of and verify refuse a corrupt or altered file
before anything is read from it. Nothing here knows which dataset a file belongs to
(dcgan_lib.data.registry does) or decodes pixels (dcgan_lib.data.data does).
"""
from __future__ import annotations

import hashlib
import pickle
import tarfile
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif", ".tif", ".tiff")

Item = tuple[str, object, int]  # (item id, encoded bytes or HxWx3 uint8 array, label or -1)


class ChecksumMismatch(RuntimeError):
    """An archive's sha256 differs from the pinned one: nothing is extracted or used."""


def sha256_of(path: Path, chunk: int = 1 << 20) -> str:
    """The sha256 hex digest of a file."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def verify(path: Path, expected: str) -> str:
    """Check an archive's sha256; raise ChecksumMismatch (and use nothing) when it differs."""
    actual = sha256_of(path)
    if actual != expected:
        raise ChecksumMismatch(
            f"{path} has sha256 {actual}, expected {expected}. The file is corrupt or not the pinned "
            "release: delete it and fetch again (python -m dcgan_lib data fetch NAME).")
    return actual


# ---------------------------------------------------------------------------------------------
# Readers: each yields (item id, payload, label) in a fixed order
# ---------------------------------------------------------------------------------------------

def tar_items(archive: Path, prefix: str, label_of: Callable[[str], int] | None = None) -> Iterator[Item]:
    """Image members of a tar.gz under `prefix`, yielded in sorted name order.

    Members are read in archive order (a gzip stream only seeks forward cheaply: reading in
    name order would decompress from the start at every backward step, hours for Tiny-ImageNet)
    and held only until every name before them has been yielded, so an archive stored in
    near-sorted order (Tiny-ImageNet: numeric within a class) buffers a few hundred images.
    """
    with tarfile.open(archive, "r:gz") as tar:
        members = [m for m in tar.getmembers() if m.isfile() and m.name.startswith(prefix)
                   and m.name.lower().endswith(IMAGE_SUFFIXES)]
        order = sorted(m.name for m in members)
        pending: dict[str, bytes] = {}
        i = 0
        for m in members:
            pending[m.name] = tar.extractfile(m).read()
            while i < len(order) and order[i] in pending:
                name = order[i]
                yield name, pending.pop(name), (label_of(name) if label_of else -1)
                i += 1


def tar_count(archive: Path, prefix: str) -> int:
    with tarfile.open(archive, "r:gz") as tar:
        return sum(1 for m in tar if m.isfile() and m.name.startswith(prefix)
                   and m.name.lower().endswith(IMAGE_SUFFIXES))


def folder_files(folder: Path) -> list[Path]:
    """Every non-hidden file under a folder, sorted (non-images are reported as bad, not ignored)."""
    return sorted(p for p in folder.rglob("*") if p.is_file() and not any(
        part.startswith(".") for part in p.relative_to(folder).parts))


def folder_items(folder: Path, labelled: bool = False, images_only: bool = False) -> Iterator[Item]:
    classes = sorted(d.name for d in folder.iterdir() if d.is_dir()) if labelled else []
    for path in folder_files(folder):
        if images_only and not path.name.lower().endswith(IMAGE_SUFFIXES):
            continue
        label = classes.index(path.relative_to(folder).parts[0]) if labelled else -1
        yield str(path), path.read_bytes(), label


def cifar_batches_items(folder: Path, split: str) -> Iterator[Item]:
    """Official CIFAR-10 python batches (cifar-10-batches-py): rows of 3072 bytes, labels 0-9."""
    names = [f"data_batch_{i}" for i in range(1, 6)] if split == "train" else ["test_batch"]
    for name in names:
        with open(folder / name, "rb") as f:
            batch = pickle.load(f, encoding="bytes")
        images = np.asarray(batch[b"data"], np.uint8).reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
        for i, (img, label) in enumerate(zip(images, batch[b"labels"], strict=True)):
            yield f"{name}/{i}", img, int(label)


def lmdb_items(path: Path) -> Iterator[Item]:
    """LSUN's lmdb: keys are image ids, values encoded images (webp/jpeg), streamed by cursor."""
    import lmdb  # deferred: only the official LSUN lmdb needs it

    env = lmdb.open(str(path), readonly=True, lock=False, readahead=False, meminit=False, max_readers=1)
    try:
        with env.begin(write=False) as txn:
            for key, value in txn.cursor():
                yield key.decode(), bytes(value), -1
    finally:
        env.close()


def lmdb_count(path: Path) -> int:
    import lmdb  # deferred: only the official LSUN lmdb needs it

    env = lmdb.open(str(path), readonly=True, lock=False, max_readers=1)
    try:
        return env.stat()["entries"]
    finally:
        env.close()
