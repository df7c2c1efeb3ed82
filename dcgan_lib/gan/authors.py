"""The paper authors' released DCGANs (Newmu/dcgan_code @ ee12b2d, MIT licence) as dcgan_lib nets.

Two models were released: the SVHN G and D after 200 epochs (the D behind Table 2) and the
ImageNet-32 G and D after 30 epochs (the D behind Table 1). Each is a `.jl` file, an old joblib
pickle (joblib < 0.10) of a list of float32 arrays whose items live beside it as `.jl_NN.npy`
(item k in file NN = k + 1). We read the list with a restricted unpickler (no code runs) and
`numpy.load` each array.

A port of 2015 Theano/cuDNN code must get five conventions right; each has a test that fails on
the wrong choice (tests/test_authors.py, against a NumPy re-implementation of the Theano ops):
- true convolutions (cuDNN "conv" mode): every kernel is flipped in both spatial axes for
  PyTorch's cross-correlation, in D's convs and in G's transposed convs alike;
- BatchNorm keeps no running statistics: the authors normalised with batch statistics, and for
  the probes averaged the per-batch means and (biased) variances over the training images
  (`features.with_train_set_bn`), with epsilon 1e-8;
- G's first BatchNorm is per unit of the 100 -> 4096 projection, before the reshape;
- a stride-2, pad-2, 5x5 (or pad-1, 3x3) transposed conv doubles the side only with one extra
  row/column of output padding, at the bottom/right (the gradient of the forward conv);
- z is Gaussian N(0, 1) for SVHN, uniform U(-1, 1) for ImageNet-32.
"""
from __future__ import annotations

import os
import pickle
import tarfile
from pathlib import Path

import numpy as np
import torch
from torch import nn

from dcgan_lib.config import paths
from dcgan_lib.data import datasets
from dcgan_lib.data.authors_releases import AUTHORS_COMMIT, RELEASES
from dcgan_lib.data.registry import DatasetMissing
from dcgan_lib.figures import plots
from dcgan_lib.gan import nets
from dcgan_lib.records import results

BN_EPS = 1e-8  # lib/ops.py batchnorm(..., e=1e-8)


class MissingWeights(FileNotFoundError):
    """Some arrays of a released model are not on disk (the offline ImageNet-32 copy lacks two)."""

    def __init__(self, message: str, missing: list[str]):
        super().__init__(message)
        self.missing = missing


# --- reading the .jl lists ------------------------------------------------------------------------

class _ArrayRef:
    """What joblib < 0.10 pickled for each array: a wrapper naming the .npy file that holds it."""

    def __setstate__(self, state: dict) -> None:
        self.filename = state["filename"]


class _ArraySubclass:
    """Stands in for the `numpy.ndarray` class named inside each wrapper."""


class _JoblibListUnpickler(pickle.Unpickler):
    """Unpickles only a list of joblib NDArrayWrapper records; any other class is refused (no code runs)."""

    def find_class(self, module: str, name: str):
        if name == "NDArrayWrapper" and module.endswith("numpy_pickle"):
            return _ArrayRef
        if (module, name) in (("numpy", "ndarray"), ("numpy.core.multiarray", "ndarray")):
            return _ArraySubclass  # the wrapper's `subclass` field: recorded, never called
        raise pickle.UnpicklingError(f"unexpected {module}.{name} in an authors' .jl file")


