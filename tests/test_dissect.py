"""Guided backprop through D and dropping G's window maps (Paper §6.2, §6.3.1) on tiny nets."""
from types import SimpleNamespace

import matplotlib
import numpy as np
import pytest
import torch

from dcgan_lib.figures import dissect
from dcgan_lib.gan import nets

matplotlib.use("Agg")


@pytest.fixture(scope="module")
def tiny():
    g, d = nets.build("lsun64", image_size=32, width=1 / 32, seed=0)
    return g.eval(), d.eval()


@pytest.fixture(scope="module")
def images():
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, size=(24, 32, 32, 3), dtype=np.uint8)


def test_guided_relu_passes_only_positive_gradients():
    x = torch.tensor([1.0, -1.0, 2.0, -2.0], requires_grad=True)
    y = dissect._GuidedLeakyReLU.apply(x, 0.2)
    assert torch.allclose(y, torch.tensor([1.0, -0.2, 2.0, -0.4]))
    y.backward(torch.tensor([1.0, 1.0, -1.0, -1.0]))
    assert torch.allclose(x.grad, torch.tensor([1.0, 0.2, 0.0, 0.0]))


def test_guided_features_match_plain_forward(tiny, images):
    _, d = tiny
    x = dissect._as_float(images[:4])
    with torch.no_grad():
        assert torch.allclose(dissect._guided_features(d, x, -1), d.features(x)[-1], atol=1e-6)
        assert torch.allclose(dissect._guided_features(d, x, 1), d.features(x)[1], atol=1e-6)


def test_calibrate_d_copies_and_makes_responses_batch_independent(tiny, images):
    _, d = tiny
    before = {k: v.clone() for k, v in d.state_dict().items()}
    dc = dissect.calibrate_d(d.train(), images)
    d.eval()
    assert not dc.training
    for k, v in d.state_dict().items():
        assert torch.equal(v, before[k]), k  # the original is untouched
    bn = [m for m in dc.modules() if isinstance(m, torch.nn.BatchNorm2d)][0]
    assert not torch.allclose(bn.running_var, torch.ones_like(bn.running_var))
    alone = dissect.unit_responses(dc, images[:1], range(3))
    in_batch = dissect.unit_responses(dc, images[:8], range(3))[:1]
    assert torch.allclose(alone, in_batch, atol=1e-5)


def test_unit_responses_and_top_images(tiny, images):
    _, d = tiny
    r = dissect.unit_responses(d, images, [0, 2, 3], batch_size=5)
    assert r.shape == (24, 3)
    with torch.no_grad():
        f = d.features(dissect._as_float(images))[-1]
    assert torch.allclose(r[:, 1], f[:, 2].flatten(1).max(1).values, atol=1e-5)
    top = dissect.top_images(r, 4)
    assert top.shape == (3, 4)
    for u in range(3):
        assert int(top[u, 0]) == int(r[:, u].argmax())
        assert r[top[u], u].min() >= r[:, u].sort(descending=True).values[3] - 1e-6


def test_guided_backprop_is_local_to_the_receptive_field():
    # D with two 4x4 stride-2 convs on 32 px: each last-layer unit sees a 10 x 10 pixel window
    cfg = nets.NetConfig(name="t", image_size=32, nz=8, g_layers=((3, 2),), g_base=4,
                         d_layers=((4, 2), (4, 2)), kernel=4)
    _, d = nets.build(cfg, seed=0)
    d.eval()
    x = torch.rand(3, 3, 32, 32) * 2 - 1
    grads = dissect.guided_backprop(d, x, unit=1)
    assert grads.shape == x.shape
    support = grads.abs().sum(1) > 0  # 3 x 32 x 32
    for s in support:
        rows, cols = np.nonzero(s.numpy())
        assert len(rows) > 0
        assert rows.max() - rows.min() < 10 and cols.max() - cols.min() < 10
    # guided gradients differ from the plain gradient (negative signals are cut)
    xx = x.clone().requires_grad_(True)
    d.features(xx)[-1][:, 1].flatten(1).amax(1).sum().backward()
    assert not torch.allclose(xx.grad, grads, atol=1e-8)


