"""The authors' released DCGANs through our port, checked against a NumPy re-implementation of their
Theano ops (lib/ops.py: true convolutions, GradI transposed convs, batchnorm with e=1e-8).

Every porting convention has a check that FAILS on the wrong choice: the port matches the reference,
and each wrong choice (unflipped kernels, PyTorch's epsilon, PyTorch's running-variance averaging,
output padding on the wrong side, uniform z for the SVHN G) measurably does not.
"""
from __future__ import annotations

import pickle
import shutil
import sys
import types

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from dcgan_lib.data import archives, authors_releases, data, datasets, registry

# --- the reference: Theano semantics in NumPy (float64) -------------------------------------------
from dcgan_lib.gan import authors, nets
from dcgan_lib.measure import features


def ref_conv(x, w, stride, pad):
    """Theano dnn_conv, conv_mode='conv': a TRUE convolution (the kernel index runs backwards)."""
    n, c, h, _ = x.shape
    o, _, k, _ = w.shape
    xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    side = (h + 2 * pad - k) // stride + 1
    out = np.zeros((n, o, side, side))
    for i in range(k):
        for j in range(k):
            patch = xp[:, :, i:i + stride * side:stride, j:j + stride * side:stride]
            out += np.einsum("nchw,oc->nohw", patch, w[:, :, k - 1 - i, k - 1 - j])
    return out


def ref_deconv(x, w, stride, pad, out_side):
    """lib/ops.deconv: the gradient of ref_conv (image of side out_side) with respect to its input."""
    n, o, h, _ = x.shape
    _, c, k, _ = w.shape
    grad = np.zeros((n, c, out_side + 2 * pad + k, out_side + 2 * pad + k))
    for i in range(k):
        for j in range(k):
            grad[:, :, i:i + stride * h:stride, j:j + stride * h:stride] += np.einsum(
                "nohw,oc->nchw", x, w[:, :, k - 1 - i, k - 1 - j])
    return grad[:, :, pad:pad + out_side, pad:pad + out_side]


def ref_bn(x, g, b, u=None, s=None, e=1e-8):
    """lib/ops.batchnorm: batch statistics (biased variance) unless u, s are given; per unit for 2-D x."""
    axes = (0,) if x.ndim == 2 else (0, 2, 3)
    shape = (1, -1) if x.ndim == 2 else (1, -1, 1, 1)
    if u is None:
        u = x.mean(axes)
        s = ((x - u.reshape(shape)) ** 2).mean(axes)
    return (x - u.reshape(shape)) / np.sqrt(s.reshape(shape) + e) * g.reshape(shape) + b.reshape(shape)


def lrelu(x):
    return np.where(x > 0, x, 0.2 * x)


def ref_svhn_d(x, p, stats=None):
    """svhn_semisup_analysis.py: logits (batch statistics) or, with stats, the 4x4-pooled features."""
    w, w2, g2, b2, w3, g3, b3, wy = p
    h = lrelu(ref_conv(x, w, 2, 2))
    h2_pre = ref_conv(h, w2, 2, 2)
    h2 = lrelu(ref_bn(h2_pre, g2, b2, *(stats[0] if stats else (None, None))))
    h3_pre = ref_conv(h2, w3, 2, 2)
    h3 = lrelu(ref_bn(h3_pre, g3, b3, *(stats[1] if stats else (None, None))))
    if stats is None:
        return h3.reshape(len(x), -1) @ wy[:, 0], (h2_pre, h2, h3_pre)
    return np.concatenate([maxpool(h, 4), maxpool(h2, 2), maxpool(h3, 1)], axis=1)


