"""The one device rule, and what Apple's MPS cannot do, in one place.

`get_device("auto")` takes CUDA, then MPS (Apple silicon), then the CPU, as fastbook and pytorch/examples'
`--accel` do: through `torch.accelerator` where the installed torch has it, else through the CUDA and
MPS checks. The notebooks, the command line's `--device` and the model store all call it, and
`profiles.resolve_name("auto")` asks `has_accelerator()` whether to pick the `gpu` profile.

MPS has no float64 and lacks a few ops. Work that needs float64 asks `float64_device(device)` where to
run (the CPU when the device is MPS), or moves a tensor with `to_float64(x)`; ops MPS lacks fall back to
the CPU through PyTorch's own switch, PYTORCH_ENABLE_MPS_FALLBACK, which this module turns on. PyTorch
reads that switch when it loads, so it takes effect when dcgan_lib is imported before torch (the
notebooks and the command line do so), and is harmless everywhere else.
"""
from __future__ import annotations

import os

os.environ.setdefault("PYTORCH_ENABLE_MPS_FALLBACK", "1")  # read by torch at import: before `import torch`

import torch  # noqa: E402

KINDS = ("cuda", "mps", "cpu")  # the order `auto` tries


def _mps_available() -> bool:
    mps = getattr(torch.backends, "mps", None)
    return bool(mps is not None and mps.is_available())


def available(kind: str) -> bool:
    """Whether a device type can be used here (the CPU always can)."""
    if kind == "cpu":
        return True
    if kind == "cuda":
        return torch.cuda.is_available()
    if kind == "mps":
        return _mps_available()
    return False


def accelerator() -> str | None:
    """The accelerator type here ("cuda" or "mps"), None without one. Where torch has `torch.accelerator`, it
    names the accelerator this build of torch targets, which is then checked for being usable."""
    kinds = KINDS[:-1]
    acc = getattr(torch, "accelerator", None)
    if acc is not None and hasattr(acc, "current_accelerator"):
        found = acc.current_accelerator()  # the build's accelerator (None on CPU-only builds)
        kinds = (found.type,) if found is not None and found.type in kinds else ()
    return next((kind for kind in kinds if available(kind)), None)


def has_accelerator() -> bool:
    """Whether this machine has a GPU torch can use (CUDA or MPS)."""
    return accelerator() is not None


def get_device(name: str | torch.device | None = "auto") -> torch.device:
    """The device to run on: `auto` (or None) is CUDA, then MPS, then the CPU; a name ("cpu", "cuda",
    "cuda:1", "mps") is checked here, so a device this machine lacks is one clear error, not a crash later."""
    if isinstance(name, torch.device):
        name = str(name)
    if name is None or name == "auto":
        return torch.device(accelerator() or "cpu")
    try:
        device = torch.device(name)
    except (RuntimeError, TypeError):
        raise ValueError(f"unknown device {name!r}; use auto, cpu, cuda, cuda:N or mps") from None
    if device.type not in KINDS:
        raise ValueError(f"unsupported device {name!r}; use auto, cpu, cuda, cuda:N or mps")
    if not available(device.type):
        raise ValueError(f"--device {name}: no {device.type.upper()} device here; use --device auto "
                         f"(picks {accelerator() or 'cpu'} on this machine) or --device cpu")
    if device.type == "cuda" and device.index is not None and device.index >= torch.cuda.device_count():
        raise ValueError(f"--device {name}: this machine has {torch.cuda.device_count()} CUDA device(s), "
                         f"numbered from 0")
    return device


def float64_device(device: torch.device | str) -> torch.device:
    """Where float64 work on `device` runs: the device itself, or the CPU for MPS (which has no float64)."""
    device = torch.device(device)
    return torch.device("cpu") if device.type == "mps" else device


def to_float64(x: torch.Tensor) -> torch.Tensor:
    """`x` as float64, moved to the CPU first when it lives on MPS."""
    return x.to(float64_device(x.device)).double()
