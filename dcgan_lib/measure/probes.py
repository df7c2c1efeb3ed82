"""The rows of Tables 1 and 2 (Paper §5.1-5.2): how every row of both tables is measured and recorded.

A linear L2-SVM (dcgan_lib.measure.svm) on standardised D features, C picked on a validation split
(dcgan_lib.measure.c_search), or over the authors' label draws (dcgan_lib.measure.label_draws), on the data of
dcgan_lib.measure.probe_data at the sizes of dcgan_lib.measure.probe_settings. The rows of both tables, the DCGAN
probe's, the authors' released nets' and the baselines' (dcgan_lib.measure.baselines: pixel KNN, Coates & Ng's
K-means network, the supervised CNN) alike, so that every method sees the same images, draws and C selection;
the timing of D's features on all of CIFAR-10; and the JSON records of both tables, written with their
markdown, the paper's numbers beside ours, by dcgan_lib.measure.probe_tables.
"""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from dcgan_lib.config.profiles import Profile
from dcgan_lib.data import data
from dcgan_lib.gan import authors, nets
from dcgan_lib.measure import features
from dcgan_lib.measure.baselines import KMeansConfig, cnn_predict, fit_kmeans, knn_over_draws, random_search
from dcgan_lib.measure.c_search import Selection, select_c
from dcgan_lib.measure.features import FeatureConfig, FeatureSet, extract, extract_parts, memory_mb, prepare_bn
from dcgan_lib.measure.label_draws import c_over_draws, svm_over_draws
from dcgan_lib.measure.paired import correct_record
from dcgan_lib.measure.probe_data import ProbeData, cifar10_data, class_balanced_draw, svhn_data
from dcgan_lib.measure.probe_settings import ProbeSettings, paired_claims, settings_for
from dcgan_lib.measure.probe_tables import paper_table1, paper_table2, write_table
from dcgan_lib.measure.svm import Standardizer, fit_and_score, resolve_solver, standardize, svm_accuracy
from dcgan_lib.records import results
from dcgan_lib.records.results import stopwatch

# --- the rows of both tables, and their records -----------------------------------------------

def choose_c(train: tuple, val: tuple, settings: ProbeSettings, solver: str = "auto",
             device: torch.device | str = "cpu") -> tuple[Selection, Standardizer, str]:
    """Standardise on train, pick C on validation (Table 1): the choice, from train and validation data only.

    Returns the selection, the standardiser (train statistics) and the solver used.
    """
    (x_tr, y_tr), (x_va, y_va) = train, val
    scaler = Standardizer.fit(x_tr)
    solver = resolve_solver(solver, len(x_tr) + len(x_va), x_tr.shape[1])
    sel = select_c(scaler.transform(x_tr), y_tr, scaler.transform(x_va), y_va, settings.c_grid, solver, device,
                   settings.c_patience)
    return sel, scaler, solver


def _choice_record(sel: Selection, solver: str, dim: int) -> dict:
    return {"C": sel.C, "val_accuracy": {str(c): a for c, a in sel.val_accuracy.items()},
            "c_search": sel.record(), "solver": solver, "features": dim}


def svm_row(train: tuple, val: tuple, test: tuple, settings: ProbeSettings, solver: str = "auto",
            device: torch.device | str = "cpu", check: bool = False) -> dict:
    """C chosen on validation (`choose_c`), refit on train + validation, test accuracy (Table 1).

    The row keeps, per test image, whether it was classified right (`test_correct`, for paired tests).
    With `check`, the final fit is repeated with the other solver and both accuracies are reported.
    """
    (x_tr, y_tr), (x_va, y_va), (x_te, y_te) = train, val, test
    with stopwatch() as elapsed:
        sel, scaler, solver = choose_c(train, val, settings, solver, device)
        x_fit = scaler.transform(np.concatenate([x_tr, x_va]))  # (n_train + n_val, d)
        y_fit, x_te = np.concatenate([y_tr, y_va]), scaler.transform(x_te)
        correct, fit = fit_and_score(x_fit, y_fit, x_te, y_te, sel.C, solver, device)
    acc = float(correct.mean())
    row = {"accuracy": acc, **_choice_record(sel, solver, int(x_tr.shape[1])), "svm_s": round(elapsed(), 1),
           "final_fit": fit, "test_correct": correct_record(correct)}
    if check:
        other = "sklearn" if solver == "torch" else "torch"
        with stopwatch() as elapsed:
            other_acc = svm_accuracy(x_fit, y_fit, x_te, y_te, sel.C, other, device)
        row["solver_check"] = {solver: acc, other: other_acc, "C": sel.C, f"{other}_s": round(elapsed(), 1),
                               "difference_points": round(100 * abs(acc - other_acc), 3)}
    return row


