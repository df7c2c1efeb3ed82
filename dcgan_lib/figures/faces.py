"""Propose face exemplars by pose with OpenCV's profile-face Haar cascade (helps Paper Fig. 8).

The paper picked its four faces looking left and four looking right by hand. The pose score only
ranks samples; it is a proposal, not a label (CelebA has no pose label to train a classifier on, as
dcgan_lib.figures.attributes does for Fig. 7's smiles, genders and glasses). The score is raw detector
evidence on a face image upscaled to `side` pixels: the profile cascade's best confidence on the
image minus on its mirror. OpenCV's profile cascade finds faces turned towards the viewer's LEFT,
so > 0 means facing left, < 0 facing right.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import cv2
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.patches import Rectangle
from tqdm.auto import tqdm

from dcgan_lib.figures.plots import image_grid, to_uint8

_MISSING = -5.0  # confidence given when a cascade finds nothing


@dataclass(frozen=True)
class CascadeSettings:
    """How faces are prepared for the cascades: upscaled side and detectMultiScale settings."""

    side: int = 256  # generated faces are 64 px; the cascades want faces of ~100+ px
    scale_factor: float = 1.1
    min_neighbors: int = 0  # keep raw hits: their number and best weight are the scores


@lru_cache(maxsize=None)
def load_cascade(name: str) -> cv2.CascadeClassifier:
    """One of OpenCV's bundled Haar cascades by short name, e.g. "profileface"."""
    path = cv2.data.haarcascades + f"haarcascade_{name}.xml"
    cascade = cv2.CascadeClassifier(path)
    if cascade.empty():
        raise FileNotFoundError(f"OpenCV cascade {path} not found; reinstall opencv-python-headless")
    return cascade


def _gray(image: np.ndarray, side: int) -> np.ndarray:
    """uint8 HxWx3 RGB -> side x side equalised grey image."""
    big = cv2.resize(np.ascontiguousarray(image), (side, side), interpolation=cv2.INTER_CUBIC)
    return cv2.equalizeHist(cv2.cvtColor(big, cv2.COLOR_RGB2GRAY))


def _detect(name: str, gray: np.ndarray, s: CascadeSettings, min_size=(0, 0)) -> tuple[int, float]:
    """(number of raw hits, best level weight) of one cascade on a grey image."""
    rects, _, weights = load_cascade(name).detectMultiScale3(
        np.ascontiguousarray(gray), scaleFactor=s.scale_factor, minNeighbors=s.min_neighbors,
        minSize=min_size, outputRejectLevels=True)
    return len(rects), (float(np.max(weights)) if len(rects) else _MISSING)


def face_scores(image: np.ndarray, settings: CascadeSettings = CascadeSettings()) -> dict[str, float]:
    """The pose score of one aligned face (uint8 HxWx3): > 0 facing the viewer's left (proposals for Fig. 8)."""
    g = _gray(image, settings.side)
    _, left_w = _detect("profileface", g, settings)
    _, right_w = _detect("profileface", np.ascontiguousarray(g[:, ::-1]), settings)
    return {"pose": left_w - right_w}


def score_faces(images: np.ndarray, settings: CascadeSettings = CascadeSettings(),
                progress: bool = True) -> dict[str, np.ndarray]:
    """Pose scores of many faces (N x H x W x 3 uint8): {"pose"} -> (N,) array."""
    rows = [face_scores(im, settings) for im in tqdm(images, desc="cascades", disable=not progress)]
    return {"pose": np.array([r["pose"] for r in rows], dtype=np.float64)}


def propose(scores: np.ndarray, k: int, highest: bool = True, exclude=()) -> list[int]:
    """Indices of the k highest (or lowest) scores, skipping `exclude` (candidates to pick from)."""
    order = np.argsort(-np.asarray(scores) if highest else np.asarray(scores), kind="stable")
    banned = set(int(i) for i in exclude)
    return [int(i) for i in order if int(i) not in banned][:k]


def show_numbered(images, cols: int = 20, highlight: dict[str, list[int]] | None = None, ax=None,
                  size: float = 12, pad: int = 2):
    """A grid of samples with each index written on it and candidate groups framed in colour.

    Exemplars are picked by these indices (Paper §6.3.2); `highlight` maps a label to indices.
    """
    images = to_uint8(images)
    n, side = len(images), images.shape[1]
    rows = -(-n // cols)
    if ax is None:
        _, ax = plt.subplots(figsize=(size, size * rows / cols))
    ax.imshow(image_grid(images, cols, pad))
    step = side + pad
    for i in range(n):
        r, c = divmod(i, cols)
        ax.text(pad + c * step + 1, pad + r * step + 6, str(i), color="yellow", fontsize=5)
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for k, (label, idx) in enumerate((highlight or {}).items()):
        colour = colours[k % len(colours)]
        for i in idx:
            r, c = divmod(int(i), cols)
            ax.add_patch(Rectangle((pad + c * step - 1.5, pad + r * step - 1.5), side + 2, side + 2,
                                   fill=False, edgecolor=colour, linewidth=1.5))
        ax.plot([], [], color=colour, label=label)
    if highlight:
        ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8)
    ax.set_axis_off()
    return ax
