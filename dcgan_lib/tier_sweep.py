"""Where the cpu tier's minutes buy the most sample quality: KID and FID per CPU-second, measured.

Each setting (dataset, variant, width, batch) is trained from scratch and stopped at doubling
budgets of process CPU time, on one thread by default (so a busy machine slows the clock but not
the count, and no thread spins waiting for another);
after each budget G is scored against the profile's cached real statistics (fid.budget's curve
sample). One record and one plot compare the settings at equal CPU time, which is how the cpu
profile's widths and epochs are chosen (issue 11: by measurement, not by belief).

    python -m dcgan_lib.tier_sweep --dataset bedrooms   # ~70 min on one core
    python -m dcgan_lib.tier_sweep --dataset celeba     # ~45 min on one core
"""
from __future__ import annotations

import argparse
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import matplotlib.pyplot as plt
import torch

from dcgan_lib import fid, plots, profiles, results, runs, store
from dcgan_lib.train import Trainer, TrainingStopped


@dataclass(frozen=True)
class Setting:
    dataset: str
    variant: str
    width: float
    batch_size: int

    @property
    def label(self) -> str:
        return f"{self.dataset} {self.variant} width {self.width:g} batch {self.batch_size}"

    @property
    def folder_name(self) -> str:
        return f"{self.dataset}_{self.variant}_w{self.width:g}_b{self.batch_size}"


GRID = (Setting("bedrooms", "lsun64", 0.25, 64), Setting("bedrooms", "lsun64", 0.5, 64),
        Setting("bedrooms", "lsun64", 1.0, 64), Setting("celeba", "faces64", 0.25, 64),
        Setting("celeba", "faces64", 0.5, 64))
BUDGETS = (150, 300, 600, 1200)  # process CPU-seconds of training
FIRST_STEPS = 20  # steps of the first chunk, which measure the setting's CPU-seconds per step


def sweep_setting(setting: Setting, budgets: tuple[int, ...], profile: str, folder: Path, seed: int = 0,
                  progress: bool = True) -> list[dict]:
    """Train `setting` to each CPU budget in turn (resuming its checkpoint) and score G after each."""
    images = store.load_training_images(setting.dataset, setting.variant, profile)
    real = store.reference_stats(images, profile, progress=progress)
    n = fid.budget(profile).curve_samples
    shutil.rmtree(folder, ignore_errors=True)  # from scratch: the CPU clock starts at step 0
    cpu_s, steps, rows = 0.0, 0, []
    for budget in budgets:
        while cpu_s < budget * 0.98:
            per_step = cpu_s / steps if steps else None
            target = steps + (FIRST_STEPS if per_step is None else max(1, round((budget - cpu_s) / per_step)))
            cfg = store.plan(setting.dataset, setting.variant, profile, len(images), steps=target,
                             width=setting.width, batch_size=setting.batch_size, snapshot_epochs=False,
                             checkpoint_every=10**9, log_every=10, seed=seed)
            trainer = Trainer(cfg, images.images, folder, progress=progress)
            start = time.process_time()
            try:
                trainer.fit()
            except TrainingStopped as stop:
                return rows + [{"budget_cpu_s": budget, "cpu_s": round(cpu_s, 1), "steps": steps,
                                "stopped": str(stop)}]
            cpu_s += time.process_time() - start
            steps = trainer.step
        g, _, _ = runs.load_nets(runs.RunFolder(folder).checkpoint)
        t0 = time.perf_counter()
        scores = fid.evaluate_generator(store.calibrated(g, profile), real, n, seed, progress=progress)
        rows.append({"budget_cpu_s": budget, "cpu_s": round(cpu_s, 1), "steps": steps,
                     "images_seen": steps * setting.batch_size, "epochs": round(steps * setting.batch_size
                                                                                / len(images), 2),
                     "fid": scores["fid"], "kid": scores["kid"], "kid_std": scores["kid_std"],
                     "score_s": round(time.perf_counter() - t0, 1)})
        print(f"{setting.label}: {cpu_s:.0f} CPU-s, {steps} steps -> KID {scores['kid']:.4f}, "
              f"FID {scores['fid']:.1f}", flush=True)
    return rows


def figure(curves: dict[str, list[dict]]):
    """KID against CPU-minutes, one line per setting, per dataset panel."""
    datasets = sorted({label.split()[0] for label in curves})
    fig, axes = plt.subplots(1, len(datasets), figsize=(5.5 * len(datasets), 3.6), squeeze=False)
    for ax, dataset in zip(axes[0], datasets, strict=True):
        for label, rows in curves.items():
            rows = [r for r in rows if "kid" in r]
            if label.startswith(dataset) and rows:
                ax.errorbar([r["cpu_s"] / 60 for r in rows], [r["kid"] for r in rows],
                            yerr=[r["kid_std"] for r in rows], marker="o", capsize=3,
                            label=label.split(" ", 1)[1])
        ax.set_xscale("log"), ax.set_xlabel(f"training CPU-minutes ({torch.get_num_threads()} thread(s))")
        ax.set_ylabel("KID")
        ax.set_title(f"{dataset}: sample quality per CPU-minute", fontsize=10), ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def run(grid: tuple[Setting, ...] = GRID, budgets: tuple[int, ...] = BUDGETS, profile: str = "cpu",
        seed: int = 0, progress: bool = True) -> Path:
    """Sweep every setting; write cpu_tier_sweep_<datasets>.{json,png} in the profile's figures folder."""
    prof = profiles.get_profile(profile)
    start = time.perf_counter()
    curves = {}
    for setting in grid:
        folder = results.ROOT / (prof.scratch or "runs") / "sweep" / setting.folder_name
        curves[setting.label] = sweep_setting(setting, budgets, prof.name, folder, seed, progress)
    stem = "cpu_tier_sweep_" + "_".join(dict.fromkeys(s.dataset for s in grid))
    plots.save_figure(figure(curves), results.figures_dir(prof.name) / f"{stem}.png")
    best = {}
    for label, rows in curves.items():
        scored = [r for r in rows if "kid" in r]
        if scored:
            dataset = label.split()[0]
            if dataset not in best or scored[-1]["kid"] < best[dataset]["kid"]:
                best[dataset] = {"setting": label, "kid": scored[-1]["kid"], "fid": scored[-1]["fid"],
                                 "cpu_s": scored[-1]["cpu_s"]}
    return results.write_record(
        stem, name="cpu tier: KID and FID per CPU-second across widths and batch sizes",
        profile=prof.name, metrics={"curves": curves, "best_at_largest_budget": best, "budgets_cpu_s": list(budgets),
                                    "samples": fid.budget(prof.name).curve_samples,
                                    "real_images": fid.budget(prof.name).real, "threads": torch.get_num_threads(),
                                    **fid.network_info()},
        paper={"note": "not in the paper: chooses how the cpu profile spends its minutes"},
        seed=seed, wall_s=time.perf_counter() - start, device="cpu", files=[f"{stem}.png"])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dataset", choices=sorted({s.dataset for s in GRID}), nargs="+",
                        default=sorted({s.dataset for s in GRID}), help="which settings of the grid to sweep")
    parser.add_argument("--profile", default="cpu", help="whose figures folder, FID budget and data limit")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (CPU-seconds count all of them)")
    parser.add_argument("--budgets", type=int, nargs="+", default=list(BUDGETS), help="CPU-seconds per point")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    grid = tuple(s for s in GRID if s.dataset in args.dataset)
    print(run(grid, budgets=tuple(args.budgets), profile=args.profile, seed=args.seed))


if __name__ == "__main__":
    main()
