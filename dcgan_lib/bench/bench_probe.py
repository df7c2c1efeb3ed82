"""Probe-pipeline speed: D's features of CIFAR-10, then one L2-SVM fit (Paper §5.1, Table 1).

The paper reports no timing; the target is the whole probe (features of the 60,000 images + one SVM
fit at a fixed C) under 5 minutes on a GPU and 30 on a CPU. The fast torch L-BFGS solver is timed
against sklearn's liblinear on the same features and the same objective, so the speed-up is measured,
not assumed. D is the model store's trained ImageNet-32 D when present, else a random one (timing only).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from dcgan_lib.bench.bench import TARGETS, host, load_average
from dcgan_lib.config.device import get_device
from dcgan_lib.data import data
from dcgan_lib.gan import nets
from dcgan_lib.measure import features, probe_data
from dcgan_lib.models import store
from dcgan_lib.records import results


@dataclass(frozen=True)
class ProbeBenchConfig:
    """What the probe timing covers: D's features of CIFAR-10, then one L2-SVM fit."""

    width: float = 1.0
    train_images: int | None = None  # CIFAR-10 train images featurised (None: all 50,000)
    test_images: int | None = None  # test images featurised (None: all 10,000)
    svm_train: int | None = None  # class-balanced images the timed SVM fit uses (None: all featurised)
    C: float = 1e-3
    solver: str = "torch"  # the same L2-SVM objective by L-BFGS; much faster than liblinear (bench_probe_cpu.json)
    reference_solver: str | None = "sklearn"  # also time liblinear's LinearSVC on the same features
    reference_max: int = 10_000  # ... when the fit has at most this many images (liblinear is slow)
    batch_size: int = 256
    seed: int = 0


def _probe_d(width: float, profile: str, seed: int) -> tuple[nets.Discriminator, str]:
    """The D to time: the store's trained ImageNet-32 D at this width (the one Table 1 uses), else a random
    one of the same shape, whose features cost the same; the second value says which, for the record."""
    try:
        _, d, info = store.get_model("tiny_imagenet", "imagenet32", profile, calibrate=False,
                                     train_if_missing=False)
        if d.cfg == nets.get_config("imagenet32", None, width):
            path = Path(info["path"])
            return d, f"trained: {path.relative_to(results.ROOT) if path.is_relative_to(results.ROOT) else path}"
    except FileNotFoundError:
        pass
    _, d = nets.build("imagenet32", width=width, seed=seed)
    return d, "untrained (random init): the trained ImageNet D was not in the model store; timing only"


def bench_probe(cfg: ProbeBenchConfig, profile: str, device: torch.device | None = None,
                out_dir: Path | None = None) -> Path:
    """Time D's features for CIFAR-10 train + test and one L2-SVM fit (Paper §5.1); write bench_probe_<device>.json."""
    from dcgan_lib.measure import svm  # deferred: it imports sklearn

    device = device or get_device()
    load_before = load_average()
    with results.stopwatch() as wall:
        with results.stopwatch() as t_data:
            train = data.prepare("cifar10", 32, "train", cfg.train_images, progress=False)
            test = data.prepare("cifar10", 32, "test", cfg.test_images, progress=False)
        d, weights = _probe_d(cfg.width, profile, cfg.seed)
        fcfg = features.FeatureConfig(batch_size=cfg.batch_size)
        with results.stopwatch() as t_feat:
            feats = features.extract_parts(d, {"train": train.images, "test": test.images}, fcfg,
                                           bn_images=train.images, device=device)
        n_fit = len(train) if cfg.svm_train is None else min(cfg.svm_train, len(train))
        idx = probe_data.class_balanced_draw(train.labels, n_fit - n_fit % 10, np.random.default_rng(cfg.seed))
        with results.stopwatch() as t_std:
            x_fit, x_test = svm.standardize(np.asarray(feats["train"].x[idx]), feats["test"].x)
        fits = {}
        solvers = [cfg.solver]
        if cfg.reference_solver and cfg.reference_solver != cfg.solver and len(idx) <= cfg.reference_max:
            solvers.append(cfg.reference_solver)
        for solver in solvers:
            with results.stopwatch() as t_svm:
                model = svm.make_svm(cfg.C, solver, device).fit(x_fit, train.labels[idx])
            fits[solver] = {"fit_s": round(t_svm(), 1),
                            "accuracy": round(float((model.predict(x_test) == test.labels).mean()), 4)}
    n_images = len(train) + len(test)
    total = t_feat() + t_std() + fits[cfg.solver]["fit_s"]
    ref = fits.get(cfg.reference_solver)
    target = TARGETS["probe_gpu_s" if device.type == "cuda" else "probe_cpu_s"]
    metrics = {
        "images_featurised": n_images, "feature_dim": int(feats["train"].x.shape[1]),
        "features_s": round(t_feat(), 1), "features_images_per_s": round(n_images / t_feat(), 1),
        "svm_train_images": len(idx), "standardise_s": round(t_std(), 1), "svm_solver": cfg.solver,
        "svm_fit_s": fits[cfg.solver]["fit_s"], "features_plus_svm_s": round(total, 1),
        "data_prepare_s": round(t_data(), 1), "svm_fits": fits,
        "reference_svm_fit_s": None if ref is None else ref["fit_s"],
        "svm_speedup": None if ref is None else round(ref["fit_s"] / max(fits[cfg.solver]["fit_s"], 1e-9), 2),
        "note": "accuracies are of a timing run (same objective, two solvers: they should agree); the Table 1 "
                "number comes from notebook 06",
        "targets": {"seconds": target, "met": total <= target,
                    "scope": "features of the images named above + ONE SVM fit at a fixed C; the Table 1 "
                             "protocol also fits one SVM per C on the validation grid"},
    }
    return results.write_record(
        f"bench_probe_{device.type}", name="probe pipeline speed (CIFAR-10 features + L2-SVM)", profile=profile,
        metrics=metrics, out_dir=out_dir, device=device, seed=cfg.seed, wall_s=wall(),
        paper={"accuracy": 0.828, "feature_dim": 28_672, "note": "Table 1; the paper reports no timing"},
        data={k: train.info.get(k) for k in ("dataset", "source", "path", "sha256")},
        probe_config=dataclasses.asdict(cfg), d_weights=weights, threads=torch.get_num_threads(), host=host(),
        load_average_before=load_before, load_average_after=load_average(),
        features_summary={k: v.summary() for k, v in feats.items()})
