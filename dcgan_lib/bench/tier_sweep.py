"""Where the cpu tier's minutes buy the most: sample quality (KID, FID) or Table 1 / 2 probes per CPU-second.

Each setting (dataset, variant, width, batch) is trained from scratch and stopped at doubling
budgets of process CPU time, on one thread by default (so a busy machine slows the clock but not
the count, and no thread spins waiting for another). After each budget the model is judged by what
the course uses it for: a bedrooms or faces G by KID and FID against the profile's cached real
statistics (fid.budget's curve sample); the ImageNet-32 D behind Table 1 by the VALIDATION accuracy
of its features on CIFAR-10 (Table 1's probe at the profile's size, up to its choice of C: the judge
never receives the CIFAR-10 test images, which Table 1 reports); the SVHN D behind Table 2 by the mean
VALIDATION error of Table 2's probe up to its choice of C (the test digits are withheld). One record and
one plot compare the settings at equal CPU time, which is how the cpu profile's widths and epochs are
chosen (by measurement, not by belief).

    python -m dcgan_lib.bench.tier_sweep --dataset bedrooms        # paper recipe and + DiffAugment, widths 1/4-1
    python -m dcgan_lib.bench.tier_sweep --dataset celeba          # ~45 min on one core
    python -m dcgan_lib.bench.tier_sweep --dataset tiny_imagenet   # Table 1's D: train + probe each point
    python -m dcgan_lib.bench.tier_sweep --dataset svhn --threads 2 --budgets 250 500 1000 2000  # Table 2's D
    python -m dcgan_lib.bench.tier_sweep --dataset celeba --seed 1  # a second seed, beside the first
    python -m dcgan_lib.bench.tier_sweep --dataset tiny_imagenet --width 0.5 --recipe paper --threads 2 \
        --budgets 400 800 1600 --label short                        # shorter budgets, beside the first sweep
    python -m dcgan_lib.bench.tier_sweep --dataset celeba --across-seeds   # the seeds' records compared
    python -m dcgan_lib.bench.tier_sweep --dataset bedrooms --width 0.5 --threads 2 --budgets 400 800 1600 3200 \
        --label halfwidth                                   # width 1/2, both recipes, beside the first sweep ...
    python -m dcgan_lib.bench.tier_sweep --dataset bedrooms --beside halfwidth  # ... and the two in one plot

Finished runs of the course's length, compared along training rather than at CPU budgets: dcgan_lib.bench.whole_runs.
"""
from __future__ import annotations

import argparse
import re
import shutil
import time
from dataclasses import dataclass, replace
from pathlib import Path

import matplotlib.pyplot as plt
import torch

from dcgan_lib.bench import staged
from dcgan_lib.config import profiles
from dcgan_lib.figures import plots
from dcgan_lib.gan.train import TrainingStopped
from dcgan_lib.measure import fid, probe_data, probe_settings, probes
from dcgan_lib.models import store, trainlog
from dcgan_lib.records import results


@dataclass(frozen=True)
class Setting:
    dataset: str
    variant: str
    width: float
    batch_size: int
    judge: str = "kid"  # "kid": G's samples (KID, FID); "table1" / "table2": D's features, CIFAR-10 validation
    #                     accuracy / SVHN validation error
    diffaug: str = ""  # the recipe: "" the paper's, else a DiffAugment policy (TrainConfig.diffaug)

    @property
    def judged_by_features(self) -> bool:
        return self.judge in JUDGES

    @property
    def label(self) -> str:
        return (f"{self.dataset} {self.variant} width {self.width:g} batch {self.batch_size}"
                + (f" + DiffAugment {self.diffaug}" if self.diffaug else ""))

    @property
    def folder_name(self) -> str:
        return (f"{self.dataset}_{self.variant}_w{self.width:g}_b{self.batch_size}"
                + (f"_da-{self.diffaug.replace(',', '-')}" if self.diffaug else ""))


DIFFAUG = "color,translation,cutout"

