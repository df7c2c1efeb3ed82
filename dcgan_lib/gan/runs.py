"""One home for run folders and checkpoint files: where each file of a run lives and what it holds.

A run folder (the trainer's --out; the model store's runs/models/<dataset>_<variant>_<profile>) holds

    checkpoint.pt              everything to resume: both nets and optimizers, each rank's noise, the data position
    checkpoint_good.pt         the last one written while training was healthy (a NaN or collapse stop restores it)
    log.csv                    the training log, one row of LOG_FIELDS per log point
    run.json                   the run record: wall time, throughput, data provenance, the final FID and KID
    snapshots/G_epoch<N>.pt    G's weights after each pass over the data (Figs. 2-3, the memorisation curve)
    samples/samples_<step>.png, samples_latest.png    fixed-noise sample grids
    quality.csv, quality.json  KID and FID of the snapshots (trainlog.quality_curve); quality_train.json: the
                               same against the training images (what recipes and epochs are chosen by)
    .lock                      held by the process training into the folder

The trainer writes these files and the store, trainlog and the command line read them, all through
this module, so the layout and the checkpoint format are written down once. The format is fixed:
every checkpoint and run folder written so far loads unchanged (same file names, same keys).
Torch files are written atomically (a temp file, then a rename), so a killed process never leaves
half a file under a real name; a file that cannot be read raises CheckpointError naming it.
"""
from __future__ import annotations

import csv
import json
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from dcgan_lib.config import profiles
from dcgan_lib.gan import nets
from dcgan_lib.records import results

CHECKPOINT_KEYS = ("train_config", "config", "G", "D", "opt_g", "opt_d", "z_gen", "sampler", "step")
GENERATOR_KEYS = ("config", "G", "step", "train_config")  # an export_generator file: G alone, for sharing
SNAPSHOT_KEYS = ("step", "epoch", "G")
WEIGHTS = ("G", "D", "opt_g", "opt_d")  # left out of the info dicts the loaders return
LOG_FIELDS = ("step", "epoch", "loss_d", "loss_g", "d_real", "d_fake", "images_per_s", "wall_s")
RECORD = "run"  # the run record's stem: results.write_record writes run.json


class CheckpointError(ValueError):
    """A checkpoint file that cannot be read (truncated, garbage, not a checkpoint); the message names it."""


def model_dir(dataset: str, variant: str, profile: str) -> Path:
    """The model store's run folder of a model: runs/models/<dataset>_<variant>_<profile>."""
    safe = dataset.replace("folder:", "folder-").replace("/", "_").replace(":", "_")
    return results.ROOT / "runs" / "models" / f"{safe}_{variant}_{profiles.resolve_name(profile)}"


@dataclass(frozen=True)
class RunFolder:
    """The paths of one run folder's files (see the module docstring)."""

    path: Path

    def __post_init__(self):
        object.__setattr__(self, "path", Path(self.path))

    @property
    def checkpoint(self) -> Path:
        return self.path / "checkpoint.pt"

    @property
    def good_checkpoint(self) -> Path:
        return self.path / "checkpoint_good.pt"

    @property
    def log(self) -> Path:
        return self.path / "log.csv"

    @property
    def record(self) -> Path:
        return self.path / f"{RECORD}.json"

    @property
    def snapshots(self) -> Path:
        return self.path / "snapshots"

    def snapshot(self, epoch: int) -> Path:
        return self.snapshots / f"G_epoch{epoch:03d}.pt"

    def samples(self, step: int) -> Path:
        return self.path / "samples" / f"samples_{step:07d}.png"

    @property
    def latest_samples(self) -> Path:
        return self.path / "samples_latest.png"

    @property
    def quality(self) -> Path:
        return self.path / "quality.csv"

    def quality_record(self, against: str = "heldout") -> Path:
        """The record of the snapshots' KID and FID against the held-out (or "train": training) images."""
        return self.path / ("quality.json" if against == "heldout" else f"quality_{against}.json")

    @property
    def lock(self) -> Path:
        return self.path / ".lock"


# ---- torch files: checkpoints, snapshots, exported generators ----------------------------------
def _one_line(err: BaseException, limit: int = 200) -> str:
    text = " ".join(f"{type(err).__name__}: {err}".split())
    return text if len(text) <= limit else text[:limit] + "..."


