"""The GAN trainer of Paper §4: Adam 2e-4 / beta1 0.5, batch 128, BCE, N(0, 0.02) init.

Checkpoints are atomic (temp file, then rename) and hold both nets, both optimizers, the noise
generator's state and the data position, so a killed run started again with the same command
continues exactly where it stopped. Launched with torchrun it trains with DistributedDataParallel.
"""
from __future__ import annotations

import csv
import dataclasses
import fcntl
import math
import os
import time
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from torch.nn import functional as F
from tqdm.auto import tqdm

from dcgan_lib import nets, plots
from dcgan_lib.data import BatchSampler, to_float

LOG_FIELDS = ("step", "epoch", "loss_d", "loss_g", "d_real", "d_fake", "images_per_s", "wall_s")


class TrainingStopped(RuntimeError):
    """Training hit NaN or collapse; the last good checkpoint is kept."""


@dataclass(frozen=True)
class TrainConfig:
    """Everything that defines a run (Paper §4 defaults). Saved in every checkpoint."""

    variant: str = "lsun64"
    image_size: int | None = None  # None: the variant's size
    width: float = 1.0
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
    amp: bool = True  # bf16 autocast on CUDA, and on CPUs with AMX (bench: 2-3x on 2 Xeon cores)
    fused_adam: bool = True
    compile: bool = False
    snapshot_epochs: bool = True  # keep G's weights after every epoch (Figs. 2-3, memorisation curve)

    def net_config(self) -> nets.NetConfig:
        return nets.get_config(self.variant, self.image_size, self.width)


def fast_cpu_bf16() -> bool:
    """Whether this CPU multiplies bf16 in hardware (AMX tiles), where bf16 autocast pays (issue 7 bench)."""
    check = getattr(torch.cpu, "_is_amx_tile_supported", None)
    return bool(check is not None and check())


def _dist_info() -> tuple[int, int]:
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def init_distributed() -> tuple[int, int]:
    """Join the process group when launched by torchrun (WORLD_SIZE > 1): gloo on CPU, nccl on CUDA."""
    if int(os.environ.get("WORLD_SIZE", "1")) > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
        if torch.cuda.is_available():
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    return _dist_info()


