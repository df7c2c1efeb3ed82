"""The two training loops the speed benchmark (dcgan_lib.bench.bench) times, and the image files they share.

`Ours` is the Trainer's fast path in fp32 (batches sliced from a decoded uint8 array, channels_last, fused
Adam, no host syncs, no D weight gradients in the G step); `Reference` is written the way pytorch/examples'
dcgan is (fp32, default memory layout, a DataLoader decoding the image FILES every step, separate
optimizers, `.item()` every step). Both run the same nets on the same files (Paper §3-4: same architecture,
BCE loss, Adam 2e-4 / 0.5). The benchmark's config lives here too, with the ablations: `ours_specs` turns it
into the Trainer runs to time, each ablation switching one fast-path choice off.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from dcgan_lib.data import data, datasets
from dcgan_lib.gan import nets, train
from dcgan_lib.gan.train import Trainer
from dcgan_lib.gan.train_config import COMPILE_MODES, TrainConfig

CONFIG_FLAGS = ("channels_last", "fused_adam")  # fast-path choices that are TrainConfig fields
# Every fast-path choice, each switched off alone from the fp32 fast path in its own ablation row.
ABLATIONS = (*CONFIG_FLAGS, "array_batches", "no_host_sync", "no_d_grads_in_g_step", "all_threads")
ABLATION_MEANING = {
    "channels_last": "NCHW memory layout",
    "fused_adam": "default (foreach) Adam",
    "array_batches": "a DataLoader decoding the image files, as the reference",
    "no_host_sync": "losses read back (.item()) every step, as the reference",
    "no_d_grads_in_g_step": "D's weight gradients also computed in the G step, as the reference",
    "all_threads": "1 torch thread instead of one per core",
}


@dataclass(frozen=True)
class BenchConfig:
    """One training benchmark: which nets, how long, which loops."""

    variant: str = "lsun64"
    batch_size: int = 128  # Paper §4
    width: float = 1.0  # multiplier on the paper's widths (the cpu profile uses 1/4)
    seconds: float = 20.0  # timed seconds per loop, split over `windows`
    windows: int = 5
    warmup_steps: int = 2  # untimed steps before EVERY window
    n_files: int = 2048  # image files both loops read
    dataset: str | None = None  # None: the variant's stand-in (bedrooms, tiny_imagenet)
    workers: int = 2  # reference DataLoader workers (pytorch/examples' default --workers 2)
    ablations: tuple[str, ...] = ABLATIONS
    all_off: bool = True  # also time the Trainer with every fast-path choice off (should match the reference)
    compile: bool = False  # also time the Trainer with torch.compile (minutes of warm-up on a CPU)
    # more torch.compile rows, one per mode ("reduce-overhead": CUDA graphs, which cut the launch overhead);
    # each also trains in the quality check, so its KID at equal steps stands beside its speed
    compile_modes: tuple[str, ...] = ()
    bf16: bool = True  # also time bf16 autocast where the device has fast bf16 (CUDA, CPUs with AMX)
    quality_steps: int = 200  # steps of the fp32 / bf16 curve comparison, when bf16 is timed (0: skip)
    quality_always: bool = False  # run the comparison even where bf16 is not timed (the GPU check's CPU mode)
    fid_samples: int = 0  # G samples per quality run for FID/KID (0: curves only)
    samples_dir: str | None = None  # where those samples are saved when no FID Inception is installed
    limits: bool = True  # measure GEMM and conv throughput, count step FLOPs, profile one step
    limit_seconds: float = 2.0  # timed seconds of the GEMM and of the conv measurements
    profile_steps: int = 3  # steps under torch.profiler for the time breakdown
    seed: int = 0


@dataclass(frozen=True)
class OursSpec:
    """One way to run our Trainer: its config plus the choices that are not TrainConfig fields."""

    config: TrainConfig
    threads: int | None = None  # torch threads while this loop runs (None: the process's, one per core)
    array_batches: bool = True  # False: batches from a DataLoader decoding the files, as the reference
    host_sync: bool = False  # True: read the losses back every step, as the reference's .item()
    d_grads_in_g_step: bool = False  # True: D's weight gradients in the G step too, as the reference
    numerics: str = "fp32"


def amp_works(device: torch.device) -> bool:
    """Whether the Trainer's bf16 autocast is on for this device (CUDA, or a CPU with AMX tiles)."""
    return device.type == "cuda" or (device.type == "cpu" and train.fast_cpu_bf16())


def compile_name(mode: str) -> str:
    """A torch.compile mode's name in records: "compile" (the default mode) or "compile <mode>"."""
    return "compile" + ("" if mode == "default" else f" {mode}")


def compile_row(mode: str) -> str:
    """The speed row of a torch.compile mode: "ours + compile", "ours + compile reduce-overhead", ..."""
    return f"ours + {compile_name(mode)}"


