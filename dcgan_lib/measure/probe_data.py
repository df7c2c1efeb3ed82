"""The data every row of Tables 1 and 2 reads (Paper §5.1-5.2): class-balanced label draws, the SVHN splits,
the containers, and the loaders that fill them at a profile's size with where the images came from.

The paper's SVHN split (validation digits off SVHN train) and the offline mirror's (pool, validation and
test from the labelled test digits) are index sets (`Split`); `ProbeData` holds one protocol's labelled
images with their provenance; `cifar10_data` (Table 1) and `svhn_data` (Table 2) load them.
dcgan_lib.measure.probes runs the protocols on them.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from dcgan_lib.data import data, datasets, registry
from dcgan_lib.measure.probe_settings import ProbeSettings


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


# --- the data each table reads, at a profile's size, with where it came from ------------------------

def cifar10_data(settings: ProbeSettings, seed: int = 0, with_test: bool = True) -> ProbeData:
    """CIFAR-10 train (minus a class-balanced validation split) and test, at the profile's size (Table 1).

    `with_test=False` never reads the test split: its part is `Withheld`, for code that makes a choice.
    """
    train = data.prepare("cifar10", 32, split="train", limit=settings.cifar_train)
    test = data.prepare("cifar10", 32, split="test", limit=settings.cifar_test) if with_test else None
    images, labels = np.asarray(train.images), train.labels
    val = class_balanced_draw(labels, settings.cifar_val, np.random.default_rng(seed))
    fit = np.setdiff1d(np.arange(len(images)), val)
    measured = f"{len(test):,} test images" if with_test else "test images withheld (a choice is made on this)"
    description = (f"CIFAR-10 ({train.info['source']}): {len(fit):,} train + {len(val):,} validation "
                   f"(C picked on it, then refit on both) -> {measured}")
    test_part = Labelled(np.asarray(test.images), test.labels) if with_test else Withheld()
    return ProbeData(Labelled(images[fit], labels[fit]), Labelled(images[val], labels[val]), test_part, images,
                     "cifar10", description, _provenance(train.info, *([test.info] if with_test else [])))


def _provenance(*infos: dict) -> dict:
    first = infos[0]
    return {"dataset": first["dataset"], "source": first["source"], "archive": Path(first["path"]).name,
            "sha256": first.get("sha256"), "splits": {i["split"]: i["n"] for i in infos}}


def svhn_data(settings: ProbeSettings, protocol: str = "auto", seed: int = 0) -> ProbeData:
    """SVHN under the paper protocol (official download) or the offline one (mirror) (Table 2)."""
    kind = datasets.find_source("svhn").kind
    if protocol == "auto":
        protocol = "paper" if kind == "official" else "offline"
    if protocol == "paper":
        if kind != "official":
            raise ValueError("the paper protocol needs SVHN's labelled train digits, which only the official "
                             "download has: run `python -m dcgan_lib data fetch svhn --official` online, "
                             "or use --protocol offline")
        train, test = data.prepare("svhn", 32, "train"), data.prepare("svhn", 32, "test")
        split = paper_svhn_split(len(train), len(test), settings.svhn_val, seed)
        images = np.asarray(train.images)
        pool = Labelled(images[split.pool], train.labels[split.pool])
        return ProbeData(pool, Labelled(images[split.val], train.labels[split.val]),
                         Labelled(np.asarray(test.images), test.labels), pool.images, "paper",
                         split.description, _provenance(train.info, test.info), split)
    if protocol != "offline":
        raise ValueError(f"protocol must be auto, offline or paper, got {protocol!r}")
    labelled = data.prepare("svhn", 32, "test")
    if labelled.labels is None:
        raise ValueError("the SVHN test split has no labels; check the dataset (python -m dcgan_lib data)")
    split = offline_svhn_split(len(labelled), settings.svhn_sizes, seed)
    images, labels = np.asarray(labelled.images), labelled.labels
    parts = [Labelled(images[i], labels[i]) for i in (split.pool, split.val, split.test)]
    unlabelled = svhn_unlabelled()
    return ProbeData(*parts, np.asarray(unlabelled.images), "offline",
                     f"{split.description}; BatchNorm statistics from {unlabelled.info['what']}",
                     {**_provenance(labelled.info), "split_sizes": list(settings.svhn_sizes), "split_seed": seed,
                      "measured_from": OFFLINE_MEASURED_FROM, "unlabelled": unlabelled.info["what"]}, split)


def svhn_unlabelled() -> data.ImageSet:
    """The offline protocol's unlabelled SVHN digits: what D trains on (SVHN's split "unlabelled", the store's
    training split for svhn) and where BatchNorm statistics come from.

    The mirror's 1,083 unlabelled train digits plus official test digits 0-4999 without their labels (the label
    pool and validation digits, whose labels the SVM sees anyway); never digits 5000-9999, where Table 2's
    error is measured. `info["what"]` says so, for the records.
    """
    digits = data.prepare("svhn", 32, "unlabelled")
    n_test = len(digits) - data.prepare("svhn", 32, "train", progress=False).info["n"]
    last = data.prepare("svhn", 32, "test", progress=False).info["n"] - 1
    what = (f"{len(digits) - n_test:,} unlabelled train digits + official test digits 0-{n_test - 1:,} without "
            f"labels ({len(digits):,} digits; never test digits {OFFLINE_MEASURED_FROM:,}-{last:,})")
    return data.ImageSet(digits.images, None, digits.ids, {**digits.info, "labelled": False, "what": what,
                                                           "never_trained_on": f"test[{OFFLINE_MEASURED_FROM}:]"})