def checkpoint_state(*, train_config: dict, net_config: dict, G: dict, D: dict, opt_g: dict, opt_d: dict,
                     ranks: list[dict], sampler: dict, step: int, wall_s: float) -> dict:
    """The dict a checkpoint holds. `ranks` is every process's {"z_gen", "collapse_count"}, in rank order;
    z_gen and collapse_count repeat rank 0's, the form single-process checkpoints had before `ranks`."""
    return {"train_config": train_config, "config": net_config, "G": G, "D": D, "opt_g": opt_g, "opt_d": opt_d,
            "z_gen": ranks[0]["z_gen"], "ranks": ranks, "sampler": sampler, "step": step,
            "collapse_count": ranks[0]["collapse_count"], "wall_s": wall_s}


def checkpoint_ranks(state: dict) -> list[dict]:
    """Every writing process's {"z_gen", "collapse_count"} of a checkpoint, older single-process ones included."""
    return state.get("ranks") or [{"z_gen": state["z_gen"], "collapse_count": state["collapse_count"]}]


def read_checkpoint(path: str | Path, map_location: torch.device | str = "cpu",
                    keys: tuple[str, ...] = CHECKPOINT_KEYS, weights_only: bool = False) -> dict:
    """Load a checkpoint file; CheckpointError (naming the file) when it is truncated, garbage or lacks `keys`."""
    path = Path(path)
    try:
        state = torch.load(path, map_location=map_location, weights_only=weights_only)
    except (FileNotFoundError, PermissionError, IsADirectoryError):
        raise
    except Exception as err:  # bad bytes raise RuntimeError, EOFError, ValueError, UnpicklingError, ...
        raise CheckpointError(f"{path} is not a valid checkpoint ({_one_line(err)})") from err
    missing = [k for k in keys if k not in state] if isinstance(state, dict) else list(keys)
    if missing:
        raise CheckpointError(f"{path} is not a valid checkpoint (it lacks {', '.join(missing)})")
    return state


