"""The L2-SVM protocols of Tables 1-2 (Paper §5): draws, splits, C selection, solvers, rows and records."""
import numpy as np
import pytest
import torch

from dcgan_lib.config import profiles
from dcgan_lib.measure import c_search, label_draws, probe_data, probe_settings, probe_tables, probes, svm


@pytest.fixture(autouse=True)
def one_thread():
    torch.set_num_threads(1)


def blobs(n, d=20, k=3, sep=1.0, seed=0, noise=1.0):
    """k Gaussian classes in d dims; `sep` scales the distance between class means."""
    rng = np.random.default_rng(seed)
    centers = np.random.default_rng(123).normal(0, 1, (k, d)) * sep
    y = np.arange(n) % k
    return (centers[y] + rng.normal(0, noise, (n, d))).astype(np.float32), y


# --- class-balanced draws and the SVHN splits ----------------------------------------------------

def test_class_balanced_draw_counts_and_uniqueness():
    labels = np.repeat(np.arange(10), [30, 12, 50, 10, 40, 25, 15, 60, 11, 20])
    idx = probe_data.class_balanced_draw(labels, 100, np.random.default_rng(0))
    assert len(np.unique(idx)) == 100
    assert np.bincount(labels[idx], minlength=10).tolist() == [10] * 10


def test_class_balanced_draw_respects_the_pool_and_varies_with_the_rng():
    labels = np.tile(np.arange(4), 50)
    pool = np.arange(0, 200, 2)  # only classes 0 and 2 live here
    a = probe_data.class_balanced_draw(labels, 20, np.random.default_rng(0), pool)
    b = probe_data.class_balanced_draw(labels, 20, np.random.default_rng(1), pool)
    assert set(a) <= set(pool) and set(b) <= set(pool)
    assert sorted(set(labels[a])) == [0, 2]
    assert not np.array_equal(a, b)


def test_class_balanced_draw_errors():
    labels = np.array([0] * 5 + [1] * 50)
    with pytest.raises(ValueError, match="class 0 has 5"):
        probe_data.class_balanced_draw(labels, 20, np.random.default_rng(0))
    with pytest.raises(ValueError, match="class-balanced"):
        probe_data.class_balanced_draw(labels, 7, np.random.default_rng(0))


def test_offline_svhn_split_is_disjoint_and_keeps_the_measured_half_apart():
    split = probe_data.offline_svhn_split(10_000, (3000, 2000, 5000), seed=4)
    parts = [set(split.pool), set(split.val), set(split.test)]
    assert [len(p) for p in parts] == [3000, 2000, 5000]
    assert not (parts[0] & parts[1]) and not (parts[0] & parts[2]) and not (parts[1] & parts[2])
    assert max(split.pool.max(), split.val.max()) < probe_data.OFFLINE_MEASURED_FROM <= split.test.min()
    assert split.protocol == "offline" and "which no model trains on" in split.description
    small = probe_data.offline_svhn_split(10_000, (300, 100, 200), seed=4)
    other = probe_data.offline_svhn_split(10_000, (300, 100, 200), seed=5)
    assert not np.array_equal(small.pool, other.pool) and not np.array_equal(small.test, other.test)
    assert small.test.min() >= probe_data.OFFLINE_MEASURED_FROM
    with pytest.raises(ValueError, match="must fit"):
        probe_data.offline_svhn_split(10_000, (4000, 2000, 200))  # pool + val beyond digits 0-4999
    with pytest.raises(ValueError, match="must fit"):
        probe_data.offline_svhn_split(6000, (300, 100, 2000))


def test_paper_svhn_split_takes_validation_off_train():
    split = probe_data.paper_svhn_split(73_257, 26_032, n_val=10_000, seed=0)
    assert len(split.val) == 10_000 and len(split.pool) == 63_257
    assert not set(split.val) & set(split.pool)
    assert len(split.test) == 26_032 and split.protocol == "paper"


