"""Dataset registry and fetching: where every dataset's raw items come from, and proof they are the pinned ones.

Every dataset is read from one of two places: its official release (torchvision's download, LSUN's
lmdb, a user's ImageNet folder, the authors' model files at a pinned commit), or an archive in an offline
mirror named by DCGAN_MIRROR (see ../shared/data/README.md). This module owns the registry (DatasetSpec,
get_spec), the readers that turn each format into (item id, payload, label) items in a fixed order, and
the downloads and sha256/md5 checks that refuse a corrupt or altered file before anything is used.
It never decodes pixels: dcgan_lib.data turns these raw items into the uint8 caches training reads.
"""
from __future__ import annotations

import csv
import hashlib
import io
import os
import pickle
import shutil
import tarfile
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from dcgan_lib.results import ROOT

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif", ".tif", ".tiff")
CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")

Item = tuple[str, object, int]  # (item id, encoded bytes or HxWx3 uint8 array, label or -1)


class DatasetMissing(FileNotFoundError):
    """The dataset is not on disk; the message names the command that fetches it."""


class ChecksumMismatch(RuntimeError):
    """An archive's sha256 differs from the pinned one: nothing is extracted or used."""


def data_root() -> Path:
    """Where fetched archives, official downloads and caches live (DCGAN_DATA, default data/)."""
    return Path(os.environ.get("DCGAN_DATA", ROOT / "data"))


def mirror_root() -> Path | None:
    """The offline mirror folder named by DCGAN_MIRROR, if any."""
    value = os.environ.get("DCGAN_MIRROR")
    return Path(value).expanduser().resolve() if value else None


# ---------------------------------------------------------------------------------------------
# Readers: each yields (item id, payload, label) in a fixed order
# ---------------------------------------------------------------------------------------------

def _tar_items(archive: Path, prefix: str, label_of: Callable[[str], int] | None = None) -> Iterator[Item]:
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


def _tar_count(archive: Path, prefix: str) -> int:
    with tarfile.open(archive, "r:gz") as tar:
        return sum(1 for m in tar if m.isfile() and m.name.startswith(prefix)
                   and m.name.lower().endswith(IMAGE_SUFFIXES))


def folder_files(folder: Path) -> list[Path]:
    """Every non-hidden file under a folder, sorted (non-images are reported as bad, not ignored)."""
    return sorted(p for p in folder.rglob("*") if p.is_file() and not any(
        part.startswith(".") for part in p.relative_to(folder).parts))


def _folder_items(folder: Path, labelled: bool = False, images_only: bool = False) -> Iterator[Item]:
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


def _lmdb_count(path: Path) -> int:
    import lmdb  # deferred: only the official LSUN lmdb needs it

    env = lmdb.open(str(path), readonly=True, lock=False, max_readers=1)
    try:
        return env.stat()["entries"]
    finally:
        env.close()


# ---------------------------------------------------------------------------------------------
# The registry
# ---------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Source:
    """One place a split can come from: `items(split)` and `count(split)` over a local path."""

    kind: str  # "mirror" or "official"
    path: Path  # archive (mirror) or folder/lmdb (official)
    items: Callable[[str], Iterator[Item]]
    count: Callable[[str], int]
    sha256: str | None = None


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


def _cifar_label(name: str) -> int:
    return CIFAR10_CLASSES.index(name.split("/")[2])


def _svhn_mirror_items(archive: Path, split: str) -> Iterator[Item]:
    if split == "train":
        yield from _tar_items(archive, "svhn-mirror/train_first1083_unlabeled/")
        return
    with tarfile.open(archive, "r:gz") as tar:
        rows = list(csv.DictReader(io.TextIOWrapper(
            tar.extractfile("svhn-mirror/test_first10k/labels.csv"), "utf-8")))
    labels = {r["file"]: int(r["label"]) for r in rows}
    yield from _tar_items(archive, "svhn-mirror/test_first10k/", lambda n: labels[n.rsplit("/", 1)[1]])


def _svhn_mirror_count(archive: Path, split: str) -> int:
    folder = "train_first1083_unlabeled" if split == "train" else "test_first10k"
    return _tar_count(archive, f"svhn-mirror/{folder}/")


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
    return (lambda a, s: _tar_items(a, prefix_of(s), label_of)), (lambda a, s: _tar_count(a, prefix_of(s)))


