"""The linear L2-SVM of Paper §5 and the choice of its C.

LinearSVC's objective (squared hinge, L2 penalty, one-vs-rest) solved three ways: scikit-learn's
LinearSVC for small problems, a torch L-BFGS solver of the same objective for large ones (or a GPU),
and `StreamedL2SVM`, the same solver over a float16 feature store read chunk by chunk, so that
Table 1 at the paper's size (50,000 x 28,672 features) fits in a few GB of memory.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.svm import LinearSVC
from tqdm.auto import tqdm

SOLVERS = ("sklearn", "torch")
SKLEARN_MAX_ENTRIES = 1_000_000  # "auto" uses LinearSVC up to this many n x d entries, the torch solver beyond


# --- standardisation ---------------------------------------------------------------------------

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
        for start in range(0, n, chunk):
            part = x[start:start + chunk] if rows is None else x[rows[start:start + chunk]]
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


def standardize(train: np.ndarray, *others: np.ndarray) -> list[np.ndarray]:
    """Standardise train and every other array with the train statistics."""
    scaler = Standardizer.fit(train)
    return [scaler.transform(train)] + [scaler.transform(x) for x in others]


# --- the L2-SVM ----------------------------------------------------------------------------------

class TorchL2SVM:
    """One-vs-rest L2-SVM with LinearSVC's exact objective, solved in torch by L-BFGS (fast on a GPU).

    Per class k: 0.5 |w_k|^2 + 0.5 b_k^2 + C sum_i max(0, 1 - t_ik (w_k.x_i + b_k))^2, t_ik = +-1;
    the bias is penalised like liblinear's (intercept_scaling=1).
    """

    def __init__(self, C: float = 1.0, max_iter: int = 1000, device: torch.device | str = "cpu"):
        self.C, self.max_iter, self.device = C, max_iter, torch.device(device)

    def fit(self, x: np.ndarray, y: np.ndarray) -> TorchL2SVM:
        """Minimise the objective from zero weights; the problem is convex, so the start is irrelevant."""
        self.classes_ = np.unique(y)
        x_t = torch.as_tensor(np.asarray(x, np.float32), device=self.device)  # (n, d)
        y_idx = torch.as_tensor(np.searchsorted(self.classes_, y), device=self.device)
        n, k = len(x_t), len(self.classes_)
        if k == 2:  # one decision function, +1 for the second class, as sklearn does
            targets = (y_idx == 1).float().unsqueeze(1) * 2 - 1  # (n, 1)
        else:
            targets = F.one_hot(y_idx, k).float() * 2 - 1  # (n, k)
        w = torch.zeros(x_t.shape[1] + 1, targets.shape[1], device=self.device, requires_grad=True)
        opt = torch.optim.LBFGS([w], lr=1, max_iter=self.max_iter, history_size=20,
                                tolerance_grad=1e-9, tolerance_change=1e-12, line_search_fn="strong_wolfe")
        scale = 1.0 / (self.C * n)  # objective / (C n): same minimiser, better conditioned

        def closure():
            opt.zero_grad()
            margin = x_t @ w[:-1] + w[-1]  # (n, k)
            loss = 0.5 * scale * w.pow(2).sum() + (1 - targets * margin).clamp_min(0).pow(2).sum() / n
            loss.backward()
            return loss

        opt.step(closure)
        self.coef_ = w[:-1].detach().T.cpu().numpy()  # (k, d)
        self.intercept_ = w[-1].detach().cpu().numpy()  # (k,)
        return self

    def decision_function(self, x: np.ndarray) -> np.ndarray:
        """Margins w.x + b of every class."""
        scores = np.asarray(x, np.float32) @ self.coef_.T + self.intercept_
        return scores[:, 0] if scores.shape[1] == 1 else scores

    def predict(self, x: np.ndarray) -> np.ndarray:
        """The class with the largest margin (one-vs-rest)."""
        scores = self.decision_function(x)
        if scores.ndim == 1:
            return self.classes_[(scores > 0).astype(int)]
        return self.classes_[scores.argmax(1)]


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
             device: torch.device | str = "cpu") -> Selection:
    """Pick C by validation accuracy; ties go to the smaller C (more regularised) (Paper §5.2)."""
    scores = {c: svm_accuracy(x_train, y_train, x_val, y_val, c, solver, device)
              for c in tqdm(sorted(c_grid), desc="C on validation", leave=False)}
    best = max(scores.values())
    return Selection(C=min(c for c, s in scores.items() if s == best), val_accuracy=scores)


class StreamedL2SVM:
    """TorchL2SVM's objective over a compact feature store (e.g. float16), standardised on the fly.

    Rows are read `chunk` at a time (optionally a subset `rows` of the store) and cast to float32; the
    standardisation (x - mean) / scale is folded into the weights, so a chunk costs one cast and two
    matrix products. `fit` can warm-start from the previous solution (a path over increasing C), and
    counts its function evaluations and final gradient norm, so convergence is on the record.
    """

    def __init__(self, C: float = 1.0, max_evals: int = 200, chunk: int = 4096, scaler: Standardizer | None = None,
                 device: torch.device | str = "cpu"):
        self.C, self.max_evals, self.chunk, self.scaler = C, max_evals, chunk, scaler
        self.device = torch.device(device)
        self.w: torch.Tensor | None = None  # (d + 1, k) in standardised space, kept for warm starts

    def _chunks(self, x, rows: np.ndarray | None):
        n = len(x) if rows is None else len(rows)
        for start in range(0, n, self.chunk):
            part = x[start:start + self.chunk] if rows is None else x[rows[start:start + self.chunk]]
            yield start, torch.from_numpy(np.asarray(part)).to(self.device, torch.float32)

    def _folded(self, w: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Weights and bias that act on RAW features: x @ w_raw + b_raw = standardised(x) @ w + b."""
        if self.scaler is None:
            return w[:-1], w[-1]
        scale = torch.as_tensor(self.scaler.scale, device=self.device).unsqueeze(1)
        mean = torch.as_tensor(self.scaler.mean, device=self.device).unsqueeze(1)
        w_raw = w[:-1] / scale
        return w_raw, w[-1] - (mean * w_raw).sum(0)

    def fit(self, x, y: np.ndarray, rows: np.ndarray | None = None, warm_start: bool = False) -> StreamedL2SVM:
        """Minimise 0.5 |w|^2 + 0.5 b^2 + C sum squared hinge over `rows` of x (all rows by default)."""
        y = np.asarray(y)
        self.classes_ = np.unique(y)
        y_idx = torch.as_tensor(np.searchsorted(self.classes_, y), device=self.device)
        n, k = len(y_idx), len(self.classes_)
        targets = (F.one_hot(y_idx, k).float() * 2 - 1) if k > 2 else ((y_idx == 1).float().unsqueeze(1) * 2 - 1)
        if not (warm_start and self.w is not None and self.w.shape == (x.shape[1] + 1, targets.shape[1])):
            self.w = torch.zeros(x.shape[1] + 1, targets.shape[1], device=self.device)
        w = self.w.clone().requires_grad_(True)
        scale_obj = 1.0 / (self.C * n)
        opt = torch.optim.LBFGS([w], lr=1, max_iter=self.max_evals, max_eval=self.max_evals, history_size=20,
                                tolerance_grad=1e-7, tolerance_change=1e-10, line_search_fn="strong_wolfe")
        self.evals = 0
        mean = None if self.scaler is None else torch.as_tensor(self.scaler.mean, device=self.device)
        scale = None if self.scaler is None else torch.as_tensor(self.scaler.scale, device=self.device)

        def closure():
            self.evals += 1
            with torch.no_grad():
                w_raw, b_raw = self._folded(w)
                loss = 0.5 * scale_obj * w.pow(2).sum()
                grad_raw_t = torch.zeros(w_raw.shape[1], w_raw.shape[0], device=self.device)  # (k, d)
                grad_b = torch.zeros_like(b_raw)
                for start, xc in self._chunks(x, rows):
                    t = targets[start:start + len(xc)]
                    r = (1 - t * (xc @ w_raw + b_raw)).clamp_min(0)  # (chunk, k)
                    loss += r.pow(2).sum() / n
                    tr = -2 * t * r / n
                    grad_raw_t += tr.T @ xc  # (k, d): 3x faster here than xc.T @ tr
                    grad_b += tr.sum(0)
                grad_raw = grad_raw_t.T
                if self.scaler is not None:  # chain rule back through the folded standardisation
                    grad_w = (grad_raw - mean.unsqueeze(1) * grad_b) / scale.unsqueeze(1)
                else:
                    grad_w = grad_raw
                w.grad = torch.cat([grad_w, grad_b.unsqueeze(0)]) + scale_obj * w
            return loss

        opt.step(closure)
        self.w = w.detach()
        self.grad_norm = float(w.grad.norm())
        return self

    def decision_function(self, x, rows: np.ndarray | None = None) -> np.ndarray:
        w_raw, b_raw = self._folded(self.w)
        out = [(xc @ w_raw + b_raw).cpu().numpy() for _, xc in self._chunks(x, rows)]
        scores = np.concatenate(out)
        return scores[:, 0] if scores.shape[1] == 1 else scores

    def predict(self, x, rows: np.ndarray | None = None) -> np.ndarray:
        scores = self.decision_function(x, rows)
        if scores.ndim == 1:
            return self.classes_[(scores > 0).astype(int)]
        return self.classes_[scores.argmax(1)]