def test_offline_svhn_data_never_shows_test_digits(monkeypatch):
    """Every image encodes its index; pool, validation and test must share none, and the unlabelled digits
    (BatchNorm statistics, and what D may train on) are the train digits plus test digits 0-4999 only."""
    from dcgan_lib.data import data, datasets

    n = 10_000
    idx_images = np.zeros((n, 32, 32, 3), np.uint8)
    idx_images[:, 0, 0, 0], idx_images[:, 0, 0, 1] = np.arange(n) // 256, np.arange(n) % 256
    labels = np.arange(n) % 10
    unlabelled = np.full((50, 32, 32, 3), 255, np.uint8)

    def prepare(name, size, split="train", limit=None, progress=True):
        info = {"dataset": name, "split": split, "source": "mirror", "path": "/x/svhn-mirror.tar.gz",
                "sha256": "0" * 64, "n": {"test": n, "train": 50, "unlabelled": 5050}[split]}
        if split == "test":
            return data.ImageSet(idx_images, labels, [str(i) for i in range(n)], info)
        if split == "unlabelled":  # as the registry composes it: train digits, then test digits 0-4999 unlabelled
            return data.ImageSet(np.concatenate([unlabelled, idx_images[:5000]]), None,
                                 [f"train{i}" for i in range(50)] + [str(i) for i in range(5000)], info)
        return data.ImageSet(unlabelled, None, [f"train{i}" for i in range(50)], info)

    monkeypatch.setattr(data, "prepare", prepare)
    monkeypatch.setattr(datasets, "find_source", lambda name: type("S", (), {"kind": "mirror"})())
    settings = probe_settings.settings_for(profiles.get_profile("smoke"))
    pdata = probe_data.svhn_data(settings, "auto", seed=0)
    assert pdata.protocol == "offline"

    def ids(images):
        return set((images[:, 0, 0, 0].astype(int) * 256 + images[:, 0, 0, 1]).tolist())

    pool, val, test = ids(pdata.train.images), ids(pdata.val.images), ids(pdata.test.images)
    assert len(pool) == settings.svhn_sizes[0] and len(test) == settings.svhn_sizes[2]
    assert not (pool & test) and not (val & test) and not (pool & val)
    assert min(test) >= 5000 > max(pool | val)
    for part in (pdata.train, pdata.val, pdata.test):  # labels travel with their images
        assert np.array_equal(labels[sorted(ids(part.images))], part.labels)
    bn = pdata.bn_images
    assert (bn[:50] == 255).all() and len(bn) == 50 + 5000  # the train digits, then test digits 0-4999
    assert ids(bn[50:]) == set(range(5000)) and not ids(bn[50:]) & test
    d_data = probe_data.svhn_unlabelled()  # what D may train on: the same digits, no labels, and it says so
    assert d_data.labels is None and np.array_equal(d_data.images, bn)
    assert "never test digits 5,000-9,999" in d_data.info["what"] and pdata.data["unlabelled"] == d_data.info["what"]
    with pytest.raises(ValueError, match="official"):
        probe_data.svhn_data(settings, "paper")


# --- standardisation, the SVM and C selection ---------------------------------------------------

def test_standardize_uses_train_statistics_only():
    rng = np.random.default_rng(0)
    train = rng.normal(5, 3, (200, 4)).astype(np.float32)
    train[:, 3] = 7.0  # a constant feature must not become NaN
    test = rng.normal(5, 3, (50, 4)).astype(np.float32)
    s_train, s_test = svm.standardize(train, test)
    np.testing.assert_allclose(s_train[:, :3].mean(0), 0, atol=1e-5)
    np.testing.assert_allclose(s_train[:, :3].std(0), 1, atol=1e-4)
    assert np.isfinite(s_test).all() and (s_train[:, 3] == 0).all()
    np.testing.assert_allclose(s_test[:, 0], (test[:, 0] - train[:, 0].mean()) / train[:, 0].std(), rtol=1e-4)


def test_select_c_on_tiny_data_reports_each_c_and_keeps_the_best():
    x, y = blobs(120, sep=0.5, seed=0)
    xv, yv = blobs(200, sep=0.5, seed=1)
    grid = (1e-4, 1e-2, 1.0)
    sel = c_search.select_c(x, y, xv, yv, grid)
    assert set(grid) <= set(sel.val_accuracy) == set(sel.grid) and sel.C in sel.grid
    assert sel.val_accuracy[sel.C] == max(sel.val_accuracy.values())
    for c in sel.grid:  # the stored scores are the validation accuracies of real fits
        assert sel.val_accuracy[c] == svm.svm_accuracy(x, y, xv, yv, c)


def test_select_c_takes_the_argmax_and_breaks_ties_towards_more_regularisation(monkeypatch):
    scores = {1e-3: 0.5, 1e-2: 0.8, 1e-1: 0.8, 1.0: 0.6}
    monkeypatch.setattr(svm, "svm_accuracy", lambda *a, **k: scores.get(a[4], 0.0))  # Cs off the grid: 0
    x = np.zeros((4, 2), np.float32)
    assert c_search.select_c(x, np.arange(4), x, np.arange(4), (1.0, 1e-1, 1e-2, 1e-3)).C == 1e-2
    scores[1.0] = 0.9
    assert c_search.select_c(x, np.arange(4), x, np.arange(4), tuple(scores)).C == 1.0