def test_display_maps_and_concentration():
    g = torch.randn(2, 3, 16, 16)
    m = dissect.display_maps(g)
    assert m.shape == g.shape and m.min() >= -1 and m.max() <= 1
    spike = torch.zeros(1, 3, 16, 16)
    spike[0, :, 5, 5] = 1.0
    assert float(dissect.concentration(spike)) == pytest.approx(1.0)
    flat = torch.ones(1, 3, 20, 20)
    assert float(dissect.concentration(flat, top=0.05)) == pytest.approx(0.05)


def test_window_layer_is_second_highest_hidden_conv():
    g, _ = nets.build("lsun64", width=1 / 16, seed=0)
    maps = g.feature_maps(torch.zeros(1, 100))
    layer = dissect.window_layer(g)
    assert maps[layer].shape[-1] == 16  # 4 -> 8 -> [16] -> 32 -> 64 image


def test_drop_maps_zeroes_only_chosen_channels_inside_the_block(tiny):
    g, _ = tiny
    z = g.cfg.sample_z(4, torch.Generator().manual_seed(0))
    layer = dissect.window_layer(g)
    clean = dissect.g_activations(g, z, layer)
    with dissect.drop_maps(g, layer, [0, 2]):
        dropped = dissect.g_activations(g, z, layer)
        img_dropped = g(z).detach()
    assert clean[:, [0, 2]].abs().sum() > 0
    assert dropped[:, [0, 2]].abs().sum() == 0
    assert torch.equal(dropped[:, 1], clean[:, 1])
    assert not torch.allclose(img_dropped, g(z).detach())  # the image changes ...
    assert torch.equal(dissect.g_activations(g, z, layer), clean)  # ... and the hook is gone
    with pytest.raises(ValueError):
        with dissect.drop_maps(g, 0, [0]):
            pass


def test_box_mask_cells():
    mask = dissect.box_mask([[1, 0, 0, 32, 32], [5, 0, 0, 8, 8]], n=3, side=4, image_size=64)
    assert mask.shape == (3, 4, 4)
    assert not mask[0].any() and not mask[2].any()  # box on sample 5 is out of range: ignored
    assert mask[1, :2, :2].all() and mask[1].sum() == 4


def _synthetic_windows(n=20, c=6, side=8, seed=0):
    """Maps where channel 0 fires inside boxes and channel 3 outside; others are noise."""
    rng = np.random.default_rng(seed)
    boxes = [[i, int(rng.integers(0, 32)), int(rng.integers(0, 32)), 0, 0] for i in range(n)]
    for b in boxes:
        b[3], b[4] = b[1] + 24, b[2] + 24
    mask = dissect.box_mask(boxes, n, side, 64)
    maps = rng.random((n, c, side, side)).astype(np.float32)
    maps[:, 0] += 2.0 * mask
    maps[:, 3] += 2.0 * ~mask
    return torch.from_numpy(maps), boxes, mask


def test_window_classifier_finds_the_window_channel():
    maps, _, mask = _synthetic_windows()
    X, y, s = dissect.box_dataset(maps, mask, negatives=1.0, seed=0)
    assert X.shape[1] == 6 and (y == 1).sum() == mask.sum()
    assert (y == 0).sum() == pytest.approx((y == 1).sum(), abs=len(np.unique(s)))
    clf = dissect.fit_window_classifier(X, y)
    keep = dissect.positive_maps(clf)
    assert 0 in keep and 3 not in keep
    assert dissect.heldout_auc(X, y, s) > 0.95
    before = dissect.window_scores(clf, maps, mask)
    assert before["inside"] > 0.8 and before["outside"] < 0.2
    dropped = maps.clone()
    dropped[:, keep] = 0
    after = dissect.window_scores(clf, dropped, mask)
    assert after["inside"] < before["inside"] - 0.3