def read_jl(path: str | Path, allow_missing: bool = False) -> list[np.ndarray | None]:
    """The arrays of one authors' `.jl` list, in order (missing ones as None with `allow_missing`)."""
    path = Path(path)
    if not path.is_file():
        raise MissingWeights(f"{path} does not exist", [path.name])
    try:
        with open(path, "rb") as f:
            refs = _JoblibListUnpickler(f, encoding="latin1").load()
    except (pickle.UnpicklingError, EOFError, ValueError, KeyError) as err:
        raise ValueError(f"{path} is not an authors' joblib parameter list ({err})") from err
    if not isinstance(refs, list) or not all(isinstance(r, _ArrayRef) for r in refs):
        raise ValueError(f"{path} is not a joblib list of arrays")
    arrays, missing = [], []
    for ref in refs:
        file = path.parent / Path(ref.filename).name
        if file.is_file():
            arrays.append(np.load(file, allow_pickle=False))
        else:
            arrays.append(None)
            missing.append(file.name)
    if missing and not allow_missing:
        raise MissingWeights(f"{path.parent} lacks {', '.join(missing)}: {how_to_get_all()}", missing)
    return arrays


def how_to_get_all() -> str:
    """How a user gets the complete released files."""
    return (f"run `python -m dcgan_lib data fetch authors_imagenet32 --official` with internet (downloads "
            f"Newmu/dcgan_code @ {AUTHORS_COMMIT[:7]}), or set DCGAN_AUTHORS_REPO to your clone of that repository")


# --- where the files are -----------------------------------------------------------------------------

def model_folder(name: str) -> Path:
    """The folder holding a release's files: DCGAN_AUTHORS_REPO's clone, the official download, or the mirror.

    The mirror archive is unpacked once under data/authors/ (after its sha256 is checked by the registry).
    """
    release = RELEASES[name]
    repo = os.environ.get("DCGAN_AUTHORS_REPO")
    if repo:
        folder = Path(repo).expanduser() / "models" / release.folder
        if not folder.is_dir():
            raise DatasetMissing(f"DCGAN_AUTHORS_REPO={repo} has no models/{release.folder}; "
                                 "point it at a clone of https://github.com/Newmu/dcgan_code")
        return folder
    source = datasets.find_source(name)
    if source.kind == "official":
        return source.path
    target = paths.data_root() / "authors" / release.archive_dir
    stamp = target / ".sha256"
    if not (stamp.exists() and stamp.read_text().strip() == source.sha256):
        target.parent.mkdir(parents=True, exist_ok=True)
        with tarfile.open(source.path, "r:gz") as tar:
            tar.extractall(target.parent, filter="data")
        stamp.write_text(f"{source.sha256}\n")
    return target


# --- the port ------------------------------------------------------------------------------------------

def _conv_weight(w: np.ndarray) -> np.ndarray:
    """A Theano true-convolution kernel as a PyTorch (cross-correlation) weight: flip both spatial axes."""
    return np.ascontiguousarray(w[:, :, ::-1, ::-1])


def _copy(param: torch.Tensor, array: np.ndarray) -> None:
    """Copy a released array into a parameter of exactly the same shape (no broadcasting)."""
    if tuple(param.shape) != tuple(array.shape):
        raise ValueError(f"released array of shape {tuple(array.shape)} does not fit a parameter of shape "
                         f"{tuple(param.shape)}: the files are not this model's")
    param.data.copy_(torch.from_numpy(np.asarray(array, np.float32)))


def _set_bn(bn: nn.Module, gain: np.ndarray, bias: np.ndarray) -> None:
    _copy(bn.weight, gain)
    _copy(bn.bias, bias)


def svhn_config() -> nets.NetConfig:
    """The authors' SVHN model: 64-128-256 D, 5x5 kernels, Gaussian z, per-unit projection BN, eps 1e-8."""
    return nets.NetConfig(name="authors_svhn", image_size=32, nz=100, kernel=5, z_dist="normal", g_base=256,
                          g_layers=((128, 2), (64, 2), (3, 2)), d_layers=((64, 2), (128, 2), (256, 2)),
                          project_bn="unit", bn_eps=BN_EPS)