GRID = (Setting("bedrooms", "lsun64", 0.25, 64), Setting("bedrooms", "lsun64", 0.5, 64),
        Setting("bedrooms", "lsun64", 1.0, 64), Setting("celeba", "faces64", 0.25, 64),
        Setting("celeba", "faces64", 0.5, 64), Setting("tiny_imagenet", "imagenet32", 0.25, 64, "table1"),
        Setting("tiny_imagenet", "imagenet32", 0.5, 64, "table1"),
        Setting("svhn", "svhn32", 0.25, 64, "table2"), Setting("bedrooms", "lsun64", 0.25, 64, diffaug=DIFFAUG),
        Setting("bedrooms", "lsun64", 0.5, 64, diffaug=DIFFAUG),
        Setting("celeba", "faces64", 0.25, 64, diffaug=DIFFAUG))
# process CPU-seconds of training, up to about what the cpu profile gives bedrooms and faces (2 cores x 25 min)
BUDGETS = (300, 600, 1200, 2400, 4800)
FIRST_STEPS = 20  # steps of the first chunk, which measure the setting's CPU-seconds per step


def sweep_setting(setting: Setting, budgets: tuple[int, ...], profile: str, folder: Path, seed: int = 0,
                  progress: bool = True) -> list[dict]:
    """Train `setting` to each CPU budget in turn (resuming its checkpoint) and score G after each."""
    images = store.load_training_images(setting.dataset, setting.variant, profile)
    judge = (JUDGES[setting.judge](profile, seed) if setting.judged_by_features
             else train_kid_judge(images, profile, seed, progress))
    shutil.rmtree(folder, ignore_errors=True)  # from scratch: the CPU clock starts at step 0
    cpu_s, steps, rows = 0.0, 0, []
    for budget in budgets:
        while cpu_s < budget * 0.98:
            per_step = cpu_s / steps if steps else None
            target = steps + (FIRST_STEPS if per_step is None else max(1, round((budget - cpu_s) / per_step)))
            cfg = store.plan(setting.dataset, setting.variant, profile, len(images), steps=target,
                             width=setting.width, batch_size=setting.batch_size, diffaug=setting.diffaug,
                             snapshot_epochs=False,
                             checkpoint_every=10**9, log_every=10, seed=seed)
            try:
                stage = staged.train_to(cfg, images.images, folder, steps, progress)
            except TrainingStopped as stop:
                return rows + [{"budget_cpu_s": budget, "cpu_s": round(cpu_s, 1), "steps": steps,
                                "stopped": str(stop)}]
            cpu_s, steps = cpu_s + stage.cpu_s, stage.trainer.step
        scores = staged.score_latest(folder, judge)
        rows.append({"budget_cpu_s": budget, "cpu_s": round(cpu_s, 1), "steps": steps,
                     "images_seen": steps * setting.batch_size, "epochs": round(steps * setting.batch_size
                                                                                / len(images), 2),
                     **scores})
        print(f"{setting.label}: {cpu_s:.0f} CPU-s, {steps} steps -> "
              + ", ".join(f"{k} {v:.4g}" for k, v in scores.items() if isinstance(v, float)), flush=True)
    return rows


def train_kid_judge(images, profile: str, seed: int, progress: bool):
    """A judge for `staged.score_latest`: G's KID and FID against the cached real statistics of its TRAINING images.

    Never the held-out split: the course reports its models' KID against held-out images, so a setting chosen
    here must not have been chosen by them."""
    real = store.reference_stats(images, profile, progress=progress, against="train")
    return staged.kid_judge(real, fid.budget(profile).curve_samples, profile, seed, progress)


class Table1Judge:
    """A D's features judged as Table 1 judges them, on CIFAR-10 VALIDATION images only.

    Its data never includes the test images (`with_test=False`: the test part is withheld and raises if
    read), so the width and epochs chosen from this judge cannot have seen what Table 1 reports.
    """

    def __init__(self, profile: str, seed: int):
        self.settings = replace(probe_settings.settings_for(profile), solver_check=False)
        self.pdata = probe_data.cifar10_data(self.settings, seed, with_test=False)

    def __call__(self, g, d) -> dict:
        res = probes.d_validation_cifar10(d, self.pdata, self.settings)
        return {"val_accuracy": res["val_accuracy"], "C": res["C"], "features": res["features"],
                "c_search": res["c_search"]}