# ---------------------------------------------------------------------------------------------
# The authors' released models (Newmu/dcgan_code): files pinned by commit and sha256
# ---------------------------------------------------------------------------------------------

AUTHORS_COMMIT = "ee12b2d15a3856794b8dae77d1eb263c67c36e47"
RAW_URL = "https://raw.githubusercontent.com/Newmu/dcgan_code/{commit}/{path}"


@dataclass(frozen=True)
class Release:
    """One released model folder of the authors: where it lives in their repository and in the mirror."""

    name: str  # registry name, e.g. "authors_svhn"
    folder: str  # models/<folder>/ in the repository
    archive_dir: str  # top folder inside the mirror archive
    epoch: int
    files: dict[str, str | None]  # file name -> sha256 (None: no copy could be found to pin it)

    def path_in_repo(self, file: str) -> str:
        return f"models/{self.folder}/{file}"


def _jl_files(prefix: str, n: int, sha: dict[str, str]) -> dict[str, str | None]:
    names = [f"{prefix}.jl"] + [f"{prefix}.jl_{k:02d}.npy" for k in range(1, n + 1)]
    return {f: sha.get(f) for f in names}


# sha256 of every file that could be checked (the mirror's copies are byte-identical to the repository's).
_AUTHORS_SHA = {
    "200_discrim_params.jl": "0c0a0b1b95c2790ae83c72c443ea6ec70bc26755ab2590cf7e48cb95b71c9b64",
    "200_discrim_params.jl_01.npy": "fe9ef3d815b106df988ec6f384a79ae68df27a214c11ada52b94548f4666b15f",
    "200_discrim_params.jl_02.npy": "f62c228d2e9ec48b7a07d191317a5c166129a8e94363c3c546f59509cc29e521",
    "200_discrim_params.jl_03.npy": "b7ea7698a743162669e127a318b36aea2a870673fac7437790c8c1f31b61ba55",
    "200_discrim_params.jl_04.npy": "2c7fce37952dd6d97bc2562dc6a1ae3f49ec7a542b3e857b903c011762b1a3a1",
    "200_discrim_params.jl_05.npy": "fa49601f77caf68f96feaf5b00fbc6911dfaa519b8d977228250d94a85a38def",
    "200_discrim_params.jl_06.npy": "8bd21e1b7680fbae4250857acbc20c55e8811a6376f54a3a7d7d11a7103ad87e",
    "200_discrim_params.jl_07.npy": "54301f539d66a982c7ab3af63ba27c74d80d0754c54689a6999b771e80dc2458",
    "200_discrim_params.jl_08.npy": "f7879fd5d2b11bd8357d49cf2d19e1af1186697b9b3fe22e18cba002de8e1cc8",
    "200_gen_params.jl": "550ee8fb846652cfe5b124581bf7f4b2d2fe8e59ef306259b8956895c408dda3",
    "200_gen_params.jl_01.npy": "cacd8360e5136c0ceb8e3c017def718a7594981e6a3f34465fa6c2b2973742dd",
    "200_gen_params.jl_02.npy": "6500206f4111fa55268a5e085dfc488c5d2d6fe08e0e02d27f2da8a8df8c7258",
    "200_gen_params.jl_03.npy": "c60cb9debdd10d9342902e738ce24efcaf4e0fa7e2ae627a21ef3c14bd273d1c",
    "200_gen_params.jl_04.npy": "b85a72eb6a59ca992aaf307c6e0121d8a7e4c275ff4a2245bbdda4f4f2b0e73b",
    "200_gen_params.jl_05.npy": "e596406e94bffafc81b9e82f800e534946c649a797b7a3bcebd52a3162c51b66",
    "200_gen_params.jl_06.npy": "57d01373b2486dff0842f3b7d773b1669a5a37f747607489c33bdfbffca0dac9",
    "200_gen_params.jl_07.npy": "d7d990c947cab6d69d5fe58815a2745555d483904dbc3a6b2a4f9cf46e6cc036",
    "200_gen_params.jl_08.npy": "ae4305183f00587b90c93dd029286134fd0641c15dacf27c399b604785234e5a",
    "200_gen_params.jl_09.npy": "9dfe6f3d935db266740e80d0cd6d6a60f6295dbe26758bcebc3bdadf2ed42809",
    "200_gen_params.jl_10.npy": "589c30bc64267424d1eee606de0ca7a00a1435b4b0e590523dd8989399971fdf",
    "30_discrim_params.jl": "3086272eb1d63392cf0ab1c6bd7c2735101e56649495e348b79fc2645beefd3f",
    "30_discrim_params.jl_01.npy": "f90d162c427747332e1f84e55179777971cd38faf04012b644040cd8c9dba9ac",
    "30_discrim_params.jl_02.npy": "71a217a8d1456e914eca7a60a8bfe776d0e94a951ff1e903b085d06d7295c839",
    "30_discrim_params.jl_03.npy": "42e586d7689afe6fa246e559007a79d17c74a71ccb00e82bbd1bef92452945df",
    "30_discrim_params.jl_04.npy": "c96bfdaf557584a011522f1a3550ddecc37242254082003fd86e552c810cac02",
    "30_discrim_params.jl_05.npy": "7cd50047eecc15f50c44965aa97774e90be428a33dc7b36277e80998340649f1",
    "30_discrim_params.jl_06.npy": "017620285a9d6d025d2e28a91622e224b7c98213f83f742460d6157a078d0e6a",
    "30_discrim_params.jl_07.npy": "3d738403270b7d27c88eff9a500b2327b63d8faae66a313e3060f2e27d6a9b02",
    "30_discrim_params.jl_08.npy": "829d42e90ddf0884a743c587196ee059407300f78d018da78a12c9ae1fe91d80",
    "30_discrim_params.jl_09.npy": "d59a1cfd4fc2291cd57a3dcd84ba7381050d422f01c5058f7819df3ff5db6d88",
    "30_discrim_params.jl_10.npy": "f8017956ece953a192b1075fd8ebe710771bb071165797f34fc94322e3773d2d",
    "30_discrim_params.jl_12.npy": "ac245a0bfcb6eca75188335f38ce0225ea2110c80dcd67e87b42d1b9c46f9b68",
    "30_discrim_params.jl_13.npy": "937b1e4fea0f4c9316dae1b0e0a8d1475ad67383bd9968252102de87e1c94afe",
    "30_discrim_params.jl_15.npy": "ede3817fc30e91ef2cecb506de021c7aa5331eb48a3b2163b0deb1c33534c40d",
    "30_discrim_params.jl_16.npy": "309501dddf9391a1ac39479dfcb34034cfa59390153890d64a2f8baf5e2be2d9",
    "30_discrim_params.jl_17.npy": "8051786943cc5d2a04bb8301a0ae8cf530076672f90a01b89b48fe6fb329cb37",
}

