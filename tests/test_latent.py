"""Latent walks, smoothness checks and vector arithmetic (Paper §6.1, §6.3.2) on tiny nets."""
import numpy as np
import pytest
import torch

from dcgan_lib.figures import latent
from dcgan_lib.gan import nets


@pytest.fixture(scope="module")
def tiny():
    g, d = nets.build("lsun64", image_size=32, width=1 / 32, seed=0)
    return g.eval(), d.eval()


def test_lerp_ends_and_midpoint():
    z0, z1 = torch.zeros(5), torch.arange(5.0)
    path = latent.lerp(z0, z1, 5)
    assert path.shape == (5, 5)
    assert torch.allclose(path[0], z0) and torch.allclose(path[-1], z1)
    assert torch.allclose(path[2], (z0 + z1) / 2)


def test_slerp_keeps_norm_on_arc_and_differs_from_lerp():
    g = torch.Generator().manual_seed(0)
    z0, z1 = torch.randn(100, generator=g), torch.randn(100, generator=g) * 2
    path = latent.slerp(z0, z1, 7)
    assert torch.allclose(path[0], z0, atol=1e-5) and torch.allclose(path[-1], z1, atol=1e-5)
    # the norm moves linearly from |z0| to |z1| ...
    expected = torch.linspace(0, 1, 7) * (z1.norm() - z0.norm()) + z0.norm()
    assert torch.allclose(path.norm(dim=1), expected, atol=1e-4)
    # ... while the straight line's middle is shorter (near-orthogonal ends)
    assert latent.lerp(z0, z1, 7)[3].norm() < path[3].norm() * 0.9
    # directions stay in the plane of z0 and z1: residual after projecting onto it is ~0
    basis, _ = torch.linalg.qr(torch.stack([z0, z1]).T)
    residual = path.T - basis @ (basis.T @ path.T)
    assert residual.abs().max() < 1e-4


def test_slerp_parallel_falls_back_to_lerp():
    z = torch.ones(4)
    assert torch.allclose(latent.slerp(z, 3 * z, 3), latent.lerp(z, 3 * z, 3))


def test_walk_rows_chain_through_points():
    points = torch.randn(9, 10, generator=torch.Generator().manual_seed(1))
    for mode in ("linear", "spherical"):
        rows = latent.walk(points, 6, mode)
        assert rows.shape == (8, 6, 10)
        assert torch.allclose(rows[:, 0], points[:-1], atol=1e-5)
        assert torch.allclose(rows[:, -1], points[1:], atol=1e-5)
    with pytest.raises(ValueError, match="mode"):
        latent.walk(points, 6, "cubic")
    with pytest.raises(ValueError, match="points"):
        latent.walk(points[:1], 6)


def test_generate_matches_forward_and_batches(tiny):
    g, _ = tiny
    z = g.cfg.sample_z(10, torch.Generator().manual_seed(0))
    a = latent.generate(g, z, batch_size=3)
    assert a.shape == (10, 3, 32, 32)
    assert torch.allclose(a, g(z).detach(), atol=1e-6)
    assert float(a.abs().max()) <= 1.0


def test_flag_jumps_marks_only_outliers():
    steps = np.array([[1.0, 1.1, 0.9, 5.0, 1.0], [1.0, 1.0, 1.0, 1.0, 1.0]])
    flags = latent.flag_jumps(steps, factor=3.0)
    assert flags.tolist() == [[False, False, False, True, False], [False] * 5]


def test_smoothness_finds_a_planted_jump(tiny):
    g, d = tiny
    pts = g.cfg.sample_z(3, torch.Generator().manual_seed(2))
    rows = latent.walk(pts, 12)  # 2 x 12 x nz
    frames = latent.generate(g, rows.flatten(0, 1)).view(2, 12, 3, 32, 32)
    smooth = latent.smoothness(frames, d)
    assert smooth.pixel.shape == (2, 11) and smooth.feature.shape == (2, 11)
    assert (smooth.pixel > 0).all() and (smooth.feature > 0).all()
    # replace frame 6 of row 0 by an unrelated sample: the steps into and out of it jump
    planted = frames.clone()
    planted[0, 6] = latent.generate(g, g.cfg.sample_z(1, torch.Generator().manual_seed(99)))[0]
    bumped = latent.smoothness(planted, d, factor=2.0)
    assert bumped.pixel_jumps[0, 5] and bumped.pixel_jumps[0, 6]
    assert bumped.pixel_jumps[0].sum() < smooth.pixel.shape[1] // 2
    s = bumped.summary()
    assert s["pixel_jumps"] >= 2 and s["rows_with_jumps"] >= 1
    assert s["pixel_worst_over_median"] > latent.smoothness(frames, d).summary()["pixel_worst_over_median"]


