"""The dataset registry: what each dataset is, where its official release and mirror archive live.

Every dataset is read from one of two places: its official release (torchvision's download, LSUN's
lmdb, a user's ImageNet folder, the authors' model files at a pinned commit), or an archive in an offline
mirror named by DCGAN_MIRROR (see ../shared/data/README.md). A DatasetSpec names both, with the mirror
archive's pinned sha256, the official download (checked against its published checksum) and the readers
(dcgan_lib.data.archives) that turn either into items. A combined spec (`parts`: the bedrooms and faces stand-ins)
names the datasets it is made of, its committed removal list (if any) and its held-out split. get_spec looks one up;
dcgan_lib.data.datasets finds or fetches it on disk.
"""
from __future__ import annotations

import csv
import hashlib
import io
import os
import tarfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from dcgan_lib.data.archives import (
    ChecksumMismatch,
    Item,
    cifar_batches_items,
    folder_files,
    folder_items,
    lmdb_count,
    lmdb_items,
    tar_count,
    tar_items,
)
from dcgan_lib.data.authors_releases import release_fetch, release_items

CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")


class DatasetMissing(FileNotFoundError):
    """The dataset is not on disk; the message names the command that fetches it."""


@dataclass(frozen=True)
class DatasetSpec:
    """A dataset: its splits, mirror archive (file, sha256), official fetch and reader."""

    name: str
    about: str
    splits: tuple[str, ...]
    archive: str | None = None  # file name in the mirror
    sha256: str | None = None
    licence: str = ""
    mirror_items: Callable[[Path, str], Iterator[Item]] | None = None
    mirror_count: Callable[[Path, str], int] | None = None
    official_dir: str | None = None  # folder under data/official
    official_fetch: Callable[[Path], None] | None = None
    official_items: Callable[[Path, str], Iterator[Item]] | None = None
    official_count: Callable[[Path, str], int] | None = None
    labelled: bool = False
    extra: dict = field(default_factory=dict)
    # A combined dataset (dcgan_lib.data.datasets reads it): the registered datasets it is made of, in this order (their
    # item ids are kept), split "all" holding every image of them. Its removal list (a dedup groups file, under the
    # project; None: nothing is removed) drops all but the first of each duplicate group, then `heldout` images of
    # the rest, picked by a seeded hash of their ids, form the split "heldout" that no model trains on; "train" is
    # what remains.
    # the split models train on (the store's default): "train", or SVHN's "unlabelled" (see SVHN_MEASURED_FROM)
    train_split: str = "train"
    parts: tuple[str, ...] = ()
    duplicates: str | None = None
    heldout: int = 0
    heldout_seed: int = 0


def _cifar_label(name: str) -> int:
    return CIFAR10_CLASSES.index(name.split("/")[2])


# Offline Table 2 (the mirror holds 10,000 labelled test digits): test digits from this index on are where the error is
# measured, so no model trains on them; digits before it hold the SVM's label pool and validation digits.
SVHN_MEASURED_FROM = 5000


def _svhn_unlabelled(items: Callable[[Path, str], Iterator[Item]]) -> Callable[[Path, str], Iterator[Item]]:
    """SVHN's split "unlabelled", what D trains on: the train digits, then test digits 0 .. SVHN_MEASURED_FROM - 1,
    all without labels (the SVM sees those test digits' labels anyway; the measured digits are never in it)."""
    def read(where: Path, split: str) -> Iterator[Item]:
        if split != "unlabelled":
            yield from items(where, split)
            return
        for item_id, payload, _ in items(where, "train"):
            yield item_id, payload, -1
        for i, (item_id, payload, _) in enumerate(items(where, "test")):
            if i >= SVHN_MEASURED_FROM:
                return
            yield item_id, payload, -1
    return read


