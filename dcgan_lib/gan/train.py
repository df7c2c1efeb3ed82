"""The GAN trainer of Paper §4: Adam 2e-4 / beta1 0.5, batch 128, BCE, N(0, 0.02) init.

Checkpoints hold both nets, both optimizers, every rank's noise-generator state and the data
position, so a killed run started again with the same command continues exactly where it stopped.
Launched with torchrun it trains with DistributedDataParallel. Non-finite weights are never written;
a checkpoint written while training was healthy is also kept as checkpoint_good.pt, and a NaN or
collapse stop (decided by all ranks together) puts it back. Every file of the run folder is named,
written and read by dcgan_lib.gan.runs; this module decides what to write and when.
"""
from __future__ import annotations

import dataclasses
import fcntl
import math
import os
import time
import warnings
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import NoReturn

import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from torch.nn import functional as F
from tqdm.auto import tqdm

from dcgan_lib.data.data import to_float
from dcgan_lib.figures import plots
from dcgan_lib.gan import diffaug, nets, runs
from dcgan_lib.gan.train_config import TrainConfig, differences

OK, COLLAPSED, NON_FINITE = 0, 1, 2  # a rank's verdict at a log or write point; the worst one (MAX) wins
class TrainingStopped(RuntimeError):
    """Training hit NaN or collapse; checkpoint.pt is reset to the last good checkpoint (if there is one)."""


def fast_cpu_bf16() -> bool:
    """Whether this CPU multiplies bf16 in hardware (AMX tiles), where bf16 autocast pays (figures/bench.md)."""
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