def imagenet32_config(d_layers: int = 6, g_widths: tuple[int, ...] = (256, 256, 128, 128, 128)) -> nets.NetConfig:
    """The authors' ImageNet-32 model (imagenet/load_pretrained.py): 3x3 kernels, uniform z of 256.

    G: z -> 512x4x4, then transposed convs of strides 2, 1, 2, 1, 2 (`g_widths` channels; the loader
    reads them off the released arrays) and a last stride-1 one to 3 channels, tanh.
    `d_layers` < 6 keeps only D's first layers (the offline copy has the kernels of layers 1-4 only).
    """
    d_all = ((128, 1), (128, 2), (256, 1), (256, 2), (512, 1), (512, 2))
    strides = (2, 1, 2, 1, 2)
    return nets.NetConfig(name="authors_imagenet32" + ("" if d_layers == 6 else f"_layers1-{d_layers}"),
                          image_size=32, nz=256, kernel=3, z_dist="uniform", g_base=512,
                          g_layers=tuple(zip(g_widths, strides, strict=True)) + ((3, 1),),
                          d_layers=d_all[:d_layers], project_bn="unit", bn_eps=BN_EPS)


def _load_discriminator(cfg: nets.NetConfig, params: list) -> nets.Discriminator:
    """D from the authors' list [w1, (w, g, b) per later conv..., wy]; missing tail layers must be cut in cfg."""
    d = nets.Discriminator(cfg)
    blocks = list(d.blocks)
    _copy(d.blocks[0][0].weight, _conv_weight(params[0]))
    i = 1
    for block in blocks[1:]:
        _copy(block[0].weight, _conv_weight(params[i]))
        _set_bn(block[1], params[i + 1], params[i + 2])
        i += 3
    wy = params[-1]
    if wy is not None and wy.shape[0] == d.classify.in_features:
        _copy(d.classify.weight, wy.T)
    else:  # a truncated D has no output layer: its features are what we use
        nn.init.zeros_(d.classify.weight)
    nn.init.zeros_(d.classify.bias)  # sigmoid(T.dot(h, wy)): no bias
    return d.eval()


def _load_generator(cfg: nets.NetConfig, params: list) -> nets.Generator:
    """G from the authors' list [w, g, b, (w, g, b) per hidden transposed conv..., wx]."""
    g = nets.Generator(cfg)
    _copy(g.project.weight, params[0].T)  # T.dot(Z, w): w is (nz, units)
    _set_bn(g.project_bn, params[1], params[2])
    i = 3
    for block in g.blocks[:-1]:
        _copy(block[0].weight, _conv_weight(params[i]))  # (in, out, k, k), as ConvTranspose2d's
        _set_bn(block[1], params[i + 1], params[i + 2])
        i += 3
    _copy(g.blocks[-1][0].weight, _conv_weight(params[i]))
    nn.init.zeros_(g.blocks[-1][0].bias)  # tanh(deconv(h, wx)): no bias
    return g


def _check_finite(net: nn.Module, name: str) -> None:
    for key, value in net.state_dict().items():
        if value.is_floating_point() and not torch.isfinite(value).all():
            raise ValueError(f"{name}: {key} holds non-finite values")


def load_svhn(folder: str | Path | None = None) -> tuple[nets.Generator, nets.Discriminator]:
    """The authors' SVHN G and D after 200 epochs (Table 2's D), as dcgan_lib nets.

    BatchNorm: G and D carry no statistics. Sample G in train mode (batch statistics, as the authors)
    or after `nets.calibrate_batchnorm`; give D train-set statistics with `features.with_train_set_bn`.
    """
    folder = Path(folder) if folder is not None else model_folder("authors_svhn")
    g = _load_generator(svhn_config(), read_jl(folder / "200_gen_params.jl"))
    d = _load_discriminator(svhn_config(), read_jl(folder / "200_discrim_params.jl"))
    _check_finite(g, "authors' SVHN G")
    _check_finite(d, "authors' SVHN D")
    return g, d