def _svhn_unlabelled_count(count: Callable[[Path, str], int]) -> Callable[[Path, str], int]:
    def read(where: Path, split: str) -> int:
        if split != "unlabelled":
            return count(where, split)
        return count(where, "train") + min(SVHN_MEASURED_FROM, count(where, "test"))
    return read


def _svhn_mirror_items(archive: Path, split: str) -> Iterator[Item]:
    if split == "train":
        yield from tar_items(archive, "svhn-mirror/train_first1083_unlabeled/")
        return
    with tarfile.open(archive, "r:gz") as tar:
        rows = list(csv.DictReader(io.TextIOWrapper(
            tar.extractfile("svhn-mirror/test_first10k/labels.csv"), "utf-8")))
    labels = {r["file"]: int(r["label"]) for r in rows}
    yield from tar_items(archive, "svhn-mirror/test_first10k/", lambda n: labels[n.rsplit("/", 1)[1]])


def _svhn_mirror_count(archive: Path, split: str) -> int:
    folder = "train_first1083_unlabeled" if split == "train" else "test_first10k"
    return tar_count(archive, f"svhn-mirror/{folder}/")


def _svhn_official_items(folder: Path, split: str) -> Iterator[Item]:
    from scipy.io import loadmat  # deferred: only the official SVHN .mat files need scipy (via scikit-learn)

    mat = loadmat(folder / f"{split}_32x32.mat")
    images, labels = mat["X"].transpose(3, 0, 1, 2), mat["y"].ravel() % 10  # digit 0 is stored as 10
    for i, (img, label) in enumerate(zip(images, labels, strict=True)):
        yield f"{split}/{i}", np.ascontiguousarray(img), int(label)


def _svhn_official_count(folder: Path, split: str) -> int:
    return sum(1 for _ in _svhn_official_items(folder, split))


def _tiny_wnids(archive_or_folder: Path) -> list[str]:
    if archive_or_folder.is_dir():
        return (archive_or_folder / "wnids.txt").read_text().split()
    with tarfile.open(archive_or_folder, "r:gz") as tar:
        return tar.extractfile("tiny-imagenet-200/wnids.txt").read().decode().split()


def _torchvision_fetch(cls_name: str, **kwargs) -> Callable[[Path], None]:
    def fetch(root: Path) -> None:
        import torchvision.datasets as tvd  # deferred: heavy, and only an official download needs it

        getattr(tvd, cls_name)(str(root), download=True, **kwargs)
    return fetch


# Published checksums of the official archives that torchvision does not pin itself:
# LSUN bedrooms: sha256 and size from TensorFlow Datasets' url_checksums/lsun.txt (tensorflow/datasets).
LSUN_BEDROOM_SHA256 = "a15644c2e7153106867f0adb3491fc41224102d1f01b24494fb47d9f5d1f174e"  # 45,922,737,680 bytes
# Tiny-ImageNet: the md5 that ContinualAI/avalanche (benchmarks/datasets/tiny_imagenet/tiny_imagenet.py) and
# other loaders pin for cs231n's zip (248,100,043 bytes); no sha256 is published for it.
TINY_IMAGENET_MD5 = "90528d7ca1a48142e341f4ef8d21d0de"
# CelebA's attribute labels and partition: (Google Drive id, md5, file), as torchvision's CelebA loader pins them.
CELEBA_ATTRIBUTE_FILES = (
    ("0B7EVK8r0v71pblRyaVFSWGxPY0U", "75e246fa4810816ffd6ee81facbd244c", "list_attr_celeba.txt"),
    ("0B7EVK8r0v71pY0NSMzRuSXJEVkk", "d32c9cbf5e040fd4025c592c306e6668", "list_eval_partition.txt"),
)


def _download(url: str, folder: Path, filename: str) -> Path:
    """Download `url` to folder/filename with torchvision's downloader (redirects, progress bar)."""
    from torchvision.datasets.utils import download_url  # deferred: heavy, only a download needs it

    download_url(url, str(folder), filename)
    return folder / filename


