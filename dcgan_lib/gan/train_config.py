"""What defines a training run (Paper §4 defaults): TrainConfig, checked on creation, saved in every checkpoint.

dcgan_lib.gan.train runs it; the command line's flags (CLI_FLAGS) are named in its error messages.
"""
from __future__ import annotations

import math
import numbers
from collections.abc import Iterable
from dataclasses import dataclass, fields

from dcgan_lib.gan import diffaug, nets

COMPILE_MODES = ("default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")
CLI_FLAGS = {"steps": "--steps", "checkpoint_every": "--checkpoint-every", "log_every": "--log-every",
             "seed": "--seed", "diffaug": "--diffaug", "batch_size": "--batch-size", "lr": "--lr",
             "beta1": "--beta1", "width": "--width", "image_size": "--image-size", "compile_mode": "--compile-mode",
             "kernel": "--kernel"}


def _whole(value, low: int) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool) and value >= low


def _real(value) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)


@dataclass(frozen=True)
class TrainConfig:
    """Everything that defines a run (Paper §4 defaults). Saved in every checkpoint."""

    variant: str = "lsun64"
    image_size: int | None = None  # None: the variant's size
    width: float = 1.0
    kernel: int | None = None  # conv kernel side (None: the variant's; lsun64 and faces64 take 4 or 5)
    batch_size: int = 128
    lr: float = 2e-4  # 0.001 was too high (Paper §4)
    beta1: float = 0.5  # 0.9 oscillated (Paper §4)
    weight_decay: float = 0.0  # the authors' code used 1e-5; the paper does not mention it
    steps: int = 1000
    checkpoint_every: int = 500
    log_every: int = 50
    sample_every: int | None = None  # steps between sample grids (default: at each checkpoint)
    seed: int = 0
    n_samples: int = 64  # fixed-noise grid size
    collapse_patience: int = 20  # log points in a row with D(G(z)) < collapse_threshold before stopping
    collapse_threshold: float = 1e-3
    channels_last: bool = True
    # bf16 autocast. None (default): on CUDA GPUs with bf16 tensor cores only; CPU training stays fp32 everywhere,
    # so records made on CPUs with and without AMX agree. True: also on CPUs with AMX, measured to train as well as
    # fp32 (held-out KID at equal steps, two seeds each: figures/bf16_kid_bedrooms.json) and 2.3x faster at the cpu
    # tier's width (figures/bench.md); `train --numerics bf16`. False: fp32 everywhere.
    amp: bool | None = None
    fused_adam: bool = True
    compile: bool = False
    compile_mode: str = "default"  # torch.compile's mode when compile=True ("reduce-overhead": CUDA graphs)
    # DiffAugment (Zhao et al. 2020): a comma-separated policy of dcgan_lib.gan.diffaug.POLICIES applied to every
    # image D sees, real and fake, in both steps. "" (default): off, the paper's recipe.
    diffaug: str = ""
    snapshot_epochs: bool = True  # keep G's weights after every epoch (Figs. 2-3, memorisation curve)

    def __post_init__(self):
        """Reject settings that make no sense (negative steps, batch 0, lr <= 0, ...) before any work."""
        checks = (
            ("steps", "a whole number >= 1", _whole(self.steps, 1)),
            ("batch_size", "a whole number >= 1", _whole(self.batch_size, 1)),
            ("checkpoint_every", "a whole number >= 1", _whole(self.checkpoint_every, 1)),
            ("log_every", "a whole number >= 1", _whole(self.log_every, 1)),
            ("sample_every", "None or a whole number >= 1", self.sample_every is None or _whole(self.sample_every, 1)),
            ("n_samples", "a whole number >= 1", _whole(self.n_samples, 1)),
            ("seed", "a whole number >= 0", _whole(self.seed, 0)),
            ("collapse_patience", "a whole number >= 0 (0: never stop on collapse)",
             _whole(self.collapse_patience, 0)),
            ("collapse_threshold", "a number in [0, 1)",
             _real(self.collapse_threshold) and 0 <= self.collapse_threshold < 1),
            ("lr", "a number > 0", _real(self.lr) and self.lr > 0),
            ("beta1", "a number in [0, 1)", _real(self.beta1) and 0 <= self.beta1 < 1),
            ("weight_decay", "a number >= 0", _real(self.weight_decay) and self.weight_decay >= 0),
            ("width", "a number > 0", _real(self.width) and self.width > 0),
            ("image_size", "None or a whole number >= 1", self.image_size is None or _whole(self.image_size, 1)),
            ("kernel", f"None or one of {nets.KERNELS}",
             self.kernel is None or (self.kernel in nets.KERNELS and not isinstance(self.kernel, bool))),
            ("amp", "None, True or False", self.amp in (None, True, False)),
            ("compile_mode", f"one of {', '.join(COMPILE_MODES)}", self.compile_mode in COMPILE_MODES),
            ("diffaug", f"'' or a comma-separated list of {', '.join(diffaug.POLICIES)}",
             isinstance(self.diffaug, str) and diffaug.valid_policy(self.diffaug)),
        )
        bad = [f"{name} must be {rule}, got {getattr(self, name)!r}"
               + (f" (set by {CLI_FLAGS[name]})" if name in CLI_FLAGS else "") for name, rule, ok in checks if not ok]
        if bad:
            raise ValueError("invalid training settings: " + "; ".join(bad))

    def net_config(self) -> nets.NetConfig:
        return nets.get_config(self.variant, self.image_size, self.width, self.kernel)


def differences(saved: dict, now: TrainConfig, names: Iterable[str] | None = None) -> dict:
    """{field: (saved, now)} where a checkpoint's saved TrainConfig differs from `now`, over `names`
    (default: every field but steps, which a resumed run may extend)."""
    saved_cfg = TrainConfig(**saved)
    names = names or [f.name for f in fields(TrainConfig) if f.name != "steps"]
    return {k: (getattr(saved_cfg, k), getattr(now, k)) for k in names if getattr(saved_cfg, k) != getattr(now, k)}