def test_box_dataset_without_boxes_raises():
    with pytest.raises(ValueError, match="no boxes"):
        dissect.box_dataset(torch.zeros(2, 3, 4, 4), np.zeros((2, 4, 4), bool))


def test_pixel_change_inside_vs_outside():
    before = torch.zeros(2, 3, 8, 8)
    after = before.clone()
    after[0, :, :4, :4] = 1.0
    mask = dissect.box_mask([[0, 0, 0, 4, 4]], 2, 8, 8)
    change = dissect.pixel_change(before, after, mask)
    assert change == {"inside": 1.0, "outside": 0.0}


def test_boxes_roundtrip_and_validation(tmp_path):
    path = dissect.save_boxes(tmp_path / "b.json", [(3, 1, 2, 10, 12)], 64, 150, seed=0)
    rec = dissect.load_boxes(path)
    assert rec["boxes"] == [[3, 1, 2, 10, 12]] and rec["n_samples"] == 150 and rec["seed"] == 0
    (tmp_path / "bad.json").write_text('{"boxes": []}')
    with pytest.raises(ValueError, match="image_size"):
        dissect.load_boxes(tmp_path / "bad.json")


def test_box_drawer_assigns_and_clips_boxes(tmp_path):
    imgs = np.zeros((6, 16, 16, 3), np.uint8)
    drawer = dissect.BoxDrawer(imgs, cols=3, pad=2)
    ev = SimpleNamespace
    # sample 4 sits at row 1, col 1: origin x = 2 + 18 = 20, y = 20
    box = drawer.on_select(ev(xdata=22.0, ydata=23.0), ev(xdata=30.0, ydata=40.0))
    assert box == [4, 2, 3, 10, 16]  # y1 clipped to the sample's side
    assert drawer.on_select(ev(xdata=200.0, ydata=1.0), ev(xdata=210.0, ydata=5.0)) is None
    drawer.undo()
    assert drawer.boxes == []
    drawer.on_select(ev(xdata=3.0, ydata=3.0), ev(xdata=8.0, ydata=9.0))
    rec = dissect.load_boxes(drawer.save(tmp_path / "boxes.json", model="tiny"))
    assert rec["boxes"] == [[0, 1, 1, 6, 7]] and rec["image_size"] == 16 and rec["n_samples"] == 6


def test_drop_maps_with_recalibrate_renormalises_the_layers_above_and_restores_g(tiny):
    """As the authors' batch-statistics BatchNorm would: the BatchNorm above the drop is re-estimated on the dropped
    activations inside the block, and G's own statistics and mode come back on exit."""
    g, _ = tiny
    layer = dissect.window_layer(g)
    above = next(m for m in g.blocks[layer].modules() if isinstance(m, torch.nn.BatchNorm2d))  # block of layer + 1
    before = {k: v.clone() for k, v in g.state_dict().items()}
    seen = []
    handle = above.register_forward_pre_hook(lambda _m, inputs: seen.append(inputs[0].detach()))
    z = g.cfg.sample_z(512, torch.Generator().manual_seed(1))
    try:
        with dissect.drop_maps(g, layer, [0, 1, 2], recalibrate=lambda net: nets.calibrate_batchnorm(net, 8, 64)):
            seen.clear()
            g(z)
            calibrated_mean = above.running_mean.clone()
            assert not g.training
        with dissect.drop_maps(g, layer, [0, 1, 2]):
            uncalibrated_mean = above.running_mean.clone()
    finally:
        handle.remove()
    dropped_input_mean = seen[0].mean(dim=(0, 2, 3))
    spread = dropped_input_mean.abs().max()
    assert (calibrated_mean - dropped_input_mean).abs().max() < 0.1 * spread  # statistics of the dropped G
    assert (uncalibrated_mean - dropped_input_mean).abs().max() > 0.1 * spread  # without: the undropped G's
    assert not g.training
    assert all(torch.equal(v, before[k]) for k, v in g.state_dict().items())  # restored
