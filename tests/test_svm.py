"""The streamed L2-SVM solves TorchL2SVM's (= LinearSVC's) objective from a float16 store, chunk by chunk."""
from __future__ import annotations

import numpy as np
import pytest

from dcgan_lib import svm


def _problem(n=600, d=40, k=4, seed=0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, k, n)
    centres = rng.standard_normal((k, d)) * 0.6
    x = (centres[y] + rng.standard_normal((n, d))) * rng.uniform(0.5, 5, d) + rng.uniform(-3, 3, d)
    return x.astype(np.float32), y


@pytest.mark.parametrize("C", [1e-3, 1e-1])
def test_streamed_matches_the_in_memory_solver(C):
    x, y = _problem()
    scaler = svm.Standardizer.fit(x)
    ref = svm.TorchL2SVM(C=C).fit(scaler.transform(x), y)
    streamed = svm.StreamedL2SVM(C=C, chunk=97, scaler=scaler, max_evals=500).fit(x, y)
    np.testing.assert_allclose(streamed.w[:-1].T.numpy(), ref.coef_, atol=2e-3, rtol=2e-3)
    assert (streamed.predict(x) == ref.predict(scaler.transform(x))).mean() > 0.99
    assert streamed.grad_norm < 1e-3


def test_rows_subset_and_float16_store_and_warm_start():
    x, y = _problem(seed=1)
    rows = np.sort(np.random.default_rng(0).choice(len(x), 400, replace=False))
    scaler = svm.Standardizer.fit(x[rows])
    ref = svm.TorchL2SVM(C=1e-2).fit(scaler.transform(x[rows]), y[rows])
    store = x.astype(np.float16)
    model = svm.StreamedL2SVM(C=1e-3, chunk=64, scaler=scaler, max_evals=500).fit(store, y[rows], rows)
    cold_evals = svm.StreamedL2SVM(C=1e-2, chunk=64, scaler=scaler, max_evals=500).fit(store, y[rows], rows).evals
    model.C = 1e-2
    model.fit(store, y[rows], rows, warm_start=True)
    assert model.evals < cold_evals  # the path over C starts near the answer
    held = np.setdiff1d(np.arange(len(x)), rows)
    agree = (model.predict(store, held) == ref.predict(scaler.transform(x[held]))).mean()
    assert agree > 0.98
