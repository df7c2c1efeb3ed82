"""DCGAN generator and discriminator builders for every variant the paper uses (Paper §3, Fig. 1).

One builder makes G and D for 32, 64 and 128 px from a frozen `NetConfig`. The named
variants are the paper's LSUN model (Fig. 1) and the models of the authors' released code.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, fields, replace

import torch
from torch import nn


@dataclass(frozen=True)
class NetConfig:
    """Layer plan of one G/D pair. Widths list the hidden conv layers, G from 4x4 upward."""

    name: str
    image_size: int
    nz: int
    g_layers: tuple[tuple[int, int], ...]  # (out channels, stride) of each hidden G conv, after the 4x4 projection
    g_base: int  # channels of the 4x4 projection of z
    d_layers: tuple[tuple[int, int], ...]  # (out channels, stride) of each D conv
    kernel: int = 4
    channels: int = 3
    z_dist: str = "uniform"  # "uniform" U(-1, 1) or "normal" N(0, 1)
    project_bn: str = "channel"  # BatchNorm of z's projection: per channel after the reshape, or per "unit" before
    bn_eps: float = 1e-5  # BatchNorm epsilon (PyTorch's default; the authors' Theano code used 1e-8)

    @classmethod
    def from_dict(cls, raw: dict) -> NetConfig:
        """The config saved in a checkpoint (dataclasses.asdict): layer lists back to tuples, so it compares
        equal to the variant's; fields added since take their defaults, unknown fields are refused."""
        unknown = set(raw) - {f.name for f in fields(cls)}
        if unknown:
            raise ValueError(f"checkpoint config has unknown fields {sorted(unknown)}")
        layers = {k: tuple(tuple(layer) for layer in raw[k]) for k in ("g_layers", "d_layers")}
        return cls(**{**raw, **layers})

    def sample_z(self, n: int, generator: torch.Generator | None = None, device="cpu") -> torch.Tensor:
        """Draw n latent vectors from this model's prior (Paper §4: uniform; authors' SVHN: Gaussian)."""
        if self.z_dist == "normal":
            return torch.randn(n, self.nz, generator=generator, device=device)
        return torch.rand(n, self.nz, generator=generator, device=device) * 2 - 1


