"""The probes' data pieces (Paper §5.2): class-balanced label draws, the SVHN splits, and the containers
every row of Tables 1 and 2 reads.

The paper's SVHN split (validation digits off SVHN train) and the offline mirror's (pool, validation and
test from the labelled test digits) are index sets (`Split`); `ProbeData` holds one protocol's labelled
images with their provenance. dcgan_lib.measure.probes fills them and runs the protocols on them.
"""
from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from dcgan_lib.data import registry


def class_balanced_draw(labels: np.ndarray, n: int, rng: np.random.Generator,
                        pool: np.ndarray | None = None) -> np.ndarray:
    """n indices (from `pool`, default all), n / classes of each class, without replacement (Paper §5.2)."""
    labels = np.asarray(labels)
    pool = np.arange(len(labels)) if pool is None else np.asarray(pool)
    classes = np.unique(labels[pool])
    if n % len(classes):
        raise ValueError(f"cannot draw {n} class-balanced examples from {len(classes)} classes")
    per = n // len(classes)
    picks = []
    for c in classes:
        members = pool[labels[pool] == c]
        if len(members) < per:
            raise ValueError(f"class {c} has {len(members)} examples in the pool, {per} needed; "
                             "use a larger pool or fewer labels")
        picks.append(rng.choice(members, per, replace=False))
    return np.sort(np.concatenate(picks))


@dataclass(frozen=True)
class Split:
    """Index sets of one protocol: labelled draws come from `pool`, C is picked on `val`, error is on `test`."""

    pool: np.ndarray
    val: np.ndarray
    test: np.ndarray
    protocol: str
    description: str


OFFLINE_MEASURED_FROM = registry.SVHN_MEASURED_FROM  # offline SVHN: test digits from here on are measured only


def offline_svhn_split(n_labelled: int, sizes: tuple[int, int, int], seed: int = 0,
                       measured_from: int = OFFLINE_MEASURED_FROM) -> Split:
    """Offline protocol: the mirror's first 10,000 official test digits, in two halves.

    Digits 0 .. measured_from-1 hold the label pool and the validation digits (disjoint, drawn at random); they
    may also be given to D without their labels. Digits measured_from .. n_labelled-1 hold the test part: no
    model ever trains on them, with or without labels.
    """
    n_pool, n_val, n_test = sizes
    if n_pool + n_val > measured_from or n_test > n_labelled - measured_from:
        raise ValueError(f"pool + val = {n_pool + n_val} must fit in test digits 0-{measured_from - 1} and test = "
                         f"{n_test} in digits {measured_from}-{n_labelled - 1} of the {n_labelled} labelled digits")
    rng = np.random.default_rng(seed)
    first = rng.permutation(measured_from)
    pool, val = first[:n_pool], first[n_pool:n_pool + n_val]
    test = measured_from + rng.permutation(n_labelled - measured_from)[:n_test]
    description = (f"offline: labels drawn from {n_pool:,} and C picked on {n_val:,} of the official test digits "
                   f"0-{measured_from - 1:,}; error on {n_test:,} of digits {measured_from:,}-{n_labelled - 1:,}, "
                   "which no model trains on")
    return Split(np.sort(pool), np.sort(val), np.sort(test), "offline", description)


def paper_svhn_split(n_train: int, n_test: int, n_val: int = 10_000, seed: int = 0) -> Split:
    """Paper protocol: 10,000 validation digits split off SVHN train, labels drawn from the rest (Paper §5.2).

    `pool` and `val` index the train split; `test` indexes the official test split.
    """
    order = np.random.default_rng(seed).permutation(n_train)
    description = (f"paper: D on SVHN train without labels; {n_val:,} validation digits split off train, "
                   f"labels drawn from the other {n_train - n_val:,}; error on the {n_test:,} official test digits")
    return Split(np.sort(order[n_val:]), np.sort(order[:n_val]), np.arange(n_test), "paper", description)


@dataclass(frozen=True)
class Labelled:
    """uint8 images (N, 32, 32, 3) with int64 labels (N,)."""

    images: np.ndarray
    labels: np.ndarray


class TestDataWithheld(RuntimeError):
    """Raised when code that makes a choice (C, width, epochs, snapshot) reaches for the test images."""


class Withheld:
    """Stands in for the test part of data handed to a choice: any use of it raises `TestDataWithheld`.

    Every choice is made on the validation split; giving the choosing code this instead of the test
    images makes that true by construction, not by care.
    """

    def __init__(self, why: str = "choices are made on validation data only"):
        object.__setattr__(self, "_why", why)

    def _refuse(self, *_args, **_kwargs):
        raise TestDataWithheld(f"the test split is withheld here ({self._why}); measure on it only after "
                               "every choice is made, with data that has its test part")

    def __getattr__(self, name: str):
        if name.startswith("__"):
            raise AttributeError(name)
        self._refuse()

    __len__ = __iter__ = __getitem__ = __array__ = __bool__ = _refuse


@dataclass(frozen=True)
class ProbeData:
    """One protocol's data: fit/draw on `train`, pick C on `val`, measure on `test`.

    `test` is a `Withheld` in data made for a choice (`for_selection`): the choosing code cannot read it.
    """

    train: Labelled
    val: Labelled
    test: Labelled | Withheld
    bn_images: np.ndarray  # BatchNorm statistics come from these (never from test images)
    protocol: str
    description: str
    data: dict  # provenance for the record
    split: Split | None = None  # the index sets behind train/val/test (SVHN protocols)

    @property
    def has_test(self) -> bool:
        """False for data made for a choice, whose test part is withheld."""
        return not isinstance(self.test, Withheld)

    def for_selection(self) -> ProbeData:
        """The same data with its test part withheld: what code that makes a choice receives."""
        return replace(self, test=Withheld())
