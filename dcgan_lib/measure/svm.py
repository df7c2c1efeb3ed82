"""The linear L2-SVM of Paper §5 (its C is chosen in `c_search`).

LinearSVC's objective (squared hinge, L2 penalty, one-vs-rest) solved three ways: scikit-learn's
LinearSVC for small problems, a torch L-BFGS solver of the same objective for large ones (or a GPU),
and `StreamedL2SVM`, the same solver over a float16 feature store read chunk by chunk, so that
Table 1 at the paper's size (50,000 x 28,672 features) fits in a few GB of memory.

The two torch solvers differ only in where the features live (one tensor on the device, or a store
read in chunks and standardised on the fly); the objective with its gradient (`L2SVMObjective`), the
preconditioned L-BFGS run (`minimise`) with its one stopping criterion (`TOLERANCE`), the one-vs-rest
labels and the prediction are written once and shared. Every torch fit reports whether it met the
criterion (`FitReport`).
"""
from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.svm import LinearSVC

SOLVERS = ("sklearn", "torch")
SKLEARN_MAX_ENTRIES = 1_000_000  # "auto" uses LinearSVC up to this many n x d entries, the torch solver beyond
# The torch solvers' stopping criterion, the one the tests and the records state: a fit has converged when, for
# every one-vs-rest class k, |grad f_k(w)| <= TOLERANCE |grad f_k(0)|. It is liblinear's criterion for this
# primal problem (-s 2): eps = 0.01 times min(#positives, #negatives) / n, which is 1e-3 for ten balanced classes.
TOLERANCE = 1e-3
PRECONDITION_ROWS = 3000  # rows sampled to estimate the features' leading second-moment directions
PRECONDITION_RANK = 1000  # how many of those directions the preconditioner rescales


# --- matrix products with few columns ------------------------------------------------------------

