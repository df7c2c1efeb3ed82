"""bench/bf16_kid: the verdict rule that decides whether bf16 may become a CPU default, and its refusal without AMX."""
import pytest

from dcgan_lib.bench import bf16_kid


def _rows(kids, std=0.005):
    return [{"steps": 1000 * (i + 1), "kid": k, "kid_std": std} for i, k in enumerate(kids)]


def test_bf16_within_the_seed_spread_is_equal():
    by_run = {"fp32 seed 0": _rows([0.30, 0.20]), "fp32 seed 1": _rows([0.32, 0.24]),
              "bf16 seed 0": _rows([0.31, 0.22]), "bf16 seed 1": _rows([0.33, 0.21])}
    v = bf16_kid.verdict(by_run, (0, 1))
    assert v["equal"] and [p["steps"] for p in v["points"]] == [1000, 2000]
    assert v["points"][1]["seed_gaps"]["fp32"] == pytest.approx(0.04)
    assert v["points"][1]["gap"] == pytest.approx(abs(0.215 - 0.22))


def test_bf16_worse_beyond_the_seed_spread_and_the_noise_is_not_equal():
    by_run = {"fp32 seed 0": _rows([0.30, 0.20]), "fp32 seed 1": _rows([0.31, 0.21]),
              "bf16 seed 0": _rows([0.30, 0.30]), "bf16 seed 1": _rows([0.31, 0.31])}
    v = bf16_kid.verdict(by_run, (0, 1))
    assert not v["equal"] and v["points"][0]["ok"] and not v["points"][1]["ok"]
    assert v["points"][1]["tolerance"] == pytest.approx(max(0.01, v["points"][1]["two_pooled_se"]))


def test_noisy_kids_widen_the_tolerance():
    by_run = {"fp32 seed 0": _rows([0.20], 0.05), "fp32 seed 1": _rows([0.20], 0.05),
              "bf16 seed 0": _rows([0.28], 0.05), "bf16 seed 1": _rows([0.28], 0.05)}
    v = bf16_kid.verdict(by_run, (0, 1))  # a gap of 0.08 inside 2 x pooled SE (0.1): not shown different
    assert v["equal"] and v["points"][0]["two_pooled_se"] == pytest.approx(0.1)


def test_refuses_without_amx_unless_forced(monkeypatch):
    monkeypatch.setattr(bf16_kid, "fast_cpu_bf16", lambda: False)
    with pytest.raises(SystemExit, match="no AMX"):
        bf16_kid.run("bedrooms", "lsun64", 0.25, "", (2,), (0, 1), profile="smoke")
    with pytest.raises(SystemExit):
        bf16_kid.main(["--seeds", "0"])  # one seed gives no tolerance


def test_images_per_s_counts_only_the_steps_of_each_chunk(monkeypatch, tmp_path):
    """Each point's speed is its own chunk's steps over its own wall time, though the Trainer resumes in fit()."""
    from dcgan_lib.models import store

    images = store.load_training_images("bedrooms", "lsun64", "smoke")
    real = store.reference_stats(images, "smoke")
    clock = iter(range(0, 1000, 10))  # every perf_counter call advances 10 s
    monkeypatch.setattr(bf16_kid.staged, "_clock", lambda: float(next(clock)))
    rows = bf16_kid.train_and_score("bedrooms", "lsun64", dict(width=1 / 16, amp=False, snapshot_epochs=False,
                                                               checkpoint_every=10**9),
                                    images, tmp_path, (2, 4), real, 4, "smoke", 0, False)
    assert [r["steps"] for r in rows] == [2, 4]
    assert rows[0]["images_per_s"] == rows[1]["images_per_s"] == 2 * 16 / 10  # 2 steps of batch 16 in 10 s
