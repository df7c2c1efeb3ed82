"""Nearest-neighbour search and the memorisation curve (Paper §4.1, the authors' nnd_score)."""
import types

import numpy as np
import pytest
import torch
from torch import nn

from dcgan_lib.gan import nets
from dcgan_lib.models import memorisation as mem


def images(n, side=8, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (n, side, side, 3), dtype=np.uint8)


def brute(queries, refs):
    q = queries.reshape(len(queries), -1).astype(np.float64) / 255
    r = refs.reshape(len(refs), -1).astype(np.float64) / 255
    d = np.sqrt(((q[:, None] - r[None]) ** 2).mean(-1))  # RMS pixel distance
    return d


def test_pixel_distance_is_rms_on_0_1_scale():
    black, white = np.zeros((1, 4, 4, 3), np.uint8), np.full((1, 4, 4, 3), 255, np.uint8)
    grey = np.full((1, 4, 4, 3), 51, np.uint8)
    dist, idx = mem.nearest(black, np.concatenate([white, grey]))
    assert idx[0, 0] == 1 and dist[0, 0] == pytest.approx(0.2, abs=1e-5)


@pytest.mark.parametrize("chunk", [1, 3, 7, 1000])
def test_nearest_matches_brute_force_for_any_chunk(chunk):
    refs, queries = images(23, seed=1), images(5, seed=2)
    dist, idx = mem.nearest(queries, refs, k=3, cfg=mem.NNConfig(chunk=chunk))
    full = brute(queries, refs)
    want = np.argsort(full, axis=1)[:, :3]
    np.testing.assert_array_equal(idx, want)
    np.testing.assert_allclose(dist, np.take_along_axis(full, want, 1), atol=1e-5)
    assert (np.diff(dist, axis=1) >= 0).all()


def test_nearest_finds_noisy_copies_and_exclude_skips_self():
    refs = images(30, seed=3)
    noisy = np.clip(refs[[4, 21]].astype(int) + np.random.default_rng(0).integers(-3, 4, refs[[4, 21]].shape),
                    0, 255).astype(np.uint8)
    _, idx = mem.nearest(noisy, refs)
    assert idx[:, 0].tolist() == [4, 21]
    refs[9] = refs[4]  # plant a duplicate: leave-one-out of image 4 must find 9, not itself
    dist, idx = mem.nearest(refs[[4]], refs, exclude=np.array([4]), cfg=mem.NNConfig(chunk=4))
    assert idx[0, 0] == 9 and dist[0, 0] == pytest.approx(0, abs=1e-6)


def test_nnd_score_goes_from_references_to_samples():
    refs = images(6, seed=4)
    one_copy = refs[:1]  # samples: a single copy of refs[0]
    assert mem.nearest(one_copy, refs)[0].mean() == pytest.approx(0, abs=1e-6)  # sample -> refs: 0
    assert mem.nnd_score(one_copy, refs) > 0.1  # refs -> nearest sample: the other 5 are far
    assert mem.nnd_score(refs, refs) == pytest.approx(0, abs=1e-6)


def test_leave_one_out_zero_only_with_duplicates():
    distinct = images(40, seed=5)
    assert mem.leave_one_out(distinct, n=10) > 0.2
    paired = np.concatenate([distinct[:20], distinct[:20]])
    assert mem.leave_one_out(paired, n=10) == pytest.approx(0, abs=1e-6)


def test_dfeat_space_unit_vectors_and_self_match():
    _, d = nets.build("lsun64", image_size=32, width=1 / 16, seed=0)
    x = images(12, side=32, seed=6)
    d = mem.prepare_d(d, x)
    f = mem.embed(x, "dfeat", d)
    assert f.shape[0] == 12
    torch.testing.assert_close(f.norm(dim=1), torch.ones(12))
    dist, idx = mem.nearest(x[[3, 7]], x, cfg=mem.NNConfig(space="dfeat", chunk=5), d=d)
    assert idx[:, 0].tolist() == [3, 7] and dist.max() < 1e-3
    with pytest.raises(ValueError, match="needs D"):
        mem.embed(x, "dfeat")


class CopyingG(nn.Module):
    """A 'generator' that returns training images: the memorisation the curve must expose."""

    def __init__(self, train, noise=0.0):
        super().__init__()
        self.train_images = torch.from_numpy(train).permute(0, 3, 1, 2).float() / 127.5 - 1
        self.noise = noise
        self.dummy = nn.Parameter(torch.zeros(1))
        self.cfg = types.SimpleNamespace(sample_z=lambda n, gen: torch.rand(n, 1, generator=gen))

    def forward(self, z):
        x = self.train_images[(z[:, 0] * len(self.train_images)).long()]
        return (x + self.noise * torch.randn_like(x, generator=torch.Generator().manual_seed(0))).clamp(-1, 1)


def test_curve_exposes_a_copying_generator():
    train = images(60, seed=7)
    cc = mem.CurveConfig(n_samples=40, n_refs=20)
    out = mem.curve([(1, CopyingG(train, noise=0.8)), (2, CopyingG(train))], train, cc=cc, progress=False)
    noisy, copying = out["rows"]
    assert copying["samples_to_train"] == pytest.approx(0, abs=1e-5)
    assert copying["samples_to_train"] < 0.5 * out["real_to_train"]
    assert noisy["samples_to_train"] > 0.5 * out["real_to_train"]
    assert out["refs"] == "train" and out["n_refs"] == 20
    held = images(15, seed=8)
    out = mem.curve([(1, CopyingG(train))], train, heldout=held, cc=cc, progress=False)
    assert out["refs"] == "heldout" and out["rows"][0]["refs_to_samples"] > 0.2


def test_curve_on_heldout_images_measures_them_against_the_training_images():
    """With held-out references (notebook 03's bedrooms), the authors' nnd and the dashed baseline both start from
    images no model saw: the baseline is their distance to the nearest training image, none excluded."""
    train, held = images(30, seed=1), images(12, seed=2)
    held[3] = train[5]  # a held-out image that is also a training image: its baseline distance is 0, not skipped
    cc = mem.CurveConfig(n_samples=20, n_refs=12)
    g = CopyingG(train)
    out = mem.curve([(1, g)], train, heldout=held, cc=cc, progress=False)
    assert out["refs"] == "heldout" and out["n_refs"] == 12
    assert out["real_to_train"] == pytest.approx(brute(held, train).min(1).mean(), abs=1e-5)
    assert out["real_to_train_min"] == pytest.approx(0, abs=1e-6)
    samples = mem.store.sample(g, g.cfg.sample_z(cc.n_samples, torch.Generator().manual_seed(cc.seed)))
    assert out["rows"][0]["refs_to_samples"] == pytest.approx(brute(held, samples).min(1).mean(), abs=1e-5)


def test_neighbour_rows_layout():
    train, samples = images(10, side=6), images(3, side=6, seed=9)
    canvas = mem.neighbour_rows(samples, train, np.array([[0, 1]] * 3), np.array([[2, 3]] * 3), gap=4)
    assert canvas.shape == (3 * (6 + 4), (6 + 4) + 4 + 2 * (6 + 2) + 2 + 4 + 2 * (6 + 2) + 2, 3)
