"""The records of the paper's figures: what the paper reports beside each one, and the one writer.

A notebook measures; `write(stem, ...)` adds the paper's side of that figure (PAPER: the one home
of each figure's caption and numbers), the model it came from (checkpoint, step and parameter
fingerprint, and its training run's summary with the model's FID and KID) and the provenance that
every record carries (results.write_record: commit, device, seed, wall time).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from torch import nn

from dcgan_lib.config import profiles
from dcgan_lib.figures import latent
from dcgan_lib.models import trainlog
from dcgan_lib.records import results

LSUN_IMAGES = 3_033_043  # LSUN bedrooms, train split (Paper §4.1)
PAPER_BATCH = 128


def _bedroom_epochs(figure: int, epochs: int, caption: str) -> dict:
    return {"figure": figure, "caption": caption, "epochs": epochs, "train_images": LSUN_IMAGES,
            "steps": epochs * (LSUN_IMAGES // PAPER_BATCH), "batch_size": PAPER_BATCH}


# stem -> (record name, the paper's side of the record)
PAPER: dict[str, tuple[str, dict[str, Any]]] = {
    "fig1_generator": ("Fig. 1: LSUN generator",
                       {"feature_maps": [[1024, 4], [512, 8], [256, 16], [128, 32], [3, 64]]}),
    "fig2_bedrooms_one_epoch": ("Fig. 2: bedrooms after 1 epoch", _bedroom_epochs(
        2, 1, "Generated bedrooms after one training pass through the dataset")),
    "fig3_bedrooms_five_epochs": ("Fig. 3: bedrooms after 5 epochs", _bedroom_epochs(
        3, 5, "Generated bedrooms after five epochs of training; repeated noise textures (e.g. bed base boards) "
              "suggest under-fitting")),
    "bedrooms_samples": ("bedrooms samples of the stored model (the G of Figs. 4-6)",
                         {"note": "the paper shows the LSUN model's samples only in Figs. 2-6; the G of Figs. 4-6 "
                                  "there is the one after 5 epochs of 3M bedrooms"}),
    "bedrooms_training_curves": ("bedrooms training curves: losses, D(x), D(G(z))",
                                 {"note": "the paper shows no training curves"}),
    "bedrooms_nearest_neighbours": ("bedrooms: nearest training images of samples (pixels, D features)",
                                    {"note": "the paper shows no nearest neighbours (§6 calls them a poor metric)"}),
    "bedrooms_memorisation_curve": ("bedrooms: per-epoch nearest-neighbour distance (authors' nnd)",
                                    {"note": "not in the paper; the authors' code logged nnd to 10k held-out images "
                                             "with 1k, 10k and 100k samples every epoch"}),
    "faces_detections": ("§4.2 face pipeline: OpenCV Haar detections on LFW photos",
                         {"web_photos": 3_000_000, "people": 10_000, "face_boxes_kept": 350_000,
                          "note": "OpenCV face detector, detections kept if 'sufficiently high resolution'; "
                                  "settings unpublished"}),
    "faces_samples": ("faces64 samples (CelebA)",
                      {"train_images": 350_000, "epochs": 25, "source": "web photos of 10K people, never released",
                       "note": "the paper shows face samples only inside Figs. 7-8"}),
    "faces_training_curves": ("faces64 training curves and sample quality (CelebA)",
                              {"note": "the paper shows no training curves and no sample-quality numbers"}),
    "imagenet32_samples": ("imagenet32 samples",
                           {"train_images": 1_281_167, "classes": 1000, "image_size": 32, "feature_dim": 28_672,
                            "note": "the paper shows no ImageNet samples; this D is Table 1's feature extractor"}),
    "fig4_bedrooms_walk": ("Fig. 4: walking the latent space (bedrooms)", {
        "points": 9, "caption": "Interpolation between a series of 9 random points in Z shows smooth transitions, "
        "every image plausibly a bedroom; a window appears, a TV turns into a window (paraphrased). Sharp "
        "transitions would suggest memorisation."}),
    "fig5_guided_backprop": ("Fig. 5: guided backprop of D's last-layer features (bedrooms)", {
        "units": 6, "layer": "last conv layer of D",
        "caption": "Guided backpropagation visualisations of the maximal axis-aligned responses of the first 6 "
        "features of D's last conv layer: features respond to beds and windows; a random D shows no semantic "
        "structure (paraphrased)."}),
    "fig6_forgetting_windows": ("Fig. 6: forgetting to draw windows (bedrooms)", {
        "samples": 150, "boxes": 52, "dropped_maps": "about 200", "layer": "second-highest conv layer of G",
        "caption": "Top: unmodified samples. Bottom: the same samples with the window filters dropped; windows are "
        "removed or turned into other objects (doors, mirrors), the layout stays (paraphrased)."}),
    "fig7_vector_arithmetic": ("Fig. 7: vector arithmetic on faces", {
        "exemplars_per_concept": 3, "noise": 0.25,
        "caption": "smiling woman - neutral woman + neutral man = smiling man; man with glasses - man without "
        "glasses + woman without glasses = woman with glasses. Centre: Y; 8 more from Y + U(-0.25, 0.25); "
        "pixel-space arithmetic (bottom) gives noisy overlaps (paraphrased)."}),
    "fig8_face_pose": ("Fig. 8: a turn vector in Z (faces)", {
        "exemplars": "4 looking left, 4 looking right (averaged)",
        "caption": "A turn vector from four averaged samples of faces looking left vs looking right; adding "
        "interpolations along this axis to random samples reliably transforms their pose (paraphrased)."}),
}


# the training summary's final-G scores
QUALITY_KEYS = ("fid", "kid", "kid_std", "fid_samples", "fid_real_images", "fid_real_split")


def _drawn_quality(folder, training: dict, snapshot: int | None, info: dict | None, device) -> dict:
    """FID/KID of the weights a figure draws (see `write`)."""
    if snapshot is not None:
        row = trainlog.snapshot_quality(folder, snapshot, device=device or "cpu")
        return {"weights": f"snapshot after epoch {snapshot}", "step": int(row["step"]), "fid": row["fid"],
                "kid": row["kid"], "kid_std": row["kid_std"], "samples": int(row["samples"]),
                "real_images": int(row["real_images"]), "real_split": row.get("real_split")}
    if info is not None and info.get("step") == training["steps"] and training.get("fid") is not None:
        return {"weights": "final checkpoint", "step": training["steps"], "fid": training["fid"],
                "kid": training["kid"], "kid_std": training["kid_std"], "samples": training["fid_samples"],
                "real_images": training["fid_real_images"], "real_split": training.get("fid_real_split")}
    return {"weights": "not a single trained G" if info is None else f"checkpoint at step {info.get('step')}",
            "fid": None, "kid": None, "note": "no FID/KID measured for exactly these weights"}


def write(stem: str, profile: str | profiles.Profile, metrics: dict, *, seed: int | None, wall_s: float | None,
          device=None, data=None, folder: str | Path | None = None, G: nn.Module | None = None,
          info: dict | None = None, snapshot: int | None = None, **extra) -> Path:
    """Write the record of figure `stem` (a key of PAPER) in the profile's figures folder.

    `data` is a dict or a data.ImageSet (its provenance). A figure made from a store model passes
    `G` and the `info` that store.get_model returned: the record names the checkpoint, its step, G's
    fingerprint and the run's summary (with the model's FID and KID); its data default to the run's.
    A figure made from a run's snapshots passes that run's `folder` for the summary instead, and the
    `snapshot` epoch it draws.

    `quality` in the record is the FID/KID of exactly the weights the figure draws: the snapshot's own
    (trainlog.snapshot_quality, measured if need be) or, for a store model, its run's final scores when the
    served checkpoint is the run's last step; the training summary then keeps the final-G scores only when they
    are the drawn weights', so no figure carries another model's numbers.
    """
    name, paper = PAPER[stem]
    if info is not None:
        folder = folder or Path(info["path"]).parent
        extra["model"] = {"path": info["path"], "step": info["step"],
                          **({"fingerprint": latent.fingerprint(G)} if G is not None else {})}
        data = info.get("run", {}).get("data", {}) if data is None else data
    training = trainlog.summary(folder, missing_ok=True) if folder is not None else None
    if training:
        extra["quality"] = _drawn_quality(folder, training, snapshot, info, device)
        if extra["quality"].get("weights") != "final checkpoint":
            training = {k: v for k, v in training.items() if k not in QUALITY_KEYS}
        extra["training"] = training
    if data is not None and hasattr(data, "provenance"):
        data = data.provenance()
    return results.write_record(stem, name=name, profile=profiles.resolve_name(profile), metrics=metrics, paper=paper,
                                data=data, seed=seed, wall_s=wall_s, device=device, **extra)