def test_select_c_with_patience_stops_after_that_many_cs_below_the_best(monkeypatch):
    scores = {1e-4: 0.5, 1e-3: 0.7, 1e-2: 0.6, 1e-1: 0.65, 1.0: 0.6, 10.0: 0.9}
    fitted = []
    monkeypatch.setattr(svm, "svm_accuracy", lambda *a, **k: fitted.append(a[4]) or scores.get(a[4], 0.0))
    x = np.zeros((4, 2), np.float32)
    sel = c_search.select_c(x, np.arange(4), x, np.arange(4), tuple(scores), patience=3)
    assert fitted == [1e-4, 1e-3, 1e-2, 1e-1, 1.0] and sel.C == 1e-3 and set(sel.val_accuracy) == set(fitted)
    fitted.clear()  # a C that ties the best resets the count; without patience the whole grid is fitted
    scores[1e-1] = 0.7
    assert c_search.select_c(x, np.arange(4), x, np.arange(4), tuple(scores), patience=2).C == 10.0
    assert fitted == [*scores, 100.0]  # the best C was the grid's largest: one C above it is tried
    fitted.clear()
    assert c_search.select_c(x, np.arange(4), x, np.arange(4), tuple(scores)).C == 10.0 and len(fitted) == 7


def _peaked(peak: float):
    """A validation score over C with one peak at `peak` (log scale), and the Cs it was asked for."""
    asked = []

    def score(c):
        asked.append(c)
        return -abs(np.log10(c) - np.log10(peak))
    return score, asked


def test_c_search_widens_the_grid_while_the_best_c_sits_at_an_edge():
    grid = (3e-5, 1e-4, 3e-4, 1e-3)
    score, asked = _peaked(1e-6)  # below the grid: widened by the ratio of its two lowest Cs (0.3)
    sel = c_search.search_c(score, grid)
    assert asked == [*grid, 9e-6, 2.7e-6, 8.1e-7] and sel.C == 8.1e-7
    assert sel.record() == {"grid_tried": [8.1e-7, 2.7e-6, 9e-6, *grid], "widened": True,
                            "widened_by": {"below": 3, "above": 0}, "at_edge": True}  # bounded: 3 steps, still at edge
    score, asked = _peaked(1e-5)  # found one step below: the next step down scores lower, and the search stops
    sel = c_search.search_c(score, grid)
    assert sel.C == 9e-6 and not sel.at_edge and sel.widened == {"below": 2, "above": 0}
    score, asked = _peaked(2e-2)  # above: by the ratio of the two highest Cs (1e-3 / 3e-4)
    sel = c_search.search_c(score, grid, patience=2)
    assert asked[4:] == [3.33e-3, 1.11e-2, 3.7e-2] and sel.C == 1.11e-2 and not sel.at_edge
    assert sel.widened == {"below": 0, "above": 3}
    score, asked = _peaked(1.5e-4)  # inside the grid: nothing added
    sel = c_search.search_c(score, grid, patience=1)
    assert asked == [3e-5, 1e-4, 3e-4] and sel.C == 1e-4 and sel.record()["widened"] is False
    assert not sel.at_edge
    with pytest.raises(ValueError, match="empty"):
        c_search.search_c(score, ())


def test_torch_solver_matches_sklearn_within_0_3_points():
    x, y = blobs(1500, d=40, k=5, sep=0.35, seed=0)
    xt, yt = blobs(2000, d=40, k=5, sep=0.35, seed=1)
    x, xt = svm.standardize(x, xt)
    for c in (1e-3, 1e-1):
        sk = svm.svm_accuracy(x, y, xt, yt, c, "sklearn")
        th = svm.svm_accuracy(x, y, xt, yt, c, "torch")
        assert 0.3 < sk < 0.99  # a problem where the solvers could disagree
        assert abs(sk - th) * 100 <= 0.3


def test_torch_solver_binary_and_unknown_solver():
    x, y = blobs(200, k=2, sep=2.0, seed=0)
    model = svm.TorchL2SVM(C=1.0).fit(x, y + 3)  # labels need not start at 0
    assert set(model.predict(x)) <= {3, 4} and (model.predict(x) == y + 3).mean() > 0.9
    with pytest.raises(ValueError, match="solver"):
        svm.make_svm(1.0, "liblinear")


