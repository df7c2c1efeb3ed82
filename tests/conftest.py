"""Shared fixtures: a folder dataset of random images for the model store, a tiny bedrooms mirror (both
archives in their real layouts) for the combined dataset's tests, and a stand-in attribute classifier for Fig. 7."""
from __future__ import annotations

import io
import tarfile
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from dcgan_lib.data import archives, datasets, registry
from dcgan_lib.records import results


@pytest.fixture
def folder_dataset(tmp_path, monkeypatch):
    """40 random 32 px images in a folder (`folder:PATH`), with the model store and data root under tmp_path."""
    monkeypatch.setattr(results, "ROOT", tmp_path)
    monkeypatch.setenv("DCGAN_DATA", str(tmp_path / "data"))
    folder = tmp_path / "imgs"
    folder.mkdir()
    for i, img in enumerate(np.random.default_rng(0).integers(0, 256, (40, 32, 32, 3), dtype=np.uint8)):
        Image.fromarray(img).save(folder / f"{i}.png")
    return f"folder:{folder}"


def smooth_jpeg(seed: int, side: int) -> bytes:
    """A smooth random photo-like image (6x6 colour noise, bicubic up-sampled) as JPEG bytes."""
    small = np.random.default_rng(seed).integers(0, 256, (6, 6, 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(small).resize((side, side), Image.BICUBIC).save(buf, "JPEG", quality=90)
    return buf.getvalue()


def write_tar(path: Path, members: dict[str, bytes]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(path, "w:gz") as tar:
        for name, payload in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(payload)
            tar.addfile(info, io.BytesIO(payload))
    return path


@dataclass
class BedroomsMirror:
    mirror: Path
    duplicates: Path  # where the combined dataset's removal list is read from
    files: dict[str, bytes]  # item id -> file bytes, both archives
    copies: list[tuple[str, str]]  # planted (original, copy) pairs: one byte copy across the archives


@pytest.fixture
def bedrooms_mirror(tmp_path, monkeypatch) -> BedroomsMirror:
    """bedrooms-3k.tar.gz (10 images, 48 px) and bedrooms-places365-5100.tar.gz (8 train + 2 val, 64 px) in their
    real layouts, registered under their real names with these files' checksums; 4 held out; data under tmp_path."""
    three_k = {f"bedrooms-3k/hcaptcha/{i:03d}.jpg": smooth_jpeg(i, 48) for i in range(7)}
    three_k |= {f"bedrooms-3k/houses/{i}_bedroom.jpg": smooth_jpeg(100 + i, 48) for i in range(3)}
    places = {f"bedrooms-places365/dataset/train/bedroom/{i:08d}.jpg": smooth_jpeg(200 + i, 64) for i in range(1, 9)}
    places |= {f"bedrooms-places365/dataset/eval/bedroom/Places365_val_{i:08d}.jpg": smooth_jpeg(300 + i, 64)
               for i in (17, 42)}
    copy = "bedrooms-places365/dataset/train/bedroom/00000005.jpg"
    places[copy] = three_k["bedrooms-3k/hcaptcha/002.jpg"]  # the same file in both archives
    mirror = tmp_path / "mirror"
    paths = {"bedrooms_3k": write_tar(mirror / "bedrooms-3k.tar.gz", three_k),
             "bedrooms_places365": write_tar(mirror / "bedrooms-places365-5100.tar.gz", places)}
    for name, path in paths.items():
        assert registry.DATASETS[name].archive == path.name
        monkeypatch.setitem(registry.DATASETS, name, replace(registry.DATASETS[name], sha256=archives.sha256_of(path)))
    duplicates = tmp_path / "inputs" / "bedrooms_duplicates.json"
    monkeypatch.setitem(registry.DATASETS, "bedrooms",
                        replace(registry.DATASETS["bedrooms"], duplicates=str(duplicates), heldout=4))
    monkeypatch.setenv("DCGAN_DATA", str(tmp_path / "data"))
    monkeypatch.setenv("DCGAN_MIRROR", str(mirror))
    monkeypatch.setattr(datasets, "_WARNED", set())
    return BedroomsMirror(mirror, duplicates, {**three_k, **places}, [("bedrooms-3k/hcaptcha/002.jpg", copy)])


class ChannelProbe:
    """A stand-in attribute classifier (Fig. 7's picker or judge): P(attribute) from each colour channel's mean of a
    sample, through `weights` (3 channels x 3 attributes); any image size."""

    attributes = ("Smiling", "Male", "Eyeglasses")

    def __init__(self, weights):
        self.weights = torch.tensor(weights, dtype=torch.float32)

    def probabilities(self, images) -> np.ndarray:
        return torch.sigmoid(20 * torch.as_tensor(images).float().mean((2, 3)) @ self.weights).numpy()


PICKER_WEIGHTS = [[1, -1, 0.5], [0.5, 1, -1], [-1, 0.5, 1]]
JUDGE_WEIGHTS = [[1.1, -0.9, 0.4], [0.4, 1.2, -1], [-1, 0.6, 0.9]]  # near the picker's, not equal
