"""Does bf16 autocast on a CPU train as well as fp32? Sample quality at equal steps, two seeds each.

bench_quality compares the loss curves of one bf16 run with fp32's; this asks what a learner sees: each of
fp32 and bf16 trains a G from each seed for the same steps (resuming its checkpoint from point to point), and
after each point G's samples get KID and FID against the dataset's HELD-OUT images (store.reference_stats),
which no run trains on. The verdict rule, stated before the runs: bf16 counts as equal to fp32 when, at every
point, |mean KID(bf16) - mean KID(fp32)| over the seeds is at most the tolerance, the largest of the two
seed-to-seed gaps (fp32's and bf16's) and twice the pooled standard error of the KID means. The same runs time
each numerics' training (images/s, equal work), the speed that a bf16 default would buy.

    python -m dcgan_lib.bench.bf16_kid --dataset bedrooms --variant lsun64 --width 0.25 \
        --diffaug color,translation,cutout --points 1500 3000 --seeds 0 1    # ~50 min on 2 AMX cores

On a CPU without AMX bf16 is emulated (slow): the run refuses unless --force, as its speed would mislead.
"""
from __future__ import annotations

import argparse
import math
import time
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import torch

from dcgan_lib.bench import staged
from dcgan_lib.config import profiles
from dcgan_lib.figures import plots
from dcgan_lib.gan.train import fast_cpu_bf16
from dcgan_lib.measure import fid
from dcgan_lib.models import store
from dcgan_lib.records import results

NUMERICS = {"fp32": False, "bf16": True}  # TrainConfig.amp of each


def verdict(by_run: dict[str, list[dict]], seeds: tuple[int, ...]) -> dict:
    """The rule of the module docstring, per point: `by_run` maps "fp32 seed 0" etc. to rows with kid, kid_std."""
    points = []
    for i, row in enumerate(by_run[f"fp32 seed {seeds[0]}"]):
        kid = {n: [by_run[f"{n} seed {s}"][i]["kid"] for s in seeds] for n in NUMERICS}
        std = {n: [by_run[f"{n} seed {s}"][i]["kid_std"] for s in seeds] for n in NUMERICS}
        gap = abs(float(np.mean(kid["bf16"])) - float(np.mean(kid["fp32"])))
        seed_gaps = {n: float(max(kid[n]) - min(kid[n])) for n in NUMERICS}
        pooled_se = math.sqrt(sum(np.mean(np.square(std[n])) / len(seeds) for n in NUMERICS))
        tol = max(*seed_gaps.values(), 2 * pooled_se)
        points.append({"steps": row["steps"], "mean_kid": {n: round(float(np.mean(kid[n])), 4) for n in NUMERICS},
                       "gap": round(gap, 4), "seed_gaps": {n: round(g, 4) for n, g in seed_gaps.items()},
                       "two_pooled_se": round(2 * pooled_se, 4), "tolerance": round(tol, 4), "ok": gap <= tol})
    return {"points": points, "equal": all(p["ok"] for p in points),
            "rule": "at every point |mean KID bf16 - mean KID fp32| over the seeds <= max(fp32 seed gap, bf16 "
                    "seed gap, 2 x pooled standard error of the KID means)"}


def train_and_score(dataset: str, variant: str, cfg_kwargs: dict, images, folder: Path, points: tuple[int, ...],
                    real: fid.Stats, samples: int, profile: str, seed: int, progress: bool) -> list[dict]:
    """Train one run to each of `points` steps in turn (resuming its checkpoint) and score G after each."""
    rows, wall, done = [], 0.0, 0
    for steps in points:
        cfg = store.plan(dataset, variant, profile, len(images), steps=steps, **cfg_kwargs)
        stage = staged.train_to(cfg, images.images, folder, done, progress)
        done, wall = stage.trainer.step, wall + stage.wall_s
        scores = staged.score_latest(folder, staged.kid_judge(real, samples, profile, seed, progress))
        rows.append({"steps": done, "kid": scores["kid"], "kid_std": scores["kid_std"], "fid": scores["fid"],
                     "train_wall_s": round(wall, 1), "images_per_s": round(stage.images_per_s, 1),
                     "score_s": scores["score_s"], **stage.trainer.numerics()})
        print(f"{folder.name}: {done} steps, KID {scores['kid']:.4f} +- {scores['kid_std']:.4f}, "
              f"FID {scores['fid']:.1f}, {rows[-1]['images_per_s']} img/s", flush=True)
    return rows