def save_atomic(state: dict, path: str | Path) -> Path:
    """torch.save to a temp file beside `path`, synced to disk, then renamed over it.

    A full disk or a kill leaves the old file (or none) under the real name and no temp file behind.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.tmp{os.getpid()}")
    try:
        with open(tmp, "wb") as f:
            torch.save(state, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def copy_atomic(src: str | Path, dst: str | Path) -> None:
    """Copy a file under a temp name, then rename it over `dst` (a reader never sees half a copy)."""
    dst = Path(dst)
    tmp = dst.with_name(f"{dst.name}.tmp{os.getpid()}")
    try:
        shutil.copyfile(src, tmp)
        os.replace(tmp, dst)
    finally:
        tmp.unlink(missing_ok=True)


def aside_path(path: str | Path) -> Path:
    """Where a damaged checkpoint is moved out of the way: <name>.corrupt-<its modification time>."""
    path = Path(path)
    stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(path.stat().st_mtime))
    return path.with_name(f"{path.name}.corrupt-{stamp}")


def _info(state: dict) -> dict:
    return {k: v for k, v in state.items() if k not in WEIGHTS}


def load_nets(path: str | Path, device: torch.device | str = "cpu") -> tuple[nets.Generator, nets.Discriminator, dict]:
    """Build G and D from a checkpoint file; returns (G, D, checkpoint dict without the weights)."""
    state = read_checkpoint(path, device, keys=("config", "G", "D"))
    cfg = nets.NetConfig.from_dict(state["config"])
    g, d = nets.Generator(cfg).to(device), nets.Discriminator(cfg).to(device)
    g.load_state_dict(state["G"])
    d.load_state_dict(state["D"])
    return g, d, _info(state)


def load_generator(path: str | Path, device: torch.device | str = "cpu") -> tuple[nets.Generator, dict]:
    """G from a checkpoint or from an export_generator file; returns (G, the file's dict without weights)."""
    state = read_checkpoint(path, device, keys=("config", "G"))
    g = nets.Generator(nets.NetConfig.from_dict(state["config"])).to(device)
    g.load_state_dict(state["G"])
    return g, _info(state)


def load_discriminator(path: str | Path, device: torch.device | str = "cpu") -> nets.Discriminator:
    """D alone from a checkpoint, in eval mode, for the feature probes of Paper §5.

    Probed checkpoints may come from anywhere (--checkpoint), so the file is read with weights_only.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}; train one with `python -m dcgan_lib train` "
                                "or let the model store make it (store.get_model)")
    state = read_checkpoint(path, "cpu", keys=("config", "D"), weights_only=True)
    d = nets.Discriminator(nets.NetConfig.from_dict(state["config"]))
    d.load_state_dict(state["D"])
    return d.to(device).eval()


def export_generator(checkpoint: str | Path, out: str | Path) -> Path:
    """A G-only file from a checkpoint (its net config, G's weights, step and training config): a quarter
    of the checkpoint's size, for sharing a generator (the authors released theirs the same way)."""
    state = read_checkpoint(checkpoint, "cpu", keys=GENERATOR_KEYS)
    return save_atomic({k: state[k] for k in GENERATOR_KEYS}, out)


def write_snapshot(folder: str | Path, epoch: int, step: int, g_state: dict) -> Path:
    """Keep G's weights after `epoch` passes over the data (snapshots/G_epoch<N>.pt)."""
    return save_atomic({"step": step, "epoch": epoch, "G": g_state}, RunFolder(folder).snapshot(epoch))


def snapshot_epochs(folder: str | Path) -> list[int]:
    """The epochs after which G's weights were kept (snapshots/G_epoch<N>.pt), ascending."""
    paths = RunFolder(folder).snapshots.glob("G_epoch*.pt")
    return sorted(int(p.stem.removeprefix("G_epoch")) for p in paths)


def read_snapshot(folder: str | Path, epoch: int, device: torch.device | str = "cpu") -> dict:
    """The snapshot kept after `epoch` ({"step", "epoch", "G"}); FileNotFoundError lists the epochs there are."""
    run = RunFolder(folder)
    path = run.snapshot(epoch)
    if not path.exists():
        have = [run.snapshot(e).name for e in snapshot_epochs(folder)]
        raise FileNotFoundError(f"no snapshot after epoch {epoch} in {run.path}; have: {have or 'none'}")
    return read_checkpoint(path, device, keys=SNAPSHOT_KEYS)


# ---- the training log and the run record --------------------------------------------------------
def append_log(folder: str | Path, rows: list[dict], fresh: bool = False) -> None:
    """Add rows of LOG_FIELDS to log.csv (a header first when the file is new or `fresh` rewrites it)."""
    path = RunFolder(folder).log
    path.parent.mkdir(parents=True, exist_ok=True)
    new = fresh or not path.exists()
    with open(path, "w" if fresh else "a", newline="") as f:
        writer = csv.DictWriter(f, LOG_FIELDS)
        if new:
            writer.writeheader()
        writer.writerows(rows)


def truncate_log(folder: str | Path, step: int) -> None:
    """Drop log rows after `step` (a resumed run logs each step once); nothing to do without a log."""
    path = RunFolder(folder).log
    if not path.exists():
        return
    with open(path) as f:
        rows = [r for r in csv.DictReader(f) if int(r["step"]) <= step]
    append_log(folder, rows, fresh=True)


def read_log(folder: str | Path) -> list[dict]:
    """The training log of a run folder as a list of dicts of floats."""
    with open(RunFolder(folder).log) as f:
        return [{k: float(v) for k, v in row.items()} for row in csv.DictReader(f)]


def write_record(folder: str | Path, **fields) -> Path:
    """Write the folder's run.json (results.write_record's fields)."""
    return results.write_record(RECORD, out_dir=RunFolder(folder).path, **fields)


def read_record(folder: str | Path, missing_ok: bool = False) -> dict:
    """run.json of a run folder; when it is missing {} if `missing_ok`, else an error saying how to make it."""
    path = RunFolder(folder).record
    if path.exists():
        return json.loads(path.read_text())
    if missing_ok:
        return {}
    raise FileNotFoundError(f"{path} is missing: train the model first (store.get_model or "
                            "`python -m dcgan_lib train ...`)")


def trained_on(checkpoint: str | Path) -> dict:
    """Where a checkpoint came from, for records: its path and, from the run record beside it (when there
    is one), the dataset, profile, commit, device, recipe (train_config: DiffAugment, steps, width, seed ...)
    and numerics it was trained with (None where unknown)."""
    run = read_record(Path(checkpoint).parent, missing_ok=True)
    return {"checkpoint": str(Path(checkpoint)), "dataset": run.get("data", {}).get("dataset"),
            "profile": run.get("profile"), "commit": run.get("commit"), "device": run.get("device"),
            "train_config": run.get("train_config"), "numerics": run.get("numerics")}