def d_features(d: nets.Discriminator, pdata: ProbeData, device: torch.device | str = "cpu",
               cfg: FeatureConfig | None = None, parts: tuple[str, ...] = ("train", "val", "test")
               ) -> dict[str, FeatureSet]:
    """D's 4x4-pooled features of the named parts of `pdata`, BatchNorm from its `bn_images` (Paper §5).

    Reading a withheld test part raises (probe_data.TestDataWithheld).
    """
    images = {name: getattr(pdata, name).images for name in parts}
    return extract_parts(d, images, cfg or FeatureConfig(), bn_images=pdata.bn_images, device=device)


def d_validation_cifar10(d: nets.Discriminator, pdata: ProbeData, settings: ProbeSettings, solver: str = "auto",
                         device: torch.device | str = "cpu") -> dict:
    """How good D's features are, judged on validation only: what choices of D (width, epochs) are made by.

    Table 1's probe up to its choice of C (features, standardisation, C on validation), never the test
    images: `pdata` should come from `cifar10_data(..., with_test=False)` or `for_selection()`.
    `val_accuracy` is the validation accuracy at the chosen C (the best over the Cs tried).
    """
    feats = d_features(d, pdata.for_selection(), device, parts=("train", "val"))
    sel, _, solver = choose_c((feats["train"].x, pdata.train.labels), (feats["val"].x, pdata.val.labels),
                              settings, solver, device)
    choice = _choice_record(sel, solver, int(feats["train"].x.shape[1]))
    return {**choice, "val_accuracy": sel.val_accuracy[sel.C], "val_accuracy_by_c": choice["val_accuracy"]}


def d_row_cifar10(d: nets.Discriminator, pdata: ProbeData, settings: ProbeSettings, model: str,
                  paper_key: str | None = None, solver: str = "auto", device: torch.device | str = "cpu",
                  note: str = "", check: bool = False) -> dict:
    """One Table 1 row for a discriminator: features -> L2-SVM -> CIFAR-10 test accuracy (Paper §5.1)."""
    feats = d_features(d, pdata, device)
    row = svm_row((feats["train"].x, pdata.train.labels), (feats["val"].x, pdata.val.labels),
                  (feats["test"].x, pdata.test.labels), settings, solver, device, check)
    extraction = {name: f.summary() for name, f in feats.items()}
    return {"model": model, "paper_key": paper_key, "value": row["accuracy"], **row,
            "max_units": max(c for c, _ in d.cfg.d_layers), "extraction": extraction, "note": note}


def kmeans_row_cifar10(pdata: ProbeData, settings: ProbeSettings, solver: str = "auto",
                       device: torch.device | str = "cpu", seed: int = 0) -> dict:
    """Table 1's 1-layer K-means row (Coates & Ng), at the profile's number of centroids."""
    cfg = KMeansConfig(k=settings.kmeans_k, n_patches=settings.kmeans_patches)
    encoder = fit_kmeans(pdata.train.images, cfg, seed, device)
    feats = [encoder.encode(part.images, device) for part in (pdata.train, pdata.val, pdata.test)]
    row = svm_row((feats[0], pdata.train.labels), (feats[1], pdata.val.labels), (feats[2], pdata.test.labels),
                  settings, solver, device)
    return {"model": f"1 layer K-means (K={cfg.k}) + L2-SVM", "paper_key": "kmeans_1layer",
            "value": row["accuracy"], **row, "max_units": cfg.k,
            "note": f"{cfg.patch}x{cfg.patch} whitened patches, {cfg.n_patches:,} for MiniBatchKMeans, "
                    "triangle code, 4-quadrant sum pooling"}