def thin_mm(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """a @ b for b with few columns (k classes), computed as (b^T a^T)^T.

    The same product, but on a CPU torch's BLAS runs the transposed form several times faster when b is thin:
    for a (2048, 28672) and b (28672, 10), one thread, 0.045 s against 0.108 s; for a (28672, 1000)^T, 0.019 s
    against 0.233 s. Every product of the solvers' with the weights (k columns) goes through here.
    """
    return (b.T @ a.T).T


# --- standardisation ---------------------------------------------------------------------------

def row_chunks(x, chunk: int, rows: np.ndarray | None = None) -> Iterator[tuple[int, np.ndarray]]:
    """(start, part): x (or its `rows`) `chunk` rows at a time, so a memmap is never read whole."""
    n = len(x) if rows is None else len(rows)
    for start in range(0, n, chunk):
        yield start, x[start:start + chunk] if rows is None else x[rows[start:start + chunk]]


@dataclass(frozen=True)
class Standardizer:
    """Per-feature mean and scale fitted on training features only (Paper §5; authors: train-set statistics)."""

    mean: np.ndarray
    scale: np.ndarray

    @classmethod
    def fit(cls, x: np.ndarray, chunk: int = 4096, rows: np.ndarray | None = None) -> Standardizer:
        """Mean and standard deviation of each column (of `rows` only, if given), in float64 chunk by chunk."""
        total, squares = np.zeros(x.shape[1]), np.zeros(x.shape[1])
        n = len(x) if rows is None else len(rows)
        for _, part in row_chunks(x, chunk, rows):
            part = np.asarray(part, np.float64)
            total += part.sum(0)
            squares += (part ** 2).sum(0)
        mean = total / n
        std = np.sqrt(np.maximum(squares / n - mean ** 2, 0.0))
        scale = np.where(std > 1e-6 * max(std.max(), 1e-12), std, 1.0)  # constant features stay 0
        return cls(mean.astype(np.float32), scale.astype(np.float32))

    def transform(self, x: np.ndarray) -> np.ndarray:
        """(x - mean) / scale as a new float32 array."""
        return (np.asarray(x, np.float32) - self.mean) / self.scale

    def tensors(self, device: torch.device | str) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean and scale as float32 tensors (d,) on `device`, for folding into the SVM's weights."""
        return torch.as_tensor(self.mean, device=device), torch.as_tensor(self.scale, device=device)


def standardize(train: np.ndarray, *others: np.ndarray) -> list[np.ndarray]:
    """Standardise train and every other array with the train statistics."""
    scaler = Standardizer.fit(train)
    return [scaler.transform(train)] + [scaler.transform(x) for x in others]


# --- the L2-SVM objective and its solver ---------------------------------------------------------

def one_vs_rest_targets(y, device: torch.device | str = "cpu") -> tuple[np.ndarray, torch.Tensor]:
    """The sorted classes and the one-vs-rest targets (n, k), +1 for the example's class and -1 elsewhere.

    Two classes give one column, +1 for the second class, as sklearn does.
    """
    y = np.asarray(y)
    classes = np.unique(y)
    y_idx = torch.as_tensor(np.searchsorted(classes, y), device=device)
    if len(classes) > 2:
        return classes, F.one_hot(y_idx, len(classes)).float() * 2 - 1
    return classes, (y_idx == 1).float().unsqueeze(1) * 2 - 1


def fold(w: torch.Tensor, standardiser: tuple[torch.Tensor, torch.Tensor] | None = None
         ) -> tuple[torch.Tensor, torch.Tensor]:
    """Weights and bias that act on RAW features: x @ w_raw + b_raw = standardised(x) @ w + b.

    w is (d + 1, k), the last row the bias; `standardiser` is (mean, scale), None for features
    that are already standardised (or meant raw).
    """
    if standardiser is None:
        return w[:-1], w[-1]
    mean, scale = (t.unsqueeze(1) for t in standardiser)
    w_raw = w[:-1] / scale
    return w_raw, w[-1] - (mean * w_raw).sum(0)


class L2SVMObjective:
    """LinearSVC's one-vs-rest L2-SVM objective, divided by C n, with its gradient, summed chunk by chunk.

    Per class k: 0.5 |w_k|^2 + 0.5 b_k^2 + C sum_i max(0, 1 - t_ik (w_k.x_i + b_k))^2, t_ik = +-1; the
    bias is penalised like liblinear's (intercept_scaling=1). Dividing by C n keeps the minimiser and
    conditions L-BFGS better. `chunks()` yields (start, float32 rows on the device) afresh on each call;
    with a `standardiser` (mean, scale) the weights act on standardised features, folded into the raw
    ones so that a chunk costs two matrix products, and the gradient is chained back through the fold.
    """

    def __init__(self, chunks: Callable[[], Iterable[tuple[int, torch.Tensor]]], targets: torch.Tensor, C: float,
                 standardiser: tuple[torch.Tensor, torch.Tensor] | None = None):
        self.chunks, self.targets, self.standardiser = chunks, targets, standardiser
        self.n = len(targets)
        self.reg = 1.0 / (C * self.n)

    def __call__(self, w: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Loss and gradient at w (d + 1, k), computed without autograd (no graph over the chunks)."""
        n = self.n
        with torch.no_grad():
            w_raw, b_raw = fold(w, self.standardiser)
            loss = 0.5 * self.reg * w.pow(2).sum()
            grad_raw_t = torch.zeros(w_raw.shape[1], w_raw.shape[0], device=w.device)  # (k, d)
            grad_b = torch.zeros_like(b_raw)
            for start, xc in self.chunks():
                t = self.targets[start:start + len(xc)]
                r = (1 - t * (thin_mm(xc, w_raw) + b_raw)).clamp_min(0)  # (chunk, k)
                loss += r.pow(2).sum() / n
                tr = -2 * t * r / n
                grad_raw_t += tr.T @ xc  # (k, d): 3x faster here than xc.T @ tr
                grad_b += tr.sum(0)
            grad_raw = grad_raw_t.T
            if self.standardiser is not None:  # chain rule back through the folded standardisation
                mean, scale = self.standardiser
                grad_w = (grad_raw - mean.unsqueeze(1) * grad_b) / scale.unsqueeze(1)
            else:
                grad_w = grad_raw
            return loss, torch.cat([grad_w, grad_b.unsqueeze(0)]) + self.reg * w


class Preconditioner:
    """A fixed change of variables w = P^(-1/2) u under which L-BFGS sees a Hessian close to the identity.

    The objective (divided by C n) has the Hessian reg I + (2/n) X_A^T X_A, X_A the (standardised) examples
    inside the margin; at the small Cs Table 1 picks nearly all are, so it is close to reg I + 2 S, S the
    features' second moments X^T X / n. Their leading eigenpairs (lambda_j, v_j), estimated on a sample of
    rows, give P = reg I + 2 V diag(lambda) V^T (the bias row: reg + 2). Along the leading directions the
    Hessian's eigenvalues (up to 2 lambda_1 + reg, thousands of times reg on D's features) are scaled to about
    1, and the curvature L-BFGS must still learn is the tail's. On D's full-width features (10,000 rows, C n
    as in Table 1) this cuts the evaluations to a relative gradient of 1e-3 from beyond 300 to about 100.
    """

    def __init__(self, vecs: torch.Tensor, eigvals: torch.Tensor):
        self.vecs, self.eigvals = vecs, eigvals  # (d, r) orthonormal columns, (r,)
        self.set_reg(1.0)

    @classmethod
    def from_sample(cls, xs: torch.Tensor, rank: int = PRECONDITION_RANK) -> Preconditioner:
        """The leading `rank` eigenpairs of xs^T xs / m from a float32 sample of standardised rows xs (m, d)."""
        m, d = xs.shape
        if d <= m:  # the d x d second-moment matrix directly
            lam, vecs = torch.linalg.eigh((xs.T @ xs).double() / m)
        else:  # through the m x m Gram matrix: S v = lambda v with v = xs^T u / sqrt(m lambda)
            lam, u = torch.linalg.eigh((xs @ xs.T).double() / m)
            vecs = None
        lam = lam.flip(0)  # largest first
        keep = min(rank, int((lam > 1e-8 * lam[0].clamp_min(1e-30)).sum()))
        lam = lam[:keep]
        if vecs is None:
            vecs = (xs.T @ u.flip(1)[:, :keep].float()) / torch.sqrt(m * lam).float()
        else:
            vecs = vecs.flip(1)[:, :keep]
        return cls(vecs.float(), lam.float())

    def set_reg(self, reg: float) -> None:
        """Scale for the objective whose L2 weight (after dividing by C n) is `reg` = 1 / (C n)."""
        self.reg = reg
        top = reg + 2 * self.eigvals
        self._half = (top.sqrt(), top.rsqrt())  # P^(1/2), P^(-1/2) along the leading directions
        self._rest = (reg ** 0.5, reg ** -0.5)  # ... and on their complement
        self._bias = ((reg + 2) ** 0.5, (reg + 2) ** -0.5)

    def _apply(self, v: torch.Tensor, power: int) -> torch.Tensor:
        """P^(1/2) v (power 0) or P^(-1/2) v (power 1) for v (d + 1, k), the last row the bias."""
        w, vecs = v[:-1], self.vecs
        proj = thin_mm(vecs.T, w)  # (r, k)
        # rest (w - V V^T w) + V half V^T w, with one product by V
        out = self._rest[power] * w + thin_mm(vecs, (self._half[power] - self._rest[power]).unsqueeze(1) * proj)
        return torch.cat([out, v[-1:] * self._bias[power]])

    def to_w(self, u: torch.Tensor) -> torch.Tensor:
        """w = P^(-1/2) u (also maps a gradient in w to the gradient in u: P^(-1/2) is symmetric)."""
        return self._apply(u, 1)

    def to_u(self, w: torch.Tensor) -> torch.Tensor:
        """u = P^(1/2) w (a warm start's weights in L-BFGS's variables)."""
        return self._apply(w, 0)


@dataclass(frozen=True)
class FitReport:
    """How a torch fit ended: objective evaluations, the stopping criterion's value, whether it was met."""

    evals: int
    relative_grad_norm: float  # max over classes of |grad f_k(w)| / |grad f_k(0)|
    converged: bool  # relative_grad_norm <= tolerance
    tolerance: float
    reference: torch.Tensor  # |grad f_k(0)| per class (k,), reusable for warm-started fits on the same rows

    def record(self) -> dict:
        """The report as a record entry (criterion stated with its value)."""
        return {"evals": self.evals, "relative_grad_norm": self.relative_grad_norm, "converged": self.converged,
                "tolerance": self.tolerance,
                "criterion": "max over classes of |grad f_k(w)| / |grad f_k(0)| <= tolerance"}


class _Converged(Exception):
    """Raised inside L-BFGS's closure when the stopping criterion is met at the point just evaluated."""


def minimise(objective: L2SVMObjective, w0: torch.Tensor, *, max_evals: int, tolerance: float = TOLERANCE,
             reference: torch.Tensor | None = None, precondition: Preconditioner | None = None
             ) -> tuple[torch.Tensor, FitReport]:
    """Preconditioned L-BFGS (strong Wolfe line search) from w0 until the criterion holds or `max_evals` runs out.

    The criterion is `TOLERANCE`'s: every class's gradient norm at most `tolerance` times its norm at w = 0
    (`reference`; None: taken from the first evaluation, so w0 must then be zero). L-BFGS runs on
    u = P^(1/2) w (`precondition`, None: u = w); the criterion is checked on the gradient in w after
    every evaluation, and the run stops at the first point that meets it.
    """
    if reference is None and bool(w0.any()):
        raise ValueError("a warm start needs the reference gradient norms at w = 0 (reference=...)")
    to_w = precondition.to_w if precondition is not None else (lambda v: v)
    u = (precondition.to_u(w0) if precondition is not None else w0.clone()).requires_grad_(True)
    opt = torch.optim.LBFGS([u], lr=1, max_iter=max_evals, max_eval=max_evals, history_size=20,
                            tolerance_grad=0.0, tolerance_change=0.0, line_search_fn="strong_wolfe")
    evals, recent = 0, []  # recent: (u, relative norm) of the last evaluations, to report the final point's

    def evaluate(point: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, float]:
        nonlocal evals, reference
        evals += 1
        with torch.no_grad():
            loss, grad = objective(to_w(point))
        norms = grad.norm(dim=0)
        if reference is None:
            reference = norms.clamp_min(1e-30)
        return loss, grad, float((norms / reference).max())

    def closure():
        loss, grad, rel = evaluate(u.detach())
        u.grad = to_w(grad)  # the gradient in u: P^(-1/2) grad (P symmetric)
        recent.append((u.detach().clone(), rel))
        del recent[:-4]
        if rel <= tolerance:
            raise _Converged
        return loss

    try:
        opt.step(closure)
    except _Converged:
        pass
    u = u.detach()
    rel = next((r for point, r in reversed(recent) if torch.equal(point, u)), None)
    if rel is None:  # L-BFGS ended on a point it had evaluated earlier than the last few: evaluate it again
        rel = evaluate(u)[2]
    return to_w(u), FitReport(evals, rel, rel <= tolerance, tolerance, reference)


class _OneVsRest:
    """Prediction shared by the torch solvers once fitted: `_margins` gives w.x + b of every class (n, k)."""

    classes_: np.ndarray

    def _margins(self, x, rows: np.ndarray | None) -> np.ndarray:
        raise NotImplementedError

    def decision_function(self, x, rows: np.ndarray | None = None) -> np.ndarray:
        """Margins w.x + b of every class (of `rows` of x only, if given); one column for two classes."""
        scores = self._margins(x, rows)
        return scores[:, 0] if scores.shape[1] == 1 else scores

    def predict(self, x, rows: np.ndarray | None = None) -> np.ndarray:
        """The class with the largest margin (one-vs-rest)."""
        scores = self.decision_function(x, rows)
        if scores.ndim == 1:
            return self.classes_[(scores > 0).astype(int)]
        return self.classes_[scores.argmax(1)]


def sample_rows(n: int, m: int = PRECONDITION_ROWS, seed: int = 0) -> np.ndarray:
    """min(n, m) sorted row indices drawn without replacement (the preconditioner's sample)."""
    return np.arange(n) if n <= m else np.sort(np.random.default_rng(seed).choice(n, m, replace=False))


class TorchL2SVM(_OneVsRest):
    """One-vs-rest L2-SVM with LinearSVC's exact objective (`L2SVMObjective`), solved in torch by L-BFGS.

    The features are one float32 tensor on the device (fast on a GPU); the caller standardises them.
    The fit stops at `TOLERANCE` (or after `max_iter` evaluations); `report` says which.
    """

    def __init__(self, C: float = 1.0, max_iter: int = 1000, device: torch.device | str = "cpu",
                 tolerance: float = TOLERANCE):
        self.C, self.max_iter, self.device, self.tolerance = C, max_iter, torch.device(device), tolerance

    def fit(self, x: np.ndarray, y: np.ndarray) -> TorchL2SVM:
        """Minimise the objective from zero weights; the problem is convex, so the start is irrelevant."""
        self.classes_, targets = one_vs_rest_targets(y, self.device)
        x_t = torch.as_tensor(np.asarray(x, np.float32), device=self.device)  # (n, d)
        objective = L2SVMObjective(lambda: [(0, x_t)], targets, self.C)
        pre = Preconditioner.from_sample(x_t[torch.as_tensor(sample_rows(len(x_t)), device=self.device)])
        pre.set_reg(objective.reg)
        w0 = torch.zeros(x_t.shape[1] + 1, targets.shape[1], device=self.device)
        w, self.report = minimise(objective, w0, max_evals=self.max_iter, tolerance=self.tolerance, precondition=pre)
        self.coef_ = w[:-1].T.cpu().numpy()  # (k, d)
        self.intercept_ = w[-1].cpu().numpy()  # (k,)
        return self

    def _margins(self, x, rows: np.ndarray | None) -> np.ndarray:
        x = x if rows is None else x[rows]
        return np.asarray(x, np.float32) @ self.coef_.T + self.intercept_


def resolve_solver(solver: str, n: int, d: int) -> str:
    """"auto": sklearn's LinearSVC for small problems, the torch solver (same objective) for large ones."""
    if solver == "auto":
        return "sklearn" if n * d <= SKLEARN_MAX_ENTRIES else "torch"
    if solver not in SOLVERS:
        raise ValueError(f"solver must be auto or one of {SOLVERS}, got {solver!r}")
    return solver


def make_svm(C: float, solver: str = "sklearn", device: torch.device | str = "cpu"):
    """An L2-SVM: LinearSVC (squared hinge, L2) or the torch solver of the same objective (Paper §5)."""
    if solver == "sklearn":  # dual coordinate descent: 3x faster than the primal here at the small Cs we pick
        return LinearSVC(C=C, loss="squared_hinge", penalty="l2", dual=True, max_iter=2000)
    if solver == "torch":
        return TorchL2SVM(C=C, device=device)
    raise ValueError(f"solver must be one of {SOLVERS}, got {solver!r}")


def fit_record(model) -> dict:
    """How a fitted L2-SVM's solver ended, as a record entry: its stopping criterion, stated, and whether it was met.

    The torch solvers report `TOLERANCE`'s criterion (`FitReport`); LinearSVC (liblinear's dual coordinate
    descent) stops when its projected gradient falls below `tol`, or at `max_iter` passes, not converged.
    """
    if isinstance(model, (TorchL2SVM, StreamedL2SVM)):
        return model.report.record()
    iterations = int(np.max(model.n_iter_))
    return {"iterations": iterations, "max_iter": model.max_iter, "converged": iterations < model.max_iter,
            "tolerance": model.tol, "criterion": "liblinear dual coordinate descent: projected gradient below "
                                                 "tolerance before max_iter passes"}


def fit_and_score(x_train, y_train, x_eval, y_eval, C: float, solver: str = "sklearn",
                  device: torch.device | str = "cpu") -> tuple[np.ndarray, dict]:
    """Fit an L2-SVM on (x_train, y_train); per example of (x_eval, y_eval) whether it is classified right, and
    how the fit ended (`fit_record`)."""
    model = make_svm(C, solver, device).fit(x_train, y_train)
    return model.predict(x_eval) == np.asarray(y_eval), fit_record(model)


def svm_correct(x_train, y_train, x_eval, y_eval, C: float, solver: str = "sklearn",
                device: torch.device | str = "cpu") -> np.ndarray:
    """Fit an L2-SVM on (x_train, y_train); per example of (x_eval, y_eval), whether it is classified right."""
    return fit_and_score(x_train, y_train, x_eval, y_eval, C, solver, device)[0]


def svm_accuracy(x_train, y_train, x_eval, y_eval, C: float, solver: str = "sklearn",
                 device: torch.device | str = "cpu") -> float:
    """Fit an L2-SVM on (x_train, y_train) and return its accuracy on (x_eval, y_eval)."""
    return float(svm_correct(x_train, y_train, x_eval, y_eval, C, solver, device).mean())


class StreamedL2SVM(_OneVsRest):
    """TorchL2SVM's objective over a compact feature store (e.g. float16), standardised on the fly.

    Rows are read `chunk` at a time (optionally a subset `rows` of the store) and cast to float32 into one
    reused buffer; the standardisation (x - mean) / scale is folded into the weights (`fold`), so a chunk
    costs one cast and two matrix products. `fit` can warm-start from given weights (a path over C), stops at
    `TOLERANCE` or after `max_evals` evaluations, and keeps its `report` (evaluations, criterion, converged).
    The preconditioner and the reference gradient norms depend only on the rows, not on C: they are computed
    once per set of rows and reused along the path.
    """

    def __init__(self, C: float = 1.0, max_evals: int = 200, chunk: int = 2048, scaler: Standardizer | None = None,
                 device: torch.device | str = "cpu", tolerance: float = TOLERANCE):
        self.C, self.max_evals, self.chunk, self.scaler, self.tolerance = C, max_evals, chunk, scaler, tolerance
        self.device = torch.device(device)
        self.w: torch.Tensor | None = None  # (d + 1, k) in standardised space, kept for warm starts
        self._rows_key, self._pre, self._reference = None, None, None

    def _chunks(self, x, rows: np.ndarray | None):
        buffer = torch.empty(min(self.chunk, len(x) if rows is None else len(rows)), x.shape[1], device=self.device)
        for start, part in row_chunks(x, self.chunk, rows):
            xc = buffer[:len(part)]
            xc.copy_(torch.from_numpy(np.asarray(part)))  # into a reused buffer: 7x faster than a fresh cast
            yield start, xc

    def _standardiser(self) -> tuple[torch.Tensor, torch.Tensor] | None:
        return None if self.scaler is None else self.scaler.tensors(self.device)

    def _prepare(self, x, rows: np.ndarray | None) -> None:
        """The preconditioner for these rows (from a standardised sample of them), once per set of rows."""
        key = (id(x), None if rows is None else hash(np.asarray(rows).tobytes()))
        if key == self._rows_key:
            return
        n = len(x) if rows is None else len(rows)
        picked = sample_rows(n)
        sample = np.asarray(x[picked if rows is None else np.asarray(rows)[picked]], np.float32)
        if self.scaler is not None:
            sample = self.scaler.transform(sample)
        self._pre = Preconditioner.from_sample(torch.as_tensor(sample, device=self.device))
        self._rows_key, self._reference = key, None

    def fit(self, x, y: np.ndarray, rows: np.ndarray | None = None, warm_start: bool = False,
            w0: torch.Tensor | None = None) -> StreamedL2SVM:
        """Minimise 0.5 |w|^2 + 0.5 b^2 + C sum squared hinge over `rows` of x (all rows by default).

        Starts from `w0` if given, else (with `warm_start`) from the last fit's weights, else from zero.
        """
        self.classes_, targets = one_vs_rest_targets(y, self.device)
        shape = (x.shape[1] + 1, targets.shape[1])
        start = w0 if w0 is not None else self.w if warm_start else None
        if start is None or tuple(start.shape) != shape:
            start = torch.zeros(shape, device=self.device)
        self._prepare(x, rows)
        objective = L2SVMObjective(lambda: self._chunks(x, rows), targets, self.C, self._standardiser())
        self._pre.set_reg(objective.reg)
        if self._reference is None and bool(start.any()):  # warm start on new rows: |grad f(0)| takes one pass
            self._reference = objective(torch.zeros(shape, device=self.device))[1].norm(dim=0).clamp_min(1e-30)
        self.w, self.report = minimise(objective, start.clone(), max_evals=self.max_evals, tolerance=self.tolerance,
                                       reference=self._reference, precondition=self._pre)
        self._reference = self.report.reference  # the same for every C on these rows (the objective is / C n)
        return self

    def _margins(self, x, rows: np.ndarray | None) -> np.ndarray:
        w_raw, b_raw = fold(self.w, self._standardiser())
        return np.concatenate([(thin_mm(xc, w_raw) + b_raw).cpu().numpy() for _, xc in self._chunks(x, rows)])
