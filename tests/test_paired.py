"""Paired tests of two rows on the same test images: McNemar's exact test, the paired bootstrap, the records."""
import math

import numpy as np
import pytest

from dcgan_lib.measure import paired


def test_binomial_tail_by_hand():
    assert paired.binomial_tail(5, 5) == 1 / 32
    assert paired.binomial_tail(3, 4) == (4 + 1) / 16
    assert paired.binomial_tail(0, 7) == 1.0 and paired.binomial_tail(1, 0) == 0.0
    assert paired.binomial_tail(60, 100) == pytest.approx(sum(math.comb(100, i) for i in range(60, 101)) / 2**100)
    assert 0 < paired.binomial_tail(5000, 9000) < 1e-20  # exact arithmetic, no overflow at Table 1's sizes


def test_mcnemar_counts_only_the_discordant_images():
    a = np.array([1, 1, 1, 1, 1, 0, 1, 0, 0, 1], bool)
    b = np.array([0, 0, 0, 1, 1, 0, 1, 0, 1, 0], bool)  # a alone right on 4 images, b alone on 1
    res = paired.mcnemar_exact(a, b)
    assert (res["a_only"], res["b_only"], res["images"]) == (4, 1, 10)
    assert res["p"] == pytest.approx((5 + 1) / 32)  # P(X >= 4), X ~ Binomial(5, 1/2)
    assert res["difference_points"] == pytest.approx(100 * (a.mean() - b.mean()))
    same = paired.mcnemar_exact(np.r_[a, a], np.r_[b, b])  # concordant images add nothing, discordant ones do
    assert same["p"] < res["p"]
    assert paired.mcnemar_exact(b, a)["p"] == pytest.approx(1 - 1 / 32)  # one-sided: the other direction
    with pytest.raises(ValueError, match="one correctness flag"):
        paired.mcnemar_exact(a, b[:5])


def test_paired_bootstrap_sees_a_small_consistent_gain_that_an_unpaired_comparison_hides():
    rng = np.random.default_rng(0)
    hard = rng.random(2000) < 0.4  # images both rows tend to get wrong
    b_err = hard.astype(float)
    a_err = b_err.copy()
    a_err[np.flatnonzero(hard)[:40]] = 0  # A fixes 40 of B's errors and breaks none: +2 points
    res = paired.paired_bootstrap(a_err, b_err, resamples=2000, seed=1)
    assert res["difference_points"] == pytest.approx(2.0)
    assert res["p"] == pytest.approx(1 / 2001)  # no resample can make the difference <= 0
    lo, hi = res["interval95_points"]
    assert 0 < lo <= 2.0 <= hi
    unpaired_se = 100 * np.sqrt(sum(e.mean() * (1 - e.mean()) for e in (a_err, b_err)) / 2000)
    assert unpaired_se > 1.0  # the unpaired standard error would call +2 points "within 2 SE"
    tie = paired.paired_bootstrap(b_err, b_err, resamples=200)
    assert tie["p"] == 1.0 and tie["difference_points"] == 0


def test_correct_record_round_trip_and_size():
    counts = np.random.default_rng(0).integers(0, 21, 5000)
    rec = paired.correct_record(counts, draws=20)
    assert rec["images"] == 5000 and rec["draws"] == 20
    assert np.array_equal(paired.correct_counts(rec), counts)
    single = paired.correct_record(np.random.default_rng(1).random(10_000) < 0.7)
    assert len(single["counts"]) < 3000  # 10,000 test images fit in a few kB of the record
    with pytest.raises(ValueError, match="counts in 0..draws"):
        paired.correct_record(np.array([0, 3]), draws=2)


def _row(model, correct, draws=1):
    return {"model": model, "test_correct": paired.correct_record(correct, draws)}


def test_compare_picks_the_test_and_words_the_verdict():
    rng = np.random.default_rng(0)
    b = rng.random(3000) < 0.6
    a = b.copy()
    a[np.flatnonzero(~b)[:80]] = True  # A right on 80 more images
    shown = paired.compare(_row("A", a), _row("B", b), "A beats B")
    assert shown["test"].startswith("McNemar") and shown["shown"] and shown["p"] < paired.ALPHA
    assert "shown (p < 0.05)" in shown["text"] and "not shown" not in shown["text"]
    close = a.copy()
    close[np.flatnonzero(a & ~b)[:78]] = False  # only 2 images apart
    verdict = paired.compare(_row("A", close), _row("B", b), "A beats B")
    assert not verdict["shown"] and "not shown at this size" in verdict["text"] and "+0.07 points" in verdict["text"]
    draws = paired.compare(_row("D", a.astype(int) * 5, draws=5), _row("CNN", b), "D beats CNN")
    assert draws["test"].startswith("paired bootstrap") and draws["shown"] and 0 <= draws["p"] <= 1
    with pytest.raises(ValueError, match="different test sets"):
        paired.compare(_row("A", a[:10]), _row("B", b), "A beats B")
    with pytest.raises(ValueError, match="test_correct"):
        paired.compare({"model": "old row"}, _row("B", b), "A beats B")
