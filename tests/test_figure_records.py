"""A figure's record carries the FID/KID of exactly the weights it draws, never another snapshot's."""
import json

import numpy as np
import pytest
from PIL import Image

from dcgan_lib.course import figure_records
from dcgan_lib.gan import runs
from dcgan_lib.models import store, trainlog
from dcgan_lib.records import results


@pytest.fixture
def trained_run(tmp_path, monkeypatch):
    """A smoke model trained for 2 epochs (snapshots after epochs 1 and 2) on 40 random 32 px images."""
    monkeypatch.setattr(results, "ROOT", tmp_path)
    monkeypatch.chdir(tmp_path)  # records name the data folder relative to the project (here tmp_path)
    monkeypatch.setenv("DCGAN_DATA", str(tmp_path / "data"))
    folder = tmp_path / "imgs"
    folder.mkdir()
    for i, img in enumerate(np.random.default_rng(0).integers(0, 256, (40, 32, 32, 3), dtype=np.uint8)):
        Image.fromarray(img).save(folder / f"{i}.png")
    dataset = f"folder:{folder}"
    checkpoint = store.train_model(dataset, "imagenet32", "smoke", epochs=2, progress=False)
    return dataset, checkpoint.parent


def test_a_snapshot_figure_carries_that_snapshots_quality_not_the_final_models(trained_run):
    dataset, folder = trained_run
    assert runs.snapshot_epochs(folder) == [1, 2]
    path = figure_records.write("fig2_bedrooms_one_epoch", "smoke", {"epoch": 1}, seed=0, wall_s=0.0,
                                folder=folder, snapshot=1)
    record = json.loads(path.read_text())
    epoch1 = {int(r["epoch"]): r for r in trainlog.quality_curve(folder, points=None, progress=False)}[1]
    assert record["quality"]["weights"] == "snapshot after epoch 1"
    assert record["quality"]["kid"] == epoch1["kid"] and record["quality"]["fid"] == epoch1["fid"]
    assert record["quality"]["step"] == 2  # 40 images // batch 16 = 2 steps per epoch
    assert record["quality"]["real_split"] == epoch1["real_split"] and epoch1["real_split"] in epoch1["reference"]
    assert "fid" not in record["training"] and "kid" not in record["training"]  # the final G's: not drawn here
    final = runs.read_record(folder)["metrics"]
    assert record["quality"]["kid"] != final["kid"]  # the final model (step 4) scores differently


def test_a_store_model_figure_carries_its_final_checkpoints_quality(trained_run):
    dataset, folder = trained_run
    g, _, info = store.get_model(dataset, "imagenet32", "smoke")
    path = figure_records.write("fig4_bedrooms_walk", "smoke", {}, seed=0, wall_s=0.0, G=g, info=info)
    record = json.loads(path.read_text())
    final = runs.read_record(folder)["metrics"]
    assert record["quality"]["weights"] == "final checkpoint" and record["quality"]["step"] == 4
    assert record["quality"]["kid"] == final["kid"] and record["training"]["kid"] == final["kid"]
    assert record["quality"]["real_split"] == final["quality"]["real"]["split"] is not None  # which images


def test_a_snapshot_that_was_not_kept_is_a_clear_error(trained_run):
    _, folder = trained_run
    with pytest.raises(FileNotFoundError, match="no snapshot of epoch"):
        trainlog.snapshot_quality(folder, 7)
