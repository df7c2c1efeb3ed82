"""D's every-layer 4x4 max-pooled features (Paper §5): dimensions, pooling, BatchNorm modes, loading."""
import dataclasses

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from dcgan_lib.gan import nets, runs
from dcgan_lib.measure import features


@pytest.fixture(autouse=True)
def one_thread():
    torch.set_num_threads(1)


def images(n, seed=0, size=32):
    return np.random.default_rng(seed).integers(0, 256, (n, size, size, 3), dtype=np.uint8)


@pytest.mark.parametrize("variant, dim", [("imagenet32", 28_672), ("svhn32", 7_168)])
def test_paper_feature_dimensions(variant, dim):
    _, d = nets.build(variant, seed=0)
    assert features.feature_dim(d.cfg) == dim
    out = features.pooled_features(d.eval(), features.uint8_to_float(images(2)))
    assert out.shape == (2, dim)


def test_layer_dims_follow_width():
    cfg = nets.get_config("svhn32", width=0.25)
    assert features.layer_dims(cfg) == (16 * 16, 32 * 16, 64 * 16)
    assert features.layer_dims(cfg, grid=2) == (16 * 4, 32 * 4, 64 * 4)


def test_pooling_is_max_over_non_overlapping_windows():
    _, d = nets.build("svhn32", width=1 / 16, seed=0)
    d.eval()
    x = features.uint8_to_float(images(3))
    maps = d.features(x)
    got = features.pooled_features(d, x)
    start = 0
    for h in maps:
        window = h.shape[-1] // 4
        expected = F.max_pool2d(h, window).flatten(1)
        part = got[:, start:start + expected.shape[1]]
        torch.testing.assert_close(part, expected)
        start += expected.shape[1]
    assert start == got.shape[1]


def test_uint8_to_float_range_and_layout():
    x = np.zeros((1, 2, 2, 3), np.uint8)
    x[0, 0, 0] = (0, 255, 128)
    t = features.uint8_to_float(x)
    assert t.shape == (1, 3, 2, 2)
    assert t[0, 0, 0, 0] == -1 and t[0, 1, 0, 0] == 1 and abs(t[0, 2, 0, 0] - 0.0039) < 1e-3


def test_train_set_bn_uses_the_mean_of_batch_statistics():
    _, d = nets.build("svhn32", width=1 / 16, seed=0)
    imgs = images(64)
    ready = features.with_train_set_bn(d, imgs, batch_size=64, desc=None)
    bn = ready.blocks[1][1]
    with torch.no_grad():
        h = d.blocks[1][0](d.blocks[0](features.uint8_to_float(imgs)))  # conv output before BN
    torch.testing.assert_close(bn.running_mean, h.mean((0, 2, 3)), rtol=1e-4, atol=1e-5)
    assert not ready.training


def test_train_set_features_do_not_depend_on_the_batch_but_batch_mode_does():
    _, d = nets.build("svhn32", width=1 / 16, seed=0)
    imgs = images(40)
    other = images(40, seed=1)
    base = features.extract(d, imgs, features.FeatureConfig(batch_size=8), bn_images=imgs, desc=None).x
    mixed = np.concatenate([imgs[:3], other[:5]])
    again = features.extract(d, mixed, features.FeatureConfig(batch_size=8), bn_images=imgs, desc=None).x
    np.testing.assert_allclose(again[:3], base[:3], rtol=1e-5, atol=1e-6)

    batch_cfg = features.FeatureConfig(batch_size=8, bn_stats="batch")
    b1 = features.extract(d, imgs[:8], batch_cfg, desc=None).x
    b2 = features.extract(d, mixed, batch_cfg, desc=None).x
    assert not np.allclose(b1[:3], b2[:3], atol=1e-4)


def test_extract_leaves_the_callers_d_untouched():
    _, d = nets.build("svhn32", width=1 / 16, seed=0)
    before = {k: v.clone() for k, v in d.state_dict().items()}
    features.extract(d, images(20), bn_images=images(20), desc=None)
    for k, v in d.state_dict().items():
        torch.testing.assert_close(v, before[k])


def test_memmap_output_equals_in_memory(tmp_path):
    _, d = nets.build("svhn32", width=1 / 16, seed=0)
    imgs = images(30)
    cfg = features.FeatureConfig(batch_size=7)
    mem = features.extract(d, imgs, cfg, bn_images=imgs, desc=None)
    disk = features.extract(d, imgs, cfg, bn_images=imgs, out=tmp_path / "f.npy", desc=None)
    assert disk.x.dtype == np.float32 and mem.x.dtype == np.float32
    np.testing.assert_array_equal(np.load(tmp_path / "f.npy"), mem.x)
    summary = mem.summary()
    assert summary["images"] == 30 and summary["dim"] == features.feature_dim(d.cfg)
    assert summary["peak_memory_mb"] > 0


def test_extract_parts_share_one_set_of_statistics():
    _, d = nets.build("svhn32", width=1 / 16, seed=0)
    imgs = images(24)
    parts = features.extract_parts(d, {"a": imgs[:10], "b": imgs[10:]}, bn_images=imgs)
    whole = features.extract(d, imgs, bn_images=imgs, desc=None).x
    np.testing.assert_allclose(np.concatenate([parts["a"].x, parts["b"].x]), whole, rtol=1e-5, atol=1e-6)


def test_train_set_mode_needs_images_and_modes_are_checked():
    _, d = nets.build("svhn32", width=1 / 16, seed=0)
    with pytest.raises(ValueError, match="bn_images"):
        features.extract(d, images(4), desc=None)
    with pytest.raises(ValueError, match="bn_stats"):
        features.extract(d, images(4), features.FeatureConfig(bn_stats="nope"), desc=None)


def test_load_discriminator_round_trip(tmp_path):
    g, d = nets.build("svhn32", width=1 / 8, seed=3)
    path = tmp_path / "checkpoint.pt"
    torch.save({"config": dataclasses.asdict(d.cfg), "G": g.state_dict(), "D": d.state_dict(), "step": 7}, path)
    loaded = runs.load_discriminator(path)
    assert loaded.cfg == d.cfg and not loaded.training
    x = features.uint8_to_float(images(4))
    torch.testing.assert_close(loaded(x), d.eval()(x))


def test_load_discriminator_errors_say_what_to_do(tmp_path):
    with pytest.raises(FileNotFoundError, match="train"):
        runs.load_discriminator(tmp_path / "missing.pt")
    bad = tmp_path / "bad.pt"
    torch.save({"weights": 1}, bad)
    with pytest.raises(ValueError, match="config"):
        runs.load_discriminator(bad)
