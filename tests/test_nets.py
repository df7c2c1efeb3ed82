"""The five architecture guidelines of Paper §3, checked on every variant by inspecting modules."""
import dataclasses

import pytest
import torch
from torch import nn

from dcgan_lib.gan import nets

SIZES = [(v, None) for v in nets.VARIANTS] + [("lsun64", 32), ("lsun64", 128), ("faces64", 128)]


def build(variant, size):
    return nets.build(variant, image_size=size, width=0.25, seed=0)


def layers(module, kind):
    return [m for m in module.modules() if isinstance(m, kind)]


@pytest.mark.parametrize("variant,size", SIZES)
def test_shapes(variant, size):
    g, d = build(variant, size)
    side = size or nets.VARIANTS[variant].image_size
    z = g.cfg.sample_z(3)
    x = g(z)
    assert x.shape == (3, 3, side, side)
    assert d(x).shape == (3,)
    maps = g.feature_maps(z)
    assert maps[0].shape[-1] == 4 and maps[-1].shape[-1] == side
    assert len(d.features(x)) == len(g.cfg.d_layers)


@pytest.mark.parametrize("variant,size", SIZES)
def test_guideline_1_no_pooling_strided_convs(variant, size):
    g, d = build(variant, size)
    pools = (nn.MaxPool2d, nn.AvgPool2d, nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d, nn.Upsample)
    assert not layers(g, pools) and not layers(d, pools)
    assert any(c.stride == (2, 2) for c in layers(g, nn.ConvTranspose2d))
    assert any(c.stride == (2, 2) for c in layers(d, nn.Conv2d))


@pytest.mark.parametrize("variant,size", SIZES)
def test_guideline_2_batchnorm_except_g_output_and_d_input(variant, size):
    g, d = build(variant, size)
    for i, block in enumerate(g.blocks):
        has_bn = any(isinstance(m, nn.BatchNorm2d) for m in block)
        assert has_bn == (i < len(g.blocks) - 1), f"G block {i}"
    for i, block in enumerate(d.blocks):
        has_bn = any(isinstance(m, nn.BatchNorm2d) for m in block)
        assert has_bn == (i > 0), f"D block {i}"
    assert isinstance(g.project_bn, nn.BatchNorm2d)


@pytest.mark.parametrize("variant,size", SIZES)
def test_guideline_3_no_hidden_fully_connected(variant, size):
    g, d = build(variant, size)
    # G: one matrix multiply of z (the projection), D: one output unit; nothing in between.
    assert layers(g, nn.Linear) == [g.project]
    assert layers(d, nn.Linear) == [d.classify] and d.classify.out_features == 1
    assert all(not isinstance(m, nn.Linear) for block in g.blocks for m in block.modules())


@pytest.mark.parametrize("variant,size", SIZES)
def test_guideline_4_and_5_activations(variant, size):
    g, d = build(variant, size)
    assert layers(g, nn.ReLU) and not layers(g, nn.LeakyReLU)
    assert isinstance(g.blocks[-1][-1], nn.Tanh) and len(layers(g, nn.Tanh)) == 1
    leaky = layers(d, nn.LeakyReLU)
    assert len(leaky) == len(d.blocks) and all(m.negative_slope == 0.2 for m in leaky)
    assert not layers(d, nn.ReLU)
    x = g(g.cfg.sample_z(4))
    assert x.min() >= -1 and x.max() <= 1


def test_paper_shapes():
    g, d = nets.build("lsun64")
    maps = g.feature_maps(torch.rand(2, 100) * 2 - 1)
    assert [tuple(m.shape[1:]) for m in maps] == [(1024, 4, 4), (512, 8, 8), (256, 16, 16), (128, 32, 32), (3, 64, 64)]
    faces, _ = nets.build("faces64")
    assert all(b[0].kernel_size == (5, 5) for b in faces.blocks)
    inet_g, inet_d = nets.build("imagenet32")
    assert inet_g.cfg.nz == 256 and [c for c, _ in inet_d.cfg.d_layers] == [128, 128, 256, 256, 512, 512]
    assert [s for _, s in inet_d.cfg.d_layers] == [1, 2, 1, 2, 1, 2]
    _, svhn_d = nets.build("svhn32")
    assert [b[0].out_channels for b in svhn_d.blocks] == [64, 128, 256] and svhn_d.cfg.z_dist == "normal"


def test_init_statistics():
    g, d = nets.build("lsun64", seed=0)
    w = torch.cat([m.weight.flatten() for m in layers(g, nn.ConvTranspose2d) + layers(d, nn.Conv2d)])
    assert abs(w.mean()) < 1e-3 and abs(w.std() - 0.02) < 1e-3
    gains = torch.cat([m.weight for m in layers(d, nn.BatchNorm2d)])
    assert abs(gains.mean() - 1) < 0.01 and 0.01 < gains.std() < 0.03


def test_unknown_variant_lists_valid_ones():
    with pytest.raises(ValueError, match="lsun64"):
        nets.get_config("lsun65")
    with pytest.raises(ValueError, match="fixed at 32"):
        nets.get_config("svhn32", image_size=64)


@pytest.mark.parametrize("variant", ["lsun64", "faces64"])
@pytest.mark.parametrize("kernel", [4, 5])
def test_a_kernel_override_keeps_every_side_and_only_changes_the_kernels(variant, kernel):
    cfg = nets.get_config(variant, width=1 / 16, kernel=kernel)
    g, d = nets.build(cfg, seed=0)
    assert {m.kernel_size for m in layers(g, nn.ConvTranspose2d) + layers(d, nn.Conv2d)} == {(kernel, kernel)}
    z = cfg.sample_z(2, torch.Generator().manual_seed(0))
    assert g(z).shape == (2, 3, 64, 64) and d(g(z)).shape == (2,)
    plain = nets.get_config(variant, width=1 / 16)
    assert (cfg == plain) == (kernel == plain.kernel)  # the variant's own kernel is the variant itself
    assert nets.get_config("faces64", kernel=4) == dataclasses.replace(nets.get_config("lsun64"), name="faces64")


def test_a_kernel_that_breaks_the_shapes_is_refused():
    with pytest.raises(ValueError, match="kernel must be 4 or 5"):
        nets.get_config("faces64", kernel=3)
    with pytest.raises(ValueError, match="imagenet32 has fixed 3x3 kernels"):
        nets.get_config("imagenet32", kernel=4)


def test_calibrated_sampling_is_deterministic_and_batch_independent():
    g, _ = nets.build("lsun64", width=0.125, seed=0)
    nets.calibrate_batchnorm(g, batches=3, batch_size=8)
    z = g.cfg.sample_z(6, torch.Generator().manual_seed(1))
    with torch.no_grad():
        alone = g(z[:2])
        together = g(z)[:2]
    assert not g.training
    torch.testing.assert_close(alone, together)


def test_check_guidelines_passes_the_variants_and_catches_a_broken_net():
    g, d = nets.build("lsun64", width=0.125)
    assert all(nets.check_guidelines(g, d).values())
    g.blocks[-1].insert(1, nn.BatchNorm2d(3))  # BatchNorm on G's output breaks guideline 2
    d.blocks[0][-1] = nn.ReLU()  # and a ReLU in D breaks guideline 5
    checks = nets.check_guidelines(g, d)
    assert [k[0] for k, ok in checks.items() if not ok] == ["2", "5"]
