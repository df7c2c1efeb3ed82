"""Training in stages, for the bench's sweeps (tier_sweep: CPU-second budgets; bf16_kid: step counts): one run
trained to a stopping point, then on to the next from its own checkpoint, its latest G scored after each.

`train_to` trains a run folder up to a TrainConfig's steps (the Trainer resumes the folder's checkpoint inside
fit()) and says what that stage cost in process CPU-seconds and wall seconds; `score_latest` judges the nets of
the folder's latest checkpoint (`kid_judge`: G's KID and FID against real statistics) and times the judging.
"""
from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from torch import nn

from dcgan_lib.gan import runs
from dcgan_lib.gan.train import Trainer
from dcgan_lib.gan.train_config import TrainConfig
from dcgan_lib.measure import fid
from dcgan_lib.models import store

_clock = time.perf_counter  # the wall clock of each stage's training and scoring


@dataclass(frozen=True)
class Stage:
    """One stage of a run: the trainer after it, and what the stage alone cost."""

    trainer: Trainer
    steps: int  # steps this stage trained (the resumed ones not counted)
    cpu_s: float  # process CPU-seconds, all threads
    wall_s: float

    @property
    def images_per_s(self) -> float:
        """This stage's images over its own wall time."""
        return self.steps * self.trainer.cfg.batch_size / max(self.wall_s, 1e-9)


def train_to(cfg: TrainConfig, images: np.ndarray, folder: Path, from_step: int, progress: bool = True) -> Stage:
    """Train the run in `folder` from its checkpoint at `from_step` (0: none yet) to `cfg.steps`.

    Raises train.TrainingStopped as the Trainer does (a collapsed run stops).
    """
    trainer = Trainer(cfg, images, folder, device="cpu", progress=progress)
    cpu0, wall0 = time.process_time(), _clock()
    trainer.fit()
    return Stage(trainer, trainer.step - from_step, time.process_time() - cpu0, _clock() - wall0)


def score_latest(folder: Path, judge: Callable[[nn.Module, nn.Module], dict]) -> dict:
    """`judge(G, D)` of the folder's latest checkpoint, with the seconds the judging took (`score_s`)."""
    g, d, _ = runs.load_nets(runs.RunFolder(folder).checkpoint)
    t0 = _clock()
    scores = judge(g, d)
    return {**scores, "score_s": round(_clock() - t0, 1)}


def kid_judge(real: fid.Stats, samples: int, profile: str, seed: int,
              progress: bool = True) -> Callable[[nn.Module, nn.Module], dict]:
    """A judge for `score_latest`: KID (with its subset std) and FID of `samples` calibrated samples of G
    against `real`."""
    def judge(g: nn.Module, d: nn.Module) -> dict:
        scores = fid.evaluate_generator(store.calibrated(g, profile), real, samples, seed, progress=progress)
        return {"kid": scores["kid"], "kid_std": scores["kid_std"], "fid": scores["fid"]}
    return judge
