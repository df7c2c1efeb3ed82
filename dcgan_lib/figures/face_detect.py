"""The faces pipeline of Paper §4.2: OpenCV's face detector over ordinary photos -> face crops.

The authors ran an OpenCV face detector over 3M web photos of 10K people and kept the detections
"that were sufficiently high in resolution", about 350,000 boxes. Their detector settings and
crop margins were never published; ours are `DetectConfig`'s fields. The default minimum face
side is the training size (64 px), so no crop is ever upscaled: "high enough resolution" means
every training pixel comes from at least one photo pixel.

`scan` runs the frontal-face Haar cascade that ships with opencv-python-headless over the raw
photos of a dataset (`datasets.iter_raw`), counts what it finds and keeps the crops;
`write_folder` stores them as PNG files, a dataset any notebook can train on as `folder:PATH`.
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import cv2
import matplotlib.pyplot as plt
import numpy as np
from PIL import Image
from tqdm.auto import tqdm

from dcgan_lib.config import paths, profiles
from dcgan_lib.data import data, datasets
from dcgan_lib.figures import plots
from dcgan_lib.records import results


@dataclass(frozen=True)
class DetectConfig:
    """Detector and crop settings (Paper §4.2 names only "OpenCV face detector" and a size floor)."""

    cascade: str = "frontalface_default"  # an OpenCV Haar cascade, haarcascade_<name>.xml
    scale_factor: float = 1.1  # image pyramid step of detectMultiScale
    min_neighbors: int = 5  # overlapping raw hits needed to accept a box (fewer: more false faces)
    detect_min: int = 24  # smallest box the cascade looks for (its 24x24 training window)
    min_face: int = 64  # keep only boxes at least this many pixels wide: "sufficiently high resolution"
    margin: float = 0.15  # the crop adds this fraction of the box side on every side
    size: int = 64  # crops are resized to size x size (the faces64 model's input)


@dataclass
class FaceScan:
    """What a scan found: counts for the report, kept crops and every box for plots."""

    photos: int = 0  # photos read
    bad: int = 0  # files that could not be decoded
    photos_with_face: int = 0  # photos with at least one detection
    detections: int = 0  # boxes found (any size >= detect_min)
    too_small: int = 0  # boxes rejected because narrower than min_face
    crops: np.ndarray | None = None  # (kept, size, size, 3) uint8
    crop_ids: list[str] = field(default_factory=list)  # "<photo id>#<box number>"
    boxes: dict[str, np.ndarray] = field(default_factory=dict)  # photo id -> (k, 4) x, y, w, h
    box_sides: list[int] = field(default_factory=list)  # width of every detection
    examples: list[tuple[str, np.ndarray]] = field(default_factory=list)  # photos kept for figures

    @property
    def kept(self) -> int:
        """Crops kept (detections at least min_face wide)."""
        return 0 if self.crops is None else len(self.crops)

    def counts(self) -> dict[str, int]:
        """The numbers a record and the notebook report (Paper §4.2: ~350,000 boxes from 3M photos)."""
        return {"photos": self.photos, "bad_files": self.bad, "photos_with_face": self.photos_with_face,
                "photos_without_face": self.photos - self.bad - self.photos_with_face,
                "detections": self.detections, "rejected_too_small": self.too_small, "kept": self.kept}


@lru_cache(maxsize=None)
def load_cascade(name: str) -> cv2.CascadeClassifier:
    """One of the Haar cascades bundled with opencv-python-headless, by short name."""
    path = Path(cv2.data.haarcascades) / f"haarcascade_{name}.xml"
    cascade = cv2.CascadeClassifier(str(path))
    if cascade.empty():
        raise FileNotFoundError(f"OpenCV cascade {path} not found; reinstall opencv-python-headless "
                                "(pip install opencv-python-headless) or pick another DetectConfig.cascade")
    return cascade


def detect(image: np.ndarray, cfg: DetectConfig = DetectConfig()) -> np.ndarray:
    """Face boxes (k, 4) as x, y, w, h in an RGB uint8 photo, widest first (Paper §4.2)."""
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"detect wants an HxWx3 uint8 RGB photo, got {image.dtype} {image.shape}")
    gray = cv2.equalizeHist(cv2.cvtColor(np.ascontiguousarray(image), cv2.COLOR_RGB2GRAY))  # H x W
    boxes = load_cascade(cfg.cascade).detectMultiScale(
        gray, scaleFactor=cfg.scale_factor, minNeighbors=cfg.min_neighbors,
        minSize=(cfg.detect_min, cfg.detect_min))
    boxes = np.asarray(boxes, dtype=np.int64).reshape(-1, 4)  # (k, 4)
    return boxes[np.argsort(-boxes[:, 2], kind="stable")]


def crop_box(image: np.ndarray, box, margin: float, size: int) -> np.ndarray:
    """A square crop around a box, widened by `margin` per side, kept inside the photo, resized to size."""
    h, w = image.shape[:2]
    x, y, bw, bh = (int(v) for v in box)
    side = min(int(round(max(bw, bh) * (1 + 2 * margin))), h, w)  # shrink the margin at the borders
    cx, cy = x + bw / 2, y + bh / 2
    left = int(round(min(max(cx - side / 2, 0), w - side)))
    top = int(round(min(max(cy - side / 2, 0), h - side)))
    crop = image[top:top + side, left:left + side]  # side x side x 3
    interp = cv2.INTER_AREA if side >= size else cv2.INTER_CUBIC
    return cv2.resize(np.ascontiguousarray(crop), (size, size), interpolation=interp)  # size x size x 3


def scan_photos(photos, cfg: DetectConfig = DetectConfig(), total: int | None = None,
                progress: bool = True, keep_examples: int = 4) -> FaceScan:
    """Detect, filter by size and crop over (id, photo) pairs; photo is encoded bytes or an RGB array.

    Keeps the first `keep_examples` photos with a kept face and as many with a rejected one, for plots.
    """
    result, crops = FaceScan(), []
    n_kept_examples = n_rejected_examples = 0
    for photo_id, photo in tqdm(photos, total=total, desc="face detection", unit="photo",
                                disable=not progress):
        result.photos += 1
        try:
            image = photo if isinstance(photo, np.ndarray) else data.decode_image(photo)
        except data.BadImage:
            result.bad += 1
            continue
        boxes = detect(image, cfg)
        result.boxes[photo_id] = boxes
        result.detections += len(boxes)
        result.photos_with_face += bool(len(boxes))
        result.box_sides += [int(b[2]) for b in boxes]
        small = bool(len(boxes)) and bool((boxes[:, 2] < cfg.min_face).any())
        if small and n_rejected_examples < keep_examples:
            result.examples.append((photo_id, image))
            n_rejected_examples += 1
        elif len(boxes) and not small and n_kept_examples < keep_examples:
            result.examples.append((photo_id, image))
            n_kept_examples += 1
        for i, box in enumerate(boxes):
            if box[2] < cfg.min_face:
                result.too_small += 1
                continue
            crops.append(crop_box(image, box, cfg.margin, cfg.size))
            result.crop_ids.append(f"{photo_id}#{i}")
    result.crops = (np.stack(crops) if crops else np.zeros((0, cfg.size, cfg.size, 3), np.uint8))
    return result


def scan(name: str, cfg: DetectConfig = DetectConfig(), limit: int | None = None,
         progress: bool = True) -> FaceScan:
    """Run the §4.2 pipeline over the first `limit` raw photos of a dataset (e.g. "lfw", folder:PATH)."""
    photos = datasets.iter_raw(name)
    if limit is not None:
        photos = itertools.islice(photos, limit)
    return scan_photos(photos, cfg, total=limit, progress=progress)


def write_folder(result: FaceScan, folder: str | Path) -> Path:
    """Store the kept crops as PNG files (face_00000.png, ...) and, beside the folder, FOLDER.csv
    naming each crop's photo (outside the folder, so `folder:FOLDER` holds images only).

    Train on them with `python -m dcgan_lib train --dataset folder:FOLDER --variant faces64`.
    """
    folder = Path(folder)
    if folder.exists() and any(folder.glob("face_*.png")):
        for old in folder.glob("face_*.png"):  # a rerun replaces the previous crops, never mixes them
            old.unlink()
    folder.mkdir(parents=True, exist_ok=True)
    lines = ["file,photo_id"]
    for i, (crop, crop_id) in enumerate(zip(result.crops, result.crop_ids, strict=True)):
        name = f"face_{i:05d}.png"
        Image.fromarray(crop).save(folder / name)
        lines.append(f"{name},{crop_id}")
    folder.with_name(folder.name + ".csv").write_text("\n".join(lines) + "\n")
    return folder


def default_folder(name: str, profile=None) -> Path:
    """Where the crops of a dataset's photos go: data/faces/<name>/ (<scratch>/faces/<name>/ for a scratch
    profile such as smoke)."""
    safe = name.replace("folder:", "folder-").replace("/", "_").replace(":", "_").strip("_")
    scratch = profiles.get_profile(profile).scratch if profile is not None else None
    root = results.ROOT / scratch if scratch else paths.data_root()
    return root / "faces" / safe


def draw_boxes(image: np.ndarray, boxes: np.ndarray, min_face: int) -> np.ndarray:
    """A copy of the photo with kept boxes in green and too-small ones in red (for the §4.2 figure)."""
    out = np.ascontiguousarray(image).copy()
    for x, y, w, h in boxes:
        color = (0, 200, 0) if w >= min_face else (230, 0, 0)
        cv2.rectangle(out, (int(x), int(y)), (int(x + w - 1), int(y + h - 1)), color, 2)
    return out


def detection_figure(result: FaceScan, cfg: DetectConfig = DetectConfig(), n_crops: int = 48):
    """One figure: example photos with their boxes (top) and a gallery of kept crops (bottom)."""
    n_photos = max(1, len(result.examples))
    fig = plt.figure(figsize=(2 * max(n_photos, 4), 7))
    grid = fig.add_gridspec(2, n_photos, height_ratios=[1, 2.2])
    for i, (photo_id, image) in enumerate(result.examples):
        ax = fig.add_subplot(grid[0, i])
        ax.imshow(draw_boxes(image, result.boxes[photo_id], cfg.min_face))
        ax.set_title(Path(photo_id).stem[:22], fontsize=7)
        ax.set_axis_off()
    ax = fig.add_subplot(grid[1, :])
    if result.kept:
        plots.show_grid(result.crops[:n_crops], nrow=min(12, n_crops), ax=ax)
    ax.set_axis_off()
    c = result.counts()
    ax.set_title(f"{c['photos']} photos -> {c['detections']} detections: {c['kept']} kept "
                 f"(>= {cfg.min_face} px, green), {c['rejected_too_small']} too small (red); "
                 f"first {min(n_crops, c['kept'])} crops", fontsize=9)
    return fig