def extraction_benchmark(d: nets.Discriminator, device: torch.device | str = "cpu",
                         out_dir: Path | None = None) -> dict:
    """Time and peak memory of D's features for all 60,000 CIFAR-10 images, streamed to disk (Paper §5.1)."""
    out_dir = Path(out_dir) if out_dir is not None else results.ROOT / "runs" / "features"
    train, test = data.prepare("cifar10", 32, "train"), data.prepare("cifar10", 32, "test")  # uint8 memmaps
    cfg = FeatureConfig()
    before = memory_mb()
    with stopwatch() as bn_time:
        net = prepare_bn(d, cfg, train.images, device)
    paths = [out_dir / f"cifar10_{part.info['split']}.npy" for part in (train, test)]
    sets = [extract(net, part.images, cfg, device=device, out=path, desc=f"features: {path.stem}", bn_ready=True)
            for part, path in zip((train, test), paths, strict=True)]
    seconds = sum(f.seconds for f in sets) + bn_time()
    summary = {"images": sum(len(f.x) for f in sets), "dim": int(sets[0].x.shape[1]), "seconds": round(seconds, 1),
               "images_per_s": round(sum(len(f.x) for f in sets) / seconds, 1),
               "bn_statistics_s": round(bn_time(), 1), "bn_statistics_images": min(len(train), cfg.bn_images or 0),
               "feature_mb": round(sum(f.x.nbytes for f in sets) / 2**20, 1),
               "memory_before_mb": round(before, 1),
               "peak_memory_mb": round(max(f.peak_memory_mb for f in sets), 1),
               "peak_device_mb": sets[0].summary()["peak_device_mb"], "batch_size": cfg.batch_size,
               "stored_as": "float32 .npy memmaps on disk (anonymous memory excludes them)"}
    del sets
    for path in paths:
        path.unlink(missing_ok=True)  # measured, not kept: 60,000 x dim float32 is large
    return summary


AUTHORS_C_GRID = (1e-4, 2e-4, 5e-4, 1e-3, 2e-3, 5e-3, 1e-2)  # svhn_semisup_analysis.py's `cs`


def d_row_svhn(d: nets.Discriminator, pdata: ProbeData, settings: ProbeSettings, solver: str = "auto",
               device: torch.device | str = "cpu", seed: int = 0, model: str = "DCGAN D + L2-SVM",
               authors_protocol: bool = False, note: str = "", paper_key: str | None = "dcgan") -> dict:
    """Table 2's DCGAN row: D features, C by validation over draws, test error over many draws (Paper §5.2).

    `authors_protocol` follows svhn_semisup_analysis.py to the letter: BatchNorm statistics averaged over
    ALL the protocol's unlabelled digits (`bn_images`) in batches of 128, raw (unstandardised) features, their
    C grid and 10 draws per C. Otherwise features are standardised on the pool and C comes from the profile's
    grid. Either grid is widened while its best C sits at an end (`c_search.search_c`).
    """
    if authors_protocol:
        cfg = FeatureConfig(batch_size=128, bn_images=None)
        settings = replace(settings, c_grid=AUTHORS_C_GRID, n_select_draws=10)
    feats = d_features(d, pdata, device, cfg if authors_protocol else None)
    x_pool, x_val, x_test = (feats["train"].x, feats["val"].x, feats["test"].x) if authors_protocol else \
        standardize(feats["train"].x, feats["val"].x, feats["test"].x)
    res = svm_over_draws(x_pool, pdata.train.labels, x_val, pdata.val.labels, x_test, pdata.test.labels,
                         settings, solver, device, seed, check=True)  # one extra fit of 1000 labels
    protocol_note = ("authors' choices: raw features, their C grid, 10 draws per C, BN over all the unlabelled "
                     "digits in batches of 128" if authors_protocol else "standardised features")
    return {"model": model, "paper_key": paper_key, "value": res.mean,
            "ci95": res.ci95, "C": res.C, "val_error_by_c": {str(c): e for c, e in res.val_error_by_c.items()},
            "c_search": res.c_search, "test_errors": list(res.test_errors),
            "test_correct": correct_record(res.test_correct, len(res.test_errors)),
            "draws": len(res.test_errors), "labels": settings.n_labels,
            "features": int(x_pool.shape[1]), "solver": res.solver, "solver_check": res.solver_check,
            "protocol": pdata.protocol, "standardised": not authors_protocol,
            "extraction": {name: f.summary() for name, f in feats.items()},
            "note": f"{note}{pdata.protocol} protocol, {settings.n_labels} labels, mean +- 1.96 std over "
                    f"{len(res.test_errors)} draws, C={res.C:g}; {protocol_note}"}


