"""Fig. 7's verdict on other faces G than the course's: another training seed, other epochs
(figures/cpu_fig7_models.{json,png}).

Notebook 11 judges the course's faces G (seed 0, 40 epochs at the cpu profile). Where an equation is not shown
there, this tells the model from its training length: another seed at the same epochs showing it points at the
model, the same seed showing it later at the epochs. Each G is judged exactly as notebook 11 judges the course's
(attributes.arithmetic_verdicts: the same picker and judge, the same draws, the same criterion), so the course's
own G, taken from a run that reproduces it, gives the notebook's verdict to the digit (its fingerprint is
recorded beside each model).

    python -m dcgan_lib train --dataset celeba --variant faces64 --profile cpu --kernel 4 --epochs 50 \
        --seed 1 --out runs/recipes/k4s1                  # (and --seed 0 into runs/recipes/k4s0): keep snapshots
    python -m dcgan_lib.bench.fig7_models runs/recipes/k4s0@40 runs/recipes/k4s1@40 runs/recipes/k4s0@50 \
        runs/recipes/k4s1@50
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import torch

from dcgan_lib.config import profiles
from dcgan_lib.figures import attributes, latent, plots
from dcgan_lib.gan import runs
from dcgan_lib.models import store
from dcgan_lib.records import results

# the verdict's fields kept in the record (the rest of judge_equation's dict is per-Y detail, kept too)
SUMMARY = ("mean_results_rate", "mean_c_rate", "average_rate", "results_above_c", "results_above_average",
           "p_vs_c", "p_vs_average", "met")


def parse_model(spec: str) -> tuple[Path, int]:
    """'FOLDER@EPOCH' -> (run folder, epoch)."""
    folder, sep, epoch = spec.rpartition("@")
    if not sep or not epoch.isdigit():
        raise ValueError(f"{spec!r}: name a model as RUN_FOLDER@EPOCH (a snapshot the run kept), e.g. "
                         "runs/recipes/k4s1@40")
    return Path(folder), int(epoch)


def model_info(folder: Path, epoch: int, snap: dict, g) -> dict:
    """What a judged G is: its run (folder, commit, seed, net and recipe) and the snapshot's step."""
    rec = runs.read_record(folder)
    cfg = rec["train_config"]
    return {"run": str(folder), "run_commit": rec["commit"], "run_device": rec.get("device"),
            "train_seed": rec["seed"], "epoch": epoch, "step": snap["step"], "fingerprint": latent.fingerprint(g),
            **{k: cfg.get(k) for k in ("variant", "width", "kernel", "batch_size", "diffaug")},
            "train_data": {k: rec["data"].get(k) for k in ("dataset", "split", "n")}}


def labels_of(infos: list[dict]) -> list[str]:
    """Each judged G's name: 'seed S, epoch E', or its run folder too where two runs share a seed."""
    short = [f"seed {i['train_seed']}, epoch {i['epoch']}" for i in infos]
    if len(set(short)) == len(short):
        return short
    full = [f"{i['run']} seed {i['train_seed']}, epoch {i['epoch']}" for i in infos]
    if len(set(full)) < len(full):
        raise ValueError(f"a model is named twice: {full}")
    return full