class Table2Judge:
    """A D's features judged as Table 2 judges them (`probes.d_validation_svhn`), on SVHN VALIDATION digits only:
    the test digits are withheld, so the epochs chosen from this judge cannot have seen what Table 2 reports."""

    def __init__(self, profile: str, seed: int):
        self.settings, self.seed = probe_settings.settings_for(profile), seed
        self.pdata = probe_data.svhn_data(self.settings, "auto", seed).for_selection()

    def __call__(self, g, d) -> dict:
        res = probes.d_validation_svhn(d, self.pdata, self.settings, seed=self.seed)
        return {k: res[k] for k in ("val_error", "C", "features", "c_search")}


JUDGES = {"table1": Table1Judge, "table2": Table2Judge}  # the judges of a D's features, by Setting.judge

METRICS = {"kid": "KID", "val_accuracy": "CIFAR-10 validation accuracy (%), Table 1's probe",
           "val_error": "SVHN validation error (%), Table 2's probe"}  # what a curve's points are judged by
LOWER_IS_BETTER = ("kid", "val_error")


def _metric(rows: list[dict]) -> str | None:
    """What the points of a curve were judged by (a key of METRICS), or None if none was scored."""
    return next((key for key in METRICS for r in rows if key in r), None)


def curve_lines(path: Path) -> list[str]:
    """One line per setting of a sweep record: each scored point's CPU-minutes, epochs and score."""
    lines = []
    for label, points in results.read_record(path)["metrics"]["curves"].items():
        key = _metric(points)
        score = {"kid": lambda p: f"KID {p['kid']:.3f}",
                 "val_accuracy": lambda p: f"{100 * p['val_accuracy']:.2f}% validation accuracy",
                 "val_error": lambda p: f"{100 * p['val_error']:.2f}% validation error"}.get(key)
        lines.append(f"{label}: " + (", ".join(f"{p['cpu_s'] / 60:.0f} CPU-min ({p['epochs']:g} epochs) -> {score(p)}"
                                               for p in points if key in p) if score else "no point scored"))
    return lines


def figure(curves: dict[str, list[dict]], references: dict[str, float] | None = None, threads: int | None = None):
    """KID (or a probe's validation accuracy or error) against CPU-minutes, one line per setting, per dataset panel.

    `references` are validation accuracies drawn as horizontal lines on the accuracy panels (Table 1's
    other rows, each at its chosen C); `threads` the sweeps' torch threads (default: this process's).
    """
    threads = threads or torch.get_num_threads()
    datasets = sorted({label.split()[0] for label in curves})
    fig, axes = plt.subplots(1, len(datasets), figsize=(5.5 * len(datasets), 3.6), squeeze=False)
    for ax, dataset in zip(axes[0], datasets, strict=True):
        metric = None
        for label, rows in curves.items():
            key = _metric(rows)
            rows = [r for r in rows if key and key in r]
            if not (label.startswith(dataset) and rows):
                continue
            metric = key
            x = [r["cpu_s"] / 60 for r in rows]
            if key == "kid":
                ax.errorbar(x, [r["kid"] for r in rows], yerr=[r["kid_std"] for r in rows], marker="o", capsize=3,
                            label=label.split(" ", 1)[1])
            else:
                ax.plot(x, [100 * r[key] for r in rows], "o-", label=label.split(" ", 1)[1])
        if metric == "val_accuracy":
            for i, (name, value) in enumerate((references or {}).items()):
                ax.axhline(100 * value, color=f"C{i + 3}", ls="--", lw=1, label=name)
        ax.set_xscale("log"), ax.set_xlabel(f"training CPU-minutes ({threads} thread(s))")
        ax.set_ylabel(METRICS.get(metric, ""))
        what = "sample quality" if metric == "kid" else "D's features"
        ax.set_title(f"{dataset}: {what} per CPU-minute", fontsize=10), ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def table1_references(profile: str) -> dict[str, float]:
    """Validation accuracy (at the chosen C) of Table 1's other rows at this profile (random D, K-means, the
    authors' D) from its records, if any: the same measure the sweep's points are judged by."""
    out = {}
    for stem, ours in (("table1_cifar10", False), ("table1_cifar10_authors", True)):
        path = results.figures_dir(profile) / f"{stem}.json"
        if path.exists():
            out.update({r["model"]: r["val_accuracy"][str(r["C"])] for r in results.read_record(path)["metrics"]["rows"]
                        if ours or r.get("paper_key") != "dcgan"})  # our own D is what the sweep retrains
    return out


