"""Table 1 at the paper's size on a CPU: all 50,000 CIFAR-10 train images, full-width D features,
C chosen on a validation split of the train images, then all 10,000 test images (Paper §5.1).

The 60,000 x 28,672 features would take 6.9 GB as float32; they are stored as float16 (3.4 GB)
and the L2-SVM reads them chunk by chunk (`svm.StreamedL2SVM`), so the whole run stays within a
few GB. Every fit runs until the solver's stated criterion is met (`svm.TOLERANCE`: each class's
gradient norm at most 1e-3 of its norm at w = 0, liblinear's criterion for this problem) or its
evaluation budget runs out, and the record says which, per fit. Each stage is timed and the
process's peak resident memory is recorded.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from dcgan_lib.data import data
from dcgan_lib.gan import nets
from dcgan_lib.measure import features, probe_data, probe_settings
from dcgan_lib.measure.c_search import Selection, search_c
from dcgan_lib.measure.svm import TOLERANCE, Standardizer, StreamedL2SVM
from dcgan_lib.records import results
from dcgan_lib.records.results import stopwatch


def choose_c(x_fit, y_fit: np.ndarray, x_val, y_val: np.ndarray, settings: probe_settings.ProbeSettings, *,
             device: torch.device | str = "cpu") -> tuple[Selection, dict[float, torch.Tensor], list[dict]]:
    """C on validation over a warm-started path: fit on (x_fit, y_fit), score on (x_val, y_val) only.

    Features standardised with the fit rows' statistics. Each C starts from the weights of the nearest C
    fitted so far (in log C). Returns the selection, the weights per C and one log entry per fit (its
    evaluations, the criterion's value, converged or not). Never sees test features.
    """
    scaler = Standardizer.fit(x_fit)
    model = StreamedL2SVM(max_evals=settings.full_size_max_evals, scaler=scaler, device=device)
    weights, log = {}, []

    def score(c: float) -> float:
        nearest = min(weights, key=lambda k: abs(np.log(k / c)), default=None)
        model.C = c
        with stopwatch() as tc:
            model.fit(x_fit, y_fit, w0=None if nearest is None else weights[nearest])
            accuracy = float((model.predict(x_val) == y_val).mean())
        weights[c] = model.w.clone()
        log.append({"C": c, "part": "fit (train minus validation)", "warm_start_from": nearest,
                    **model.report.record(), "seconds": round(tc(), 1), "val_accuracy": accuracy})
        return accuracy

    sel = search_c(score, settings.full_size_c_grid, settings.c_patience, desc="C on validation (warm-started path)")
    return sel, weights, log


def run(d: nets.Discriminator, d_label: str, settings: probe_settings.ProbeSettings, *, profile: str, seed: int = 0,
        n_val: int = 10_000, bn_images: int = 10_000, device: torch.device | str = "cpu",
        stem: str = "table1_full_size", d_info: dict | None = None) -> Path:
    """Features of every CIFAR-10 image through D, C on validation, refit on all train, test accuracy.

    The settings' `full_size_limit` shrinks the train and test sets (smoke); the record says how many
    were used. C runs over `full_size_c_grid` (widened while the best C is at an end), each fit stopping at
    `svm.TOLERANCE` or after `full_size_max_evals` evaluations (the refit on all train: twice that).
    """
    limit = settings.full_size_limit
    timings = {}
    with stopwatch() as total:
        train = data.prepare("cifar10", 32, "train", limit=limit)
        test = data.prepare("cifar10", 32, "test", limit=None if limit is None else max(limit // 5, 100))
        rng = np.random.default_rng(seed)
        n_val = min(n_val, len(train) // 5 // 10 * 10)
        val = probe_data.class_balanced_draw(train.labels, n_val, rng)
        fit = np.setdiff1d(np.arange(len(train)), val)
        order = np.concatenate([fit, val])  # the store holds the fit rows first: each part is one slice, no gather
        bn_idx = np.sort(rng.choice(len(train), min(bn_images, len(train)), replace=False))  # all classes
        with stopwatch() as t:
            net = features.with_train_set_bn(d, np.asarray(train.images[bn_idx]), 256, device)
        timings["bn_statistics_s"] = round(t(), 1)
        cfg = features.FeatureConfig()
        x_train = features.extract(net, np.asarray(train.images)[order], cfg, device=device, desc="features: train",
                                   bn_ready=True, dtype=np.float16)
        x_test = features.extract(net, test.images, cfg, device=device, desc="features: test", bn_ready=True,
                                  dtype=np.float16)
        timings["features_s"] = round(x_train.seconds + x_test.seconds, 1)
        y_train, y_test = np.asarray(train.labels)[order], np.asarray(test.labels)
        n_fit = len(fit)

        with stopwatch() as t:  # the choice: train features only
            sel, weights, solver_log = choose_c(x_train.x[:n_fit], y_train[:n_fit], x_train.x[n_fit:],
                                                   y_train[n_fit:], settings, device=device)
        timings["c_selection_s"] = round(t(), 1)
        with stopwatch() as t:
            final = StreamedL2SVM(C=sel.C, max_evals=2 * settings.full_size_max_evals,
                                  scaler=Standardizer.fit(x_train.x), device=device)
            final.fit(x_train.x, y_train, w0=weights[sel.C])
            accuracy = float((final.predict(x_test.x) == y_test).mean())
        timings["final_fit_and_test_s"] = round(t(), 1)
        solver_log.append({"C": sel.C, "part": "refit on all train", "warm_start_from": sel.C,
                           **final.report.record(), "seconds": timings["final_fit_and_test_s"]})
    wall = total()
    dim = int(x_train.x.shape[1])
    metrics = {
        "dcgan_accuracy": accuracy, "model": d_label, "features": dim, "layer_dims": list(x_train.layer_dims),
        "C": sel.C, "val_accuracy": {str(c): a for c, a in sel.val_accuracy.items()}, "c_search": sel.record(),
        "train_images": len(train), "fit_images": n_fit, "val_images": len(val), "test_images": len(test),
        "bn_statistics_images": len(bn_idx), "feature_store": "float16 in memory",
        "feature_store_mb": round((x_train.x.nbytes + x_test.x.nbytes) / 2**20, 1),
        "peak_rss_mb": round(features.peak_rss_mb(), 1), "wall_min": round(wall / 60, 2), "timings": timings,
        "images_per_s": round((x_train.images_per_s * len(train) + x_test.images_per_s * len(test))
                              / (len(train) + len(test)), 1),
        "solver": "StreamedL2SVM (LinearSVC's objective, preconditioned L-BFGS, warm-started over C, standardised "
                  "on train)",
        "tolerance": TOLERANCE, "all_converged": all(s["converged"] for s in solver_log),
        "solver_log": solver_log, "max_evals_per_c": settings.full_size_max_evals, "threads": torch.get_num_threads(),
        "targets": {"wall_min": 30, "peak_rss_mb": 8192},
    }
    info = train.info
    prov = {"dataset": info["dataset"], "source": info["source"], "archive": Path(info["path"]).name,
            "sha256": info.get("sha256"), "splits": {"train": len(train), "test": len(test)}}
    path = results.write_record(stem, name="Table 1 at the paper's size: all CIFAR-10 images, full-width D "
                                "features, L2-SVM (Paper §5.1)", profile=profile, metrics=metrics,
                                paper={"dcgan_accuracy": 0.828, "features": 28_672, "train_images": 50_000,
                                       "test_images": 10_000}, data=prov, seed=seed, wall_s=wall, device=device,
                                d_model=d_info or {})
    path.with_suffix(".md").write_text(markdown(results.read_record(path)))
    return path


def _fit_text(s: dict) -> str:
    """One fit of the solver log, in words (older records: L-BFGS evaluations and the final gradient norm)."""
    if "converged" not in s:
        return f"C={s['C']:g} ({s['part']}): {s['evals']} L-BFGS evaluations, gradient norm {s['grad_norm']:.3g}"
    state = "converged" if s["converged"] else "NOT converged"
    return (f"C={s['C']:g} ({s['part']}): {state}, relative gradient {s['relative_grad_norm']:.2g} "
            f"(tolerance {s['tolerance']:g}) after {s['evals']} evaluations, {s['seconds']} s")


def markdown(record: dict) -> str:
    """The run's numbers beside the paper's, and what it cost (from the record, never typed)."""
    m = record["metrics"]
    t = m["timings"]
    search = m.get("c_search")
    c_note = "" if search is None else (
        f" C grid tried: {', '.join(f'{c:g}' for c in search['grid_tried'])}"
        + (f" (widened: {search['widened_by']})" if search["widened"] else "")
        + ("; the chosen C is still at an edge of it" if search["at_edge"] else "") + ".")
    return "\n".join([
        f"**{record['name']}**", "",
        "| model | features | train / test images | C | test accuracy | paper |", "|---|---|---|---|---|---|",
        f"| {m['model']} | {m['features']:,} | {m['train_images']:,} / {m['test_images']:,} | {m['C']:g} | "
        f"{100 * m['dcgan_accuracy']:.2f}% | 82.8% (authors' complete D, 28,672 features) |", "",
        f"Cost on {record['device']}: {m['wall_min']:.1f} min in all (target 30): BN statistics "
        f"{t['bn_statistics_s']} s, features {t['features_s']} s ({m['images_per_s']} images/s), C on validation "
        f"{t['c_selection_s']} s, refit + test {t['final_fit_and_test_s']} s. Peak resident memory "
        f"{m['peak_rss_mb']:,.0f} MB (target 8,192); features stored as {m['feature_store']} "
        f"({m['feature_store_mb']:,.0f} MB).", "",
        "Solver: " + "; ".join(_fit_text(s) for s in m["solver_log"])
        + (f" (budget: {m['max_evals_per_c']} evaluations per C, twice that for the refit)"
           if "max_evals_per_c" in m else "") + "." + c_note, "",
        f"Commit {record['commit']}, seed {record['seed']}, data {record['data'].get('source')}.", ""])
