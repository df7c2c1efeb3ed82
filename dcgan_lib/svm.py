"""The linear L2-SVM of Paper §5 and the choice of its C.

LinearSVC's objective (squared hinge, L2 penalty, one-vs-rest) solved three ways: scikit-learn's
LinearSVC for small problems, a torch L-BFGS solver of the same objective for large ones (or a GPU),
and `StreamedL2SVM`, the same solver over a float16 feature store read chunk by chunk, so that
Table 1 at the paper's size (50,000 x 28,672 features) fits in a few GB of memory.

The two torch solvers differ only in where the features live (one tensor on the device, or a store
read in chunks and standardised on the fly); the objective with its gradient (`L2SVMObjective`), the
L-BFGS run (`minimise`), the one-vs-rest labels and the prediction are written once and shared.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.svm import LinearSVC
from tqdm.auto import tqdm

SOLVERS = ("sklearn", "torch")
SKLEARN_MAX_ENTRIES = 1_000_000  # "auto" uses LinearSVC up to this many n x d entries, the torch solver beyond


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
                r = (1 - t * (xc @ w_raw + b_raw)).clamp_min(0)  # (chunk, k)
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


def minimise(objective: L2SVMObjective, w0: torch.Tensor, *, max_iter: int, max_eval: int | None = None,
             tolerance_grad: float, tolerance_change: float) -> tuple[torch.Tensor, int, float]:
    """L-BFGS (strong Wolfe line search) from w0: the minimiser, the objective evaluations, the final |grad|."""
    w = w0.clone().requires_grad_(True)
    opt = torch.optim.LBFGS([w], lr=1, max_iter=max_iter, max_eval=max_eval, history_size=20,
                            tolerance_grad=tolerance_grad, tolerance_change=tolerance_change,
                            line_search_fn="strong_wolfe")
    evals = 0

    def closure():
        nonlocal evals
        evals += 1
        loss, w.grad = objective(w)
        return loss

    opt.step(closure)
    return w.detach(), evals, float(w.grad.norm())


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


class TorchL2SVM(_OneVsRest):
    """One-vs-rest L2-SVM with LinearSVC's exact objective (`L2SVMObjective`), solved in torch by L-BFGS.

    The features are one float32 tensor on the device (fast on a GPU); the caller standardises them.
    """

    def __init__(self, C: float = 1.0, max_iter: int = 1000, device: torch.device | str = "cpu"):
        self.C, self.max_iter, self.device = C, max_iter, torch.device(device)

    def fit(self, x: np.ndarray, y: np.ndarray) -> TorchL2SVM:
        """Minimise the objective from zero weights; the problem is convex, so the start is irrelevant."""
        self.classes_, targets = one_vs_rest_targets(y, self.device)
        x_t = torch.as_tensor(np.asarray(x, np.float32), device=self.device)  # (n, d)
        objective = L2SVMObjective(lambda: [(0, x_t)], targets, self.C)
        w0 = torch.zeros(x_t.shape[1] + 1, targets.shape[1], device=self.device)
        w, self.evals, self.grad_norm = minimise(objective, w0, max_iter=self.max_iter,
                                                 tolerance_grad=1e-9, tolerance_change=1e-12)
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


def svm_accuracy(x_train, y_train, x_eval, y_eval, C: float, solver: str = "sklearn",
                 device: torch.device | str = "cpu") -> float:
    """Fit an L2-SVM on (x_train, y_train) and return its accuracy on (x_eval, y_eval)."""
    model = make_svm(C, solver, device).fit(x_train, y_train)
    return float((model.predict(x_eval) == y_eval).mean())


@dataclass(frozen=True)
class Selection:
    """The C chosen on validation and the validation accuracy of every C tried."""

    C: float
    val_accuracy: dict[float, float]


def select_c(x_train, y_train, x_val, y_val, c_grid, solver: str = "sklearn",
             device: torch.device | str = "cpu", patience: int | None = None) -> Selection:
    """Pick C by validation accuracy; ties go to the smaller C (more regularised) (Paper §5.2).

    C runs from small to large. With `patience`, the path stops once that many Cs in a row score below
    the best so far: validation accuracy over C rises to one peak and falls, and the large Cs it then
    skips are the slow ones (L-BFGS needs about 6x the evaluations at C = 1e-2 as at 1e-4 on Table 1's
    features). `val_accuracy` holds the Cs actually fitted.
    """
    scores: dict[float, float] = {}
    below = 0
    for c in tqdm(sorted(c_grid), desc="C on validation", leave=False):
        scores[c] = svm_accuracy(x_train, y_train, x_val, y_val, c, solver, device)
        below = below + 1 if scores[c] < max(scores.values()) else 0
        if patience is not None and below >= patience:
            break
    best = max(scores.values())
    return Selection(C=min(c for c, s in scores.items() if s == best), val_accuracy=scores)


class StreamedL2SVM(_OneVsRest):
    """TorchL2SVM's objective over a compact feature store (e.g. float16), standardised on the fly.

    Rows are read `chunk` at a time (optionally a subset `rows` of the store) and cast to float32; the
    standardisation (x - mean) / scale is folded into the weights (`fold`), so a chunk costs one cast and
    two matrix products. `fit` can warm-start from the previous solution (a path over increasing C), and
    counts its function evaluations and final gradient norm, so convergence is on the record.
    """

    def __init__(self, C: float = 1.0, max_evals: int = 200, chunk: int = 4096, scaler: Standardizer | None = None,
                 device: torch.device | str = "cpu"):
        self.C, self.max_evals, self.chunk, self.scaler = C, max_evals, chunk, scaler
        self.device = torch.device(device)
        self.w: torch.Tensor | None = None  # (d + 1, k) in standardised space, kept for warm starts

    def _chunks(self, x, rows: np.ndarray | None):
        for start, part in row_chunks(x, self.chunk, rows):
            yield start, torch.from_numpy(np.asarray(part)).to(self.device, torch.float32)

    def _standardiser(self) -> tuple[torch.Tensor, torch.Tensor] | None:
        return None if self.scaler is None else self.scaler.tensors(self.device)

    def fit(self, x, y: np.ndarray, rows: np.ndarray | None = None, warm_start: bool = False) -> StreamedL2SVM:
        """Minimise 0.5 |w|^2 + 0.5 b^2 + C sum squared hinge over `rows` of x (all rows by default)."""
        self.classes_, targets = one_vs_rest_targets(y, self.device)
        if not (warm_start and self.w is not None and self.w.shape == (x.shape[1] + 1, targets.shape[1])):
            self.w = torch.zeros(x.shape[1] + 1, targets.shape[1], device=self.device)
        objective = L2SVMObjective(lambda: self._chunks(x, rows), targets, self.C, self._standardiser())
        self.w, self.evals, self.grad_norm = minimise(objective, self.w, max_iter=self.max_evals,
                                                      max_eval=self.max_evals, tolerance_grad=1e-7,
                                                      tolerance_change=1e-10)
        return self

    def _margins(self, x, rows: np.ndarray | None) -> np.ndarray:
        w_raw, b_raw = fold(self.w, self._standardiser())
        return np.concatenate([(xc @ w_raw + b_raw).cpu().numpy() for _, xc in self._chunks(x, rows)])