def compare(specs: list[str], profile: str = "cpu", n_samples: int = 4000, n_y: int = 10, noise: float = 0.25,
            alpha: float = 0.05, seed: int = 0) -> Path:
    """Judge each RUN_FOLDER@EPOCH's G as notebook 11 does; write cpu_fig7_models.{json,png} (a bar panel per
    equation: the judge's target rate on the results, the c exemplars and the average sample; and each model's G(Y)
    per Y)."""
    prof = profiles.get_profile(profile)
    models = [parse_model(s) for s in specs]
    start = time.perf_counter()
    settings = attributes.settings_for(prof)
    faces = attributes.labelled_faces(settings.size, settings.images, settings.attributes)
    picker, judge, _, clf_report = attributes.train_pair(faces, settings)
    gens, infos = [], []
    for folder, epoch in models:
        g, snap = store.snapshot_generator(folder, epoch, prof.name)
        gens.append(g)
        infos.append(model_info(folder, epoch, snap, g))
    rows, centres = [], {}
    for g, info, label in zip(gens, infos, labels_of(infos), strict=True):
        verdicts = attributes.arithmetic_verdicts(g, picker, judge, n_samples=n_samples, n_y=n_y, noise=noise,
                                                  alpha=alpha, seed=seed)
        centres[label] = {name: v.pop("centres") for name, v in verdicts.items()}
        rows.append({"label": label, "model": info, "verdicts": verdicts})
        print(f"{label} ({info['run']}, fingerprint {info['fingerprint']}): " + "; ".join(
            f"{name} {'shown' if v['met'] else 'not shown'} ({v['target']} {v['mean_results_rate']:.0%} on the "
            f"results, {v['mean_c_rate']:.0%} on c, {v['average_rate']:.0%} on the average; above c in "
            f"{v['results_above_c']} of {n_y}, above the average in {v['results_above_average']})"
            for name, v in verdicts.items()), flush=True)
    stem = f"{prof.name}_fig7_models"
    out_dir = results.figures_dir(prof.name)
    plots.save_figure(figure(rows, centres, n_y), out_dir / f"{stem}.png")
    table = {r["label"]: {name: {k: v[k] for k in SUMMARY} for name, v in r["verdicts"].items()}
             for r in rows}
    return results.write_record(
        stem, name="Fig. 7's verdict on faces G of other seeds and epochs", profile=prof.name,
        metrics={"models": rows, "table": table, "samples": n_samples, "independent_y": n_y, "noise": noise,
                 "alpha": alpha, "classifiers": {role: clf_report[role]["test"] for role in ("picker", "judge")}},
        paper={"note": "Fig. 7's claim, judged by classifiers (notebook 11) on more than the course's G"},
        data=faces.provenance["images"], attribute_data=faces.provenance, seed=seed,
        wall_s=time.perf_counter() - start, device="cpu", files=[f"{stem}.png"])


def figure(rows: list[dict], centres: dict, n_y: int):
    """A bar panel per equation (results / c / average rate per model, 'shown' marked) over each model's G(Y)s."""
    names = list(rows[0]["verdicts"])
    labels = [r["label"] for r in rows]
    fig = plt.figure(figsize=(6.5 * len(names), 3.2 + 0.75 * len(rows)))
    grid = fig.add_gridspec(2, len(names), height_ratios=[3.2, 0.75 * len(rows)])
    x = np.arange(len(rows))
    for j, name in enumerate(names):
        ax = fig.add_subplot(grid[0, j])
        v = [r["verdicts"][name] for r in rows]
        for off, key, what in ((-0.27, "mean_results_rate", "the nine results"), (0, "mean_c_rate", "c exemplars"),
                               (0.27, "average_rate", "average sample")):
            ax.bar(x + off, [e[key] for e in v], width=0.26, label=what)
        for i, e in enumerate(v):
            ax.text(i - 0.27, e["mean_results_rate"] + 0.02, "shown" if e["met"] else "not shown", ha="center",
                    fontsize=8, rotation=90, va="bottom")
        ax.set_xticks(x, labels, fontsize=8)
        ax.set_ylim(0, 1.35)
        ax.set_ylabel(f"judge's {v[0]['target']} rate")
        ax.set_title(f"{name}: mean over {n_y} Ys", fontsize=10)
        ax.legend(fontsize=7, loc="upper right")
        cell = fig.add_subplot(grid[1, j])
        plots.show_grid(torch.cat([centres[label][name] for label in labels]), nrow=n_y, ax=cell,
                        title=f"each Y's G(Y), one row per model ({', '.join(labels)})")
        cell.title.set_fontsize(8)
    fig.tight_layout()
    return fig


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("models", nargs="+", help="RUN_FOLDER@EPOCH: a faces run and one of its kept snapshots")
    parser.add_argument("--profile", default="cpu", help="whose figures folder, BatchNorm calibration and faces")
    parser.add_argument("--samples", type=int, default=4000, help="G's samples the exemplars are picked from")
    parser.add_argument("--independent-y", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0, help="seeds G's z (and seed + 1 the noise), as notebook 11")
    args = parser.parse_args(argv)
    print(compare(args.models, args.profile, args.samples, args.independent_y, seed=args.seed))


if __name__ == "__main__":
    main()