def maxpool(x, size):
    n, c, h, _ = x.shape
    return x.reshape(n, c, h // size, size, h // size, size).max(axis=(3, 5)).reshape(n, -1)


def ref_bn_stats(x, p, batch):
    """infer_bnorm_stats: per-batch mean and biased variance of each BN input, averaged over batches."""
    sums = None
    batches = 0
    for start in range(0, len(x), batch):
        _, (h2_pre, h2, _) = ref_svhn_d(x[start:start + batch], p)
        h3_pre = ref_conv(h2, p[4], 2, 2)
        parts = [(m.mean((0, 2, 3)), ((m - m.mean((0, 2, 3))[None, :, None, None]) ** 2).mean((0, 2, 3)))
                 for m in (h2_pre, h3_pre)]
        sums = parts if sums is None else [(a + u, b + s) for (a, b), (u, s) in zip(sums, parts, strict=True)]
        batches += 1
    return [(u / batches, s / batches) for u, s in sums]


def ref_svhn_g(z, p):
    w, g, b, w2, g2, b2, w3, g3, b3, wx = p
    h = np.maximum(ref_bn(z @ w, g, b), 0).reshape(len(z), 256, 4, 4)
    h2 = np.maximum(ref_bn(ref_deconv(h, w2, 2, 2, 8), g2, b2), 0)
    h3 = np.maximum(ref_bn(ref_deconv(h2, w3, 2, 2, 16), g3, b3), 0)
    return np.tanh(ref_deconv(h3, wx, 2, 2, 32))


# --- fixtures ---------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def svhn_folder():
    return authors.model_folder("authors_svhn")


@pytest.fixture(scope="module")
def svhn_params(svhn_folder):
    return ([a.astype(np.float64) for a in authors.read_jl(svhn_folder / "200_gen_params.jl")],
            [a.astype(np.float64) for a in authors.read_jl(svhn_folder / "200_discrim_params.jl")])


@pytest.fixture(scope="module")
def digits():
    images = np.asarray(data.prepare("svhn", 32, "test", limit=32).images)  # (32, 32, 32, 3) uint8
    return images, features.uint8_to_float(images).double().numpy()  # NCHW in [-1, 1]


def close(a, b, tol=1e-4):
    """Relative max error below tol (float32 port vs float64 reference)."""
    return float(np.abs(np.asarray(a) - np.asarray(b)).max() / (np.abs(np.asarray(b)).max() + 1e-12)) < tol


# --- the file format ------------------------------------------------------------------------------

def test_read_jl_gives_the_arrays_in_list_order(svhn_folder):
    params = authors.read_jl(svhn_folder / "200_discrim_params.jl")
    assert [p.shape for p in params] == [(64, 3, 5, 5), (128, 64, 5, 5), (128,), (128,), (256, 128, 5, 5),
                                         (256,), (256,), (4096, 1)]
    for k, p in enumerate(params):
        np.testing.assert_array_equal(p, np.load(svhn_folder / f"200_discrim_params.jl_{k + 1:02d}.npy"))


def test_read_jl_refuses_code_in_the_pickle(tmp_path):
    path = tmp_path / "evil.jl"
    path.write_bytes(pickle.dumps([print]))  # a pickled callable: must not be resolved
    with pytest.raises(ValueError, match="not an authors' joblib"):
        authors.read_jl(path)


def test_missing_array_names_the_file_and_the_fix(tmp_path, svhn_folder):
    for f in svhn_folder.iterdir():
        shutil.copy(f, tmp_path / f.name)
    (tmp_path / "200_gen_params.jl_04.npy").unlink()
    with pytest.raises(authors.MissingWeights, match=r"200_gen_params\.jl_04\.npy.*data fetch"):
        authors.load_svhn(tmp_path)


def test_mirror_archive_is_a_pinned_registry_entry():
    spec = registry.get_spec("authors_svhn")
    assert spec.sha256 == archives.sha256_of(datasets.mirror_root() / spec.archive)
    release = authors_releases.RELEASES["authors_svhn"]
    folder = authors.model_folder("authors_svhn")
    for file, sha in release.files.items():  # every file of the release is pinned and matches
        assert sha is not None and archives.sha256_of(folder / file) == sha, file


def test_official_fetch_downloads_every_file_at_the_pinned_commit(tmp_path, monkeypatch, svhn_folder):
    urls = []

    def fake_urlretrieve(url, target):
        urls.append(url)
        shutil.copy(svhn_folder / url.rsplit("/", 1)[1], target)

    monkeypatch.setattr(authors_releases.urllib.request, "urlretrieve", fake_urlretrieve)
    authors_releases.release_fetch("authors_svhn")(tmp_path)
    assert len(urls) == 20 and all(authors_releases.AUTHORS_COMMIT in u and "/models/svhn_unsup" in u for u in urls)
    g, d = authors.load_svhn(tmp_path)
    assert isinstance(g, nets.Generator) and isinstance(d, nets.Discriminator)
    # a tampered download is refused, not used
    (tmp_path / "200_gen_params.jl_01.npy").write_bytes(b"not the release")

    def bad_urlretrieve(url, target):
        (tmp_path / "x").write_bytes(b"tampered")
        shutil.copy(tmp_path / "x", target)

    monkeypatch.setattr(authors_releases.urllib.request, "urlretrieve", bad_urlretrieve)
    with pytest.raises(archives.ChecksumMismatch):
        authors_releases.release_fetch("authors_svhn")(tmp_path)


# --- D: kernel flips, epsilon, train-set BatchNorm statistics ---------------------------------------

def test_svhn_d_matches_theano_reference(svhn_params, digits):
    _, d = authors.load_svhn()
    _, x = digits
    for scale in (1.0, 1e-3):  # at 1e-3 the BN inputs' variances are tiny, so epsilon matters
        ref_logits, _ = ref_svhn_d(x * scale, svhn_params[1])
        with torch.no_grad():
            ours = d.train()(torch.from_numpy(x * scale).float()).double().numpy()
        assert close(ours, ref_logits), scale


def _wrong_flip(d):
    for m in d.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
            m.weight.data = torch.flip(m.weight.data, (2, 3))
    return d


def _wrong_eps(net):
    for m in net.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.eps = 1e-5  # PyTorch's default
    return net


@pytest.mark.parametrize("wrong", [_wrong_flip, _wrong_eps])
def test_each_wrong_d_convention_breaks_the_match(svhn_params, digits, wrong):
    _, d = authors.load_svhn()
    d = wrong(d)
    _, x = digits
    mismatch = []
    for scale in (1.0, 1e-3):
        ref_logits, _ = ref_svhn_d(x * scale, svhn_params[1])
        with torch.no_grad():
            ours = d.train()(torch.from_numpy(x * scale).float()).double().numpy()
        mismatch.append(not close(ours, ref_logits))
    assert any(mismatch)


def test_train_set_bn_features_match_the_authors_averaging(svhn_params, digits):
    images, x = digits
    _, d = authors.load_svhn()
    stats = ref_bn_stats(x[:24], svhn_params[1], batch=4)
    ref = ref_svhn_d(x[24:], svhn_params[1], stats)
    frozen = features.with_train_set_bn(d, images[:24], batch_size=4, desc=None)
    with torch.no_grad():
        ours = features.pooled_features(frozen, torch.from_numpy(x[24:]).float()).double().numpy()
    assert ours.shape == (8, 7168) and close(ours, ref)


def test_torch_running_variance_is_not_the_authors_average(svhn_params, digits):
    """PyTorch's own cumulative averaging keeps the UNBIASED variance: wrong at small batches."""
    images, x = digits
    _, d = authors.load_svhn()
    stats = ref_bn_stats(x[:24], svhn_params[1], batch=4)
    ref = ref_svhn_d(x[24:], svhn_params[1], stats)
    for m in d.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.reset_running_stats()
            m.momentum = None
    d.train()
    with torch.no_grad():
        for start in range(0, 24, 4):
            d(features.uint8_to_float(images[start:start + 4]))
        ours = features.pooled_features(d.eval(), torch.from_numpy(x[24:]).float()).double().numpy()
    assert not close(ours, ref)


# --- G: output padding side, per-unit projection BN, z prior ----------------------------------------

def test_svhn_g_matches_theano_reference(svhn_params):
    g, _ = authors.load_svhn()
    z = np.random.default_rng(0).standard_normal((16, 100))
    for scale in (1.0, 1e-3):  # a tiny z makes BatchNorm's epsilon matter (see the next test)
        with torch.no_grad():
            ours = g.train()(torch.from_numpy(z * scale).float()).double().numpy()
        assert ours.shape == (16, 3, 32, 32) and close(ours, ref_svhn_g(z * scale, svhn_params[0])), scale


def test_pytorch_default_bn_epsilon_in_g_breaks_the_match(svhn_params):
    """G's BatchNorm epsilon must be the authors' 1e-8: PyTorch's 1e-5 is invisible at the prior's scale, where
    the batch variance dwarfs both, but not once the pre-BN activations are small."""
    g, _ = authors.load_svhn()
    g = _wrong_eps(g)
    z = np.random.default_rng(0).standard_normal((16, 100))
    mismatch = []
    for scale in (1.0, 1e-3):
        with torch.no_grad():
            ours = g.train()(torch.from_numpy(z * scale).float()).double().numpy()
        mismatch.append(not close(ours, ref_svhn_g(z * scale, svhn_params[0])))
    assert any(mismatch)


class _TopLeftPadding(nn.Module):
    """The wrong side: the stride-2 transposed conv's extra row/column at the top/left."""

    def __init__(self, conv: nn.ConvTranspose2d):
        super().__init__()
        self.conv = conv

    def forward(self, x):
        y = F.conv_transpose2d(x, self.conv.weight, self.conv.bias, self.conv.stride, self.conv.padding)
        return F.pad(y, (1, 0, 1, 0))


def test_output_padding_on_the_wrong_side_breaks_the_match(svhn_params):
    g, _ = authors.load_svhn()
    for block in g.blocks:
        block[0] = _TopLeftPadding(block[0])
    z = np.random.default_rng(0).standard_normal((16, 100))
    with torch.no_grad():
        ours = g.train()(torch.from_numpy(z).float()).double().numpy()
    assert ours.shape == (16, 3, 32, 32) and not close(ours, ref_svhn_g(z, svhn_params[0]))


def test_unflipped_g_kernels_break_the_match(svhn_params):
    g, _ = authors.load_svhn()
    z = np.random.default_rng(0).standard_normal((16, 100))
    with torch.no_grad():
        ours = _wrong_flip(g).train()(torch.from_numpy(z).float()).double().numpy()
    assert not close(ours, ref_svhn_g(z, svhn_params[0]))


def test_svhn_g_wants_gaussian_z():
    """With BatchNorm frozen (eval mode, calibrated on the prior), the authors' own D tells the priors apart:
    samples from N(0, 1) z look far more real to it than samples from U(-1, 1) z."""
    g, d = authors.load_svhn()
    assert g.cfg.z_dist == "normal" and authors.imagenet32_config().z_dist == "uniform"
    g = nets.calibrate_batchnorm(g, batches=8, batch_size=128)
    gen = torch.Generator().manual_seed(1)
    right = g.cfg.sample_z(256, gen)
    wrong = torch.rand(256, 100, generator=gen) * 2 - 1
    with torch.no_grad():
        d.train()
        real_score = d(g(right)).mean().item()
        wrong_score = d(g(wrong)).mean().item()
    assert real_score > wrong_score + 1.0, (real_score, wrong_score)


def test_authors_g_makes_digits_the_authors_d_accepts_more_than_noise():
    g, d = authors.load_svhn()
    z = g.cfg.sample_z(128, torch.Generator().manual_seed(0))
    with torch.no_grad():
        samples = g.train()(z)
        noise = torch.rand_like(samples) * 2 - 1
        d.train()
        assert d(samples).mean() > d(noise).mean() + 1.0


# --- ImageNet-32: real partial files (layers 1-4) and synthetic complete files ---------------------------

def ref_imagenet_features(x, p, layers):
    """load_pretrained.py's D, the first `layers` convs, each max-pooled to 4x4, batch statistics."""
    strides = (1, 2, 1, 2, 1, 2)
    h = lrelu(ref_conv(x, p[0], 1, 1))
    feats = [maxpool(h, h.shape[2] // 4)]
    i = 1
    for layer in range(1, layers):
        h = lrelu(ref_bn(ref_conv(h, p[i], strides[layer], 1), p[i + 1], p[i + 2]))
        feats.append(maxpool(h, h.shape[2] // 4))
        i += 3
    return np.concatenate(feats, axis=1)


def test_partial_imagenet_d_uses_the_four_present_layers(digits):
    folder = authors.model_folder("authors_imagenet32")
    d = authors.load_imagenet32_discriminator()
    assert [c for c, _ in d.cfg.d_layers] == [128, 128, 256, 256] and "layers1-4" in d.cfg.name
    assert features.feature_dim(d.cfg) == 12_288
    params = [None if a is None else a.astype(np.float64)
              for a in authors.read_jl(folder / "30_discrim_params.jl", allow_missing=True)]
    _, x = digits
    with torch.no_grad():
        ours = features.pooled_features(d.train(), torch.from_numpy(x[:8]).float()).double().numpy()
    assert close(ours, ref_imagenet_features(x[:8], params, 4))
    with pytest.raises(authors.MissingWeights, match="jl_11.npy, 30_discrim_params.jl_14.npy"):
        authors.load_imagenet32_discriminator(allow_partial=False)


class NDArrayWrapper:
    """joblib < 0.10's record of one array, as the authors' files pickled it."""

    def __init__(self, filename):
        self.filename, self.allow_mmap, self.subclass = filename, True, np.ndarray


def write_old_joblib(folder, stem, arrays, monkeypatch):
    """Write `stem` + its .npy files in the authors' format (a protocol-2 pickle of wrapper records)."""
    module = types.ModuleType("sklearn.externals.joblib.numpy_pickle")
    NDArrayWrapper.__module__ = module.__name__
    module.NDArrayWrapper = NDArrayWrapper
    monkeypatch.setitem(sys.modules, module.__name__, module)
    refs = []
    for k, a in enumerate(arrays):
        name = f"{stem}_{k + 1:02d}.npy"
        np.save(folder / name, a.astype(np.float32))
        refs.append(NDArrayWrapper(name))
    (folder / stem).write_bytes(pickle.dumps(refs, protocol=2))


def _synthetic_imagenet_d(rng):
    shapes = [(128, 3, 3, 3), (128, 128, 3, 3), (128,), (128,), (256, 128, 3, 3), (256,), (256,),
              (256, 256, 3, 3), (256,), (256,), (512, 256, 3, 3), (512,), (512,), (512, 512, 3, 3), (512,),
              (512,), (8192, 1)]
    return [rng.standard_normal(s) * (0.05 if len(s) != 1 else 0.2) + (1.0 if len(s) == 1 and i % 3 == 2 else 0)
            for i, s in enumerate(shapes)]


def test_complete_imagenet_files_give_all_six_layers(tmp_path, monkeypatch, digits):
    rng = np.random.default_rng(0)
    params = _synthetic_imagenet_d(rng)
    write_old_joblib(tmp_path, "30_discrim_params.jl", params, monkeypatch)
    d = authors.load_imagenet32_discriminator(tmp_path, allow_partial=False)
    assert d.cfg.name == "authors_imagenet32" and features.feature_dim(d.cfg) == 28_672
    _, x = digits
    with torch.no_grad():
        ours = features.pooled_features(d.train(), torch.from_numpy(x[:8]).float()).double().numpy()
        logits = d(torch.from_numpy(x[:8]).float()).double().numpy()
    p64 = [a.astype(np.float32).astype(np.float64) for a in params]
    assert close(ours, ref_imagenet_features(x[:8], p64, 6))
    h6 = ref_imagenet_features(x[:8], p64, 6)[:, -8192:]  # layer 6 is already 4x4: pooling keeps it
    assert close(logits, h6 @ p64[-1][:, 0])


def test_imagenet_generator_from_synthetic_files(tmp_path, monkeypatch):
    rng = np.random.default_rng(1)
    widths = [512, 256, 256, 128, 128, 64]  # reshape, then the five hidden transposed convs (any widths)
    arrays = [rng.standard_normal((256, 8192)) * 0.05, rng.random(8192) + 0.5, rng.standard_normal(8192) * 0.1]
    for c_in, c_out in zip(widths[:-1], widths[1:], strict=True):
        arrays += [rng.standard_normal((c_in, c_out, 3, 3)) * 0.05, rng.random(c_out) + 0.5,
                   rng.standard_normal(c_out) * 0.1]
    arrays.append(rng.standard_normal((64, 3, 3, 3)) * 0.05)
    write_old_joblib(tmp_path, "30_gen_params.jl", arrays, monkeypatch)
    g = authors.load_imagenet32_generator(tmp_path)
    z = np.asarray(g.cfg.sample_z(8, torch.Generator().manual_seed(0)), np.float64)
    assert z.min() >= -1 and z.max() <= 1  # uniform prior
    p = [a.astype(np.float32).astype(np.float64) for a in arrays]
    h = np.maximum(ref_bn(z @ p[0], p[1], p[2]), 0).reshape(8, 512, 4, 4)
    side, i = 4, 3
    for stride in (2, 1, 2, 1, 2):
        side *= stride
        h = np.maximum(ref_bn(ref_deconv(h, p[i], stride, 1, side), p[i + 1], p[i + 2]), 0)
        i += 3
    ref = np.tanh(ref_deconv(h, p[i], 1, 1, 32))
    with torch.no_grad():
        ours = g.train()(torch.from_numpy(z).float()).double().numpy()
    assert ours.shape == (8, 3, 32, 32) and close(ours, ref)