def d_validation_svhn(d: nets.Discriminator, pdata: ProbeData, settings: ProbeSettings, solver: str = "auto",
                      device: torch.device | str = "cpu", seed: int = 0) -> dict:
    """How good D's features are for Table 2, judged on validation digits only: what D's epochs are chosen by.

    Table 2's probe (`d_row_svhn`, standardised features) up to its choice of C: the mean validation error over
    `n_select_draws` draws of `n_labels` labels per C. The test digits are never read (`pdata.for_selection()`).
    `val_error` is the mean validation error at the chosen C (the lowest over the Cs tried).
    """
    feats = d_features(d, pdata.for_selection(), device, parts=("train", "val"))
    x_pool, x_val = standardize(feats["train"].x, feats["val"].x)
    solver = resolve_solver(solver, settings.n_labels, x_pool.shape[1])
    sel, errors = c_over_draws(x_pool, pdata.train.labels, x_val, pdata.val.labels, settings,
                               np.random.default_rng(seed), solver, device)
    return {"val_error": errors[sel.C], "C": sel.C, "val_error_by_c": {str(c): e for c, e in errors.items()},
            "c_search": sel.record(), "solver": solver, "features": int(x_pool.shape[1])}


def knn_row_svhn(pdata: ProbeData, settings: ProbeSettings, seed: int = 0) -> dict:
    """Table 2's KNN row: pixel-space nearest neighbours on the same label draws."""
    rng = np.random.default_rng(seed)
    draws = [class_balanced_draw(pdata.train.labels, settings.n_labels, rng) for _ in range(settings.knn_draws)]
    res = knn_over_draws(pdata.train.images, pdata.train.labels, pdata.val.images, pdata.val.labels,
                         pdata.test.images, pdata.test.labels, draws)
    correct = correct_record(res.pop("test_correct"), len(draws))
    return {"model": "pixel KNN", "paper_key": "knn", "value": res["test_error"], "ci95": res["test_error_ci95"],
            **res, "test_correct": correct, "protocol": pdata.protocol,
            "note": f"{pdata.protocol} protocol, raw pixels, k on validation, {res['draws']} draws"}


def cnn_row_svhn(cfg: nets.NetConfig, pdata: ProbeData, settings: ProbeSettings,
                 device: torch.device | str = "cpu", seed: int = 0) -> dict:
    """Table 2's supervised baseline: the same architecture trained on the labels only, random search (§5.2)."""
    idx = class_balanced_draw(pdata.train.labels, settings.n_labels, np.random.default_rng(seed))
    search = random_search(cfg, (pdata.train.images[idx], pdata.train.labels[idx]),
                           (pdata.val.images, pdata.val.labels), settings.cnn_trials, settings.cnn_epochs,
                           seed, device)
    correct = cnn_predict(search["model"], pdata.test.images, device) == pdata.test.labels  # after the search
    test_error = 1 - float(correct.mean())
    return {"model": f"supervised {cfg.name} (validation error)",
            "paper_key": "supervised_cnn", "value": search["val_error"],
            "val_error": search["val_error"], "test_error": test_error, "test_correct": correct_record(correct),
            "hparams": search["hparams"],
            "trials": search["trials"], "protocol": pdata.protocol,
            "note": f"{pdata.protocol} protocol, {settings.cnn_trials} random-search trials of "
                    f"{settings.cnn_epochs} epochs on {settings.n_labels} labels; test error {100 * test_error:.2f}%"}


def _widths(cfg: nets.NetConfig) -> str:
    return "-".join(str(c) for c, _ in cfg.d_layers)