def standard_config(name: str, image_size: int, nz: int = 100, ngf: int = 128, ndf: int = 128,
                    kernel: int = 4, z_dist: str = "uniform") -> NetConfig:
    """The Fig. 1 shape at any power-of-two size: each layer doubles (G) or halves (D) the side."""
    n = int(math.log2(image_size // 4))
    if 4 * 2**n != image_size or n < 1:
        raise ValueError(f"image_size must be 4 * 2^k (32, 64, 128, ...), got {image_size}")
    g_widths = [ngf * 2 ** (n - 2 - i) for i in range(n - 1)]  # e.g. 512, 256, 128 for 64 px
    return NetConfig(
        name=name, image_size=image_size, nz=nz, kernel=kernel, z_dist=z_dist,
        g_base=ngf * 2 ** (n - 1),
        g_layers=tuple((w, 2) for w in g_widths) + ((3, 2),),
        d_layers=tuple((ndf * 2**i, 2) for i in range(n)),
    )


def _variants() -> dict[str, NetConfig]:
    imagenet32 = NetConfig(
        name="imagenet32", image_size=32, nz=256, kernel=3, g_base=512,
        g_layers=((256, 2), (256, 1), (128, 2), (128, 1), (3, 2)),
        d_layers=((128, 1), (128, 2), (256, 1), (256, 2), (512, 1), (512, 2)),
    )
    svhn32 = NetConfig(
        name="svhn32", image_size=32, nz=100, kernel=5, z_dist="normal", g_base=256,
        g_layers=((128, 2), (64, 2), (3, 2)),
        d_layers=((64, 2), (128, 2), (256, 2)),
    )
    return {
        "lsun64": standard_config("lsun64", 64, nz=100, ngf=128, ndf=128, kernel=4),
        "faces64": standard_config("faces64", 64, nz=100, ngf=128, ndf=128, kernel=5),
        "imagenet32": imagenet32,
        "svhn32": svhn32,
    }


VARIANTS: dict[str, NetConfig] = _variants()
STANDARD = ("lsun64", "faces64")  # the Fig. 1 shape (standard_config): any size, and either kernel of KERNELS
KERNELS = (4, 5)  # with padding (kernel - 1) // 2, each stride-2 layer exactly doubles or halves the side


def get_config(variant: str, image_size: int | None = None, width: float = 1.0,
               kernel: int | None = None) -> NetConfig:
    """Look up a named variant, optionally at another size (standard shapes only), width or conv kernel side
    (standard shapes only: every layer keeps its stride and padding (kernel - 1) // 2)."""
    if variant not in VARIANTS:
        raise ValueError(f"unknown variant {variant!r}; valid: {', '.join(VARIANTS)}")
    cfg = VARIANTS[variant]
    if kernel is not None and kernel != cfg.kernel:
        if variant not in STANDARD:
            raise ValueError(f"variant {variant} has fixed {cfg.kernel}x{cfg.kernel} kernels; "
                             f"{' and '.join(STANDARD)} build with kernel {' or '.join(map(str, KERNELS))}")
        if kernel not in KERNELS:
            raise ValueError(f"kernel must be {' or '.join(map(str, KERNELS))} (each stride-2 layer then exactly "
                             f"doubles or halves the side), got {kernel!r}")
        cfg = replace(cfg, kernel=kernel)
    if image_size is not None and image_size != cfg.image_size:
        if variant not in STANDARD:
            raise ValueError(f"variant {variant} is fixed at {cfg.image_size} px; "
                             f"{' and '.join(STANDARD)} build at 32, 64 or 128 px")
        base = cfg.d_layers[0][0]
        cfg = replace(standard_config(cfg.name, image_size, cfg.nz, base, base, cfg.kernel, cfg.z_dist))
    if width != 1.0:
        def scale(c: int) -> int:
            return max(4, int(round(c * width)))
        cfg = replace(
            cfg,
            g_base=scale(cfg.g_base),
            g_layers=tuple((scale(c), s) for c, s in cfg.g_layers[:-1]) + (cfg.g_layers[-1],),
            d_layers=tuple((scale(c), s) for c, s in cfg.d_layers),
        )
    return cfg


def _pad(kernel: int) -> int:
    return (kernel - 1) // 2


class Generator(nn.Module):
    """z -> project and reshape to g_base x 4 x 4 -> fractionally-strided convs -> Tanh image (Fig. 1)."""

    def __init__(self, cfg: NetConfig):
        super().__init__()
        self.cfg = cfg
        # The only fully connected layer: a matrix multiply of z, reshaped to 4-D (guideline 3).
        self.project = nn.Linear(cfg.nz, cfg.g_base * 16, bias=False)
        if cfg.project_bn not in ("channel", "unit"):
            raise ValueError(f"project_bn must be 'channel' or 'unit', got {cfg.project_bn!r}")
        # "unit": one statistic per projected unit before the reshape, as the authors' Theano G did
        self.project_bn = (nn.BatchNorm1d(cfg.g_base * 16, eps=cfg.bn_eps) if cfg.project_bn == "unit"
                           else nn.BatchNorm2d(cfg.g_base, eps=cfg.bn_eps))
        blocks, c_in = [], cfg.g_base
        k, p = cfg.kernel, _pad(cfg.kernel)
        for i, (c_out, stride) in enumerate(cfg.g_layers):
            last = i == len(cfg.g_layers) - 1
            out_pad = stride + 2 * p - k if stride > 1 else 0  # makes the side exactly side * stride
            conv = nn.ConvTranspose2d(c_in, c_out, k, stride, p, output_padding=out_pad, bias=last)
            layers = [conv, nn.Tanh()] if last else [conv, nn.BatchNorm2d(c_out, eps=cfg.bn_eps),
                                                      nn.ReLU(inplace=True)]
            blocks.append(nn.Sequential(*layers))
            c_in = c_out
        self.blocks = nn.ModuleList(blocks)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.feature_maps(z)[-1]

    def feature_maps(self, z: torch.Tensor) -> list[torch.Tensor]:
        """Every intermediate map: the 4x4 projection, each hidden conv, then the image."""
        h = self.project(z.flatten(1))  # (N, g_base * 16)
        if self.cfg.project_bn == "unit":
            h = self.project_bn(h)
        h = h.view(-1, self.cfg.g_base, 4, 4)  # g_base x 4 x 4
        if self.cfg.project_bn == "channel":
            h = self.project_bn(h)
        h = torch.relu(h)
        maps = [h]
        for block in self.blocks:
            h = block(h)  # side doubles at stride 2
            maps.append(h)
        return maps


class Discriminator(nn.Module):
    """Image -> strided convs with LeakyReLU(0.2) -> flatten -> one logit (sigmoid in the loss)."""

    def __init__(self, cfg: NetConfig):
        super().__init__()
        self.cfg = cfg
        blocks, c_in, side = [], cfg.channels, cfg.image_size
        k, p = cfg.kernel, _pad(cfg.kernel)
        for i, (c_out, stride) in enumerate(cfg.d_layers):
            layers = [nn.Conv2d(c_in, c_out, k, stride, p, bias=False)]
            if i > 0:  # no BatchNorm on D's input layer (guideline 2)
                layers.append(nn.BatchNorm2d(c_out, eps=cfg.bn_eps))
            layers.append(nn.LeakyReLU(0.2, inplace=True))
            blocks.append(nn.Sequential(*layers))
            c_in, side = c_out, side // stride
        self.blocks = nn.ModuleList(blocks)
        self.classify = nn.Linear(c_in * side * side, 1)  # output layer, not hidden

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classify(self.features(x)[-1].flatten(1)).squeeze(1)

    def features(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Activations after each conv layer (the probes of §5 and Fig. 5 use these)."""
        feats = []
        for block in self.blocks:
            x = block(x)  # side halves at stride 2
            feats.append(x)
        return feats


def init_weights(module: nn.Module) -> None:
    """Weights ~ N(0, 0.02), BatchNorm gains ~ N(1, 0.02), biases 0 (Paper §4; authors' code)."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            nn.init.normal_(m.weight, 0.0, 0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.modules.batchnorm._BatchNorm):
            nn.init.normal_(m.weight, 1.0, 0.02)
            nn.init.zeros_(m.bias)


def build(variant: str | NetConfig, image_size: int | None = None, width: float = 1.0,
          seed: int | None = None) -> tuple[Generator, Discriminator]:
    """Build an initialised (G, D) pair for a variant name or config."""
    cfg = variant if isinstance(variant, NetConfig) else get_config(variant, image_size, width)
    if seed is not None:
        torch.manual_seed(seed)
    g, d = Generator(cfg), Discriminator(cfg)
    init_weights(g)
    init_weights(d)
    return g, d


def count_parameters(module: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad)


@torch.no_grad()
def calibrate_batchnorm(g: Generator, batches: int = 50, batch_size: int = 128, seed: int = 0) -> Generator:
    """Re-estimate G's BatchNorm statistics over many z batches, then switch G to eval mode.

    Why: in train mode a sample depends on the rest of its batch (the authors' code always used
    batch statistics). Eval mode with statistics averaged over `batches` x `batch_size` draws of z
    keeps the same normalisation on average, and makes G(z) deterministic for a fixed z.
    """
    device = next(g.parameters()).device
    gen = torch.Generator(device="cpu").manual_seed(seed)
    bns = [m for m in g.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    saved = [m.momentum for m in bns]
    for m in bns:
        m.reset_running_stats()
        m.momentum = None  # cumulative average over the calibration batches
    g.train()
    for _ in range(batches):
        g(g.cfg.sample_z(batch_size, gen).to(device))
    for m, momentum in zip(bns, saved, strict=True):
        m.momentum = momentum
    return g.eval()


def check_guidelines(g: Generator, d: Discriminator) -> dict[str, bool]:
    """The five architecture guidelines of Paper §3, checked by inspecting the modules."""
    def find(module, kind):
        return [m for m in module.modules() if isinstance(m, kind)]

    pools = (nn.MaxPool2d, nn.AvgPool2d, nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d, nn.Upsample)
    g_bn = [any(isinstance(m, nn.BatchNorm2d) for m in b) for b in g.blocks]
    d_bn = [any(isinstance(m, nn.BatchNorm2d) for m in b) for b in d.blocks]
    leaky = find(d, nn.LeakyReLU)
    return {
        "1. no pooling: strided convs in D, fractionally-strided in G":
            not find(g, pools) and not find(d, pools) and bool(find(g, nn.ConvTranspose2d)),
        "2. BatchNorm everywhere except G's output and D's input":
            g_bn == [True] * (len(g_bn) - 1) + [False] and d_bn == [False] + [True] * (len(d_bn) - 1),
        "3. no hidden fully connected layers":
            find(g, nn.Linear) == [g.project] and find(d, nn.Linear) == [d.classify],
        "4. G: ReLU, Tanh on the output":
            bool(find(g, nn.ReLU)) and not find(g, nn.LeakyReLU) and isinstance(g.blocks[-1][-1], nn.Tanh),
        "5. D: LeakyReLU (slope 0.2)":
            len(leaky) == len(d.blocks) and all(m.negative_slope == 0.2 for m in leaky) and not find(d, nn.ReLU),
    }