class Trainer:
    """Trains one G/D pair on a uint8 image array, writing checkpoints, samples and a CSV log to `out`."""

    def __init__(self, cfg: TrainConfig, images: np.ndarray, out: str | Path,
                 device: torch.device | str | None = None, progress: bool = True):
        self.cfg, self.out, self.progress = cfg, Path(out), progress
        self.rank, self.world = _dist_info()
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        self.net_cfg = cfg.net_config()
        if images.shape[1] != self.net_cfg.image_size:
            raise ValueError(f"images are {images.shape[1]} px but {cfg.variant} expects "
                             f"{self.net_cfg.image_size} px; prepare the dataset at that size")
        self.G, self.D = nets.build(self.net_cfg, seed=cfg.seed)
        self.G.to(self.device)
        self.D.to(self.device)
        self.cpu_bf16 = fast_cpu_bf16()
        self.memory_format = torch.channels_last if cfg.channels_last else torch.contiguous_format
        self.G.to(memory_format=self.memory_format)
        self.D.to(memory_format=self.memory_format)
        fused = cfg.fused_adam and self.device.type in ("cuda", "cpu")
        adam = dict(lr=cfg.lr, betas=(cfg.beta1, 0.999), weight_decay=cfg.weight_decay)
        self.opt_g = torch.optim.Adam(self.G.parameters(), fused=fused, **adam)
        self.opt_d = torch.optim.Adam(self.D.parameters(), fused=fused, **adam)
        self.sampler = BatchSampler(images, cfg.batch_size, cfg.seed, rank=self.rank, world=self.world)
        self.z_gen = torch.Generator(device="cpu").manual_seed(cfg.seed + 1000 * self.rank + 1)
        self.fixed_z = self.net_cfg.sample_z(cfg.n_samples, torch.Generator().manual_seed(cfg.seed + 7))
        self.step = 0
        self.collapse_count = 0
        self.wall_s = 0.0
        g_step, d_model = self.G, self.D
        if self.world > 1:
            ids = [self.device.index] if self.device.type == "cuda" else None
            g_step = nn.parallel.DistributedDataParallel(self.G, device_ids=ids)
            d_model = nn.parallel.DistributedDataParallel(self.D, device_ids=ids)
        self.g_train, self.d_train = g_step, d_model
        if cfg.compile:
            self.g_train, self.d_train = torch.compile(self.g_train), torch.compile(self.d_train)
        self.checkpoint_path = self.out / "checkpoint.pt"
        self.log_path = self.out / "log.csv"

    # ---- one step -------------------------------------------------------------------------
    def _autocast(self):
        """bf16 mixed precision where the device has fast bf16 (weights, optimizer, losses stay fp32)."""
        if self.cfg.amp and (self.device.type == "cuda" or (self.device.type == "cpu" and self.cpu_bf16)):
            return torch.autocast(self.device.type, dtype=torch.bfloat16)
        return nullcontext()

    def _batch(self) -> torch.Tensor:
        x = torch.from_numpy(self.sampler.next())
        if self.device.type == "cuda":
            x = x.pin_memory().to(self.device, non_blocking=True)
        return to_float(x).contiguous(memory_format=self.memory_format)  # B x 3 x H x W in [-1, 1]

    def train_step(self) -> dict[str, torch.Tensor]:
        """One D step then one G step (Paper §4); returns on-device scalars (no host sync)."""
        real = self._batch()
        b = real.shape[0]
        z = self.net_cfg.sample_z(b, self.z_gen).to(self.device, non_blocking=True)
        ones = torch.ones(b, device=self.device)
        zeros = torch.zeros(b, device=self.device)
        # D step: real -> 1, fake -> 0, two separate batches as in the authors' code (BN per batch).
        self.opt_d.zero_grad(set_to_none=True)
        with self._autocast():
            fake = self.g_train(z)
        sync = self.d_train.no_sync() if self.world > 1 else nullcontext()
        with sync, self._autocast():
            logit_real = self.d_train(real)
            loss_real = F.binary_cross_entropy_with_logits(logit_real.float(), ones)
        loss_real.backward()
        with self._autocast():
            logit_fake = self.d_train(fake.detach())
            loss_fake = F.binary_cross_entropy_with_logits(logit_fake.float(), zeros)
        loss_fake.backward()
        self.opt_d.step()
        # G step: non-saturating loss, fake -> 1; D's weights need no gradient here.
        self.opt_g.zero_grad(set_to_none=True)
        self.D.requires_grad_(False)
        with self._autocast():
            logit_g = self.D(fake)
            loss_g = F.binary_cross_entropy_with_logits(logit_g.float(), ones)
        loss_g.backward()
        self.D.requires_grad_(True)
        self.opt_g.step()
        return {"loss_d": (loss_real + loss_fake).detach(), "loss_g": loss_g.detach(),
                "d_real": torch.sigmoid(logit_real.detach().float()).mean(),
                "d_fake": torch.sigmoid(logit_fake.detach().float()).mean()}

    # ---- checkpoints ----------------------------------------------------------------------
    def state_dict(self) -> dict:
        return {
            "train_config": dataclasses.asdict(self.cfg), "config": dataclasses.asdict(self.net_cfg),
            "G": self.G.state_dict(), "D": self.D.state_dict(),
            "opt_g": self.opt_g.state_dict(), "opt_d": self.opt_d.state_dict(),
            "z_gen": self.z_gen.get_state(), "sampler": self.sampler.state_dict(), "step": self.step,
            "collapse_count": self.collapse_count, "wall_s": self.wall_s,
        }

    def save_checkpoint(self) -> Path:
        """Write the checkpoint atomically (temp file, then rename) and a fixed-noise sample grid."""
        if self.rank != 0:
            return self.checkpoint_path
        self.out.mkdir(parents=True, exist_ok=True)
        tmp = self.checkpoint_path.with_name(f"checkpoint.pt.tmp{os.getpid()}")
        torch.save(self.state_dict(), tmp)
        os.replace(tmp, self.checkpoint_path)
        self.save_samples()
        return self.checkpoint_path

    def save_snapshot(self, epoch: int) -> Path:
        """G's weights after `epoch` full passes: snapshots/G_epoch<N>.pt (rank 0 only)."""
        path = self.out / "snapshots" / f"G_epoch{epoch:03d}.pt"
        if self.rank == 0:
            path.parent.mkdir(parents=True, exist_ok=True)
            torch.save({"step": self.step, "epoch": epoch, "G": self.G.state_dict()}, path)
        return path

    def save_samples(self) -> Path:
        """G(fixed z) in eval mode as samples_<step>.png and samples_latest.png."""
        was_training = self.G.training
        self.G.eval()
        with torch.no_grad():
            images = self.G(self.fixed_z.to(self.device)).float().cpu()
        self.G.train(was_training)
        nrow = int(math.sqrt(len(images)))
        path = plots.save_grid(images, self.out / "samples" / f"samples_{self.step:07d}.png", nrow)
        plots.save_grid(images, self.out / "samples_latest.png", nrow)
        return path

    def load_checkpoint(self, path: Path | None = None) -> bool:
        """Restore everything from a checkpoint; returns False when there is none."""
        path = Path(path or self.checkpoint_path)
        if not path.exists():
            return False
        state = torch.load(path, map_location=self.device, weights_only=False)
        saved = TrainConfig(**state["train_config"])
        if dataclasses.replace(saved, steps=self.cfg.steps) != self.cfg:
            diff = {k: (v, getattr(self.cfg, k)) for k, v in dataclasses.asdict(saved).items()
                    if k != "steps" and getattr(self.cfg, k) != v}
            raise ValueError(f"{path} was written by a different configuration {diff} (saved, now); "
                             "use another --out folder or delete the checkpoint to start again")
        self.G.load_state_dict(state["G"])
        self.D.load_state_dict(state["D"])
        self.opt_g.load_state_dict(state["opt_g"])
        self.opt_d.load_state_dict(state["opt_d"])
        self.z_gen.set_state(state["z_gen"])
        self.sampler.load_state_dict(state["sampler"])
        self.step, self.collapse_count = state["step"], state["collapse_count"]
        self.wall_s = state.get("wall_s", 0.0)
        return True

    # ---- the loop -------------------------------------------------------------------------
    def _truncate_log(self) -> None:
        """Drop log rows after the restored step, so a resumed log has each step once."""
        if self.rank != 0 or not self.log_path.exists():
            return
        with open(self.log_path) as f:
            rows = [r for r in csv.DictReader(f) if int(r["step"]) <= self.step]
        self._write_log(rows, mode="w")

    def _write_log(self, rows: list[dict], mode: str = "a") -> None:
        if self.rank != 0:
            return
        self.out.mkdir(parents=True, exist_ok=True)
        new = mode == "w" or not self.log_path.exists()
        with open(self.log_path, mode, newline="") as f:
            writer = csv.DictWriter(f, LOG_FIELDS)
            if new:
                writer.writeheader()
            writer.writerows(rows)

    def fit(self, resume: bool = True) -> dict:
        """Train to cfg.steps, resuming from the checkpoint in `out` when there is one."""
        with self._lock():
            return self._fit(resume)

    @contextmanager
    def _lock(self):
        """Refuse a second process training into the same folder (rank 0 holds an flock)."""
        if self.rank != 0:
            yield
            return
        self.out.mkdir(parents=True, exist_ok=True)
        with open(self.out / ".lock", "w") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise RuntimeError(f"another process is training into {self.out}; wait for it or use "
                                   "another --out folder") from None
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def _fit(self, resume: bool) -> dict:
        cfg = self.cfg
        if resume and self.load_checkpoint():
            self._truncate_log()
        self.G.train()
        self.D.train()
        bar = tqdm(total=cfg.steps, initial=self.step, desc=f"train {cfg.variant}", unit="step",
                   disable=not self.progress or self.rank != 0)
        window_start, window_steps = time.perf_counter(), 0
        last = {}
        while self.step < cfg.steps:
            t0 = time.perf_counter()
            stats = self.train_step()
            self.step += 1
            window_steps += 1
            bar.update(1)
            if self.step % cfg.log_every == 0 or self.step == cfg.steps:
                last = self._log(stats, window_steps, time.perf_counter() - window_start)
                bar.set_postfix(loss_d=f"{last['loss_d']:.3f}", loss_g=f"{last['loss_g']:.3f}",
                                d_fake=f"{last['d_fake']:.3f}")
                window_start, window_steps = time.perf_counter(), 0
            self.wall_s += time.perf_counter() - t0
            if cfg.snapshot_epochs and self.sampler.index == self.sampler.steps_per_epoch:
                self.save_snapshot(self.sampler.epoch + 1)
            if self.step % cfg.checkpoint_every == 0 or self.step == cfg.steps:
                self.save_checkpoint()
            elif cfg.sample_every and self.step % cfg.sample_every == 0 and self.rank == 0:
                self.save_samples()
        bar.close()
        return {"step": self.step, "wall_s": self.wall_s, **last}

    def _log(self, stats: dict[str, torch.Tensor], steps: int, seconds: float) -> dict:
        values = {k: float(v) for k, v in stats.items()}  # the only host sync: at log points
        if not all(math.isfinite(v) for v in values.values()):
            raise TrainingStopped(
                f"non-finite loss at step {self.step} ({values}); the last good checkpoint "
                f"{self.checkpoint_path} is kept. Lower the learning rate or check the data.")
        self.collapse_count = self.collapse_count + 1 if values["d_fake"] < self.cfg.collapse_threshold else 0
        if self.cfg.collapse_patience and self.collapse_count >= self.cfg.collapse_patience:
            raise TrainingStopped(
                f"collapse at step {self.step}: D(G(z)) stayed below {self.cfg.collapse_threshold} for "
                f"{self.collapse_count} log points (D wins, G gets no gradient). The last good checkpoint "
                f"{self.checkpoint_path} is kept; restart from it with another seed or a lower lr.")
        row = {"step": self.step, "epoch": self.sampler.epoch, **{k: f"{v:.6g}" for k, v in values.items()},
               "images_per_s": f"{steps * self.cfg.batch_size * self.world / max(seconds, 1e-9):.1f}",
               "wall_s": f"{self.wall_s:.2f}"}
        self._write_log([row])
        return values


def read_log(out: str | Path) -> list[dict]:
    """The training log of a run folder as a list of dicts of floats."""
    with open(Path(out) / "log.csv") as f:
        return [{k: float(v) for k, v in row.items()} for row in csv.DictReader(f)]


def load_nets(path: str | Path, device: torch.device | str = "cpu") -> tuple[nets.Generator, nets.Discriminator, dict]:
    """Build G and D from a checkpoint file; returns (G, D, checkpoint dict without the weights)."""
    state = torch.load(path, map_location=device, weights_only=False)
    cfg = nets.NetConfig(**{k: tuple(tuple(x) for x in v) if k in ("g_layers", "d_layers") else v
                            for k, v in state["config"].items()})
    g, d = nets.Generator(cfg).to(device), nets.Discriminator(cfg).to(device)
    g.load_state_dict(state["G"])
    d.load_state_dict(state["D"])
    info = {k: v for k, v in state.items() if k not in ("G", "D", "opt_g", "opt_d")}
    return g, d, info
