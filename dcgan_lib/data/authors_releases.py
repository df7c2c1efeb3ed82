"""The paper authors' released models (Newmu/dcgan_code): their files, pinned by commit and sha256.

Each release is a data-registry entry (authors_svhn, authors_imagenet32): dcgan_lib.data.registry fetches
it with release_fetch (every file at the pinned commit, each checked) and reads it with
release_items; dcgan_lib.gan.authors turns the files into PyTorch modules.
"""
from __future__ import annotations

import os
import tarfile
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from dcgan_lib.data.archives import Item, sha256_of, verify

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


def release_fetch(name: str) -> Callable[[Path], None]:
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


def release_items(folder_or_archive: Path, split: str) -> Iterator[Item]:
    """The registry's item reader for a release: its files as (name, bytes, None)."""
    if folder_or_archive.is_dir():
        for path in sorted(folder_or_archive.iterdir()):
            yield path.name, path.read_bytes(), None
        return
    with tarfile.open(folder_or_archive, "r:gz") as tar:
        for member in tar:
            if member.isfile():
                yield member.name, tar.extractfile(member).read(), None

