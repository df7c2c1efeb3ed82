"""Whole training runs of one dataset compared along training: which recipe, kernel or epoch count the cpu
profile keeps (figures/cpu_<name>_runs_<dataset>.json).

Where tier_sweep stops runs at CPU budgets, this follows finished runs of the course's length at their kept
epochs, by KID against their TRAINING images (the measure a setting is chosen by; the held-out KID of each run is
recorded beside, to report, never to choose), and at equal training time where the runs train at different
speeds.

    python -m dcgan_lib.bench.whole_runs paper=runs/a diffaug=runs/b --epochs 10 20 30
                                                    # finished full runs of two recipes, along training
    python -m dcgan_lib.bench.whole_runs kernel4=runs/c kernel5=figures/cpu_recipe_runs_celeba.json#paper \
        --epochs 10 20 30 --name kernel     # a new run beside a run of an earlier record, at equal epochs and time
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import matplotlib.pyplot as plt

from dcgan_lib.figures import plots
from dcgan_lib.gan import runs
from dcgan_lib.measure import fid
from dcgan_lib.models import trainlog
from dcgan_lib.records import results


def compare(folders: dict[str, Path | str], epochs: list[int], profile: str = "cpu", seed: int = 0,
            progress: bool = True, name: str | None = None, timed: bool = True,
            recorded: dict[str, tuple[Path | str, str]] | None = None) -> Path:
    """Finished training runs of one dataset (one per recipe, say) compared along training: cpu_recipe_runs_<dataset>
    (or cpu_<name>_runs_<dataset>).

    Where the sweep stops at CPU budgets, this follows whole runs of the course's length, at the kept epochs
    `epochs`, by KID against their TRAINING images (trainlog.quality_curve(against="train")): the measure a recipe
    or an epoch count is chosen by. Each run's final KID against the held-out images (its run.json) is recorded
    beside, to report, never to choose. Per epoch: each run's KID, the lowest, and the gap to the next in standard
    errors of the difference (each point's kid_std); with one seed a run, a gap under 2 decides nothing.

    `folders` are run folders; `recorded` maps a label to (RECORD.json, RUN): run RUN of an earlier record of this
    function, from its recorded curve (its folder may be gone), taken only where it was scored alike: the same real
    images, sample count, scoring seed and FID network. Each point also carries its run's training seconds (the
    run's wall time, pro rata to its steps), so runs that train at different speeds (another net) compare at equal
    time too (`at_equal_time`);
    `timed=False` leaves time out, where a run's wall time is no measure of its speed (another job shared its cores).
    """
    recorded = recorded or {}
    twice = sorted(set(folders) & set(recorded))
    if twice:
        raise ValueError(f"{', '.join(twice)}: a label names one run, a folder or a recorded run, not both")
    folders = {label: Path(v) for label, v in folders.items()}
    if not folders:
        raise ValueError("name at least one run folder: recorded runs are scored alike only beside a fresh one")
    recs = {label: runs.read_record(folder) for label, folder in folders.items()}
    datasets = {r["data"]["dataset"] for r in recs.values()}
    if len(datasets) != 1:
        raise ValueError(f"the runs trained on different datasets ({sorted(datasets)}): compare runs of one")
    dataset = datasets.pop()
    start = time.perf_counter()
    curves = {label: trainlog.quality_curve(folder, epochs=epochs, progress=progress, seed=seed, against="train")
              for label, folder in folders.items()}
    runs_info = {label: {"folder": str(folders[label]), "commit": r["commit"], "device": r["device"],
                         "seed": r["seed"], "numerics": r.get("numerics"), "train_config": r["train_config"],
                         "steps": r["metrics"]["step"], "train_wall_s": r["metrics"]["wall_s"],
                         "heldout_final": {k: r["metrics"].get(k) for k in ("kid", "kid_std", "fid")},
                         "heldout_real": r["metrics"].get("quality", {}).get("real")}
                 for label, r in recs.items()}
    sources = []
    for label, (path, run) in recorded.items():
        curves[label], runs_info[label], source = _recorded_run(Path(path), run, next(iter(curves.values()))[0],
                                                                epochs, seed)
        sources.append(source)
    for label, rows in curves.items():  # training seconds at each kept epoch: the run's wall time, pro rata
        info = runs_info[label]
        for row in rows:
            row["train_s"] = (round(info["train_wall_s"] * row["step"] / info["steps"], 1)
                              if timed and "step" in row else None)
    points = []
    for i, epoch in enumerate(epochs):
        kid = {label: rows[i]["kid"] for label, rows in curves.items()}
        order = sorted(kid, key=kid.get)
        points.append({"epoch": epoch, "kid_train": kid, "lowest": order[0],
                       "gap_in_std": _gap(curves[order[0]][i], curves[order[1]][i])})
    fig, axes = plt.subplots(1, 2, figsize=(10, 4), sharey=True)
    for label, rows in curves.items():
        kids, stds = [r["kid"] for r in rows], [r["kid_std"] for r in rows]
        axes[0].errorbar([r["epoch"] for r in rows], kids, stds, fmt="o-", capsize=2, label=label)
        if all(r["train_s"] is not None for r in rows):
            axes[1].errorbar([r["train_s"] / 60 for r in rows], kids, stds, fmt="o-", capsize=2, label=label)
    axes[0].set_xlabel("epoch"), axes[0].set_ylabel("KID against training images"), axes[0].legend(fontsize=8)
    axes[1].set_xlabel("training minutes (each run's own machine and threads)")
    axes[0].set_title(f"{dataset}: whole runs, one seed each", fontsize=10)
    axes[1].set_title("the same points at equal training time", fontsize=10)
    if not timed:
        axes[1].set_axis_off(), axes[1].text(0.5, 0.5, "not timed: a run's wall time is no\nmeasure of its speed here",
                                             ha="center", va="center", transform=axes[1].transAxes)
    fig.tight_layout()
    stem = f"cpu_{name or 'recipe'}_runs_{dataset}"
    plots.save_figure(fig, results.figures_dir(profile) / f"{stem}.png")
    return results.write_record(
        stem, name=f"cpu tier: {dataset} {name or 'recipe'}s along whole training runs", profile=profile,
        metrics={"points": points, "at_equal_time": _at_equal_time(curves), "curves": curves, "runs": runs_info,
                 "samples": curves[next(iter(curves))][0]["samples"], "real_split": "train"},
        paper={"note": "not in the paper: chooses how the cpu profile trains"},
        sources=sources,
        seed=seed, wall_s=time.perf_counter() - start, device="cpu", files=[f"{stem}.png"], **fid.network_info())


def _gap(low: dict, high: dict) -> float:
    """How far apart two points' KIDs are, in standard errors of their difference, as the record keeps it."""
    return round(trainlog.kid_gap_in_std(low, high), 2)


def _recorded_run(path: Path, run: str, fresh: dict, epochs: list[int], seed: int) -> tuple[list, dict, dict]:
    """Run `run` of an earlier record of `compare` at `epochs` (its curve, its run info, the source), refused where
    it was not scored like `fresh` (a point of this comparison's own runs)."""
    rec = results.read_record(path)
    if run not in rec["metrics"]["curves"]:
        raise ValueError(f"{path} has no run {run!r}; it has {sorted(rec['metrics']['curves'])}")
    rows = rec["metrics"]["curves"][run]
    alike = {"real images": (rows[0]["reference"], fresh["reference"]),
             "samples": (rec["metrics"]["samples"], fresh["samples"]), "scoring seed": (rec["seed"], seed),
             "FID network": (rec.get("network"), fid.network_info()["network"])}
    unlike = {k: v for k, v in alike.items() if v[0] != v[1]}
    if unlike:
        raise ValueError(f"{path} was scored otherwise than these runs ({unlike}): rerun its run's folder instead")
    by_epoch = {int(r["epoch"]): r for r in rows}
    missing = [e for e in epochs if e not in by_epoch]
    if missing:
        raise ValueError(f"{path} has no point of run {run!r} at epoch(s) {missing}")
    source = {"file": path.name, "run": run, "commit": rec["commit"]}
    return [dict(by_epoch[e]) for e in epochs], {**rec["metrics"]["runs"][run], "from_record": source}, source


def _at_equal_time(curves: dict[str, list[dict]]) -> dict | None:
    """The run that finished its kept epochs soonest, at its last point, beside every other run at its latest point
    trained no longer (5% slack): which is ahead when each had the same training time."""
    timed = {label: rows for label, rows in curves.items() if all(r["train_s"] is not None for r in rows)}
    if len(timed) < 2:
        return None
    fastest = min(timed, key=lambda label: timed[label][-1]["train_s"])
    end = timed[fastest][-1]
    others = {}
    for label, rows in timed.items():
        within = [r for r in rows if r["train_s"] <= 1.05 * end["train_s"]]
        if label != fastest and within:
            row = within[-1]
            others[label] = {"epoch": row["epoch"], "train_s": row["train_s"], "kid": row["kid"],
                             "gap_in_std": _gap(*sorted((end, row), key=lambda r: r["kid"])),
                             "lower": fastest if end["kid"] < row["kid"] else label}
    return {"run": fastest, "epoch": end["epoch"], "train_s": end["train_s"], "kid": end["kid"], "others": others}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("runs", nargs="+", metavar="LABEL=FOLDER",
                        help="finished run folders (e.g. paper=runs/a diffaug=runs/b); LABEL=RECORD.json#RUN: a run "
                             "of an earlier record of this tool, from its curve (scored alike)")
    parser.add_argument("--epochs", type=int, nargs="+", required=True, help="the kept epochs to measure at")
    parser.add_argument("--profile", default="cpu", help="whose figures folder")
    parser.add_argument("--seed", type=int, default=0, help="the scoring seed (samples drawn for KID)")
    parser.add_argument("--untimed", action="store_true",
                        help="no comparison at equal training time (a run's wall time is no measure of its speed, "
                             "e.g. another job shared its cores)")
    parser.add_argument("--name", default=None,
                        help="what the runs differ in, for the record's name (cpu_NAME_runs_<dataset>; default recipe)")
    args = parser.parse_args(argv)
    if any("=" not in item for item in args.runs):
        parser.error("runs are LABEL=FOLDER (or LABEL=RECORD.json#RUN) pairs")
    pairs = dict(item.split("=", 1) for item in args.runs)
    recorded = {label: v.split("#", 1) for label, v in pairs.items() if v.split("#")[0].endswith(".json")}
    bare = [label for label, v in recorded.items() if len(v) != 2]
    if bare:
        parser.error(f"{', '.join(bare)}: a recorded run is LABEL=RECORD.json#RUN (which of the record's runs)")
    folders = {label: v for label, v in pairs.items() if label not in recorded}
    print(compare(folders, args.epochs, args.profile, args.seed, name=args.name, timed=not args.untimed,
                  recorded={label: (Path(p), run) for label, (p, run) in recorded.items()}))


if __name__ == "__main__":
    main()
