"""The torch L2-SVM solvers: LinearSVC's objective, one stopping criterion (svm.TOLERANCE), the float16 store."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.svm import LinearSVC

from dcgan_lib.measure import svm


@pytest.fixture(autouse=True)
def one_thread():
    torch.set_num_threads(1)


def _problem(n=600, d=40, k=4, seed=0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, k, n)
    centres = rng.standard_normal((k, d)) * 0.6
    x = (centres[y] + rng.standard_normal((n, d))) * rng.uniform(0.5, 5, d) + rng.uniform(-3, 3, d)
    return x.astype(np.float32), y


def _objective(coef, intercept, x, y, classes, C):
    """LinearSVC's objective by hand: sum over one-vs-rest classes of 0.5 |w|^2 + 0.5 b^2 + C sum sq. hinge."""
    t = np.where(y[:, None] == classes, 1.0, -1.0)
    hinge = np.maximum(0, 1 - t * (x @ coef.T + intercept))
    return 0.5 * (coef ** 2).sum() + 0.5 * (intercept ** 2).sum() + C * (hinge ** 2).sum()


def _correlated(n=3000, d=300, k=10, seed=0):
    """Features with a few strong shared directions, like D's: an ill-conditioned problem."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % k
    shared = rng.standard_normal((n, 8)) @ rng.standard_normal((8, d)) * 3
    x = shared + rng.standard_normal((k, d))[y] * 0.4 + rng.standard_normal((n, d))
    return svm.standardize(x.astype(np.float32))[0], y


@pytest.mark.parametrize("C", [1e-4, 1e-2])
def test_torch_solver_reaches_the_tolerance_and_matches_linearsvc(C):
    x, y = _correlated()
    model = svm.TorchL2SVM(C=C).fit(x, y)
    assert model.report.converged and model.report.relative_grad_norm <= svm.TOLERANCE
    assert model.report.record()["tolerance"] == svm.TOLERANCE
    ref = LinearSVC(C=C, loss="squared_hinge", penalty="l2", dual=True, tol=1e-6, max_iter=20_000).fit(x, y)
    ours, theirs = (_objective(m.coef_, m.intercept_, x, y, ref.classes_, C) for m in (model, ref))
    assert ours == pytest.approx(theirs, rel=1e-4)  # the same minimum, reached to the stated tolerance
    assert (model.predict(x) == ref.predict(x)).mean() >= 0.995


def test_the_preconditioner_is_the_inverse_square_root_it_claims():
    x, _ = _correlated(n=500, d=60)
    pre = svm.Preconditioner.from_sample(torch.as_tensor(x), rank=20)
    pre.set_reg(0.25)
    v = torch.randn(61, 3)
    torch.testing.assert_close(pre.to_w(pre.to_u(v)), v, atol=1e-4, rtol=1e-4)
    s = torch.as_tensor(x.T @ x / len(x))  # P = reg I + 2 V L V^T on the features, reg + 2 on the bias
    p = 0.25 * torch.eye(60) + 2 * pre.vecs @ torch.diag(pre.eigvals) @ pre.vecs.T
    torch.testing.assert_close(pre.to_u(pre.to_u(v))[:-1], p @ v[:-1], atol=1e-3, rtol=1e-3)
    top = torch.linalg.eigvalsh(s.double()).flip(0)[:20].float()
    torch.testing.assert_close(pre.eigvals, top, atol=1e-3, rtol=1e-3)  # all 500 rows sampled: exact eigenvalues


@pytest.mark.parametrize("C", [1e-3, 1e-1])
def test_streamed_matches_the_in_memory_solver(C):
    x, y = _problem()
    scaler = svm.Standardizer.fit(x)
    ref = svm.TorchL2SVM(C=C).fit(scaler.transform(x), y)
    streamed = svm.StreamedL2SVM(C=C, chunk=97, scaler=scaler, max_evals=500).fit(x, y)
    np.testing.assert_allclose(streamed.w[:-1].T.numpy(), ref.coef_, atol=2e-2, rtol=2e-2)
    assert (streamed.predict(x) == ref.predict(scaler.transform(x))).mean() > 0.99
    assert streamed.report.converged and streamed.report.relative_grad_norm <= svm.TOLERANCE


def test_rows_subset_and_float16_store_and_warm_start():
    x, y = _problem(seed=1)
    rows = np.sort(np.random.default_rng(0).choice(len(x), 400, replace=False))
    scaler = svm.Standardizer.fit(x[rows])
    ref = svm.TorchL2SVM(C=1e-2).fit(scaler.transform(x[rows]), y[rows])
    store = x.astype(np.float16)
    model = svm.StreamedL2SVM(C=1e-3, chunk=64, scaler=scaler, max_evals=500).fit(store, y[rows], rows)
    cold = svm.StreamedL2SVM(C=1e-2, chunk=64, scaler=scaler, max_evals=500).fit(store, y[rows], rows)
    model.C = 1e-2
    model.fit(store, y[rows], rows, warm_start=True)
    assert model.report.converged and cold.report.converged
    assert model.report.evals < cold.report.evals  # the path over C starts near the answer
    torch.testing.assert_close(model.report.reference, cold.report.reference)  # one criterion along the path
    held = np.setdiff1d(np.arange(len(x)), rows)
    agree = (model.predict(store, held) == ref.predict(scaler.transform(x[held]))).mean()
    assert agree > 0.98


def test_a_fit_out_of_budget_says_it_did_not_converge():
    x, y = _correlated()
    model = svm.StreamedL2SVM(C=1e-2, max_evals=3).fit(x, y)
    assert model.report.evals <= 4 and not model.report.converged
    assert model.report.relative_grad_norm > svm.TOLERANCE
    with pytest.raises(ValueError, match="reference"):
        svm.minimise(lambda w: (w.sum(), w), torch.ones(3, 2), max_evals=5)


@pytest.mark.parametrize("shape", [((50, 300), (300, 10)), ((300, 50), (50, 1))])
def test_thin_mm_is_the_plain_product_also_on_transposed_views(shape):
    (m, d), (_, k) = shape
    a, b = torch.randn(m, d), torch.randn(d, k)
    torch.testing.assert_close(svm.thin_mm(a, b), a @ b, rtol=1e-5, atol=1e-4)
    torch.testing.assert_close(svm.thin_mm(a.T.contiguous().T, b), a @ b, rtol=1e-5, atol=1e-4)
    assert svm.thin_mm(a, b).shape == (m, k)