def _check_download(path: Path, url: str, sha256: str | None, md5: str | None) -> None:
    """Refuse a download whose sha256/md5 differs from the published one: the file is deleted, nothing extracted."""
    for algo, expected in (("sha256", sha256), ("md5", md5)):
        if expected is None:
            continue
        digest = hashlib.new(algo)
        with open(path, "rb") as f:
            while block := f.read(1 << 20):
                digest.update(block)
        if digest.hexdigest() != expected:
            path.unlink(missing_ok=True)
            raise ChecksumMismatch(
                f"{path.name} downloaded from {url} has {algo} {digest.hexdigest()}, expected the published "
                f"{expected}: it is corrupt or not the official release. It was deleted and nothing was "
                "extracted; run the same `python -m dcgan_lib data fetch` again.")


def _url_fetch(url: str, md5: str | None = None, *, sha256: str | None = None) -> Callable[[Path], None]:
    """Download an official archive, check it against its published checksum, then extract it.

    With no published checksum the archive is still used, but the fetch says plainly that it is unverified.
    """
    def fetch(root: Path) -> None:
        from torchvision.datasets.utils import extract_archive  # deferred: heavy, only a download needs it

        archive = _download(url, root, url.rsplit("/", 1)[1])
        if sha256 or md5:
            _check_download(archive, url, sha256, md5)
        else:
            print(f"WARNING: {archive.name} is UNVERIFIED: no checksum is published for {url}, so a corrupt "
                  "or altered download cannot be detected.")
        extract_archive(str(archive), str(root))
    return fetch


def _gdrive_fetch(files: tuple[tuple[str, str, str], ...]) -> Callable[[Path], None]:
    """Download (Google Drive id, md5, file name) files with torchvision's downloader (through gdown) into the
    folder, each checked against its published md5 (a mismatch is deleted and refused)."""
    def fetch(root: Path) -> None:
        from torchvision.datasets.utils import download_file_from_google_drive  # deferred: only a download needs it

        for file_id, md5, name in files:
            download_file_from_google_drive(file_id, str(root), name)
            _check_download(root / name, f"https://drive.google.com/uc?id={file_id}", None, md5)
    return fetch


def _lfw_dir(root: Path) -> Path:
    """Where scikit-learn's LFW download lays the original (unaligned) photos: lfw_home/lfw/<Person>/*.jpg."""
    return root / "lfw_home" / "lfw"


def _lfw_fetch(root: Path) -> None:
    """LFW through scikit-learn's downloader, the one behind fetch_lfw_people/fetch_lfw_pairs.

    It fetches the official lfw.tgz (from scikit-learn's figshare copy, sha256-checked by scikit-learn)
    and the pairs files, and extracts the photos to _lfw_dir(root). torchvision no longer downloads LFW.
    """
    from sklearn.datasets import _lfw  # deferred: scikit-learn is heavy and only the LFW download needs it

    if not hasattr(_lfw, "_check_fetch_lfw"):
        raise DatasetMissing("this scikit-learn has no LFW downloader (_check_fetch_lfw); install the pinned "
                             "scikit-learn from pyproject.toml, or set DCGAN_MIRROR to a folder holding lfw-3k.tar.gz")
    _lfw._check_fetch_lfw(data_home=str(root), funneled=False, download_if_missing=True)


def _imagenet_fetch(root: Path) -> None:
    raise DatasetMissing(
        "ImageNet cannot be downloaded automatically (it needs an account at image-net.org). "
        f"Put the ILSVRC2012 train folder (train/<wnid>/*.JPEG) at {root / 'train'} or set DCGAN_IMAGENET.")


def _imagenet_dir(root: Path) -> Path:
    return Path(os.environ.get("DCGAN_IMAGENET", root / "train"))


def _lsun_dir(root: Path) -> Path:
    return Path(os.environ.get("DCGAN_LSUN_LMDB", root / "bedroom_train_lmdb"))