def load_imagenet32_discriminator(folder: str | Path | None = None,
                                  allow_partial: bool = True) -> nets.Discriminator:
    """The authors' ImageNet-32 D (epoch 30, Table 1's features): all six layers when every file is there.

    With `allow_partial` and conv kernels missing (the offline copy lacks layers 5 and 6), D is cut
    after the last layer whose kernel is present, and its name says so (e.g. `..._layers1-4`).
    """
    folder = Path(folder) if folder is not None else model_folder("authors_imagenet32")
    params = read_jl(folder / "30_discrim_params.jl", allow_missing=allow_partial)
    kernels = [0, 1, 4, 7, 10, 13]  # list positions of the six conv kernels
    present = 0
    while present < 6 and params[kernels[present]] is not None:
        present += 1
    if present == 0:
        raise MissingWeights(f"{folder} has no conv kernels of the authors' ImageNet-32 D: {how_to_get_all()}",
                             ["30_discrim_params.jl_01.npy"])
    cfg = imagenet32_config(present)
    kept = params[:kernels[present - 1] + (1 if present == 1 else 3)] + [params[-1] if present == 6 else None]
    d = _load_discriminator(cfg, kept)
    _check_finite(d, "authors' ImageNet-32 D")
    return d


def load_imagenet32_generator(folder: str | Path | None = None) -> nets.Generator:
    """The authors' ImageNet-32 G (epoch 30). Needs the complete files (not in the offline mirror)."""
    folder = Path(folder) if folder is not None else model_folder("authors_imagenet32")
    params = read_jl(folder / "30_gen_params.jl")
    widths = tuple(int(params[i].shape[1]) for i in range(3, 18, 3))  # each hidden kernel: (in, out, 3, 3)
    g = _load_generator(imagenet32_config(g_widths=widths), params)
    _check_finite(g, "authors' ImageNet-32 G")
    return g


def describe(name: str) -> dict:
    """Provenance of a release for records: where the files were read from and what they are."""
    release = RELEASES[name]
    repo = os.environ.get("DCGAN_AUTHORS_REPO")
    if repo:
        source = {"source": "DCGAN_AUTHORS_REPO clone", "sha256": None}
    else:
        src = datasets.find_source(name)
        source = {"source": f"{src.kind}: {src.path.name}", "sha256": src.sha256}
    return {"dataset": name, "model": f"Newmu/dcgan_code @ {AUTHORS_COMMIT[:7]}: models/{release.folder}",
            "epoch": release.epoch, "licence": "MIT", **source}


def svhn_samples(n: int = 100, seed: int = 0) -> tuple[np.ndarray, dict]:
    """n samples of the authors' SVHN G as uint8 NHWC, drawn as their code did (one batch, batch statistics),
    and the authors' own D's mean probability "real" for them."""
    g, d = load_svhn()
    z = g.cfg.sample_z(n, torch.Generator().manual_seed(seed))  # N(0, 1), their prior
    with torch.no_grad():
        x = g.train()(z)  # (n, 3, 32, 32) in [-1, 1]
        p_real = torch.sigmoid(d.train()(x)).mean().item()
    images = plots.to_uint8(x)  # (n, 32, 32, 3) uint8
    return images, {"samples": n, "z": "N(0, 1)", "batchnorm": "batch statistics (the authors' sampling)",
                    "authors_d_mean_p_real": round(p_real, 4)}


def write_svhn_samples(profile: str, seed: int = 0, n: int = 100) -> Path:
    """figures/authors_svhn_samples.{png,json}: the authors' G through our port (a known-good check)."""
    with results.stopwatch() as elapsed:
        images, metrics = svhn_samples(n, seed)
        png = plots.save_grid(images, results.figures_dir(profile) / "authors_svhn_samples.png",
                              nrow=int(np.sqrt(n)), scale=2)
    return results.write_record("authors_svhn_samples", name="Samples of the authors' SVHN G (epoch 200) "
                                "through our port (Paper §5.2's model)", profile=profile,
                                metrics={**metrics, "figure": png.name}, data=describe("authors_svhn"),
                                seed=seed, wall_s=elapsed())
