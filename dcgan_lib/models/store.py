"""The model store: later notebooks ask for a model by (dataset, variant, profile) and get it.

A missing model is trained at that profile's size, so every notebook also runs alone; one the profile
now trains longer is trained on, and one whose net or recipe the profile has changed is refused. Models
live in run folders runs/models/<dataset>_<variant>_<profile>/ (runs.model_dir; the files in them
are runs'). The run record carries the final G's FID and KID against its dataset's held-out images
(its training images where the dataset has no held-out split; fid.budget's sample sizes), and names them.
"""
from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from dcgan_lib.config import profiles
from dcgan_lib.data import data, registry
from dcgan_lib.data.datasets import keep_mask
from dcgan_lib.figures.plots import to_uint8
from dcgan_lib.gan import nets, runs
from dcgan_lib.gan.train import Trainer
from dcgan_lib.gan.train_config import TrainConfig, differences
from dcgan_lib.measure import fid
from dcgan_lib.records import results


def load_training_images(dataset: str | registry.DatasetSpec, variant: str, profile: str,
                         dedup: str | Path | None = None, split: str | None = None,
                         size: int | None = None) -> data.ImageSet:
    """The uint8 training images of a dataset (name or spec) at `size` px (default: the variant's) and the
    profile's limit, from `split` (default: the split the dataset's models train on, spec.train_split)."""
    spec = registry.get_spec(dataset)
    split = split or spec.train_split
    if split == "heldout":
        raise ValueError(f"{spec.name}'s held-out split is never trained on; measure against it (reference_images)")
    prof = profiles.get_profile(profile)
    size = size or nets.get_config(variant).image_size
    images = data.prepare(spec, size, split=split, limit=prof.images_of(spec.name))
    if dedup is not None:
        keep = keep_mask(json.loads(Path(dedup).read_text()), images.ids)
        images = data.ImageSet(images.images[keep], None if images.labels is None else images.labels[keep],
                               [i for i, k in zip(images.ids, keep, strict=True) if k],
                               {**images.info, "dedup": str(dedup), "removed": int((~keep).sum())})
    return images