def compile_modes(cfg: BenchConfig) -> tuple[str, ...]:
    """The torch.compile modes a benchmark times: "default" for `compile`, then `compile_modes`, each once."""
    modes = tuple(dict.fromkeys((("default",) if cfg.compile else ()) + tuple(cfg.compile_modes)))
    unknown = [m for m in modes if m not in COMPILE_MODES]
    if unknown:
        raise ValueError(f"unknown torch.compile mode {', '.join(unknown)}; valid: {', '.join(COMPILE_MODES)}")
    return modes


def ours_specs(cfg: BenchConfig, device: torch.device) -> dict[str, OursSpec]:
    """The Trainer runs to time: the fp32 fast path, each choice off alone, all off, compiled, bf16."""
    base = TrainConfig(variant=cfg.variant, width=cfg.width, batch_size=cfg.batch_size, seed=cfg.seed,
                       steps=10**9, snapshot_epochs=False, amp=False)
    fast = OursSpec(base)
    specs = {"ours": fast}
    for flag in cfg.ablations:
        if flag in CONFIG_FLAGS:
            spec = dataclasses.replace(fast, config=dataclasses.replace(base, **{flag: False}))
        elif flag == "array_batches":
            spec = dataclasses.replace(fast, array_batches=False)
        elif flag == "no_host_sync":
            spec = dataclasses.replace(fast, host_sync=True)
        elif flag == "no_d_grads_in_g_step":
            spec = dataclasses.replace(fast, d_grads_in_g_step=True)
        elif flag == "all_threads":
            if torch.get_num_threads() == 1:
                continue  # already one thread: nothing to switch off
            spec = dataclasses.replace(fast, threads=1)
        else:
            raise ValueError(f"unknown ablation {flag!r}; valid: {', '.join(ABLATIONS)}")
        specs[f"ours without {flag}"] = spec
    if cfg.all_off:
        specs["ours, all choices off"] = OursSpec(dataclasses.replace(base, channels_last=False, fused_adam=False),
                                                  array_batches=False, host_sync=True, d_grads_in_g_step=True)
    for mode in compile_modes(cfg):
        specs[compile_row(mode)] = dataclasses.replace(
            fast, config=dataclasses.replace(base, compile=True, compile_mode=mode))
    if cfg.bf16 and amp_works(device):
        specs["ours bf16"] = dataclasses.replace(fast, config=dataclasses.replace(base, amp=True), numerics="bf16")
    return specs


# ---- the shared data: image files for the reference, the same images decoded once for ours ------

def prepare_files(dataset: str, n: int, size: int, folder: Path) -> tuple[Path, np.ndarray, dict]:
    """Write the first n decodable files of a dataset under folder/files/images/, and the same images
    decoded once (min-resize + centre crop, Paper §4.3) as a memory-mapped uint8 array (N, H, W, 3)."""
    root = folder / "files" / "images"  # ImageFolder wants one class folder
    root.mkdir(parents=True, exist_ok=True)
    decoded = []
    for item_id, payload in datasets.iter_raw(dataset):
        try:
            decoded.append(data.decode_image(payload, size))  # H x W x 3 uint8
        except data.BadImage:
            continue
        (root / f"{len(decoded) - 1:06d}{Path(item_id).suffix.lower() or '.png'}").write_bytes(payload)
        if len(decoded) == n:
            break
    if len(decoded) < n:
        raise ValueError(f"{dataset} has only {len(decoded)} decodable images, the benchmark asked for {n}; "
                         "pass a smaller --files")
    np.save(folder / "images.npy", np.stack(decoded))  # N x H x W x 3
    return root.parent, np.load(folder / "images.npy", mmap_mode="r"), datasets.describe(dataset)


def file_loader(cfg: BenchConfig, folder: Path, size: int) -> torch.utils.data.DataLoader:
    """pytorch/examples' data path: ImageFolder decoding every file, Resize + CenterCrop + Normalize, shuffled."""
    from torchvision import transforms  # deferred: torchvision's datasets are heavy to import
    from torchvision.datasets import ImageFolder

    dataset = ImageFolder(str(folder), transform=transforms.Compose([
        transforms.Resize(size), transforms.CenterCrop(size), transforms.ToTensor(),
        transforms.Normalize((0.5, 0.5, 0.5), (0.5, 0.5, 0.5))]))
    # persistent workers and drop_last favour the reference: no worker start-up per epoch
    return torch.utils.data.DataLoader(
        dataset, batch_size=cfg.batch_size, shuffle=True, num_workers=cfg.workers, drop_last=True,
        persistent_workers=cfg.workers > 0, generator=torch.Generator().manual_seed(cfg.seed))