RELEASES: dict[str, Release] = {
    "authors_svhn": Release(
        "authors_svhn", "svhn_unsup_all_conv_dcgan_100z_gaussian_lr_0.0005_64mb", "dcgan-authors-svhn", 200,
        {**_jl_files("200_discrim_params", 8, _AUTHORS_SHA), **_jl_files("200_gen_params", 10, _AUTHORS_SHA)}),
    "authors_imagenet32": Release(
        "authors_imagenet32", "imagenet_gan_pretrain_128f_relu_lrelu_7l_3x3_256z",
        "dcgan-authors-imagenet32-partial", 30,
        {**_jl_files("30_discrim_params", 17, _AUTHORS_SHA), **_jl_files("30_gen_params", 19, _AUTHORS_SHA)}),
}


def _release_fetch(name: str) -> Callable[[Path], None]:
    """The registry's download for users with internet: every file of the release at the pinned commit."""
    def fetch(root: Path) -> None:
        release = RELEASES[name]
        for file, sha in release.files.items():
            target = root / file
            if target.exists() and (sha is None or sha256_of(target) == sha):
                continue
            url = RAW_URL.format(commit=AUTHORS_COMMIT, path=release.path_in_repo(file))
            tmp = target.with_name(target.name + ".part")
            urllib.request.urlretrieve(url, tmp)  # noqa: S310 (a pinned https URL)
            if sha is not None:
                verify(tmp, sha)
            os.replace(tmp, target)
    return fetch


def _release_items(folder_or_archive: Path, split: str) -> Iterator[Item]:
    """The registry's item reader for a release: its files as (name, bytes, None)."""
    if folder_or_archive.is_dir():
        for path in sorted(folder_or_archive.iterdir()):
            yield path.name, path.read_bytes(), None
        return
    with tarfile.open(folder_or_archive, "r:gz") as tar:
        for member in tar:
            if member.isfile():
                yield member.name, tar.extractfile(member).read(), None


