"""One JSON record per experiment: our numbers, the paper's, and where they came from.

Smoke runs write under runs/smoke/figures so they never overwrite the committed figures/.
"""
from __future__ import annotations

import json
import os
import platform
import subprocess
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch

ROOT = Path(os.environ.get("DCGAN_ROOT", Path(__file__).resolve().parents[1]))


def figures_dir(profile: str) -> Path:
    """Where a profile's figures go: figures/ for real runs, runs/smoke/figures for smoke."""
    path = ROOT / "runs" / "smoke" / "figures" if profile == "smoke" else ROOT / "figures"
    path.mkdir(parents=True, exist_ok=True)
    return path


def git_commit() -> str:
    """The current commit, with '+dirty' when the work tree has uncommitted changes."""
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True,
                                text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT,
                               capture_output=True, text=True).stdout.strip()
        return commit + ("+dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def device_name(device: torch.device | str | None = None) -> str:
    """A human name of the device that ran the experiment."""
    device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"cpu: {platform.processor() or platform.machine()}, {torch.get_num_threads()} threads"


def write_record(stem: str | Path, *, name: str, profile: str, metrics: dict[str, Any],
                 paper: dict[str, Any] | None = None, data: dict[str, Any] | None = None,
                 seed: int | None = None, wall_s: float | None = None,
                 device: torch.device | str | None = None, out_dir: Path | None = None,
                 **extra: Any) -> Path:
    """Write `<stem>.json` in the profile's figures dir (or out_dir) and return its path."""
    out_dir = Path(out_dir) if out_dir is not None else figures_dir(profile)
    record = {
        "name": name, "profile": profile, "metrics": metrics, "paper": paper or {},
        "data": data or {}, "commit": git_commit(), "device": device_name(device),
        "seed": seed, "wall_s": None if wall_s is None else round(wall_s, 2),
        "torch": torch.__version__, "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        **extra,
    }
    path = out_dir / f"{Path(stem).name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record, indent=2, default=_jsonable) + "\n")
    return path


def read_record(path: str | Path) -> dict[str, Any]:
    """Load one record."""
    return json.loads(Path(path).read_text())


def _jsonable(value: Any) -> Any:
    if hasattr(value, "item"):
        return value.item()
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"cannot store {type(value).__name__} in a record")


@contextmanager
def stopwatch():
    """`with stopwatch() as t: ...; t()` gives seconds elapsed."""
    start = time.perf_counter()
    end: list[float] = []
    yield lambda: (end[0] if end else time.perf_counter()) - start
    end.append(time.perf_counter())
