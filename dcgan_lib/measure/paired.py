"""Paired comparisons of two rows of Table 1 or 2 measured on the same test images (Paper §5.1-5.2).

Two accuracies measured on the same images are not independent: most images are right (or wrong)
for both models, and only the images on which the two disagree say which model is better. A paired
test uses exactly those. Every row keeps, per test image, how often it was classified correctly
(`correct_record`: one fit gives 0 or 1, a row over label draws gives the number of draws that got
it right), packed into a short string of its record; `compare` reads two such rows and applies

- McNemar's exact test (one-sided) when both rows are single fits (Table 1): of the images that
  exactly one of the two classifies correctly, is the first row the one that is right more often
  than a fair coin would make it?
- a paired bootstrap over the test images (one-sided) when a row is averaged over label draws
  (Table 2): each image's error rate over the row's draws, the mean difference of the two rows'
  rates, and the same images resampled for both rows.

A claim "A beats B" is shown when the one-sided p-value is below `ALPHA`; otherwise the text says
"not shown at this size" with the numbers. Pure NumPy and exact integer arithmetic (no SciPy).
"""
from __future__ import annotations

import base64
import math
import zlib

import numpy as np

ALPHA = 0.05  # a claim "A beats B" is shown when the one-sided paired p-value is below this
BOOTSTRAP_RESAMPLES = 10_000


# --- per-image correctness, compact in a record ---------------------------------------------------

def correct_record(correct_counts, draws: int = 1) -> dict:
    """{"images", "draws", "counts"}: per test image, how many of `draws` fits classified it correctly.

    `counts` is the uint8 array zlib-compressed and base64-encoded (10,000 single-fit images: ~1.5 kB).
    """
    counts = np.asarray(correct_counts)
    if counts.ndim != 1 or draws < 1 or draws > 255 or counts.min(initial=0) < 0 or counts.max(initial=0) > draws:
        raise ValueError(f"need a 1-D array of counts in 0..draws with 1 <= draws <= 255, got shape {counts.shape}, "
                         f"draws {draws}, range {counts.min(initial=0)}..{counts.max(initial=0)}")
    packed = base64.b64encode(zlib.compress(counts.astype(np.uint8).tobytes(), 9)).decode("ascii")
    return {"images": len(counts), "draws": int(draws), "counts": packed}


def correct_counts(record: dict) -> np.ndarray:
    """The per-image counts of correct fits (uint8) that `correct_record` packed."""
    counts = np.frombuffer(zlib.decompress(base64.b64decode(record["counts"])), np.uint8)
    if len(counts) != record["images"]:
        raise ValueError(f"the record holds {len(counts)} images, it says {record['images']}")
    return counts


# --- the two tests --------------------------------------------------------------------------------

def binomial_tail(k: int, n: int) -> float:
    """P(X >= k) for X ~ Binomial(n, 1/2), exactly (integer arithmetic)."""
    if k <= 0:
        return 1.0
    return sum(math.comb(n, i) for i in range(k, n + 1)) / 2 ** n


def mcnemar_exact(a_correct, b_correct) -> dict:
    """One-sided exact McNemar test of "A is right more often than B" on the same images.

    a_only: images A gets right and B wrong; b_only: the reverse. Under the null hypothesis each
    discordant image is equally likely to be either, so a_only ~ Binomial(a_only + b_only, 1/2) and
    p = P(X >= a_only). Returns p, the counts and the difference of accuracies in points.
    """
    a, b = np.asarray(a_correct, bool), np.asarray(b_correct, bool)
    if a.shape != b.shape or a.ndim != 1:
        raise ValueError(f"both rows need one correctness flag per test image, got {a.shape} and {b.shape}")
    a_only, b_only = int((a & ~b).sum()), int((~a & b).sum())
    return {"test": "McNemar exact, one-sided", "p": binomial_tail(a_only, a_only + b_only), "a_only": a_only,
            "b_only": b_only, "images": len(a), "difference_points": 100 * (a_only - b_only) / len(a)}


def paired_bootstrap(a_error, b_error, resamples: int = BOOTSTRAP_RESAMPLES, seed: int = 0) -> dict:
    """One-sided paired bootstrap over test images of "A's error is below B's".

    `a_error`, `b_error`: per-image error rates (0/1 for one fit, the fraction of label draws that got
    the image wrong for a row over draws). The statistic is mean(b_error - a_error) in points (positive:
    A better); the same resampled images are used for both rows. p = (1 + #{resampled difference <= 0})
    / (resamples + 1); the interval is the 2.5-97.5 percentiles of the resampled differences.
    """
    a, b = np.asarray(a_error, np.float64), np.asarray(b_error, np.float64)
    if a.shape != b.shape or a.ndim != 1:
        raise ValueError(f"both rows need one error rate per test image, got {a.shape} and {b.shape}")
    diff = b - a  # (n,)
    rng = np.random.default_rng(seed)
    boot = np.empty(resamples)
    for start in range(0, resamples, 500):  # 500 resamples at a time: memory stays at 500 x n
        idx = rng.integers(0, len(diff), (min(500, resamples - start), len(diff)))
        boot[start:start + len(idx)] = diff[idx].mean(1)
    lo, hi = np.percentile(boot, [2.5, 97.5])
    return {"test": f"paired bootstrap over test images ({resamples:,} resamples), one-sided",
            "p": float((1 + (boot <= 0).sum()) / (resamples + 1)), "images": len(diff),
            "difference_points": float(100 * diff.mean()), "interval95_points": [float(100 * lo), float(100 * hi)]}


# --- a claim between two rows ---------------------------------------------------------------------

def compare(a_row: dict, b_row: dict, claim: str, alpha: float = ALPHA, seed: int = 0) -> dict:
    """Is row A better than row B on the same test images? The paired test, its p-value and a verdict.

    Both rows carry `test_correct` (`correct_record`). Two single fits: McNemar's exact test; a row
    averaged over label draws: the paired bootstrap over images. `shown` is p < alpha (one-sided);
    `text` states the claim with its numbers and either "shown" or "not shown at this size".
    """
    a, b = (r.get("test_correct") for r in (a_row, b_row))
    if a is None or b is None:
        missing = [r["model"] for r, rec in ((a_row, a), (b_row, b)) if rec is None]
        raise ValueError(f"rows {missing} keep no per-image correctness (test_correct); rerun them with this "
                         "version of dcgan_lib.measure.probes")
    if a["images"] != b["images"]:
        raise ValueError(f"the rows were measured on different test sets ({a['images']} and {b['images']} images)")
    ca, cb = correct_counts(a), correct_counts(b)
    if a["draws"] == 1 and b["draws"] == 1:
        res = mcnemar_exact(ca == 1, cb == 1)
        detail = f"{res['a_only']} images right only for A, {res['b_only']} only for B"
    else:
        res = paired_bootstrap(1 - ca / a["draws"], 1 - cb / b["draws"], seed=seed)
        lo, hi = res["interval95_points"]
        detail = f"95% interval {lo:+.2f} to {hi:+.2f} points; draws {a['draws']} and {b['draws']}"
    shown = bool(res["p"] < alpha and res["difference_points"] > 0)
    verdict = f"shown (p < {alpha:g})" if shown else f"not shown at this size (criterion p < {alpha:g})"
    text = (f"{claim}: {res['difference_points']:+.2f} points on {res['images']:,} test images ({detail}); "
            f"{res['test']} p = {res['p']:.3g} -> {verdict}")
    return {"claim": claim, "a": a_row["model"], "b": b_row["model"], **res, "alpha": alpha, "shown": shown,
            "text": text}