def _count_items(items: Callable[[Path, str], Iterator[Item]]) -> Callable[[Path, str], int]:
    return lambda path, split: sum(1 for _ in items(path, split))


def _mirror_tar(prefix_of: Callable[[str], str], label_of=None):
    return (lambda a, s: tar_items(a, prefix_of(s), label_of)), (lambda a, s: tar_count(a, prefix_of(s)))


def _build_registry() -> dict[str, DatasetSpec]:
    cifar_items, cifar_count = _mirror_tar(lambda s: f"cifar10-jpeg/{s}/", _cifar_label)
    celeba_items, celeba_count = _mirror_tar(lambda s: "celeba-10k/")
    lfw_items, lfw_count = _mirror_tar(lambda s: "lfw-3k/")
    bed_items, bed_count = _mirror_tar(lambda s: "bedrooms-3k/")
    places_items, places_count = _mirror_tar(lambda s: "bedrooms-places365/")

    def tiny_items(archive: Path, split: str) -> Iterator[Item]:
        wnids = _tiny_wnids(archive)
        yield from tar_items(archive, "tiny-imagenet-200/train/", lambda n: wnids.index(n.split("/")[2]))

    def tiny_official(folder: Path, split: str) -> Iterator[Item]:
        wnids = _tiny_wnids(folder / "tiny-imagenet-200")
        for path in folder_files(folder / "tiny-imagenet-200" / "train"):
            if path.suffix == ".JPEG":
                yield str(path), path.read_bytes(), wnids.index(path.parts[-3])

    def folder_reader(sub: Callable[[Path], Path], labelled: bool = False):
        return lambda root, split: folder_items(sub(root), labelled, images_only=True)

    specs = [
        DatasetSpec("cifar10", "CIFAR-10: 50,000 train + 10,000 test 32x32 images, 10 classes (Table 1)",
                    ("train", "test"), "cifar10-jpeg.tar.gz",
                    "38a6b163f68438fa6b0e2b19fc4cfe0f504e23874580e814dabdf80549de2e6e",
                    "free for research (Krizhevsky 2009)", cifar_items, cifar_count, "cifar10",
                    _torchvision_fetch("CIFAR10"),
                    lambda root, split: cifar_batches_items(root / "cifar-10-batches-py", split),
                    lambda root, split: 50_000 if split == "train" else 10_000, labelled=True),
        DatasetSpec("svhn", "SVHN cropped digits (Table 2). Mirror: first 10,000 labelled test digits "
                    "(split 'test'), first 1,083 unlabelled train digits (split 'train'); split 'unlabelled', "
                    "what D trains on: the train digits and test digits 0-4,999 without labels, never the "
                    "measured test digits 5,000 on", ("train", "test", "extra", "unlabelled"), "svhn-mirror.tar.gz",
                    "b43d7cbca6c0d535cde14e47d993254a62d2e6e39746ea7b0af1f4fe254f9d6e",
                    "free for non-commercial research (Netzer et al. 2011)",
                    _svhn_unlabelled(_svhn_mirror_items), _svhn_unlabelled_count(_svhn_mirror_count), "svhn",
                    lambda root: [_torchvision_fetch("SVHN", split=s)(root) for s in ("train", "test")],
                    _svhn_unlabelled(_svhn_official_items), _svhn_unlabelled_count(_svhn_official_count),
                    labelled=True, train_split="unlabelled"),
        DatasetSpec("celeba_aligned", "CelebA's aligned faces, img_align_celeba (mirror: the first 10,000)",
                    ("train",), "celeba-10k.tar.gz",
                    "ba2e6311ebba207af8136f5d68da830791a6d8e0b32de40668db6ba70115fa9e",
                    "non-commercial research only (Liu et al. 2015)", celeba_items, celeba_count, "celeba",
                    _torchvision_fetch("CelebA", split="all"),
                    folder_reader(lambda r: r / "celeba" / "img_align_celeba"),
                    _count_items(folder_reader(lambda r: r / "celeba" / "img_align_celeba"))),
        DatasetSpec("celeba", "the faces stand-in for the paper's unreleased faces set (§4.2): celeba_aligned "
                    "('all'), 1,000 held out ('heldout'), the rest 'train'", ("train", "heldout", "all"),
                    licence="non-commercial research only (Liu et al. 2015)", parts=("celeba_aligned",),
                    heldout=1000, heldout_seed=0),
        DatasetSpec("celeba_attributes", "CelebA's 40 attribute labels (Smiling, Male, Eyeglasses, ...) and "
                    "partition of every aligned face (Fig. 7's attribute classifiers; dcgan_lib.figures.attributes)",
                    ("labels",), "celeba-attributes.tar.gz",
                    "46e83fd07f8c27a59f7ef6509391a13170b37d9de25ec2967856a93cc8ffc61f",
                    "non-commercial research only (Liu et al. 2015)", release_items, _count_items(release_items),
                    "celeba_attributes", _gdrive_fetch(CELEBA_ATTRIBUTE_FILES), release_items,
                    _count_items(release_items)),
        DatasetSpec("lfw", "Labeled Faces in the Wild photos (web photos for the §4.2 face detector)",
                    ("train",), "lfw-3k.tar.gz",
                    "4877f642d0d4428e821d8d33808da913afd9a87c632115ee89f276e627c4a1a9",
                    "non-commercial research (Huang et al. 2007)", lfw_items, lfw_count, "lfw",
                    _lfw_fetch, folder_reader(_lfw_dir), _count_items(folder_reader(_lfw_dir))),
        DatasetSpec("bedrooms_3k", "3,446 bedroom photos at 128 px: 2,911 image-challenge tiles, 535 Houses "
                    "Dataset photos (part of the bedrooms stand-in)", ("train",), "bedrooms-3k.tar.gz",
                    "b826d5dc343edff6ea12ef8b4e34cd6d37f54cf6ad19f418f9ee68767343ae28",
                    "origin partly unknown; Houses Dataset part: cite Ahmed and Moustafa 2016",
                    bed_items, bed_count),
        DatasetSpec("bedrooms_places365", "5,100 Places365-Standard bedroom photos at 256 px, 5,000 train + 100 "
                    "val (part of the bedrooms stand-in)", ("train",), "bedrooms-places365-5100.tar.gz",
                    "b87c691042f9ed4951269cddf765fcab9b667146af6a8f910acebb3c6b123888",
                    "non-commercial research and education (Places365, Zhou et al. 2017)",
                    places_items, places_count),
        DatasetSpec("bedrooms", "the mirror's LSUN stand-in (§4.1): bedrooms_3k + bedrooms_places365, 8,546 photos "
                    "('all'), de-duplicated by the §4.1 hash, 1,000 held out ('heldout'), the rest 'train'",
                    ("train", "heldout", "all"),
                    licence="Places365 part: non-commercial research and education (Zhou et al. 2017); Houses "
                    "Dataset part: cite Ahmed and Moustafa 2016; image-challenge part: origin unknown",
                    parts=("bedrooms_3k", "bedrooms_places365"),
                    duplicates="notebooks/inputs/bedrooms_duplicates.json", heldout=1000, heldout_seed=0),
        DatasetSpec("lsun_bedroom", "LSUN bedrooms, 3,033,043 images, read from the official lmdb (§4.1)",
                    ("train",), licence="LSUN terms (Yu et al. 2015)", official_dir="lsun_bedroom",
                    official_fetch=_url_fetch("http://dl.yf.io/lsun/scenes/bedroom_train_lmdb.zip",
                                              sha256=LSUN_BEDROOM_SHA256),
                    official_items=lambda root, split: lmdb_items(_lsun_dir(root)),
                    official_count=lambda root, split: lmdb_count(_lsun_dir(root))),
        DatasetSpec("imagenet", "a user's ILSVRC2012 train folder (§4.3; set DCGAN_IMAGENET)", ("train",),
                    licence="ImageNet terms of access", official_dir="imagenet", official_fetch=_imagenet_fetch,
                    official_items=folder_reader(_imagenet_dir, labelled=True),
                    official_count=_count_items(folder_reader(_imagenet_dir, labelled=True)), labelled=True),
        DatasetSpec("tiny_imagenet", "Tiny-ImageNet train (200 classes, 64 px; mirror: 350 per class), "
                    "stand-in for ImageNet-1k (§4.3)", ("train",), "tiny-imagenet-200-train350.tar.gz",
                    "a54ef33d8303d1183b5eeefa2b568df7b4a5f0c89ebb6479dd6a80721ae8b6d0",
                    "ImageNet terms of access", tiny_items,
                    lambda a, s: tar_count(a, "tiny-imagenet-200/train/"), "tiny_imagenet",
                    _url_fetch("http://cs231n.stanford.edu/tiny-imagenet-200.zip", TINY_IMAGENET_MD5),
                    tiny_official, _count_items(tiny_official), labelled=True),
        DatasetSpec("authors_svhn", "the paper authors' released SVHN DCGAN, G and D after 200 epochs "
                    "(Table 2's D; Newmu/dcgan_code)", ("weights",), "dcgan-authors-svhn.tar.gz",
                    "cf723f2d6a2580b985f0bdb87a9198e10243cc25ed5696778963ddf855dd26ee", "MIT (Newmu/dcgan_code)",
                    release_items, _count_items(release_items), "authors_svhn",
                    release_fetch("authors_svhn"), release_items,
                    _count_items(release_items)),
        DatasetSpec("authors_imagenet32", "the paper authors' released ImageNet-32 D (epoch 30, Table 1's "
                    "features). Mirror: D only, conv kernels 5-6 missing; the official fetch has G and D",
                    ("weights",), "dcgan-authors-imagenet32-partial.tar.gz",
                    "4336d745d9f7d65422df56c27de3e860f1f1c3e75dc025103751298e26f3573d", "MIT (Newmu/dcgan_code)",
                    release_items, _count_items(release_items), "authors_imagenet32",
                    release_fetch("authors_imagenet32"), release_items,
                    _count_items(release_items)),
    ]
    return {s.name: s for s in specs}