class _Batches:
    """Endless batches of a DataLoader (a new epoch when one ends)."""

    def __init__(self, loader: torch.utils.data.DataLoader):
        self.loader, self.it = loader, iter(loader)
        self.prefetched = loader.num_workers * 2  # batches the workers hold ready (prefetch_factor 2)

    def next(self) -> torch.Tensor:
        try:
            return next(self.it)[0]
        except StopIteration:  # a new epoch
            self.it = iter(self.loader)
            return next(self.it)[0]

    def close(self) -> None:
        self.it = None  # shuts the workers down


# ---- the two loops ------------------------------------------------------------------------------

class Ours:
    """The Trainer's own train_step (Paper §4) on a uint8 array; losses stay on the device.

    The spec's non-config choices are applied around the Trainer, not in it: `array_batches=False`
    swaps its batch source for the reference's DataLoader, `d_grads_in_g_step` keeps D's gradients on
    through the G step (D's .grad is cleared before the next D step, so the numerics do not change)."""

    def __init__(self, name: str, spec: OursSpec | TrainConfig, images: np.ndarray, out: Path, device: torch.device,
                 loader: torch.utils.data.DataLoader | None = None):
        spec = spec if isinstance(spec, OursSpec) else OursSpec(spec)
        self.name, self.device, self.spec, self.threads = name, device, spec, spec.threads
        self.trainer = Trainer(spec.config, images, out, device=device, progress=False)
        self.trainer.G.train()
        self.trainer.D.train()
        self.stats: dict[str, torch.Tensor] = {}
        self.batches = None
        if not spec.array_batches:
            if loader is None:
                raise ValueError(f"{name}: array_batches=False needs the reference's file loader")
            self.batches = _Batches(loader)
            self.prefetched = self.batches.prefetched
            fmt = self.trainer.memory_format
            self.trainer._batch = lambda: self.batches.next().to(device, non_blocking=True).contiguous(
                memory_format=fmt)
        if spec.d_grads_in_g_step:
            d = self.trainer.D
            d.requires_grad_ = lambda requires_grad=True: d  # the Trainer's switch-off becomes a no-op

    def step(self) -> None:
        self.stats = self.trainer.train_step()
        if self.spec.host_sync:
            self.check()

    def check(self) -> dict[str, float]:
        """Read the last losses back (one host sync) and insist they are finite."""
        values = {k: float(v) for k, v in self.stats.items()}
        if not all(np.isfinite(v) for v in values.values()):
            raise RuntimeError(f"{self.name}: non-finite losses {values}")
        return values

    def close(self) -> None:
        if self.batches is not None:
            self.batches.close()


class Reference:
    """A DCGAN loop as pytorch/examples writes it: fp32, NCHW, files decoded by a DataLoader each step."""

    threads = None

    def __init__(self, cfg: BenchConfig, folder: Path, device: torch.device):
        self.name, self.device, self.batch_size = "reference", device, cfg.batch_size
        self.net_cfg = nets.get_config(cfg.variant, None, cfg.width)
        self.G, self.D = nets.build(self.net_cfg, seed=cfg.seed)
        self.G.to(device)
        self.D.to(device)
        self.opt_g = torch.optim.Adam(self.G.parameters(), lr=2e-4, betas=(0.5, 0.999))
        self.opt_d = torch.optim.Adam(self.D.parameters(), lr=2e-4, betas=(0.5, 0.999))
        self.criterion = nn.BCELoss()
        self.loader = file_loader(cfg, folder, self.net_cfg.image_size)
        self.batches = _Batches(self.loader)
        self.prefetched = self.batches.prefetched
        self.log: dict[str, float] = {}

    def step(self) -> None:
        real = self.batches.next().to(self.device)  # B x 3 x H x W in [-1, 1]
        b = real.size(0)
        # (1) D: maximise log D(x) + log(1 - D(G(z)))
        self.D.zero_grad()
        label = torch.full((b,), 1.0, device=self.device)
        output = torch.sigmoid(self.D(real))
        err_real = self.criterion(output, label)
        err_real.backward()
        d_x = output.mean().item()
        noise = self.net_cfg.sample_z(b, device=self.device)
        fake = self.G(noise)
        label.fill_(0.0)
        output = torch.sigmoid(self.D(fake.detach()))
        err_fake = self.criterion(output, label)
        err_fake.backward()
        d_g_z1 = output.mean().item()
        self.opt_d.step()
        # (2) G: maximise log D(G(z))
        self.G.zero_grad()
        label.fill_(1.0)
        output = torch.sigmoid(self.D(fake))
        err_g = self.criterion(output, label)
        err_g.backward()
        self.opt_g.step()
        self.log = {"loss_d": (err_real + err_fake).item(), "loss_g": err_g.item(), "d_real": d_x,
                    "d_fake": d_g_z1, "d_fake_after": output.mean().item()}

    def check(self) -> dict[str, float]:
        if not all(np.isfinite(v) for v in self.log.values()):
            raise RuntimeError(f"reference: non-finite losses {self.log}")
        return self.log

    def close(self) -> None:
        self.batches.close()