def best_at_largest_budget(curves: dict[str, list[dict]]) -> dict[str, dict]:
    """Per dataset, the setting whose last scored point is best (lowest KID or highest validation accuracy)."""
    best = {}
    for label, rows in curves.items():
        key = _metric(rows)
        scored = [r for r in rows if key and key in r]
        if scored:
            dataset, last = label.split()[0], scored[-1]
            if dataset not in best or (last[key] < best[dataset][key] if key in LOWER_IS_BETTER
                                       else last[key] > best[dataset][key]):
                best[dataset] = {"setting": label, "cpu_s": last["cpu_s"],
                                 **{k: last[k] for k in ("fid", *METRICS) if k in last}}
    return best


def run(grid: tuple[Setting, ...] = GRID, budgets: tuple[int, ...] = BUDGETS, profile: str = "cpu",
        seed: int = 0, progress: bool = True, label: str = "") -> Path:
    """Sweep every setting; write cpu_tier_sweep_<datasets>.{json,png} in the profile's figures folder
    (cpu_tier_sweep_<datasets>_seed<N> for a seed other than 0, so a second seed sits beside the first;
    cpu_tier_sweep_<datasets>_<label> with a label, so a sweep of other budgets sits beside both).

    The record and plot are rewritten after each setting, so a sweep stopped part-way keeps the
    settings it finished (`settings_done` says how many of the grid's).
    """
    prof = profiles.get_profile(profile)
    start = time.perf_counter()
    if label and (not re.fullmatch(r"[a-z][a-z0-9]*", label) or label.startswith("seed")):
        raise ValueError(f"label {label!r}: lower-case letters and digits, starting with a letter, not 'seed...'")
    tag = label and f"_{label}"
    stem = "cpu_tier_sweep_" + "_".join(dict.fromkeys(s.dataset for s in grid)) + (f"_seed{seed}" if seed else "") + tag
    references = table1_references(prof.name) if any(s.judge == "table1" for s in grid) else {}
    quality = {} if all(s.judged_by_features for s in grid) else {
        "samples": fid.budget(prof.name).curve_samples, "real_images": fid.budget(prof.name).real,
        **fid.network_info()}
    curves = {}
    for setting in grid:
        folder = results.ROOT / (prof.scratch or "runs") / "sweep" / (setting.folder_name + tag)
        curves[setting.label] = sweep_setting(setting, budgets, prof.name, folder, seed, progress)
        plots.save_figure(figure(curves, references), results.figures_dir(prof.name) / f"{stem}.png")
        path = results.write_record(
            stem, name="cpu tier: what each CPU-second buys across widths and batch sizes",
            profile=prof.name, metrics={"curves": curves, "best_at_largest_budget": best_at_largest_budget(curves),
                                        "settings_done": f"{len(curves)} of {len(grid)}",
                                        "budgets_cpu_s": list(budgets), "threads": torch.get_num_threads(),
                                        "table1_references": references, **quality},
            paper={"note": "not in the paper: chooses how the cpu profile spends its minutes"},
            seed=seed, wall_s=time.perf_counter() - start, device="cpu", files=[f"{stem}.png"])
    return path


