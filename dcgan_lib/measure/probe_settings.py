"""How big each profile's probes of Tables 1 and 2 are, and which paired claims it asserts (Paper §5.1-5.2).

`ProbeSettings` holds the sizes (images, label draws, the C grid, the baselines' budgets); profiles.PROFILES
holds each profile's values and `settings_for` reads them. `CLAIMS` names the notebooks' paired claims
("A beats B" on the same test images, dcgan_lib.measure.paired) and `paired_claims` judges them.
"""
from __future__ import annotations

from dataclasses import dataclass

from dcgan_lib.config.profiles import Profile, get_profile
from dcgan_lib.measure import paired


@dataclass(frozen=True)
class ProbeSettings:
    """Sizes of one profile's probe runs (the paper's values in `paper`)."""

    cifar_train: int | None  # CIFAR-10 train images (class-balanced), None: all 50,000
    cifar_test: int | None  # CIFAR-10 test images, None: all 10,000
    cifar_val: int  # validation images split off the CIFAR-10 train images to pick C
    c_grid: tuple[float, ...]  # C values tried on the validation split
    c_patience: int | None = 2  # Table 1: stop the C path after this many Cs in a row below the best (None: all)
    n_labels: int = 1000  # Paper §5.2: 1000 class-balanced labels
    n_draws: int = 100  # draws of those labels for the test error (authors: 100)
    n_select_draws: int = 10  # draws per C when picking C (authors: 10)
    svhn_sizes: tuple[int, int, int] = (3000, 2000, 5000)  # offline: label pool, validation, test
    svhn_val: int = 10_000  # paper protocol: validation split off SVHN train
    kmeans_k: int = 1600  # Coates & Ng's centroids (4 x K features)
    kmeans_patches: int = 400_000
    cnn_trials: int = 64  # Paper §5.2: 64 random-search trials
    cnn_epochs: int = 100
    knn_draws: int = 10
    full_extraction: bool = True  # time D's features on all 60,000 CIFAR-10 images
    solver_check: bool = True  # refit Table 1's DCGAN row with the other solver (sklearn vs torch), record both
    full_size: bool = False  # also run Table 1 at the paper's size (probe_full: all 60,000 images, full width)
    full_size_limit: int | None = None  # shrink that run's train set (smoke only)
    full_size_c_grid: tuple[float, ...] = (1e-5, 3e-5, 1e-4, 3e-4)  # warm-started path over C
    # the paper-size fits' evaluation budget (each reads every feature; the refit gets twice): a ceiling, not the
    # stopping rule, which is svm.TOLERANCE. Measured: 16-70 evaluations per C on D's full-width features
    full_size_max_evals: int = 300
    authors_floor: float | None = None  # accuracy the authors' D must beat (None: the random D's; smoke: chance)
    full_size_minutes: float | None = 30  # budget of the paper-size Table 1 on 2 CPU cores (None: unchecked)
    # the notebooks' paired claims ("A beats B" at p < paired.ALPHA) that this profile asserts (the others are
    # printed, "shown" or "not shown at this size"): gan_training (our D beats the random D), authors_beat_random,
    # beats_kmeans (our D beats K-means: the paper's Table 1 claim), beats_cnn (our D beats the supervised CNN:
    # Table 2's), authors_beat_cnn, authors_beat_knn
    claims: tuple[str, ...] = ("gan_training", "authors_beat_random", "beats_kmeans", "beats_cnn",
                               "authors_beat_cnn", "authors_beat_knn")


def settings_for(profile: Profile | str) -> ProbeSettings:
    """The probe sizes of a profile (profiles.PROFILES holds the values): smoke (seconds), cpu (minutes on
    2 cores) or paper (Paper §5)."""
    settings = ProbeSettings(**get_profile(profile).probe)
    unknown = set(settings.claims) - set(CLAIMS)
    if unknown:
        raise ValueError(f"unknown claims {sorted(unknown)} in the probe settings; known: {sorted(CLAIMS)}")
    return settings


# What each paired claim "A beats B" says (rows measured on the same test images; dcgan_lib.measure.paired)
CLAIMS = {
    "gan_training": "our D beats the random D of its architecture (what GAN training buys)",
    "authors_beat_random": "the authors' D beats the random D of our architecture",
    "beats_kmeans": "our D beats 1-layer K-means (the paper's Table 1 claim)",
    "beats_cnn": "our D beats the supervised CNN on the same test digits (the paper's Table 2 claim)",
    "authors_beat_cnn": "the authors' D beats the supervised CNN on the same test digits",
    "authors_beat_knn": "the authors' D beats pixel KNN",
}


def paired_claims(pairs: dict[str, tuple[dict, dict]], seed: int = 0) -> dict[str, dict]:
    """The paired verdict (dcgan_lib.measure.paired.compare) of each named claim: name -> (row A, row B)."""
    return {name: paired.compare(a, b, CLAIMS[name], seed=seed) for name, (a, b) in pairs.items()}
