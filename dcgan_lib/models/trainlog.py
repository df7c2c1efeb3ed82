"""A trained model's history read back for figures: its training log, per-epoch snapshots and their plots (Paper §4).

The trainer writes the loss log (loss_d, loss_g, D(x), D(G(z)), images/s every few steps), the
run record (wall time, throughput, data provenance) and G's weights after every pass over the
data, all in its run folder (dcgan_lib.gan.runs reads them). Figs. 2 and 3 are samples of the epoch-1
and epoch-5 snapshots. quality_curve measures KID and FID of those snapshots on a small sample
(quality.csv beside the run), plotted beside the losses.
"""
from __future__ import annotations

import csv
import time
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

from dcgan_lib.data import data
from dcgan_lib.gan import runs
from dcgan_lib.measure import fid
from dcgan_lib.models import store
from dcgan_lib.records import results


def steps_per_epoch(record: dict) -> int:
    """Optimizer steps in one pass over the training images (the trainer drops the last partial batch; with
    DDP every process takes its own batch per step, so a step covers batch x processes images)."""
    m, batch = record["metrics"], int(record["train_config"]["batch_size"])
    step, images = int(m.get("step") or 0), int(m["images"])
    world = max(1, round(float(m["epochs_done"]) * images / (step * batch))) if step else 1
    return max(1, images // (batch * world))


def summary(folder: str | Path, missing_ok: bool = False) -> dict | None:
    """Numbers for a figure's record: wall time, images per second, steps, epochs, widths, device, data.

    With `missing_ok`, a folder without a run record gives None (a model that was not trained here).
    """
    rec = runs.read_record(folder, missing_ok=missing_ok)
    if not rec:
        return None
    m, cfg = rec["metrics"], rec["train_config"]
    return {"run": str(runs.RunFolder(folder).record), "train_wall_s": rec["wall_s"],
            "train_images_per_s": round(float(m["images_per_s"]), 1), "steps": int(m["step"]),
            "epochs_done": round(float(m["epochs_done"]), 3), "train_images": int(m["images"]),
            "batch_size": int(cfg["batch_size"]), "width": cfg["width"],
            "kernel": cfg.get("kernel"),  # None: the variant's own (a profile may set another: Profile.kernels)
            "train_device": rec["device"],
            "train_numerics": rec.get("numerics", "not recorded (trained before records said their numerics)"),
            "diffaug": cfg.get("diffaug", ""),
            "train_data": rec["data"], "train_seed": rec["seed"],
            "fid": m.get("fid"), "kid": m.get("kid"), "kid_std": m.get("kid_std"),
            "fid_samples": m.get("quality", {}).get("n"), "fid_real_images": m.get("quality", {}).get("n_real"),
            "fid_real_split": m.get("quality", {}).get("real", {}).get("split")}


LOSS_KEYS = ("loss_d", "loss_g", "d_real", "d_fake")


def loss_summary(rows: list[dict]) -> dict:
    """The last logged losses and D outputs, and their means over the last 10% of the log points."""
    tail = rows[-max(1, len(rows) // 10):]
    return {"final": {k: rows[-1][k] for k in LOSS_KEYS},
            "mean_last_10pct": {k: sum(r[k] for r in tail) / len(tail) for k in LOSS_KEYS}}


def wall_at_epoch(rows: list[dict], epoch: int, per_epoch: int) -> float | None:
    """Training seconds spent up to the end of `epoch`, read from the log (None if not reached)."""
    target = epoch * per_epoch
    steps = np.array([0.0] + [r["step"] for r in rows])
    walls = np.array([0.0] + [r["wall_s"] for r in rows])
    return None if target > steps[-1] else float(np.interp(target, steps, walls))


def smooth(values: np.ndarray, window: int) -> np.ndarray:
    """Moving average over `window` log points (same length; shorter windows at the start)."""
    values = np.asarray(values, dtype=np.float64)
    if window <= 1 or len(values) == 0:
        return values
    c = np.cumsum(np.insert(values, 0, 0.0))
    idx = np.arange(1, len(values) + 1)
    lo = np.maximum(0, idx - window)
    return (c[idx] - c[lo]) / (idx - lo)


def training_figure(rows: list[dict], per_epoch: int, title: str = "", window: int = 5,
                    marks: tuple[int, ...] = (), quality: list[dict] | None = None):
    """Panels over epochs: D and G losses; D(x) and D(G(z)); with `quality` (quality_curve's rows) a third,
    KID (left axis, with its std over subsets) and FID (right axis). Vertical lines at `marks` (epochs)."""
    if not rows:
        raise ValueError("the training log is empty: train the model first")
    x = np.array([r["step"] for r in rows]) / per_epoch  # fractional epochs
    fig, axes = plt.subplots(1, 3 if quality else 2, figsize=(16 if quality else 11, 3.8))
    ax1, ax2 = axes[:2]
    for key, label in (("loss_d", "D loss (real + fake BCE)"), ("loss_g", "G loss (non-saturating BCE)")):
        ax1.plot(x, smooth([r[key] for r in rows], window), label=label)
    for key, label in (("d_real", "D(x): real judged real"), ("d_fake", "D(G(z)): fake judged real")):
        ax2.plot(x, smooth([r[key] for r in rows], window), label=label)
    ax2.set_ylim(0, 1)
    if quality:
        _quality_panel(axes[2], quality)  # with its own legend, over its twin FID axis too
    for ax in axes:
        for m in marks:
            ax.axvline(m, color="grey", ls=":", lw=1)
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
    for ax in (ax1, ax2):
        ax.legend(fontsize=8)
    ax1.set_title("losses" + (f" (moving average of {window} log points)" if window > 1 else ""), fontsize=10)
    ax2.set_title("discriminator outputs", fontsize=10)
    if title:
        fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    return fig


def _quality_panel(ax, quality: list[dict]) -> None:
    """KID with its std on `ax` and FID on a twin axis, one point per evaluated snapshot."""
    epochs = [q["epoch"] for q in quality]
    ax.errorbar(epochs, [q["kid"] for q in quality], yerr=[q["kid_std"] for q in quality], marker="o",
                color="C2", capsize=3, label="KID (mean +- std over subsets)")
    ax.set_ylabel("KID")
    twin = ax.twinx()
    twin.plot(epochs, [q["fid"] for q in quality], marker="s", mfc="none", ls="--", color="C3", label="FID")
    twin.set_ylabel("FID")
    n, n_real = int(quality[-1]["samples"]), int(quality[-1]["real_images"])
    ax.set_title(f"sample quality, lower is better ({n} samples vs {n_real} real)", fontsize=10)
    handles = [h for a in (ax, twin) for h in a.get_legend_handles_labels()[0]]
    ax.legend(handles, [h.get_label() for h in handles], fontsize=8)


QUALITY_FIELDS = ("epoch", "step", "fid", "kid", "kid_std", "samples", "real_images", "seconds", "reference")
# "reference" names the real images a row was measured against (their statistics' cache file, keyed by the
# images themselves): a row is reused only against the same images, never against another split of equal size


def reference_name(real: fid.Stats) -> str:
    """The name of the real images' statistics: their cache file's stem (dataset, split, size, count, digest)."""
    return Path(real.info["cache"]).stem  # store.reference_stats always caches


def quality_curve(folder: str | Path, samples: int | None = None, points: int | str | None = "budget",
                  device="cpu", progress: bool = True, seed: int = 0, epochs: list[int] | None = None,
                  against: str = "heldout") -> list[dict]:
    """KID and FID of G after each kept epoch (snapshots/G_epoch<N>.pt) against store.reference_images: its
    dataset's held-out images, or its training images where the dataset has none or `against` is "train" (what a
    choice of recipe or epochs is made on, so that the held-out images only report).

    `samples` G samples per snapshot (default fid.budget(profile).curve_samples) against the
    budget's real images (statistics cached in data/fid_stats); `points` snapshots, evenly spaced
    with the last always in ("budget": the budget's; None: all), or exactly the kept `epochs` when given.
    Rows already measured with the same
    sample size against the same real images (`reference_name`) are read back from quality.csv, so calling it
    again after more training measures only the new snapshots. Writes quality.csv (every row measured, each
    naming its real images) and quality.json (a record of the returned rows) in the folder.
    """
    run = runs.RunFolder(folder)
    rec = runs.read_record(folder)
    profile, dataset, variant = rec["profile"], rec["data"]["dataset"], rec["train_config"]["variant"]
    budget = fid.budget(profile)
    samples = samples or budget.curve_samples
    kept = runs.snapshot_epochs(folder)
    if epochs is not None and set(epochs) - set(kept):
        raise FileNotFoundError(f"{folder} has no snapshot of epoch(s) {sorted(set(epochs) - set(kept))} "
                                f"(kept: {kept}): train that far first")
    epochs = list(epochs) if epochs is not None else _evenly(kept, budget.points if points == "budget" else points)
    if not epochs:
        raise FileNotFoundError(f"{folder} has no snapshots/G_epoch*.pt: train at least one epoch first")
    images = store.load_training_images(dataset, variant, profile)
    real = store.reference_stats(images, profile, device, progress, against=against)
    reference = reference_name(real)
    measured = _read_quality(run.quality)
    same = [r for r in measured if int(r["samples"]) == samples and r.get("reference") == reference]
    others = [r for r in measured if r not in same]  # kept in the file: other sample sizes or real images
    done = {int(r["epoch"]): r for r in same}
    g, _, _ = runs.load_nets(run.checkpoint, device)
    rows = []
    for epoch in epochs:
        if epoch not in done:
            t0 = time.perf_counter()
            snap = runs.read_snapshot(folder, epoch, device)
            g.load_state_dict(snap["G"])
            scores = fid.evaluate_generator(store.calibrated(g, profile), real, samples, seed, progress=progress)
            done[epoch] = {"epoch": epoch, "step": snap["step"], "fid": scores["fid"], "kid": scores["kid"],
                           "kid_std": scores["kid_std"], "samples": samples, "real_images": len(real),
                           "seconds": round(time.perf_counter() - t0, 2), "reference": reference}
        rows.append({**{k: done[epoch][k] if k == "reference" else float(done[epoch][k]) for k in QUALITY_FIELDS},
                     "real_split": real.info.get("split")})  # the split `reference` names
    with open(run.quality, "w", newline="") as f:
        writer = csv.DictWriter(f, QUALITY_FIELDS, restval="")
        writer.writeheader()
        writer.writerows([*others, *(done[e] for e in sorted(done))])
    results.write_record(run.quality_record(against).stem, name=f"KID and FID along training: {dataset} {variant}",
                         profile=profile, out_dir=run.path,
                         metrics={"curve": rows, "final_fid": rows[-1]["fid"], "final_kid": rows[-1]["kid"]},
                         data={"real": real.info}, seed=seed, wall_s=sum(r["seconds"] for r in rows),
                         device=device, **fid.network_info())
    return rows


def best_point(quality: list[dict]) -> dict:
    """Where KID is lowest along a quality curve, beside its last point (the final checkpoint, the weights the
    figures draw): the gap in KID and in standard errors of the difference (each point's kid_std). It reports
    whether training had stopped improving; it chooses nothing, since the curve is measured on the held-out
    images that also report the final KID."""
    if not quality:
        raise ValueError("an empty quality curve has no best point: measure at least one snapshot")
    best, last = min(quality, key=lambda r: r["kid"]), quality[-1]
    return {"best_epoch": int(best["epoch"]), "best_kid": best["kid"], "final_epoch": int(last["epoch"]),
            "final_kid": last["kid"], "final_is_best": best is last, "gap_kid": last["kid"] - best["kid"],
            "gap_in_std": kid_gap_in_std(best, last)}


def kid_gap_in_std(low: dict, high: dict) -> float:
    """How far `high`'s KID sits above `low`'s, in standard errors of the difference (each point's kid_std)."""
    gap = high["kid"] - low["kid"]
    se = float(np.hypot(low["kid_std"], high["kid_std"]))
    return gap / se if se > 0 else (0.0 if gap == 0 else float("inf"))


def snapshot_quality(folder: str | Path, epoch: int, device="cpu", progress: bool = False, seed: int = 0) -> dict:
    """KID and FID of exactly the epoch-`epoch` snapshot of G (the row quality_curve measures for it, and caches)."""
    return quality_curve(folder, device=device, progress=progress, seed=seed, epochs=[epoch])[0]


def _evenly(epochs: list[int], points: int | None) -> list[int]:
    """At most `points` of the epochs, evenly spaced, first and last included (all when points is None)."""
    if points is None or len(epochs) <= points:
        return epochs
    if points < 1:
        raise ValueError(f"points must be >= 1 (or None for every snapshot), got {points}")
    return epochs[-1:] if points == 1 else [epochs[i] for i in data.subset_indices(len(epochs), points)]


def _read_quality(path: Path) -> list[dict]:
    if not path.exists():
        return []
    with open(path) as f:
        return list(csv.DictReader(f))
