"""The baselines of Tables 1-2 (Paper §5): pixel KNN, Coates & Ng's K-means network, the supervised CNN."""
import numpy as np
import pytest
import torch

from dcgan_lib.gan import nets
from dcgan_lib.measure import baselines, probe_data


@pytest.fixture(autouse=True)
def one_thread():
    torch.set_num_threads(1)


def test_knn_over_draws_beats_chance_on_separable_images():
    rng = np.random.default_rng(0)
    y = np.arange(300) % 3
    imgs = np.clip(y[:, None, None, None] * 100 + rng.normal(0, 20, (300, 8, 8, 3)), 0, 255).astype(np.uint8)
    draws = [probe_data.class_balanced_draw(y[:150], 30, rng) for _ in range(2)]
    res = baselines.knn_over_draws(imgs[:150], y[:150], imgs[150:200], y[150:200], imgs[200:], y[200:], draws)
    assert res["test_error"] < 0.1 and len(res["k"]) == 2
    assert res["test_correct"].shape == (100,) and res["test_correct"].max() <= 2  # per test image: draws right
    assert 1 - res["test_correct"].sum() / 200 == pytest.approx(res["test_error"])


def test_kmeans_encoder_gives_4k_nonnegative_features():
    rng = np.random.default_rng(0)
    imgs = rng.integers(0, 256, (40, 16, 16, 3), dtype=np.uint8)
    enc = baselines.fit_kmeans(imgs, baselines.KMeansConfig(k=8, n_patches=2000, batch_size=16), seed=0)
    f = enc.encode(imgs[:5])
    assert f.shape == (5, 32) and (f >= 0).all() and f.sum() > 0
    assert enc.whiten.shape == (108, 108)


def test_supervised_cnn_and_random_search():
    cfg = nets.get_config("svhn32", width=1 / 16)
    model = baselines.SupervisedCNN(cfg, classes=10)
    assert model(torch.zeros(2, 3, 32, 32)).shape == (2, 10)
    rng = np.random.default_rng(0)
    imgs = rng.integers(0, 256, (40, 32, 32, 3), dtype=np.uint8)
    y = np.arange(40) % 10
    out = baselines.random_search(cfg, (imgs, y), (imgs, y), trials=2, epochs=1, seed=0)
    assert len(out["trials"]) == 2 and out["val_error"] == min(t["val_error"] for t in out["trials"])
    pred = baselines.cnn_predict(out["model"], imgs, batch_size=16)
    assert pred.shape == (40,) and baselines.cnn_error(out["model"], imgs, y) == pytest.approx((pred != y).mean())
    hp = baselines.sample_hparams(np.random.default_rng(1), epochs=3)
    assert 1e-4 <= hp.lr <= 1e-2 and hp.batch_size in (32, 64, 128)
