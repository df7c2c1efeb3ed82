"""One JSON record per experiment: our numbers, the paper's, and where they came from.

Smoke runs write under runs/smoke/figures so they never overwrite the committed figures/.
"""
from __future__ import annotations

import hashlib
import json
import os
import platform
import re
import subprocess
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch

from dcgan_lib.config import profiles
from dcgan_lib.config.paths import ROOT, data_root, mirror_root


def figures_dir(profile) -> Path:
    """Where a profile's figures go: figures/ for real runs, <scratch>/figures for a scratch profile (smoke)."""
    scratch = profiles.get_profile(profile).scratch
    path = ROOT / scratch / "figures" if scratch else ROOT / "figures"
    path.mkdir(parents=True, exist_ok=True)
    return path


CODE_SUFFIXES = (".py", ".ipynb", ".toml", ".cfg", ".yml", ".yaml")


OUTPUTS = "figures"  # the results folder: its own changes never make a record dirty


def git_commit() -> str:
    """The current commit, with '+dirty' when the work tree has uncommitted changes.

    Changes to tracked files count, and so do untracked code files (a new module the commit lacks);
    untracked outputs (a new figure) do not, and neither does anything under figures/, where every
    run writes its outputs (a notebook saves its figures before it writes their record).
    A copy of the tree run elsewhere (a device machine, whose own .git may be older) names the commit it
    was copied from in DCGAN_COMMIT and that commit's code_digest() in DCGAN_CODE_DIGEST
    (scripts/gpu_run.sh says how); it is that commit while the copy's code still has that digest, else
    '+dirty'. 'unknown' outside a git checkout.
    """
    pinned = os.environ.get("DCGAN_COMMIT")
    if pinned:
        clean = os.environ.get("DCGAN_CODE_DIGEST") == code_digest()
        return pinned + ("" if clean else "+dirty")
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True,
                                text=True, check=True).stdout.strip()
        status = subprocess.run(["git", "status", "--porcelain", "--untracked-files=all", "--", ".",
                                 f":(exclude){OUTPUTS}/**"], cwd=ROOT,
                                capture_output=True, text=True, check=True).stdout.splitlines()
        dirty = [s for s in status if not s.startswith("??") or s.rstrip('"').endswith(CODE_SUFFIXES)]
        return commit + ("+dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


SKIP_DIRS = {"runs", "data", OUTPUTS, "__pycache__", "node_modules"}  # outputs, caches: never code


def code_digest(root: Path | None = None) -> str:
    """sha256 over the project's code files (CODE_SUFFIXES, shell scripts, Makefile) and their paths,
    outside hidden, output and cache folders: equal on two copies of a tree when their code is equal."""
    root = Path(root or ROOT)
    digest = hashlib.sha256()
    for folder, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and d not in SKIP_DIRS
                         and not d.endswith(".egg-info"))
        for name in sorted(files):
            if name.endswith((*CODE_SUFFIXES, ".sh")) or name == "Makefile":
                path = Path(folder) / name
                digest.update(path.relative_to(root).as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def cpu_model() -> str | None:
    """The CPU's model name (/proc/cpuinfo's "model name"), None where the system does not say."""
    try:
        return next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                     if line.startswith("model name")), None)
    except OSError:
        return None


def device_name(device: torch.device | str | None = None) -> str:
    """A human name of the device that ran the experiment (a CPU by its model: cores differ several-fold in speed)."""
    device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"cpu: {cpu_model() or platform.processor() or platform.machine()}, {torch.get_num_threads()} threads"


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
    path.write_text(json.dumps(as_recorded(record), indent=2) + "\n")
    return path


def as_recorded(value: Any) -> Any:
    """A value as a record holds it once read back: paths made portable, numpy and Path values as JSON's."""
    return json.loads(json.dumps(portable(value), default=_jsonable))


def _bases() -> list[tuple[str, str]]:
    """(absolute prefix, label) pairs, project first: the places a record's paths are written relative to."""
    places = [(ROOT, ""), (data_root(), "$DCGAN_DATA"), (mirror_root(), "$DCGAN_MIRROR"), (Path.home(), "~")]
    out = []
    for place, label in places:
        if place is None:
            continue
        for form in dict.fromkeys((str(Path(place).absolute()), str(Path(place).resolve()))):
            if form != "/":
                out.append((form.rstrip("/"), label))
    return out


def portable(value: Any, bases: list[tuple[str, str]] | None = None) -> Any:
    """A record value with every machine path made portable (so a record can be rerun anywhere).

    Paths under the project become project-relative ("data/archives/x.tar.gz"); under the data root
    or the mirror they are labelled "$DCGAN_DATA/..." or "$DCGAN_MIRROR/..."; under the home folder "~/...".
    Those prefixes are also rewritten inside strings ("folder:/home/me/pics" -> "folder:~/pics"). Any other
    absolute path keeps only its file name, as "<outside>/name". Works through dicts, lists and tuples.
    """
    bases = _bases() if bases is None else bases
    if isinstance(value, dict):
        return {portable(k, bases): portable(v, bases) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [portable(v, bases) for v in value]
    if isinstance(value, Path) or isinstance(value, str) and value.startswith("/") and not re.search(r"\s", value):
        return _portable_path(str(value), bases)
    if isinstance(value, str):
        for base, label in bases:
            value = re.sub(re.escape(base) + r"(?=/|$|[\s\"',;:)\]])/?",
                           lambda m, label=label: (label + "/" if label else "") if m.group(0).endswith("/")
                           else (label or "."), value)
        return value
    return value


def _portable_path(text: str, bases: list[tuple[str, str]]) -> str:
    if not os.path.isabs(text):
        return text
    for base, label in bases:
        if text == base:
            return label or "."
        if text.startswith(base + "/"):
            rest = text[len(base) + 1:]
            return f"{label}/{rest}" if label else rest
    return f"<outside>/{Path(text).name}"


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
