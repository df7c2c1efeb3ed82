"""Propose face exemplars automatically with OpenCV's Haar cascades (helps Paper §6.3.2, Figs. 7-8).

The paper picked its exemplars (smiling / neutral, glasses / none, looking left / right) by hand.
These scores only rank samples so a person picks from a short list; they are proposals, not
labels. Scores are raw detector evidence on a face image upscaled to `side` pixels:
- smile: the number of raw smile-cascade hits in the lower part of the face (more = wider smile);
- glasses: minus the best confidence of the eye-with-eyeglasses cascade in the eye band: frames
  and dark lenses hide the eyes even from it (an empirical choice: on the first 400 mirror CelebA
  faces, 12 with glasses marked by eye, it ranks them with ROC AUC 0.95); check by eye;
- pose: profile-cascade confidence on the image minus on its mirror. OpenCV's profile cascade
  finds faces turned towards the viewer's LEFT, so > 0 means facing left, < 0 facing right.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import cv2
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.patches import Rectangle
from tqdm.auto import tqdm

from dcgan_lib.plots import image_grid, to_uint8

_MISSING = -5.0  # confidence given when a cascade finds nothing


@dataclass(frozen=True)
class CascadeSettings:
    """How faces are prepared for the cascades: upscaled side and detectMultiScale settings."""

    side: int = 256  # generated faces are 64 px; the cascades want faces of ~100+ px
    scale_factor: float = 1.1
    min_neighbors: int = 0  # keep raw hits: their number and best weight are the scores


@lru_cache(maxsize=None)
def load_cascade(name: str) -> cv2.CascadeClassifier:
    """One of OpenCV's bundled Haar cascades by short name, e.g. "smile" or "profileface"."""
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
    """Smile, glasses and pose scores of one aligned face (uint8 HxWx3) (proposals for Figs. 7-8)."""
    s = settings.side
    g = _gray(image, s)
    mouth = g[int(0.58 * s):, :]  # lower face
    eyes = g[int(0.23 * s):int(0.59 * s), :]  # eye band of an aligned, centre-cropped face
    smiles, _ = _detect("smile", mouth, settings, (s // 6, s // 12))
    _, glasses_eye_w = _detect("eye_tree_eyeglasses", eyes, settings)
    _, left_w = _detect("profileface", g, settings)
    _, right_w = _detect("profileface", np.ascontiguousarray(g[:, ::-1]), settings)
    return {"smile": float(smiles), "glasses": -glasses_eye_w, "pose": left_w - right_w}


def score_faces(images: np.ndarray, settings: CascadeSettings = CascadeSettings(),
                progress: bool = True) -> dict[str, np.ndarray]:
    """Scores of many faces (N x H x W x 3 uint8): {"smile", "glasses", "pose"} -> (N,) arrays."""
    rows = [face_scores(im, settings) for im in tqdm(images, desc="cascades", disable=not progress)]
    return {k: np.array([r[k] for r in rows], dtype=np.float64) for k in ("smile", "glasses", "pose")}


def propose(scores: np.ndarray, k: int, highest: bool = True, exclude=()) -> list[int]:
    """Indices of the k highest (or lowest) scores, skipping `exclude` (candidates to pick from)."""
    order = np.argsort(-np.asarray(scores) if highest else np.asarray(scores), kind="stable")
    banned = set(int(i) for i in exclude)
    return [int(i) for i in order if int(i) not in banned][:k]


def cascade_picks(scores: dict[str, np.ndarray], equations: list[dict], k: int = 3) -> list[dict]:
    """Fig. 7's exemplars chosen by the cascades alone, for a model no person picked on.

    Each equation (name, attribute, ...) gets a = the k highest scores of its attribute, b = the k
    lowest and c = the next k lowest, labelled by what the cascade measured, not by the paper's concepts.
    """
    out = []
    for eq in equations:
        s = scores[eq["attribute"]]
        a = propose(s, k)
        b = propose(s, k, highest=False, exclude=a)
        c = propose(s, k, highest=False, exclude=a + b)
        out.append({**eq, "a": {"label": f"top-{k} {eq['attribute']} score", "picks": a},
                    "b": {"label": f"bottom-{k} {eq['attribute']} score", "picks": b},
                    "c": {"label": f"next {k} lowest {eq['attribute']} score", "picks": c}})
    return out


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
