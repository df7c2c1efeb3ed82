"""The choice of the L2-SVM's C on validation data (Paper §5: C by cross-validation).

`search_c` walks a grid of C from small to large with a validation score, stops after `patience` Cs below
the best, and widens the grid while the best C sits at either end, so that no chosen C is an edge of what
was tried; `Selection` records what was tried. `select_c` scores each C by one L2-SVM fit (`svm`).
The score functions given to it see training and validation data only.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from tqdm.auto import tqdm

from dcgan_lib.measure import svm

C_WIDEN_STEPS = 3  # extra Cs tried beyond each end of the grid while the best C sits at that end


@dataclass(frozen=True)
class Selection:
    """The C chosen on validation, the validation accuracy of every C tried, and how far the grid was widened.

    `grid` is every C fitted, sorted; `widened` counts the Cs added below and above the given grid; `at_edge`
    says the chosen C is still the smallest or largest C tried (the widening ran out of steps).
    """

    C: float
    val_accuracy: dict[float, float]
    grid: tuple[float, ...] = ()
    widened: dict[str, int] | None = None
    at_edge: bool = False

    def record(self) -> dict:
        """The search as a record entry: the grid tried, whether and how far it was widened, an edge left."""
        widened = self.widened or {"below": 0, "above": 0}
        return {"grid_tried": list(self.grid), "widened": bool(sum(widened.values())), "widened_by": widened,
                "at_edge": self.at_edge}


def search_c(score: Callable[[float], float], c_grid, patience: int | None = None,
             widen: int = C_WIDEN_STEPS, desc: str = "C on validation") -> Selection:
    """Pick the C of highest validation `score(C)`; ties go to the smaller C (more regularised) (Paper §5.2).

    C runs from small to large. With `patience`, the path stops once that many Cs in a row score below
    the best so far: validation accuracy over C rises to one peak and falls, and the large Cs it then
    skips are the slow ones. While the best C is the smallest (largest) C tried, the grid is extended
    below (above) by the ratio of its two end values, at most `widen` Cs each way, so that a best C at the
    edge of the grid is not mistaken for the best C. `score` sees only training and validation data.
    """
    grid = sorted(set(c_grid))
    if not grid:
        raise ValueError("the C grid is empty; give at least one C")
    scores: dict[float, float] = {}

    def best() -> float:
        top = max(scores.values())
        return min(c for c, s in scores.items() if s == top)

    below = 0
    for c in tqdm(grid, desc=desc, leave=False):
        scores[c] = float(score(c))
        below = below + 1 if scores[c] < max(scores.values()) else 0
        if patience is not None and below >= patience:
            break
    widened = {"below": 0, "above": 0}
    if len(grid) > 1:
        ratios = {"below": grid[0] / grid[1], "above": grid[-1] / grid[-2]}
        while True:
            tried, chosen = sorted(scores), best()
            side = "below" if chosen == tried[0] else "above" if chosen == tried[-1] else None
            if side is None or widened[side] >= widen:
                break
            edge = tried[0] if side == "below" else tried[-1]
            c = float(f"{edge * ratios[side]:.3g}")
            scores[c] = float(score(c))
            widened[side] += 1
    tried, chosen = sorted(scores), best()
    return Selection(C=chosen, val_accuracy={c: scores[c] for c in tried}, grid=tuple(tried), widened=widened,
                     at_edge=len(tried) < 2 or chosen in (tried[0], tried[-1]))


def select_c(x_train, y_train, x_val, y_val, c_grid, solver: str = "sklearn",
             device: torch.device | str = "cpu", patience: int | None = None, widen: int = C_WIDEN_STEPS
             ) -> Selection:
    """`search_c` with one L2-SVM fit per C on (x_train, y_train), scored by accuracy on (x_val, y_val).

    Large Cs are the slow ones to fit (a weaker L2 term, a worse-conditioned problem), which `patience`
    spares. `val_accuracy` holds the Cs actually fitted. Only training and validation data come in.
    """
    return search_c(lambda c: svm.svm_accuracy(x_train, y_train, x_val, y_val, c, solver, device), c_grid, patience,
                    widen)
