"""Table 1 at the paper's size (probe_full): the float16 store, the C path and the record, on a small slice."""
from __future__ import annotations

from dataclasses import replace

import numpy as np

from dcgan_lib.config import profiles
from dcgan_lib.gan import nets
from dcgan_lib.measure import features, probe_full, probe_settings, svm
from dcgan_lib.records import results


def test_float16_store_keeps_the_features():
    _, d = nets.build("imagenet32", width=1 / 16, seed=0)
    images = np.random.default_rng(0).integers(0, 256, (40, 32, 32, 3), dtype=np.uint8)
    cfg = features.FeatureConfig(batch_size=16)
    f32 = features.extract(d, images, cfg, bn_images=images, desc=None).x
    f16 = features.extract(d, images, cfg, bn_images=images, desc=None, dtype=np.float16).x
    assert f16.dtype == np.float16 and f16.nbytes * 2 == f32.nbytes
    np.testing.assert_allclose(f16.astype(np.float32), f32, rtol=2e-3, atol=2e-3)


def test_full_size_run_records_time_memory_the_choice_of_c_and_convergence():
    settings = replace(probe_settings.settings_for(profiles.get_profile("smoke")), full_size_limit=300,
                       full_size_c_grid=(1e-3, 1e-1), full_size_max_evals=100)
    _, d = nets.build("imagenet32", width=1 / 16, seed=0)
    path = probe_full.run(d, "random D", settings, profile="smoke", n_val=100, bn_images=200,
                          stem="test_table1_full_size")
    record = results.read_record(path)
    m = record["metrics"]
    assert m["train_images"] == 300 and m["fit_images"] + m["val_images"] == 300 and m["val_images"] == 60
    assert m["features"] == features.feature_dim(d.cfg) and m["bn_statistics_images"] == 200
    assert {"0.001", "0.1"} <= set(m["val_accuracy"]) and m["C"] in m["c_search"]["grid_tried"]
    assert sorted(float(c) for c in m["val_accuracy"]) == m["c_search"]["grid_tried"]
    best = max(m["val_accuracy"].values())
    assert m["C"] == min(float(c) for c, a in m["val_accuracy"].items() if a == best)  # ties go to the smaller C
    fits = m["solver_log"]
    assert [s["C"] for s in fits[:2]] == [1e-3, 1e-1] and fits[-1]["C"] == m["C"]
    assert len(fits) == len(m["c_search"]["grid_tried"]) + 1  # one fit per C tried, then the refit
    for fit in fits:  # every fit states the criterion and meets it
        assert fit["tolerance"] == svm.TOLERANCE and fit["converged"] and fit["relative_grad_norm"] <= svm.TOLERANCE
    assert m["all_converged"] and m["tolerance"] == svm.TOLERANCE
    assert 0 < m["peak_rss_mb"] < 8192 and record["wall_s"] > 0 and 0 <= m["dcgan_accuracy"] <= 1
    assert m["feature_store_mb"] * 2**20 >= (300 + m["test_images"]) * m["features"] * 2 * 0.99
    md = path.with_suffix(".md").read_text()
    assert "82.8%" in md and "converged, relative gradient" in md and "NOT converged" not in md


def test_the_choice_of_c_sees_no_test_features_and_a_short_budget_is_reported():
    rng = np.random.default_rng(0)
    y = np.arange(400) % 4
    x = (rng.standard_normal((4, 30))[y] + rng.standard_normal((400, 30))).astype(np.float16)
    settings = replace(probe_settings.settings_for(profiles.get_profile("smoke")), full_size_c_grid=(1e-3, 1e-2),
                       full_size_max_evals=2)
    sel, weights, log = probe_full.choose_c(x[:300], y[:300], x[300:], y[300:], settings)  # no test part to pass
    assert set(weights) == set(sel.grid) == {f["C"] for f in log} and [f["C"] for f in log][:2] == [1e-3, 1e-2]
    assert all(not f["converged"] and f["evals"] <= 3 for f in log)  # 2 evaluations cannot reach the tolerance
    assert log[1]["warm_start_from"] == 1e-3  # the path: each C starts from the nearest C fitted