class BatchSampler:
    """Shuffled batches sliced from a uint8 array, with an exact, checkpointable position.

    The order of epoch e is a permutation drawn from seed + e, so (epoch, index) is the whole state.
    """

    def __init__(self, images: np.ndarray, batch_size: int, seed: int, drop_last: bool = True,
                 rank: int = 0, world: int = 1):
        if len(images) < batch_size * world:
            raise ValueError(f"{len(images)} images are fewer than one batch of {batch_size} x {world}")
        self.images, self.batch_size, self.seed = images, batch_size, seed
        self.rank, self.world = rank, world
        self.steps_per_epoch = len(images) // (batch_size * world)
        self.epoch, self.index = 0, 0
        self._perm_epoch, self._perm = -1, None

    def state_dict(self) -> dict:
        return {"epoch": self.epoch, "index": self.index}

    def load_state_dict(self, state: dict) -> None:
        self.epoch, self.index = state["epoch"], state["index"]

    def _order(self, epoch: int) -> np.ndarray:
        if self._perm_epoch != epoch:
            self._perm_epoch, self._perm = epoch, np.random.default_rng(self.seed + epoch).permutation(len(self.images))
        return self._perm

    def next(self) -> np.ndarray:
        """The next uint8 batch (B, H, W, 3) of this rank; advances the position."""
        if self.index >= self.steps_per_epoch:
            self.epoch, self.index = self.epoch + 1, 0
        order = self._order(self.epoch)
        start = (self.index * self.world + self.rank) * self.batch_size
        idx = np.sort(order[start:start + self.batch_size])
        self.index += 1
        return np.ascontiguousarray(self.images[idx])


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
        self.aug_gen = torch.Generator(device="cpu").manual_seed(cfg.seed + 1000 * self.rank + 2)  # DiffAugment
        self.fixed_z = self.net_cfg.sample_z(cfg.n_samples, torch.Generator().manual_seed(cfg.seed + 7))
        self.step = 0
        self.collapse_count = 0
        self.loaded_collapse = 0  # the highest collapse count over the ranks of the resumed checkpoint
        self.wall_s = 0.0
        g_step, d_model = self.G, self.D
        if self.world > 1:
            ids = [self.device.index] if self.device.type == "cuda" else None
            g_step = nn.parallel.DistributedDataParallel(self.G, device_ids=ids)
            d_model = nn.parallel.DistributedDataParallel(self.D, device_ids=ids)
        self.g_train, self.d_train = g_step, d_model
        if cfg.compile:
            self.g_train = torch.compile(self.g_train, mode=cfg.compile_mode)
            self.d_train = torch.compile(self.d_train, mode=cfg.compile_mode)
        self.run = runs.RunFolder(self.out)  # good_checkpoint: the last one written while training was healthy
        self.checkpoint_step: int | None = None  # step in checkpoint.pt, once this trainer wrote or read it
        self.good_step: int | None = None  # step in checkpoint_good.pt, once this trainer knows it is this run's

    # ---- one step -------------------------------------------------------------------------
    @property
    def bf16(self) -> bool:
        """Whether the forward passes run under bf16 autocast: TrainConfig.amp None (the default) means on CUDA
        only, True also on a CPU with AMX, False never (weights, optimizer and losses stay fp32 in every case)."""
        if self.cfg.amp is False:
            return False
        if self.device.type == "cuda":  # bf16 tensor cores (Ampere and later); a T4 would only emulate them
            return torch.cuda.is_bf16_supported(including_emulation=False)
        return self.cfg.amp is True and self.device.type == "cpu" and self.cpu_bf16

    def numerics(self) -> dict:
        """What a record says of this run's arithmetic: fp32 or bf16 autocast, and whether the CPU has AMX."""
        return {"numerics": "bf16 autocast" if self.bf16 else "fp32", "amp_setting": self.cfg.amp,
                "cpu_amx": self.cpu_bf16, "device_type": self.device.type}

    def _autocast(self):
        """bf16 mixed precision when `bf16` says so (weights, optimizer, losses stay fp32)."""
        return torch.autocast(self.device.type, dtype=torch.bfloat16) if self.bf16 else nullcontext()

    def _seen_by_d(self, x: torch.Tensor) -> torch.Tensor:
        """What D is shown of a batch: the batch itself, or its DiffAugment transform (fresh draws each call)."""
        return diffaug.augment(x, self.cfg.diffaug, self.aug_gen) if self.cfg.diffaug else x

    def _batch(self) -> torch.Tensor:
        x = torch.from_numpy(self.sampler.next())
        if self.device.type == "cuda":
            x = x.pin_memory().to(self.device, non_blocking=True)
        return to_float(x).contiguous(memory_format=self.memory_format)  # B x 3 x H x W in [-1, 1]

    def train_step(self) -> dict[str, torch.Tensor]:
        """One D step then one G step (Paper §4); returns on-device scalars (no host sync)."""
        if self.cfg.compile and self.cfg.compile_mode == "reduce-overhead":
            torch.compiler.cudagraph_mark_step_begin()  # CUDA graphs: the last step's outputs are not reused
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
            logit_real = self.d_train(self._seen_by_d(real))
            loss_real = F.binary_cross_entropy_with_logits(logit_real.float(), ones)
        loss_real.backward()
        with self._autocast():
            logit_fake = self.d_train(self._seen_by_d(fake.detach()))
            loss_fake = F.binary_cross_entropy_with_logits(logit_fake.float(), zeros)
        loss_fake.backward()
        self.opt_d.step()
        # G step: non-saturating loss, fake -> 1; D's weights need no gradient here.
        self.opt_g.zero_grad(set_to_none=True)
        self.D.requires_grad_(False)
        with self._autocast():
            logit_g = self.D(self._seen_by_d(fake))
            loss_g = F.binary_cross_entropy_with_logits(logit_g.float(), ones)
        loss_g.backward()
        self.D.requires_grad_(True)
        self.opt_g.step()
        return {"loss_d": (loss_real + loss_fake).detach(), "loss_g": loss_g.detach(),
                "d_real": torch.sigmoid(logit_real.detach().float()).mean(),
                "d_fake": torch.sigmoid(logit_fake.detach().float()).mean()}

    # ---- checkpoints ----------------------------------------------------------------------
    def _agree(self, verdict: int) -> int:
        """The worst verdict over all ranks (MAX all-reduce), so that every rank takes the same decision."""
        if self.world == 1:
            return verdict
        nccl = dist.get_backend() == "nccl"
        flag = torch.tensor([verdict], device=torch.device("cuda", torch.cuda.current_device()) if nccl else "cpu")
        dist.all_reduce(flag, op=dist.ReduceOp.MAX)
        return int(flag.item())

    def _gather_ranks(self) -> list[dict]:
        """Every rank's own noise-generator state and collapse count, in rank order (all ranks call it)."""
        mine = {"z_gen": self.z_gen.get_state(), "aug_gen": self.aug_gen.get_state(),
                "collapse_count": self.collapse_count}
        if self.world == 1:
            return [mine]
        everyone: list = [None] * self.world
        dist.all_gather_object(everyone, mine)
        return everyone

    def _finite_state(self) -> bool:
        """Whether both nets' weights and buffers and both optimizers' states are finite (one host sync)."""
        moments = (v for opt in (self.opt_g, self.opt_d) for st in opt.state.values() for v in st.values())
        tensors = [*self.G.state_dict().values(), *self.D.state_dict().values(), *moments]
        flags = [torch.isfinite(t).all().to(self.device) for t in tensors
                 if torch.is_tensor(t) and t.is_floating_point()]
        return bool(torch.stack(flags).all())

    def state_dict(self, ranks: list[dict] | None = None) -> dict:
        """Everything a checkpoint holds; `ranks` from _gather_ranks (a collective when it is None)."""
        return runs.checkpoint_state(
            train_config=dataclasses.asdict(self.cfg), net_config=dataclasses.asdict(self.net_cfg),
            G=self.G.state_dict(), D=self.D.state_dict(), opt_g=self.opt_g.state_dict(), opt_d=self.opt_d.state_dict(),
            ranks=ranks or self._gather_ranks(), sampler=self.sampler.state_dict(), step=self.step, wall_s=self.wall_s)

    def save_checkpoint(self) -> Path:
        """Write the checkpoint (atomically: runs.save_atomic) and a fixed-noise sample grid.

        Every rank calls it (it gathers each rank's noise state); rank 0 writes. Non-finite weights are
        never written. A checkpoint written while every rank's last log point was healthy (no collapse
        window open) is also copied to checkpoint_good.pt, the one a NaN or collapse stop restores.
        """
        ranks = self._gather_ranks()
        healthy = max(r["collapse_count"] for r in ranks) == 0
        if self.rank == 0:
            if not self._finite_state():
                self._stop(NON_FINITE, {})
            runs.save_atomic(self.state_dict(ranks), self.run.checkpoint)
            if healthy:
                runs.copy_atomic(self.run.checkpoint, self.run.good_checkpoint)
            self.save_samples()
        self.checkpoint_step = self.step
        if healthy:
            self.good_step = self.step
        return self.run.checkpoint

    def save_snapshot(self, epoch: int) -> Path:
        """G's weights after `epoch` full passes: snapshots/G_epoch<N>.pt (rank 0 only; never non-finite)."""
        if self.rank == 0:
            if not self._finite_state():
                self._stop(NON_FINITE, {})
            runs.write_snapshot(self.out, epoch, self.step, self.G.state_dict())
        return self.run.snapshot(epoch)

    def save_samples(self) -> Path:
        """G(fixed z) in eval mode as samples_<step>.png and samples_latest.png."""
        was_training = self.G.training
        self.G.eval()
        with torch.no_grad():
            images = self.G(self.fixed_z.to(self.device)).float().cpu()
        self.G.train(was_training)
        nrow = int(math.sqrt(len(images)))
        path = plots.save_grid(images, self.run.samples(self.step), nrow)
        plots.save_grid(images, self.run.latest_samples, nrow)
        return path

    def load_checkpoint(self, path: Path | None = None) -> bool:
        """Restore everything from a checkpoint; returns False when there is none.

        Each rank takes its own noise-generator state. A damaged run-folder checkpoint.pt is moved
        aside (checkpoint.pt.corrupt-<its time>) and CheckpointError says how to restart.
        """
        path = Path(path or self.run.checkpoint)
        if not path.exists():
            return False
        aside = runs.aside_path(path)
        try:
            state, error = runs.read_checkpoint(path, self.device), None
        except runs.CheckpointError as err:
            state, error = None, err
        if self._agree(int(error is not None)):  # every rank read the same file: all go on or all stop
            raise self._set_aside(path, aside, error)
        diff = differences(state["train_config"], self.cfg)
        if diff:
            raise ValueError(f"{path} was written by a different configuration {diff} (saved, now); "
                             "use another --out folder or delete the checkpoint to start again")
        self.G.load_state_dict(state["G"])
        self.D.load_state_dict(state["D"])
        self.opt_g.load_state_dict(state["opt_g"])
        self.opt_d.load_state_dict(state["opt_d"])
        self.sampler.load_state_dict(state["sampler"])
        self.step, self.wall_s = state["step"], state.get("wall_s", 0.0)
        ranks = runs.checkpoint_ranks(state)
        if len(ranks) != self.world:
            warnings.warn(f"{path} was written by {len(ranks)} process(es) and is resumed by {self.world}: "
                          "training goes on, but not as an exact replay of an uninterrupted run", stacklevel=2)
        if self.rank < len(ranks):
            self.z_gen.set_state(ranks[self.rank]["z_gen"].cpu())
            if "aug_gen" in ranks[self.rank]:  # checkpoints written before DiffAugment have none
                self.aug_gen.set_state(ranks[self.rank]["aug_gen"].cpu())
            self.collapse_count = ranks[self.rank]["collapse_count"]
        else:  # a rank the checkpoint did not have: a stream of its own, never a copy of another rank's
            self.z_gen.manual_seed(self.cfg.seed + 1000 * self.rank + 1 + 7919 * self.step)
            self.aug_gen.manual_seed(self.cfg.seed + 1000 * self.rank + 2 + 7919 * self.step)
            self.collapse_count = 0
        self.loaded_collapse = max(r["collapse_count"] for r in ranks)
        if path == self.run.checkpoint:
            self.checkpoint_step = self.step
        return True

    def _good_checkpoint_step(self) -> int | None:
        """The step of a readable checkpoint_good.pt of this configuration, else None."""
        if not self.run.good_checkpoint.exists():
            return None
        try:
            state = runs.read_checkpoint(self.run.good_checkpoint)
        except runs.CheckpointError:
            return None
        return None if differences(state["train_config"], self.cfg) else int(state["step"])

    def _set_aside(self, path: Path, aside: Path, error: runs.CheckpointError | None) -> runs.CheckpointError:
        """Move a damaged checkpoint out of the way (rank 0) and say how to restart (the same on every rank)."""
        if self.rank == 0 and path == self.run.checkpoint:
            os.replace(path, aside)
        elif path != self.run.checkpoint:
            return error or runs.CheckpointError(f"{path} is not a valid checkpoint (unreadable on another rank)")
        reason = str(error) if error else f"{path} is not a valid checkpoint (unreadable on another rank)"
        good = self._good_checkpoint_step()
        how = (f"to resume from the last good checkpoint (step {good}), copy {self.run.good_checkpoint} to {path} "
               "and run the same command again; to start from step 0, run the same command again" if good is not None
               else "run the same command again to start training from step 0")
        return runs.CheckpointError(f"{reason}; a full disk or a broken copy can do this. Moved it to {aside}: "
                                    f"{how}.")

    def _adopt_good(self, resumed: bool) -> None:
        """Which checkpoint a stop may restore: the resumed one when healthy, else an older checkpoint_good.pt."""
        self.good_step = None
        if resumed and self.loaded_collapse == 0:
            if self.rank == 0:
                runs.copy_atomic(self.run.checkpoint, self.run.good_checkpoint)
            self.good_step = self.step
        elif resumed:
            good = self._good_checkpoint_step()
            self.good_step = good if good is not None and good <= self.step else None
        if self.good_step is None and self.rank == 0:
            self.run.good_checkpoint.unlink(missing_ok=True)  # a fresh start: an old run's good checkpoint is not ours

    def _restore_good(self) -> str:
        """After a stop, rewind the folder to the last good checkpoint; returns what was kept (for the message)."""
        if self.rank == 0:
            if self.good_step is not None and self.checkpoint_step != self.good_step:
                runs.copy_atomic(self.run.good_checkpoint, self.run.checkpoint)
            elif self.good_step is None and self.checkpoint_step is not None:
                self.run.checkpoint.unlink(missing_ok=True)  # written after the trouble began: not good
            for epoch in runs.snapshot_epochs(self.out):
                if epoch * self.sampler.steps_per_epoch > (self.good_step or 0):
                    self.run.snapshot(epoch).unlink()  # G after the restored step: rewritten when the run goes on
        if self.good_step is None:
            return "no checkpoint was written before it began, so none is kept"
        return (f"{self.run.checkpoint} now holds the last good checkpoint, step {self.good_step}, "
                "written before it began")

    def _stop(self, verdict: int, values: dict) -> NoReturn:
        """Restore the last good checkpoint and raise TrainingStopped (every rank, with the same verdict)."""
        kept = self._restore_good()
        if verdict == NON_FINITE:
            mine = f" (this rank: {', '.join(f'{k} {v:.4g}' for k, v in values.items())})" if values else ""
            raise TrainingStopped(f"non-finite losses or weights at step {self.step}{mine}; {kept}. "
                                  "Lower the learning rate or check the data.")
        raise TrainingStopped(
            f"collapse at step {self.step}: D(G(z)) stayed below {self.cfg.collapse_threshold} for "
            f"{self.cfg.collapse_patience} log points (D wins, G gets no gradient); {kept}. The same command would "
            "repeat it exactly: train into another --out folder with another --seed or a lower learning rate.")

    # ---- the loop -------------------------------------------------------------------------
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
        with open(self.run.lock, "w") as handle:
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
        resumed = resume and self.load_checkpoint()
        if self.rank == 0:
            runs.truncate_log(self.out, self.step)  # resumed: each step once; fresh: no rows of an older run
        self._adopt_good(resumed)
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
            log = self.step % cfg.log_every == 0 or self.step == cfg.steps
            snapshot = cfg.snapshot_epochs and self.sampler.index == self.sampler.steps_per_epoch
            checkpoint = self.step % cfg.checkpoint_every == 0 or self.step == cfg.steps
            if log or snapshot or checkpoint:
                values = {k: float(v) for k, v in stats.items()}  # the only host sync: at log and write points
                verdict = self._agree(self._verdict(values, count=log, weights=snapshot or checkpoint))
                if verdict != OK:
                    self._stop(verdict, values)
            if log:
                last = self._log(values, window_steps, time.perf_counter() - window_start)
                bar.set_postfix(loss_d=f"{last['loss_d']:.3f}", loss_g=f"{last['loss_g']:.3f}",
                                d_fake=f"{last['d_fake']:.3f}")
                window_start, window_steps = time.perf_counter(), 0
            self.wall_s += time.perf_counter() - t0
            if snapshot:
                self.save_snapshot(self.sampler.epoch + 1)
            if checkpoint:
                self.save_checkpoint()
            elif cfg.sample_every and self.step % cfg.sample_every == 0 and self.rank == 0:
                self.save_samples()
        bar.close()
        return {"step": self.step, "wall_s": self.wall_s, **last}

    def _verdict(self, values: dict[str, float], count: bool, weights: bool) -> int:
        """This rank's health: NON_FINITE (losses, or weights before a write), COLLAPSED (at log points) or OK."""
        if not all(math.isfinite(v) for v in values.values()) or (weights and not self._finite_state()):
            return NON_FINITE
        if count:
            self.collapse_count = self.collapse_count + 1 if values["d_fake"] < self.cfg.collapse_threshold else 0
            if self.cfg.collapse_patience and self.collapse_count >= self.cfg.collapse_patience:
                return COLLAPSED
        return OK

    def _log(self, values: dict[str, float], steps: int, seconds: float) -> dict:
        row = {"step": self.step, "epoch": self.sampler.epoch, **{k: f"{v:.6g}" for k, v in values.items()},
               "images_per_s": f"{steps * self.cfg.batch_size * self.world / max(seconds, 1e-9):.1f}",
               "wall_s": f"{self.wall_s:.2f}"}
        if self.rank == 0:
            runs.append_log(self.out, [row])
        return values

