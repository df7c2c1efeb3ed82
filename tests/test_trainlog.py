"""A run's history: snapshots per epoch, wall time per epoch, smoothing, the training figure."""
import numpy as np
import pytest
from PIL import Image

from dcgan_lib.gan import runs
from dcgan_lib.models import store, trainlog
from dcgan_lib.records import results


def test_smooth_is_a_trailing_moving_average():
    x = np.array([0.0, 2, 4, 6])
    np.testing.assert_allclose(trainlog.smooth(x, 2), [0, 1, 3, 5])
    np.testing.assert_allclose(trainlog.smooth(x, 1), x)


def test_wall_at_epoch_interpolates_and_stops_at_the_end():
    rows = [{"step": 10, "wall_s": 5.0}, {"step": 20, "wall_s": 15.0}]
    assert trainlog.wall_at_epoch(rows, 1, 15) == pytest.approx(10.0)
    assert trainlog.wall_at_epoch(rows, 1, 5) == pytest.approx(2.5)
    assert trainlog.wall_at_epoch(rows, 2, 15) is None


def test_steps_per_epoch_drops_the_partial_batch():
    rec = {"metrics": {"images": 3446}, "train_config": {"batch_size": 64}}
    assert trainlog.steps_per_epoch(rec) == 53
    one = {"metrics": {"images": 3446, "step": 100, "epochs_done": 100 * 64 / 3446}, "train_config": {"batch_size": 64}}
    assert trainlog.steps_per_epoch(one) == 53
    # two DDP processes each take a batch of 64 per step: an epoch is half as many steps
    two = {"metrics": {"images": 3446, "step": 100, "epochs_done": 100 * 64 * 2 / 3446},
           "train_config": {"batch_size": 64}}
    assert trainlog.steps_per_epoch(two) == 26


def test_best_point_says_whether_the_final_snapshot_is_the_lowest_kid():
    row = lambda e, kid: {"epoch": float(e), "kid": kid, "kid_std": 0.003}  # noqa: E731
    falling = trainlog.best_point([row(1, 0.5), row(16, 0.3), row(60, 0.13)])
    assert falling["final_is_best"] and falling["best_epoch"] == 60 and falling["gap_kid"] == 0
    drifted = trainlog.best_point([row(1, 0.5), row(31, 0.12), row(60, 0.15)])
    assert not drifted["final_is_best"] and drifted["best_epoch"] == 31 and drifted["final_epoch"] == 60
    assert drifted["gap_kid"] == pytest.approx(0.03) and drifted["gap_in_std"] == pytest.approx(0.03 / np.hypot(
        0.003, 0.003))
    with pytest.raises(ValueError, match="empty"):
        trainlog.best_point([])


def test_training_figure_has_two_panels():
    import matplotlib.pyplot as plt

    rows = [{"step": s, "loss_d": 1.0, "loss_g": 2.0, "d_real": 0.7, "d_fake": 0.3} for s in range(1, 30)]
    fig = trainlog.training_figure(rows, per_epoch=10, marks=(1,))
    assert len(fig.axes) == 2
    plt.close(fig)
    with pytest.raises(ValueError, match="empty"):
        trainlog.training_figure([], 10)


def test_ensure_epochs_trains_on_past_the_smoke_step_cap(tmp_path, monkeypatch):
    monkeypatch.setattr(results, "ROOT", tmp_path)
    monkeypatch.setenv("DCGAN_DATA", str(tmp_path / "data"))
    folder = tmp_path / "imgs"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(32):
        Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(folder / f"{i:02d}.png")
    name = f"folder:{folder}"
    # smoke: batch 16 -> 2 steps per epoch, step cap 4 -> the profile's own run keeps 2 epochs
    run = store.ensure_epochs(name, "lsun64", "smoke", 2)
    assert runs.snapshot_epochs(run) == [1, 2]
    assert run == runs.model_dir(name, "lsun64", "smoke")
    store.ensure_epochs(name, "lsun64", "smoke", 3)  # past the cap: trains on, resuming
    assert runs.snapshot_epochs(run) == [1, 2, 3]
    summary = trainlog.summary(run)
    assert summary["steps"] == 6 and summary["epochs_done"] == pytest.approx(3.0)
    rows = runs.read_log(run)
    assert [r["step"] for r in rows] == sorted({r["step"] for r in rows})  # resumed log has each step once