def dcgan_row_cifar10(d: nets.Discriminator, pdata: ProbeData, settings: ProbeSettings, d_source: str,
                      solver: str = "auto", device: torch.device | str = "cpu") -> dict:
    """Table 1's DCGAN row: a D trained on (Tiny-)ImageNet, never on CIFAR-10 (Paper §5.1)."""
    return d_row_cifar10(d, pdata, settings, f"DCGAN D trained on {d_source}", "dcgan", solver,
                         device, note=f"D widths {_widths(d.cfg)} (paper 128-128-256-256-512-512), "
                                      "BN: train-set statistics", check=settings.solver_check)


def random_d_row_cifar10(cfg: nets.NetConfig, pdata: ProbeData, settings: ProbeSettings, solver: str = "auto",
                         device: torch.device | str = "cpu", seed: int = 0) -> dict:
    """Extra row: the same pipeline on a randomly initialised D (how much does GAN training add?)."""
    _, random_d = nets.build(cfg, seed=seed)
    return d_row_cifar10(random_d, pdata, settings, "random D (untrained) + L2-SVM", None, solver, device,
                         note=f"same architecture, N(0, 0.02) weights, widths {_widths(cfg)}")


def cifar_d_row_cifar10(d: nets.Discriminator, pdata: ProbeData, settings: ProbeSettings, solver: str = "auto",
                        device: torch.device | str = "cpu") -> dict:
    """Extra row: a D trained on CIFAR-10 itself (the paper's D never saw it)."""
    return d_row_cifar10(d, pdata, settings, "DCGAN D trained on CIFAR-10 + L2-SVM", None, solver, device,
                         note=f"D trained without labels on the CIFAR-10 train images, widths {_widths(d.cfg)}")


def write_table1(rows: list[dict], pdata: ProbeData, profile: Profile, *, seed: int, wall_s: float,
                 device=None, d_info: dict | None = None, extraction_60k: dict | None = None,
                 claims: dict[str, dict] | None = None) -> Path:
    """Record + markdown of Table 1: figures/table1_cifar10.{json,md} (smoke: runs/smoke/figures).

    `claims` are `paired_claims` verdicts, recorded and printed under the table.
    """
    return write_table("table1_cifar10", name="Table 1: CIFAR-10 accuracy, D features + L2-SVM (Paper §5.1)",
                       profile=profile.name, metric="accuracy", rows=rows, paper=paper_table1(), pdata=pdata,
                       seed=seed, wall_s=wall_s, device=device, d_model=d_info or {},
                       extraction_60k=extraction_60k, claims=claims or {})


def write_table2(rows: list[dict], pdata: ProbeData, profile: Profile, *, seed: int, wall_s: float,
                 device=None, d_info: dict | None = None, claims: dict[str, dict] | None = None) -> Path:
    """Record + markdown of Table 2: figures/table2_svhn.{json,md} (smoke: runs/smoke/figures)."""
    return write_table("table2_svhn", name="Table 2: SVHN error with 1000 labels, D features + L2-SVM (Paper §5.2)",
                       profile=profile.name, metric="error", rows=rows, paper=paper_table2(), pdata=pdata,
                       seed=seed, wall_s=wall_s, device=device, d_model=d_info or {}, claims=claims or {})


def run_table1(d: nets.Discriminator, profile: Profile, *, seed: int = 0, solver: str = "auto",
               device: torch.device | str = "cpu", cifar_d: nets.Discriminator | None = None,
               baselines: bool = True, d_source: str = "tiny_imagenet", d_info: dict | None = None) -> Path:
    """Table 1 end to end, the same steps as notebook 06: every row, the record and the table (Paper §5.1)."""
    settings = settings_for(profile)
    with stopwatch() as elapsed:
        pdata = cifar10_data(settings, seed)
        rows = [dcgan_row_cifar10(d, pdata, settings, d_source, solver, device)]
        claims = {}
        if baselines:
            rows.append(random_d_row_cifar10(d.cfg, pdata, settings, solver, device, seed))
            if cifar_d is not None:
                rows.append(cifar_d_row_cifar10(cifar_d, pdata, settings, solver, device))
            rows.append(kmeans_row_cifar10(pdata, settings, solver, device, seed))
            claims = paired_claims({"gan_training": (rows[0], rows[1]), "beats_kmeans": (rows[0], rows[-1])}, seed)
        bench = extraction_benchmark(d, device) if settings.full_extraction else None
    return write_table1(rows, pdata, profile, seed=seed, wall_s=elapsed(), device=device, d_info=d_info,
                        extraction_60k=bench, claims=claims)