def plan(dataset: str, variant: str, profile: str, n_images: int, steps: int | None = None,
         epochs: float | None = None, **overrides) -> TrainConfig:
    """The TrainConfig for a model at a profile: width, batch, steps from epochs and the step cap."""
    prof = profiles.get_profile(profile)
    recipe = {"lr": 5e-4, "batch_size": 64} if variant == "svhn32" else {}  # authors' SVHN script (z: the variant)
    # the batch the model trains with (a user's override, else the recipe's) sets the steps of an epoch
    batch = overrides.get("batch_size") or min(recipe.get("batch_size", prof.batch_size), n_images)
    if steps is None:
        epochs = epochs or prof.epochs_of(dataset, variant)
        steps = max(1, round(epochs * (n_images // batch)))  # a fractional epoch ends mid-pass
        if prof.max_steps is not None:
            steps = min(steps, prof.max_steps)
    cfg = TrainConfig(variant=variant, width=prof.width_of(dataset, variant), kernel=prof.kernel_of(dataset, variant),
                      batch_size=batch, steps=steps,
                      diffaug=prof.diffaug_of(dataset, variant),
                      checkpoint_every=prof.checkpoint_every, log_every=prof.log_every, seed=prof.seed,
                      **{k: v for k, v in recipe.items() if k != "batch_size"})
    return replace(cfg, **overrides)


def train_model(dataset: str | registry.DatasetSpec, variant: str, profile: str, out: str | Path | None = None,
                steps: int | None = None, epochs: int | None = None, dedup: str | Path | None = None,
                progress: bool = True, quality: bool = True, device: torch.device | str | None = None,
                **overrides) -> Path:
    """Train (or resume) a model and write its run record (with the final FID and KID unless `quality`
    is False); returns the checkpoint path. `device`: the device rule's choice (profiles.get_device) when None.
    The dataset (a name or its spec) is looked up once here and its spec handed on down the data path."""
    spec = registry.get_spec(dataset)
    profile = profiles.resolve_name(profile)
    out = Path(out) if out is not None else runs.model_dir(spec.name, variant, profile)
    images = load_training_images(spec, variant, profile, dedup, size=overrides.get("image_size"))
    cfg = plan(spec.name, variant, profile, len(images), steps, epochs, **overrides)
    trainer = Trainer(cfg, images.images, out, device=profiles.get_device(device or "auto"), progress=progress)
    summary = trainer.fit()
    if trainer.rank == 0:
        n_seen = trainer.step * cfg.batch_size * trainer.world
        scores = final_quality(out, images, profile, trainer.device, progress) if quality else {}
        runs.write_record(
            out, name=f"train {spec.name} {variant}", profile=profile,
            metrics={**summary, "images": len(images), "epochs_done": n_seen / len(images),
                     "images_per_s": n_seen / max(trainer.wall_s, 1e-9), **scores},
            data=images.provenance(),
            seed=cfg.seed, wall_s=trainer.wall_s, device=trainer.device, train_config=cfg.__dict__,
            numerics=trainer.numerics())
    return trainer.run.checkpoint


def get_model(dataset: str, variant: str, profile: str | None = None, calibrate: bool = True,
              device: torch.device | str = "cpu", train_if_missing: bool = True):
    """(G, D, info) of a trained model; trains it at the profile's size when missing.

    G is returned in eval mode with BatchNorm statistics re-estimated (nets.calibrate_batchnorm),
    so G(z) is deterministic for a fixed z and independent of the rest of the batch.
    """
    profile = profiles.resolve_name(profile)
    folder = runs.model_dir(dataset, variant, profile)
    path = runs.RunFolder(folder).checkpoint
    if not _ready(folder, dataset, variant, profile):
        if not train_if_missing:
            raise FileNotFoundError(f"no trained model at {path}; run `python -m dcgan_lib train "
                                    f"--dataset {dataset} --variant {variant} --profile {profile}`")
        train_model(dataset, variant, profile)
    g, d, info = runs.load_nets(path, device)
    if calibrate:
        calibrated(g, profile)
    d.eval()
    info["path"] = str(path)
    info["run"] = runs.read_record(folder, missing_ok=True)
    return g, d, info


# what makes a store model the profile's model: its net and recipe (a user's seed or flags are theirs), and the
# images it trained on (a held-out split added later must not be served by a model that trained on it)
PLANNED_FIELDS = ("variant", "width", "kernel", "batch_size", "lr", "diffaug")
DATA_FIELDS = ("dataset", "split", "source", "sha256", "n", "splits")


def _ready(folder: Path, dataset: str, variant: str, profile: str) -> bool:
    """Whether the folder holds the profile's model, trained to the end: False when there is none or it
    stopped short of its own steps or of the profile's (get_model then trains on); raises when its net or
    recipe differs from the profile's (the profile changed since it was trained)."""
    path = runs.RunFolder(folder).checkpoint
    if not path.exists():
        return False
    saved = runs.read_checkpoint(path, keys=("step", "train_config"))
    record = runs.read_record(folder, missing_ok=True)
    images = load_training_images(dataset, variant, profile)
    if record:
        now = results.as_recorded(images.provenance())
        changed = {k: (record["data"].get(k), now.get(k)) for k in DATA_FIELDS if record["data"].get(k) != now.get(k)}
        if changed:
            raise ValueError(f"{folder} holds a model trained on other images ({', '.join(changed)} differ: "
                             f"{json.dumps(changed, default=str)[:300]}): the data changed since; move the folder "
                             "aside (or delete it) and the store trains it again")
    planned = plan(dataset, variant, profile, len(images))
    diff = differences(saved["train_config"], planned, PLANNED_FIELDS)
    if diff:
        raise ValueError(f"{folder} holds a model trained with {diff} (saved, the {profile} profile now): the "
                         "profile changed since; move the folder aside (or delete it) and the store trains it again")
    return saved["step"] >= max(saved["train_config"]["steps"], planned.steps)


def ensure_epochs(dataset: str, variant: str, profile: str, epochs: int, progress: bool = False) -> Path:
    """Make sure the store's model has a G snapshot after `epochs` passes; train on if it stopped earlier.

    Needed in the smoke profile, whose step cap ends runs before one epoch; the cpu and paper runs
    already pass 5 epochs (Figs. 2-3), so there this only checks. Returns the run folder.
    """
    folder = runs.model_dir(dataset, variant, profile)
    if not runs.RunFolder(folder).checkpoint.exists():  # first the profile's own run, as store.get_model would
        train_model(dataset, variant, profiles.resolve_name(profile), progress=progress)
    if epochs in runs.snapshot_epochs(folder):
        return folder
    n_images = len(load_training_images(dataset, variant, profile))
    cfg = plan(dataset, variant, profile, n_images)
    need = epochs * (n_images // cfg.batch_size)
    record = runs.read_record(folder, missing_ok=True)
    done = record["metrics"]["step"] if record else 0
    if done >= need:
        raise FileNotFoundError(f"{folder} trained {done} steps (>= {need}) but kept no snapshot after epoch "
                                f"{epochs}: it predates per-epoch snapshots. Delete the folder to retrain.")
    train_model(dataset, variant, profiles.resolve_name(profile), steps=need, progress=progress)
    return folder


def calibrated(g: nets.Generator, profile: str) -> nets.Generator:
    """G in eval mode with BatchNorm statistics over the profile's number of z batches (as get_model serves it)."""
    batches, batch_size = profiles.get_profile(profile).calibration
    return nets.calibrate_batchnorm(g, batches=batches, batch_size=batch_size)


def reference_images(images: data.ImageSet, profile: str, limit: int | None = None,
                     against: str = "heldout") -> data.ImageSet:
    """The real images a model trained on `images` is measured against: `limit` (default fid.budget(profile).real)
    evenly spaced images of its dataset's held-out split, which no model trains on (data.heldout_of), or of the
    training images themselves where the dataset has none (LSUN, CelebA) or `against` is "train" (a choice that
    must not see the held-out images: tier_sweep). Their info names the split."""
    if against not in ("heldout", "train"):
        raise ValueError(f"against must be 'heldout' or 'train', got {against!r}")
    n = fid.budget(profile).real if limit is None else limit
    held = data.heldout_of(images, n) if against == "heldout" else None
    source = images if held is None else held
    keep = data.subset_indices(len(source), n)
    return data.ImageSet(source.images[keep], None, [source.ids[i] for i in keep], {**source.info, "n": len(keep)})


def reference_stats(images: data.ImageSet, profile: str, device: torch.device | str = "cpu",
                    progress: bool = False, against: str = "heldout") -> fid.Stats:
    """Inception statistics of reference_images(images, profile, against=against) (cached in data/fid_stats);
    their info names the dataset, split and count measured against."""
    return fid.image_stats(reference_images(images, profile, against=against), device=device, progress=progress)


def final_quality(folder: str | Path, images: data.ImageSet, profile: str, device: torch.device | str = "cpu",
                  progress: bool = False) -> dict:
    """FID and KID of a run's final G (BatchNorm-calibrated) against reference_images, for run.json.

    Sample sizes are fid.budget(profile)'s: small outside the paper profile, where FID is biased
    upwards (compare FIDs of equal sample sizes only) and KID, unbiased, is the number to read.
    """
    g, _, _ = runs.load_nets(runs.RunFolder(folder).checkpoint, device)
    real = reference_stats(images, profile, device, progress)
    scores = fid.evaluate_generator(calibrated(g, profile), real, fid.budget(profile).samples, progress=progress)
    return {"fid": scores["fid"], "kid": scores["kid"], "kid_std": scores["kid_std"],
            "quality": {**scores, "real": real.info, **fid.network_info()}}


def sample(g: nets.Generator, z: torch.Tensor, batch_size: int = 256) -> np.ndarray:
    """G(z) as uint8 NHWC images, in batches, without gradients."""
    device = next(g.parameters()).device
    with torch.no_grad():
        return np.concatenate([to_uint8(g(z[i:i + batch_size].to(device)))
                               for i in range(0, len(z), batch_size)])


def load_snapshot(dataset: str, variant: str, profile: str, epoch: int,
                  device: torch.device | str = "cpu") -> nets.Generator:
    """The store model's G after `epoch` passes over the data (saved by the trainer), BatchNorm-calibrated, eval
    mode."""
    get_model(dataset, variant, profile, calibrate=False, device=device)  # trains it where missing
    return snapshot_generator(runs.model_dir(dataset, variant, profile), epoch, profile, device)[0]


def snapshot_generator(folder: str | Path, epoch: int, profile: str,
                       device: torch.device | str = "cpu") -> tuple[nets.Generator, dict]:
    """(G, {"step", "epoch"}) of any run folder after `epoch` passes over its data, BatchNorm-calibrated as
    get_model serves G (the profile's calibration), eval mode."""
    g, _ = runs.load_generator(runs.RunFolder(folder).checkpoint, device)
    snap = runs.read_snapshot(folder, epoch, device)
    g.load_state_dict(snap["G"])
    return calibrated(g, profile), {"step": int(snap["step"]), "epoch": int(snap["epoch"])}