def test_concept_mean_and_arithmetic():
    z = torch.arange(12.0).view(4, 3)
    assert torch.allclose(latent.concept_mean(z, [0, 2]), torch.tensor([3.0, 4.0, 5.0]))
    with pytest.raises(ValueError):
        latent.concept_mean(z, [])
    with pytest.raises(ValueError):
        latent.concept_mean(z, [7])
    a, b, c = z[0], z[1], z[3]
    assert torch.allclose(latent.arithmetic(a, b, c), torch.tensor([6.0, 7.0, 8.0]))


def test_with_noise_bounds_and_reproducible():
    y = torch.zeros(100)
    out = latent.with_noise(y, 8, 0.25, torch.Generator().manual_seed(0))
    assert out.shape == (9, 100)
    assert torch.equal(out[0], y)
    assert out[1:].abs().max() <= 0.25 and out[1:].abs().max() > 0.2
    again = latent.with_noise(y, 8, 0.25, torch.Generator().manual_seed(0))
    assert torch.equal(out, again)


def test_equation_results_one_y_per_row_of_exemplars(tiny):
    g, _ = tiny
    z = g.cfg.sample_z(12, torch.Generator().manual_seed(0))
    triples = {"a": np.array([[0, 1, 2], [3, 4, 5]]), "b": np.array([[6, 7, 8], [9, 10, 11]]),
               "c": np.array([[1, 3, 5], [0, 2, 4]])}  # 2 Ys of 3 exemplars per concept
    out = latent.equation_results(g, z, triples, 4, 0.25, torch.Generator().manual_seed(1))
    assert out.shape == (2, 5, 3, 32, 32)
    for i in range(2):  # G(Y) first, Y from that row's exemplars
        y = z[triples["a"][i]].mean(0) - z[triples["b"][i]].mean(0) + z[triples["c"][i]].mean(0)
        assert torch.allclose(out[i, 0], latent.generate(g, y[None])[0], atol=1e-5)
    assert not torch.allclose(out[0, 1], out[0, 0])  # the noisy copies differ from G(Y)
    again = latent.equation_results(g, z, triples, 4, 0.25, torch.Generator().manual_seed(1))
    assert torch.equal(out, again)
    more = {r: np.concatenate([v, v[:, :1]], axis=1) for r, v in triples.items()}  # k = 4 exemplars a concept
    assert latent.equation_results(g, z, more, 0).shape == (2, 1, 3, 32, 32)


def test_pixel_arithmetic_averages_then_clips():
    a = torch.full((3, 3, 2, 2), 0.5)
    b = torch.stack([torch.full((3, 2, 2), -0.5), torch.full((3, 2, 2), -1.5)])  # mean -1
    c = torch.full((1, 3, 2, 2), 0.2)
    out = latent.pixel_arithmetic(a, b, c)
    assert out.shape == (3, 2, 2)
    assert torch.allclose(out, torch.ones(3, 2, 2))  # 0.5 + 1 + 0.2 = 1.7, clipped to 1
    out2 = latent.pixel_arithmetic(a, a, c)
    assert torch.allclose(out2, torch.full((3, 2, 2), 0.2))


def test_turn_vector_and_along():
    left = torch.tensor([[0.0, 1.0], [0.0, 3.0]])
    right = torch.tensor([[2.0, 0.0], [4.0, 0.0]])
    turn = latent.turn_vector(left, right)
    assert torch.allclose(turn, torch.tensor([3.0, -2.0]))
    z = torch.zeros(2, 2)
    rows = latent.along(z, turn, [-1.0, 0.0, 0.5])
    assert rows.shape == (2, 3, 2)
    assert torch.allclose(rows[:, 1], z) and torch.allclose(rows[1, 2], 0.5 * turn)
    assert torch.allclose(rows[0, 0], -turn)


def test_rank_correlation():
    assert latent.rank_correlation([1, 2, 3, 4], [10, 20, 25, 90]) == pytest.approx(1.0)
    assert latent.rank_correlation([1, 2, 3, 4], [4, 3, 2, 1]) == pytest.approx(-1.0)
    assert np.isnan(latent.rank_correlation([1, 2, 3], [5, 5, 5]))


def test_fingerprint_tracks_weights_not_buffers(tiny):
    g, _ = tiny
    a = latent.fingerprint(g)
    g2, _ = nets.build("lsun64", image_size=32, width=1 / 32, seed=0)
    g2.project_bn.running_mean += 1.0  # BatchNorm statistics are re-estimated; not part of identity
    assert latent.fingerprint(g2) == a and len(a) == 12
    g3, _ = nets.build("lsun64", image_size=32, width=1 / 32, seed=1)
    assert latent.fingerprint(g3) != a


def test_mean_pairwise_rms_averages_every_pair():
    a = torch.zeros(3, 4, 4)
    imgs = torch.stack([a, a + 0.1, a - 0.2])  # pairwise RMS 0.1, 0.2 and 0.3
    assert latent.mean_pairwise_rms(imgs) == pytest.approx(0.2)
    assert latent.mean_pairwise_rms(torch.stack([a, a])) == 0.0
    with pytest.raises(ValueError, match="at least two"):
        latent.mean_pairwise_rms(imgs[:1])