def across_seeds(dataset: str, profile: str = "cpu") -> Path:
    """One dataset's sweeps over every seed recorded, side by side: cpu_tier_sweep_<dataset>_seeds.{json,png}.

    Reads cpu_tier_sweep_<dataset>.json (seed 0) and each cpu_tier_sweep_<dataset>_seed<N>.json, which must have
    been swept on the same number of threads. At each budget that every seed scored for every setting they share:
    each seed's KID per setting, the mean over seeds, the best setting in each seed, and whether one setting is
    best in every seed (`agree`). Budgets that not every seed reached are listed, not compared.
    """
    folder = results.figures_dir(profile)
    # seed records only, not labelled sweeps (cpu_tier_sweep_<dataset>_seed1_short)
    seeds = sorted(p for p in folder.glob(f"cpu_tier_sweep_{dataset}_seed*.json")
                   if re.fullmatch(rf"cpu_tier_sweep_{re.escape(dataset)}_seed\d+\.json", p.name))
    paths = [p for p in (folder / f"cpu_tier_sweep_{dataset}.json", *seeds) if p.exists()]
    if len(paths) < 2:
        raise SystemExit(f"{len(paths)} sweep record(s) of {dataset} in {folder}; comparing seeds needs two: "
                         f"python -m dcgan_lib.bench.tier_sweep --dataset {dataset} --seed 1 (same settings)")
    recs = [results.read_record(p) for p in paths]
    threads = {r["metrics"]["threads"] for r in recs}
    if len(threads) > 1:
        raise ValueError(f"the sweeps of {dataset} ran on different numbers of threads ({sorted(threads)}): "
                         "their CPU-seconds do not compare")
    labels = sorted(set.intersection(*(set(r["metrics"]["curves"]) for r in recs)))

    def scored(rec: dict, label: str) -> dict[int, dict]:
        return {row["budget_cpu_s"]: row for row in rec["metrics"]["curves"][label] if "kid" in row}

    every = sorted(set.intersection(*(set(scored(r, label)) for r in recs for label in labels)))
    points = []
    for budget in every:
        kid = {label: [scored(r, label)[budget]["kid"] for r in recs] for label in labels}
        best = [min(labels, key=lambda label, i=i: kid[label][i]) for i in range(len(recs))]
        points.append({"budget_cpu_s": budget, "kid": kid,
                       "mean_kid": {label: round(sum(k) / len(k), 4) for label, k in kid.items()},
                       "best_per_seed": best, "agree": len(set(best)) == 1})
    fig, ax = plt.subplots(figsize=(6, 4))
    for i, label in enumerate(labels):
        for rec in recs:
            rows = list(scored(rec, label).values())
            ax.plot([r["cpu_s"] / 60 for r in rows], [r["kid"] for r in rows], "o:", color=f"C{i}", alpha=0.45, ms=4)
        ax.plot([p["budget_cpu_s"] / 60 for p in points], [p["mean_kid"][label] for p in points], "o-",
                color=f"C{i}", lw=2, label=f"{label.split(' ', 1)[1]}: mean of {len(recs)} seeds")
    ax.set_xscale("log"), ax.set_xlabel(f"training CPU-minutes ({threads.pop()} thread(s))"), ax.set_ylabel("KID")
    ax.set_title(f"{dataset}: each seed (dotted) and their mean", fontsize=10), ax.legend(fontsize=7)
    fig.tight_layout()
    stem = f"cpu_tier_sweep_{dataset}_seeds"
    plots.save_figure(fig, folder / f"{stem}.png")
    reached = {r["seed"]: sorted({b for label in labels for b in scored(r, label)} - set(every)) for r in recs}
    return results.write_record(
        stem, name=f"cpu tier: {dataset} settings at equal CPU time, over {len(recs)} seeds", profile=profile,
        metrics={"points": points, "seeds": [r["seed"] for r in recs], "settings": labels,
                 "agree_at_every_budget": all(p["agree"] for p in points),
                 "budgets_not_in_every_seed": {str(s): b for s, b in reached.items() if b}},
        paper={"note": "not in the paper: chooses how the cpu profile spends its minutes"},
        sources=[{"file": p.name, "commit": r["commit"], "seed": r["seed"]} for p, r in zip(paths, recs, strict=True)],
        device="cpu", files=[f"{stem}.png"])


