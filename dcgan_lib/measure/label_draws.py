"""The authors' SVHN label-draw protocol (Paper §5.2): C by mean validation error over label draws, then the
test error as mean +- 1.96 std over many draws of 1000 class-balanced labels.

The draws come from dcgan_lib.measure.probe_data.class_balanced_draw; the fits are dcgan_lib.measure.svm's.
Choosing C never sees the test digits (`c_over_draws` takes the pool and validation digits only).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from tqdm.auto import tqdm

from dcgan_lib.measure.c_search import Selection, search_c
from dcgan_lib.measure.probe_data import class_balanced_draw
from dcgan_lib.measure.probe_settings import ProbeSettings
from dcgan_lib.measure.svm import resolve_solver, svm_accuracy, svm_correct
from dcgan_lib.records.results import stopwatch


@dataclass(frozen=True)
class DrawResult:
    """Test error of an L2-SVM over many class-balanced label draws (Paper §5.2: mean +- 1.96 std)."""

    C: float
    val_error_by_c: dict[float, float]
    test_errors: tuple[float, ...]
    solver: str = "sklearn"
    solver_check: dict | None = None  # the first test draw refitted with the other solver
    test_correct: np.ndarray | None = None  # (n_test,) per test image, how many of the draws got it right
    c_search: dict | None = None  # Selection.record(): the C grid tried, widened or not, best still at an edge

    @property
    def mean(self) -> float:
        """Mean test error over the draws."""
        return float(np.mean(self.test_errors))

    @property
    def ci95(self) -> float:
        """1.96 standard deviations of the test error over draws, as the authors report."""
        return float(1.96 * np.std(self.test_errors))


def c_over_draws(x_pool, y_pool, x_val, y_val, settings: ProbeSettings, rng: np.random.Generator,
                 solver: str = "sklearn", device: torch.device | str = "cpu") -> tuple[Selection, dict[float, float]]:
    """The authors' choice of C: mean validation error over `n_select_draws` label draws per C (Paper §5.2).

    Sees only the label pool and the validation digits. Returns the selection and the mean error per C.
    """
    errors: dict[float, float] = {}

    def score(c: float) -> float:
        errs = []
        for _ in range(settings.n_select_draws):
            idx = class_balanced_draw(y_pool, settings.n_labels, rng)
            errs.append(1 - svm_accuracy(x_pool[idx], y_pool[idx], x_val, y_val, c, solver, device))
        errors[c] = float(np.mean(errs))
        return -errors[c]

    sel = search_c(score, settings.c_grid, desc="C over draws")
    return sel, {c: errors[c] for c in sel.grid}


def svm_over_draws(x_pool, y_pool, x_val, y_val, x_test, y_test, settings: ProbeSettings,
                   solver: str = "auto", device: torch.device | str = "cpu", seed: int = 0,
                   check: bool = False) -> DrawResult:
    """The authors' SVHN protocol: C by mean validation error over draws, then test error over many draws.

    C is chosen by `c_over_draws`, which never sees the test digits. Per test digit, the number of draws
    that classify it right is kept (for paired comparisons with other rows on the same digits). With
    `check`, the first test draw is also fitted with the other solver and both errors are kept.
    """
    rng = np.random.default_rng(seed)
    solver = resolve_solver(solver, settings.n_labels, x_pool.shape[1])
    sel, val_error = c_over_draws(x_pool, y_pool, x_val, y_val, settings, rng, solver, device)
    best_c = sel.C
    test_errors, solver_check, correct = [], None, np.zeros(len(y_test), np.int64)
    for _ in tqdm(range(settings.n_draws), desc="test draws", leave=False):
        idx = class_balanced_draw(y_pool, settings.n_labels, rng)
        right = svm_correct(x_pool[idx], y_pool[idx], x_test, y_test, best_c, solver, device)
        correct += right
        test_errors.append(1 - float(right.mean()))
        if check and solver_check is None:
            other = "sklearn" if solver == "torch" else "torch"
            with stopwatch() as elapsed:
                other_err = 1 - svm_accuracy(x_pool[idx], y_pool[idx], x_test, y_test, best_c, other, device)
            solver_check = {f"{solver}_error": test_errors[0], f"{other}_error": other_err, "C": best_c,
                            f"{other}_s": round(elapsed(), 1),
                            "difference_points": round(100 * abs(other_err - test_errors[0]), 3)}
    return DrawResult(best_c, val_error, tuple(test_errors), solver, solver_check, correct, sel.record())