def test_svm_over_draws_reports_every_draw():
    x, y = blobs(400, k=4, sep=0.8, seed=0)
    settings = probe_settings.ProbeSettings(cifar_train=None, cifar_test=None, cifar_val=0, c_grid=(1e-3, 1e-1),
                                    n_labels=40, n_draws=5, n_select_draws=2)
    res = label_draws.svm_over_draws(x[:200], y[:200], x[200:300], y[200:300], x[300:], y[300:], settings, seed=0)
    assert len(res.test_errors) == 5 and res.C in res.val_error_by_c and set(res.c_search["grid_tried"]) >= {1e-3, 1e-1}
    assert 0 <= res.mean < 0.75 and res.ci95 == pytest.approx(1.96 * np.std(res.test_errors))
    assert res.test_correct.shape == (100,) and res.test_correct.max() <= 5  # per test image: draws that got it right
    assert 1 - res.test_correct.sum() / (5 * 100) == pytest.approx(res.mean)  # the same fits as the errors


def _tiny_pdata(n_test=40):
    rng = np.random.default_rng(0)
    part = [probe_data.Labelled(rng.integers(0, 256, (n, 32, 32, 3), dtype=np.uint8), np.arange(n) % 10)
            for n in (60, 30, n_test)]
    return probe_data.ProbeData(*part, part[0].images, "cifar10", "tiny", {})


def test_data_for_a_choice_withholds_its_test_part():
    pdata = _tiny_pdata()
    chosen_on = pdata.for_selection()
    assert pdata.has_test and not chosen_on.has_test and chosen_on.val is pdata.val
    for touch in (lambda t: t.images, lambda t: t.labels, len, np.asarray, lambda t: t[0], list):
        with pytest.raises(probe_data.TestDataWithheld, match="withheld"):
            touch(chosen_on.test)


def test_the_choice_of_c_runs_without_test_data_and_the_measurement_needs_it():
    from dcgan_lib.gan import nets

    settings = probe_settings.settings_for(profiles.get_profile("smoke"))
    _, d = nets.build("imagenet32", width=1 / 16, seed=0)
    pdata = _tiny_pdata()
    choice = probes.d_validation_cifar10(d, pdata.for_selection(), settings, solver="sklearn")
    assert choice["C"] in [float(c) for c in choice["val_accuracy_by_c"]]
    assert choice["val_accuracy"] == max(choice["val_accuracy_by_c"].values())
    with pytest.raises(probe_data.TestDataWithheld):  # a test-accuracy row cannot be computed from such data
        probes.d_row_cifar10(d, pdata.for_selection(), settings, "D", solver="sklearn")
    row = probes.d_row_cifar10(d, pdata, settings, "D", solver="sklearn")
    assert row["C"] == choice["C"] and row["val_accuracy"] == choice["val_accuracy_by_c"]  # same choice, same data
    assert row["test_correct"]["images"] == 40 and row["test_correct"]["draws"] == 1
    assert row["c_search"]["grid_tried"] == sorted(float(c) for c in row["val_accuracy"])


# --- tables ---------------------------------------------------------------------------------------

def test_table_markdown_puts_paper_and_ours_side_by_side():
    record = {"name": "Table 1", "profile": "cpu", "commit": "abc", "device": "cpu", "seed": 0, "wall_s": 1.0,
              "data": {"dataset": "cifar10", "source": "mirror", "archive": "c.tar.gz", "sha256": "f" * 64},
              "paper": {"table": probe_tables.paper_table1()},
              "metrics": {"metric": "accuracy", "description": "CIFAR-10 (mirror)",
                          "rows": [{"model": "ours D", "paper_key": "dcgan", "value": 0.5, "note": "n"},
                                   {"model": "random D", "paper_key": None, "value": 0.25, "note": "r"}]}}
    md = probe_tables.table_markdown(record)
    assert "| DCGAN (ours) + L2-SVM | 82.80% | 50.00% |" in md
    assert "(extra) random D | - | 25.00% |" in md
    assert "| Exemplar CNN | 84.30% | not run |" in md
    assert "profile `cpu`" in md


def test_settings_scale_with_the_profile():
    smoke = probe_settings.settings_for(profiles.get_profile("smoke"))
    paper = probe_settings.settings_for(profiles.get_profile("paper"))
    assert paper.n_draws == 100 and paper.cnn_trials == 64 and paper.n_labels == 1000
    assert smoke.n_draws < paper.n_draws and smoke.cnn_trials < paper.cnn_trials
    assert sum(smoke.svhn_sizes) <= 10_000 and smoke.cifar_val % 10 == 0