DATASETS: dict[str, DatasetSpec] = _build_registry()


def get_spec(name: str | DatasetSpec) -> DatasetSpec:
    """The spec for a registered name or `folder:PATH` (any folder of images). A spec passes through as it
    is: the data path looks a name up once and hands the spec on (datasets.find_source, data.prepare)."""
    if isinstance(name, DatasetSpec):
        return name
    if name.startswith("folder:"):
        folder = Path(name[len("folder:"):]).expanduser()
        if not folder.is_dir():
            raise DatasetMissing(f"{folder} is not a folder; `folder:PATH` needs a folder of images")
        return DatasetSpec(name, f"images under {folder}", ("train",), official_dir=str(folder.resolve()),
                           official_items=lambda root, split: folder_items(root),
                           official_count=lambda root, split: len(folder_files(root)))
    if name not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; valid: {', '.join(DATASETS)}, folder:PATH")
    return DATASETS[name]


def official_present(spec: DatasetSpec, root: Path) -> bool:
    """Whether a spec's official release is on disk under root (LSUN: its lmdb; ImageNet: its train folder)."""
    if spec.name.startswith("folder:"):
        return True
    if spec.name == "lsun_bedroom":
        return (_lsun_dir(root) / "data.mdb").exists()
    if spec.name == "imagenet":
        return _imagenet_dir(root).is_dir()
    return any(p.is_file() for p in root.rglob("*"))  # a failed download can leave empty folders behind