def _build_registry() -> dict[str, DatasetSpec]:
    cifar_items, cifar_count = _mirror_tar(lambda s: f"cifar10-jpeg/{s}/", _cifar_label)
    celeba_items, celeba_count = _mirror_tar(lambda s: "celeba-10k/")
    lfw_items, lfw_count = _mirror_tar(lambda s: "lfw-3k/")
    bed_items, bed_count = _mirror_tar(lambda s: "bedrooms-3k/")

    def tiny_items(archive: Path, split: str) -> Iterator[Item]:
        wnids = _tiny_wnids(archive)
        yield from _tar_items(archive, "tiny-imagenet-200/train/", lambda n: wnids.index(n.split("/")[2]))

    def tiny_official(folder: Path, split: str) -> Iterator[Item]:
        wnids = _tiny_wnids(folder / "tiny-imagenet-200")
        for path in folder_files(folder / "tiny-imagenet-200" / "train"):
            if path.suffix == ".JPEG":
                yield str(path), path.read_bytes(), wnids.index(path.parts[-3])

    def folder_reader(sub: Callable[[Path], Path], labelled: bool = False):
        return lambda root, split: _folder_items(sub(root), labelled, images_only=True)

    specs = [
        DatasetSpec("cifar10", "CIFAR-10: 50,000 train + 10,000 test 32x32 images, 10 classes (Table 1)",
                    ("train", "test"), "cifar10-jpeg.tar.gz",
                    "38a6b163f68438fa6b0e2b19fc4cfe0f504e23874580e814dabdf80549de2e6e",
                    "free for research (Krizhevsky 2009)", cifar_items, cifar_count, "cifar10",
                    _torchvision_fetch("CIFAR10"),
                    lambda root, split: cifar_batches_items(root / "cifar-10-batches-py", split),
                    lambda root, split: 50_000 if split == "train" else 10_000, labelled=True),
        DatasetSpec("svhn", "SVHN cropped digits (Table 2). Mirror: first 10,000 labelled test digits "
                    "(split 'test'), first 1,083 unlabelled train digits (split 'train')",
                    ("train", "test", "extra"), "svhn-mirror.tar.gz",
                    "b43d7cbca6c0d535cde14e47d993254a62d2e6e39746ea7b0af1f4fe254f9d6e",
                    "free for non-commercial research (Netzer et al. 2011)",
                    _svhn_mirror_items, _svhn_mirror_count, "svhn",
                    lambda root: [_torchvision_fetch("SVHN", split=s)(root) for s in ("train", "test")],
                    _svhn_official_items, _svhn_official_count, labelled=True),
        DatasetSpec("celeba", "CelebA aligned faces (stand-in for the paper's unreleased faces set, §4.2)",
                    ("train",), "celeba-10k.tar.gz",
                    "ba2e6311ebba207af8136f5d68da830791a6d8e0b32de40668db6ba70115fa9e",
                    "non-commercial research only (Liu et al. 2015)", celeba_items, celeba_count, "celeba",
                    _torchvision_fetch("CelebA", split="all"),
                    folder_reader(lambda r: r / "celeba" / "img_align_celeba"),
                    _count_items(folder_reader(lambda r: r / "celeba" / "img_align_celeba"))),
        DatasetSpec("lfw", "Labeled Faces in the Wild photos (web photos for the §4.2 face detector)",
                    ("train",), "lfw-3k.tar.gz",
                    "4877f642d0d4428e821d8d33808da913afd9a87c632115ee89f276e627c4a1a9",
                    "non-commercial research (Huang et al. 2007)", lfw_items, lfw_count, "lfw",
                    _lfw_fetch, folder_reader(_lfw_dir), _count_items(folder_reader(_lfw_dir))),
        DatasetSpec("bedrooms", "the mirror's LSUN stand-in: 3,446 bedroom photos at 128 px (§4.1)",
                    ("train",), "bedrooms-3k.tar.gz",
                    "b826d5dc343edff6ea12ef8b4e34cd6d37f54cf6ad19f418f9ee68767343ae28",
                    "origin partly unknown; Houses Dataset part: cite Ahmed and Moustafa 2016",
                    bed_items, bed_count),
        DatasetSpec("lsun_bedroom", "LSUN bedrooms, 3,033,043 images, read from the official lmdb (§4.1)",
                    ("train",), licence="LSUN terms (Yu et al. 2015)", official_dir="lsun_bedroom",
                    official_fetch=_url_fetch("http://dl.yf.io/lsun/scenes/bedroom_train_lmdb.zip",
                                              sha256=LSUN_BEDROOM_SHA256),
                    official_items=lambda root, split: lmdb_items(_lsun_dir(root)),
                    official_count=lambda root, split: _lmdb_count(_lsun_dir(root))),
        DatasetSpec("imagenet", "a user's ILSVRC2012 train folder (§4.3; set DCGAN_IMAGENET)", ("train",),
                    licence="ImageNet terms of access", official_dir="imagenet", official_fetch=_imagenet_fetch,
                    official_items=folder_reader(_imagenet_dir, labelled=True),
                    official_count=_count_items(folder_reader(_imagenet_dir, labelled=True)), labelled=True),
        DatasetSpec("tiny_imagenet", "Tiny-ImageNet train (200 classes, 64 px; mirror: 350 per class), "
                    "stand-in for ImageNet-1k (§4.3)", ("train",), "tiny-imagenet-200-train350.tar.gz",
                    "a54ef33d8303d1183b5eeefa2b568df7b4a5f0c89ebb6479dd6a80721ae8b6d0",
                    "ImageNet terms of access", tiny_items,
                    lambda a, s: _tar_count(a, "tiny-imagenet-200/train/"), "tiny_imagenet",
                    _url_fetch("http://cs231n.stanford.edu/tiny-imagenet-200.zip", TINY_IMAGENET_MD5),
                    tiny_official, _count_items(tiny_official), labelled=True),
        DatasetSpec("authors_svhn", "the paper authors' released SVHN DCGAN, G and D after 200 epochs "
                    "(Table 2's D; Newmu/dcgan_code)", ("weights",), "dcgan-authors-svhn.tar.gz",
                    "cf723f2d6a2580b985f0bdb87a9198e10243cc25ed5696778963ddf855dd26ee", "MIT (Newmu/dcgan_code)",
                    _release_items, _count_items(_release_items), "authors_svhn",
                    _release_fetch("authors_svhn"), _release_items,
                    _count_items(_release_items)),
        DatasetSpec("authors_imagenet32", "the paper authors' released ImageNet-32 D (epoch 30, Table 1's "
                    "features). Mirror: D only, conv kernels 5-6 missing; the official fetch has G and D",
                    ("weights",), "dcgan-authors-imagenet32-partial.tar.gz",
                    "4336d745d9f7d65422df56c27de3e860f1f1c3e75dc025103751298e26f3573d", "MIT (Newmu/dcgan_code)",
                    _release_items, _count_items(_release_items), "authors_imagenet32",
                    _release_fetch("authors_imagenet32"), _release_items,
                    _count_items(_release_items)),
    ]
    return {s.name: s for s in specs}


DATASETS: dict[str, DatasetSpec] = _build_registry()


def get_spec(name: str) -> DatasetSpec:
    """The spec for a registered name or `folder:PATH` (any folder of images)."""
    if name.startswith("folder:"):
        folder = Path(name[len("folder:"):]).expanduser()
        if not folder.is_dir():
            raise DatasetMissing(f"{folder} is not a folder; `folder:PATH` needs a folder of images")
        return DatasetSpec(name, f"images under {folder}", ("train",), official_dir=str(folder.resolve()),
                           official_items=lambda root, split: _folder_items(root),
                           official_count=lambda root, split: len(folder_files(root)))
    if name not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; valid: {', '.join(DATASETS)}, folder:PATH")
    return DATASETS[name]


# ---------------------------------------------------------------------------------------------
# Fetch and verify
# ---------------------------------------------------------------------------------------------

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
        if root.exists() and _official_present(spec, root):
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


def _official_present(spec: DatasetSpec, root: Path) -> bool:
    if spec.name.startswith("folder:"):
        return True
    if spec.name == "lsun_bedroom":
        return (_lsun_dir(root) / "data.mdb").exists()
    if spec.name == "imagenet":
        return _imagenet_dir(root).is_dir()
    return any(root.iterdir())


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