def test_write_table_records_headlines_beside_the_paper(tmp_path, monkeypatch):
    from dcgan_lib.records import results

    monkeypatch.setattr(results, "ROOT", tmp_path)
    part = probe_data.Labelled(np.zeros((2, 32, 32, 3), np.uint8), np.array([0, 1]))
    pdata = probe_data.ProbeData(part, part, part, part.images, "offline", "a tiny protocol",
                             {"dataset": "svhn", "source": "mirror", "archive": "s.tar.gz", "sha256": "0" * 64})
    rows = [{"model": "pixel KNN", "paper_key": "knn", "value": 0.8, "ci95": 0.01, "note": "k"},
            {"model": "extra", "paper_key": None, "value": 0.5}]
    path = probes.write_table2(rows, pdata, profiles.get_profile("smoke"), seed=3, wall_s=1.5)
    assert path == tmp_path / "runs" / "smoke" / "figures" / "table2_svhn.json"  # smoke never writes figures/
    record = results.read_record(path)
    assert record["metrics"]["knn_error"] == 0.8 and record["paper"]["knn_error"] == 0.7793
    assert set(k for k in record["paper"] if k != "table") == {"knn_error"}
    assert record["seed"] == 3 and record["data"]["source"] == "mirror"
    md = path.with_suffix(".md").read_text()
    assert "| KNN | 77.93% | 80.00% +- 1.00 |" in md and "a tiny protocol" in md


def test_svhn_models_train_on_the_unlabelled_split_never_on_the_measured_digits():
    """The registry's SVHN split "unlabelled" (the store's training split for svhn) is the train digits, then
    test digits 0-4999 without labels; no digit from 5000 on, where Table 2 measures, is in it."""
    from dcgan_lib.data import data, registry
    from dcgan_lib.models import store

    train, test = data.prepare("svhn", 32, "train"), data.prepare("svhn", 32, "test")
    d_data = store.load_training_images("svhn", "svhn32", "cpu")
    cut = registry.SVHN_MEASURED_FROM
    assert d_data.labels is None and d_data.info["split"] == "unlabelled" == registry.get_spec("svhn").train_split
    assert d_data.ids == [*train.ids, *test.ids[:cut]] and not set(d_data.ids) & set(test.ids[cut:])
    np.testing.assert_array_equal(d_data.images[len(train):], test.images[:cut])
    assert probe_data.svhn_unlabelled().ids == d_data.ids


@pytest.mark.parametrize("solver", svm.SOLVERS)
def test_a_row_reports_whether_its_final_fit_converged(solver, tmp_path, monkeypatch):
    x, y = blobs(300, d=20, k=3, sep=0.5, seed=0)
    xv, yv = blobs(100, d=20, k=3, sep=0.5, seed=1)
    xt, yt = blobs(100, d=20, k=3, sep=0.5, seed=2)
    settings = probe_settings.ProbeSettings(cifar_train=None, cifar_test=None, cifar_val=100, c_grid=(1e-2,))
    row = probes.svm_row((x, y), (xv, yv), (xt, yt), settings, solver)
    fit = row["final_fit"]
    assert fit["converged"] is True and fit["tolerance"] > 0 and fit["criterion"]
    if solver == "sklearn":  # liblinear stops before max_iter when it meets its tolerance
        assert 0 < fit["iterations"] < fit["max_iter"]
        model = svm.make_svm(1e-2, "sklearn")
        model.max_iter = 1  # out of passes: said, not hidden
        with pytest.warns(Warning):
            model.fit(x, y)
        assert svm.fit_record(model)["converged"] is False
    else:
        assert fit["relative_grad_norm"] <= svm.TOLERANCE
    from dcgan_lib.records import results

    monkeypatch.setattr(results, "ROOT", tmp_path)
    part = probe_data.Labelled(np.zeros((2, 32, 32, 3), np.uint8), np.array([0, 1]))
    pdata = probe_data.ProbeData(part, part, part, part.images, "offline", "a tiny protocol",
                                 {"dataset": "cifar10", "source": "mirror", "archive": "c.tar.gz", "sha256": "0" * 64})
    path = probes.write_table1([{"model": "a D", "paper_key": "dcgan", **row, "value": row["accuracy"]}], pdata,
                               profiles.get_profile("smoke"), seed=0, wall_s=1.0)
    assert "Final L2-SVM fits: a D: converged (" in path.with_suffix(".md").read_text()
