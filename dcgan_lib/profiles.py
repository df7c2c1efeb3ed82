"""Run presets: `smoke` (CI), `cpu` (a laptop, about an hour for the course), `paper` (GPUs).

`auto` resolves to `paper` when a CUDA device is present, else `cpu`. Every notebook takes its
profile from a papermill parameter whose default is the DCGAN_PROFILE environment variable.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class Profile:
    """Budgets of one preset. `None` means "no limit" (the paper's full setting)."""

    name: str
    width: float  # multiplier on every hidden width of G and D (1.0 = the paper's nets)
    batch_size: int  # Paper §4: 128
    max_images: int | None  # images taken from a dataset (None: all of it)
    max_steps: int | None  # hard cap on training steps (smoke keeps runs to seconds)
    probe_train: int | None  # labelled images used to fit the L2-SVM probes
    probe_test: int | None  # images used to measure them
    checkpoint_every: int  # steps between checkpoints
    log_every: int  # steps between loss logs
    seed: int = 0


PROFILES: dict[str, Profile] = {
    "smoke": Profile("smoke", width=1 / 16, batch_size=16, max_images=128, max_steps=4,
                     probe_train=200, probe_test=100, checkpoint_every=2, log_every=1),
    "cpu": Profile("cpu", width=1 / 4, batch_size=64, max_images=None, max_steps=None,
                   probe_train=10_000, probe_test=2_000, checkpoint_every=100, log_every=10),
    "paper": Profile("paper", width=1.0, batch_size=128, max_images=None, max_steps=None,
                     probe_train=None, probe_test=None, checkpoint_every=1000, log_every=50),
}
NAMES = (*PROFILES, "auto")


def resolve_name(name: str | None = None) -> str:
    """Turn `auto` (or None: DCGAN_PROFILE, default auto) into a concrete profile name."""
    name = name or os.environ.get("DCGAN_PROFILE", "auto")
    if name == "auto":
        return "paper" if torch.cuda.is_available() else "cpu"
    if name not in PROFILES:
        raise ValueError(f"unknown profile {name!r}; valid: {', '.join(NAMES)}")
    return name


def get_profile(name: str | None = None) -> Profile:
    """The Profile for a name (smoke, cpu, paper or auto)."""
    return PROFILES[resolve_name(name)]


def get_device(name: str = "auto") -> torch.device:
    """One call for the device: `auto` takes CUDA when present (like d2l's try_gpu)."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)