def beside(dataset: str, label: str, profile: str = "cpu") -> Path:
    """The first sweep of `dataset` and its sweep labelled `label` (other widths, say) in one record and plot:
    cpu_tier_sweep_<dataset>_and_<label>.{json,png}.

    Both must have been swept alike (threads, G samples, real images, FID network) and name different settings. At
    each budget both scored for every setting: each setting's KID, the lowest and its gap to the next in standard
    errors of the difference (each point's kid_std). Points are compared by budget; each holds its own measured
    CPU-seconds (a budget's point lands within a few percent of it)."""
    folder = results.figures_dir(profile)
    paths = [folder / f"cpu_tier_sweep_{dataset}.json", folder / f"cpu_tier_sweep_{dataset}_{label}.json"]
    missing = [p.name for p in paths if not p.exists()]
    if missing:
        raise SystemExit(f"no sweep record {', '.join(missing)} in {folder}: sweep it first "
                         f"(python -m dcgan_lib.bench.tier_sweep --dataset {dataset} [--label {label}] ...)")
    recs = [results.read_record(p) for p in paths]
    alike = ("threads", "samples", "real_images", "network")
    differ = [k for k in alike if recs[0]["metrics"].get(k) != recs[1]["metrics"].get(k)]
    if differ:
        raise ValueError(f"the two sweeps of {dataset} were not scored alike ({', '.join(differ)} differ): their "
                         "points do not compare")
    twice = sorted(set(recs[0]["metrics"]["curves"]) & set(recs[1]["metrics"]["curves"]))
    if twice:
        raise ValueError(f"both sweeps hold {twice}: beside compares different settings, not two runs of one")
    curves = {**recs[0]["metrics"]["curves"], **recs[1]["metrics"]["curves"]}

    def scored(label_: str) -> dict[int, dict]:
        return {row["budget_cpu_s"]: row for row in curves[label_] if "kid" in row}

    every = sorted(set.intersection(*(set(scored(k)) for k in curves)))
    points = []
    for budget in every:
        ranked = sorted(curves, key=lambda k, b=budget: scored(k)[b]["kid"])
        low, nxt = scored(ranked[0])[budget], scored(ranked[1])[budget]
        points.append({"budget_cpu_s": budget, "kid": {k: scored(k)[budget]["kid"] for k in curves},
                       "cpu_s": {k: scored(k)[budget]["cpu_s"] for k in curves}, "lowest": ranked[0],
                       "next": ranked[1], "gap_in_std": round(trainlog.kid_gap_in_std(low, nxt), 2)})
    stem = f"cpu_tier_sweep_{dataset}_and_{label}"
    threads = recs[0]["metrics"]["threads"]
    plots.save_figure(figure(curves, threads=threads), folder / f"{stem}.png")
    return results.write_record(
        stem, name=f"cpu tier: the first {dataset} sweep and its '{label}' sweep at equal CPU time", profile=profile,
        metrics={"curves": curves, "points": points, "best_at_largest_budget": best_at_largest_budget(curves),
                 **{k: recs[0]["metrics"].get(k) for k in alike}},
        paper={"note": "not in the paper: chooses how the cpu profile spends its minutes"},
        sources=[{"file": p.name, "commit": r["commit"], "device": r["device"]} for p, r in zip(paths, recs)],
        device="cpu", files=[f"{stem}.png"])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dataset", choices=sorted({s.dataset for s in GRID}), nargs="+",
                        default=sorted({s.dataset for s in GRID}), help="which settings of the grid to sweep")
    parser.add_argument("--width", type=float, nargs="+", default=None,
                        help="only these widths, swept in this order (default: all, in the grid's order)")
    parser.add_argument("--recipe", choices=("paper", "diffaug"), nargs="+", default=["paper", "diffaug"],
                        help="the paper's recipe and/or + DiffAugment (default: both, where the grid has them)")
    parser.add_argument("--profile", default="cpu", help="whose figures folder, FID budget and data limit")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (CPU-seconds count all of them)")
    parser.add_argument("--budgets", type=int, nargs="+", default=list(BUDGETS), help="CPU-seconds per point")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--label", default="", help="names the record cpu_tier_sweep_<datasets>_<label>: a sweep of "
                                                    "other budgets or widths beside the first (its record kept)")
    parser.add_argument("--across-seeds", action="store_true",
                        help="sweep nothing: compare the recorded sweeps of --dataset over their seeds")
    parser.add_argument("--beside", metavar="LABEL", default=None,
                        help="sweep nothing: the first sweep of --dataset and its sweep labelled LABEL, in one plot")
    args = parser.parse_args(argv)
    if args.across_seeds or args.beside:
        for dataset in args.dataset:
            print(across_seeds(dataset, args.profile) if args.across_seeds else beside(dataset, args.beside,
                                                                                       args.profile))
        return
    torch.set_num_threads(args.threads)
    grid = tuple(s for s in GRID if s.dataset in args.dataset and ("diffaug" if s.diffaug else "paper") in args.recipe)
    if args.width:
        grid = tuple(s for w in args.width for s in grid if s.width == w)
    print(run(grid, budgets=tuple(args.budgets), profile=args.profile, seed=args.seed, label=args.label))


if __name__ == "__main__":
    main()
