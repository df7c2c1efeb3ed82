"""Table 1 at the paper's size (probe_full): the float16 store, the C path and the record, on a small slice."""
from __future__ import annotations

from dataclasses import replace

import numpy as np

from dcgan_lib import features, nets, probe_full, probes, profiles, results


def test_float16_store_keeps_the_features():
    _, d = nets.build("imagenet32", width=1 / 16, seed=0)
    images = np.random.default_rng(0).integers(0, 256, (40, 32, 32, 3), dtype=np.uint8)
    cfg = features.FeatureConfig(batch_size=16)
    f32 = features.extract(d, images, cfg, bn_images=images, desc=None).x
    f16 = features.extract(d, images, cfg, bn_images=images, desc=None, dtype=np.float16).x
    assert f16.dtype == np.float16 and f16.nbytes * 2 == f32.nbytes
    np.testing.assert_allclose(f16.astype(np.float32), f32, rtol=2e-3, atol=2e-3)


def test_full_size_run_records_time_memory_and_the_choice_of_c():
    settings = replace(probes.settings_for(profiles.get_profile("smoke")), full_size_limit=300,
                       full_size_c_grid=(1e-3, 1e-1), full_size_max_evals=8)
    _, d = nets.build("imagenet32", width=1 / 16, seed=0)
    path = probe_full.run(d, "random D", settings, profile="smoke", n_val=100, bn_images=200,
                          stem="test_table1_full_size")
    record = results.read_record(path)
    m = record["metrics"]
    assert m["train_images"] == 300 and m["fit_images"] + m["val_images"] == 300 and m["val_images"] == 60
    assert m["features"] == features.feature_dim(d.cfg) and m["bn_statistics_images"] == 200
    assert set(m["val_accuracy"]) == {"0.001", "0.1"} and m["C"] in (1e-3, 1e-1)
    best = max(m["val_accuracy"].values())
    assert m["C"] == min(float(c) for c, a in m["val_accuracy"].items() if a == best)  # ties go to the smaller C
    assert [s["C"] for s in m["solver_log"]] == [1e-3, 1e-1, m["C"]]
    assert 0 < m["peak_rss_mb"] < 8192 and record["wall_s"] > 0 and 0 <= m["dcgan_accuracy"] <= 1
    assert m["feature_store_mb"] * 2**20 >= (300 + m["test_images"]) * m["features"] * 2 * 0.99
    assert "82.8%" in path.with_suffix(".md").read_text()