def run_table2(d: nets.Discriminator, profile: Profile, *, protocol: str = "auto", seed: int = 0,
               solver: str = "auto", device: torch.device | str = "cpu", baselines: bool = True,
               d_info: dict | None = None) -> Path:
    """Table 2 end to end, the same steps as notebook 07, under the paper or offline protocol (Paper §5.2)."""
    settings = settings_for(profile)
    with stopwatch() as elapsed:
        pdata = svhn_data(settings, protocol, seed)
        rows = [d_row_svhn(d, pdata, settings, solver, device, seed)]
        claims = {}
        if baselines:
            rows.append(knn_row_svhn(pdata, settings, seed))
            rows.append(cnn_row_svhn(d.cfg, pdata, settings, device, seed))
            claims = paired_claims({"beats_cnn": (rows[0], rows[2])}, seed)
    return write_table2(rows, pdata, profile, seed=seed, wall_s=elapsed(), device=device, d_info=d_info,
                        claims=claims)


# --- the authors' released nets through the same pipelines (known-good references) --------------------

def authors_rows_svhn(pdata: ProbeData, settings: ProbeSettings, solver: str = "auto",
                      device: torch.device | str = "cpu", seed: int = 0) -> list[dict]:
    """Table 2 rows for the authors' own SVHN D (epoch 200): their protocol choices, then ours."""
    _, d = authors.load_svhn()
    common = "authors' released D (epoch 200, 64-128-256, 7,168 features); "
    return [d_row_svhn(d, pdata, settings, solver, device, seed, authors_protocol=True, note=common,
                       model="authors' D + L2-SVM (their script's choices)"),
            d_row_svhn(d, pdata, settings, solver, device, seed, note=common, paper_key=None,  # an extra row
                       model="authors' D + L2-SVM (our protocol: standardised, our C grid)")]


def authors_row_cifar10(pdata: ProbeData, settings: ProbeSettings, solver: str = "auto",
                        device: torch.device | str = "cpu") -> dict:
    """Table 1 row for the authors' ImageNet-32 D: all six layers when complete, else the layers present."""
    d = authors.load_imagenet32_discriminator(allow_partial=True)
    layers = len(d.cfg.d_layers)
    dim = sum(features.layer_dims(d.cfg))
    layers_used = "all 6 layers" if layers == 6 else f"layers 1-{layers} only"
    missing = "" if layers == 6 else (f" ({dim:,} of 28,672 features: the offline copy lacks the kernels of "
                                      f"layers {layers + 1}-6; {authors.how_to_get_all()})")
    return d_row_cifar10(d, pdata, settings, f"authors' ImageNet-32 D (epoch 30), {layers_used}", "dcgan", solver,
                         device, note=f"authors' released D, {layers_used}{missing}; BN: train-set statistics")


def write_authors_table(stem: str, table: int, rows: list[dict], pdata: ProbeData, profile: Profile, *,
                        seed: int, wall_s: float, device=None) -> Path:
    """Record + markdown of the authors'-weights rows of Table 1 or 2, on the same data and splits as ours."""
    paper, metric = (paper_table1(), "accuracy") if table == 1 else (paper_table2(), "error")
    name = ("Table 1 with the authors' ImageNet-32 D (Paper §5.1)" if table == 1
            else "Table 2 with the authors' SVHN D (Paper §5.2)")
    models = {k: authors.describe(k) for k in (("authors_imagenet32",) if table == 1 else ("authors_svhn",))}
    return write_table(stem, name=name, profile=profile.name, metric=metric, rows=rows, paper=paper, pdata=pdata,
                       seed=seed, wall_s=wall_s, device=device, authors_models=models)