def figure(by_run: dict[str, list[dict]]):
    fig, ax = plt.subplots(figsize=(6, 4))
    for name, rows in by_run.items():
        style = "-" if name.startswith("fp32") else "--"
        ax.errorbar([r["steps"] for r in rows], [r["kid"] for r in rows], [r["kid_std"] for r in rows],
                    fmt=style + "o", capsize=3, label=name)
    ax.set_xlabel("training steps")
    ax.set_ylabel("KID against held-out images (lower is better)")
    ax.set_title("bf16 autocast against fp32 on this CPU, equal steps")
    ax.legend()
    fig.tight_layout()
    return fig


def run(dataset: str, variant: str, width: float, diffaug: str, points: tuple[int, ...], seeds: tuple[int, ...],
        profile: str = "cpu", force: bool = False, progress: bool = False) -> Path:
    """Every (numerics, seed) run; writes bf16_kid_<dataset>.{json,png} in the profile's figures folder."""
    if not fast_cpu_bf16() and not force:
        raise SystemExit("this CPU has no AMX: bf16 would be emulated and its speed would mislead; "
                         "run on an AMX CPU, or pass --force to measure quality only")
    prof = profiles.get_profile(profile)
    images = store.load_training_images(dataset, variant, prof.name)
    real = store.reference_stats(images, prof.name, progress=progress)
    samples = fid.budget(prof.name).samples
    start = time.perf_counter()
    by_run: dict[str, list[dict]] = {}
    stem = f"bf16_kid_{dataset}"
    for seed in seeds:
        for name, amp in NUMERICS.items():
            folder = results.ROOT / (prof.scratch or "runs") / "bf16_kid" / f"{dataset}_{name}_seed{seed}"
            kwargs = dict(width=width, amp=amp, seed=seed, diffaug=diffaug, snapshot_epochs=False,
                          checkpoint_every=10**9)
            by_run[f"{name} seed {seed}"] = train_and_score(dataset, variant, kwargs, images, folder, points, real,
                                                            samples, prof.name, seed, progress)
    judged = verdict(by_run, seeds)
    speed = {n: round(float(np.median([r["images_per_s"] for k, rows in by_run.items() if k.startswith(n)
                                       for r in rows])), 1) for n in NUMERICS}
    plots.save_figure(figure(by_run), results.figures_dir(prof.name) / f"{stem}.png")
    return results.write_record(
        stem, name="bf16 autocast against fp32 on a CPU: KID at equal steps, two seeds each", profile=prof.name,
        metrics={"by_run": by_run, "verdict": judged, "images_per_s": speed,
                 "bf16_speedup": round(speed["bf16"] / speed["fp32"], 2),
                 "setting": {"dataset": dataset, "variant": variant, "width": width, "diffaug": diffaug,
                             "batch_size": store.plan(dataset, variant, prof.name, len(images)).batch_size,
                             "points": list(points), "seeds": list(seeds), "threads": torch.get_num_threads()},
                 "samples": samples, "real": real.info, **fid.network_info()},
        paper={"note": "not in the paper (its Theano code trained in fp32 on a GPU)"},
        data=images.provenance(), seed=seeds[0], wall_s=time.perf_counter() - start, device="cpu",
        files=[f"{stem}.png"])


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--dataset", default="bedrooms")
    p.add_argument("--variant", default="lsun64")
    p.add_argument("--width", type=float, default=0.25)
    p.add_argument("--diffaug", default="color,translation,cutout", help="'' for the paper's recipe")
    p.add_argument("--points", type=int, nargs="+", default=[1500, 3000], help="steps at which G is scored")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    p.add_argument("--profile", default="cpu", help="whose figures folder, FID budget and data")
    p.add_argument("--force", action="store_true", help="run on a CPU without AMX too (quality only)")
    args = p.parse_args(argv)
    if len(args.seeds) < 2:
        p.error("the verdict needs at least two seeds (their gap is the tolerance)")
    print(run(args.dataset, args.variant, args.width, args.diffaug, tuple(sorted(args.points)), tuple(args.seeds),
              args.profile, args.force))


if __name__ == "__main__":
    main()
