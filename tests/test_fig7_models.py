"""Fig. 7's verdict on faces G of other seeds and epochs (dcgan_lib.bench.fig7_models) on a tiny run folder."""
import json

import numpy as np
import pytest
import torch
from conftest import JUDGE_WEIGHTS, PICKER_WEIGHTS, ChannelProbe

from dcgan_lib.bench import fig7_models
from dcgan_lib.figures import attributes, latent
from dcgan_lib.gan import nets, runs


def tiny_run(folder, seed: int, epochs=(1, 2)):
    """A run folder as the trainer leaves it: checkpoint, a snapshot per epoch (other weights each), run.json."""
    g = nets.build("faces64", image_size=32, width=1 / 32, seed=seed)[0]
    folder.mkdir(parents=True)
    runs.save_atomic({"config": g.cfg.__dict__, "G": g.state_dict()}, runs.RunFolder(folder).checkpoint)
    for e in epochs:
        torch.manual_seed(100 * seed + e)
        runs.write_snapshot(folder, e, 10 * e, {k: v + 0.05 * torch.randn_like(v) if v.is_floating_point() else v
                                               for k, v in g.state_dict().items()})
    (folder / "run.json").write_text(json.dumps({
        "commit": "abc", "device": "cpu: m", "seed": seed, "data": {"dataset": "celeba", "split": "train", "n": 9},
        "train_config": {"variant": "faces64", "width": 1 / 32, "kernel": 4, "batch_size": 4, "diffaug": ""}}))
    return folder


def test_parse_model_names_folder_and_epoch_or_says_how():
    assert fig7_models.parse_model("runs/a@b/k4s1@40") == (fig7_models.Path("runs/a@b/k4s1"), 40)
    for bad in ("runs/k4s1", "runs/k4s1@last", "runs/k4s1@"):
        with pytest.raises(ValueError, match="RUN_FOLDER@EPOCH"):
            fig7_models.parse_model(bad)


def test_judges_each_snapshot_as_notebook_11_and_records_it(tmp_path, monkeypatch):
    monkeypatch.setattr(fig7_models.results, "figures_dir", lambda profile: tmp_path / "figures")
    picker = ChannelProbe(PICKER_WEIGHTS)
    judge = ChannelProbe(JUDGE_WEIGHTS)
    faces = attributes.LabelledFaces(np.zeros((0, 32, 32, 3), np.uint8), np.zeros((0, 3), bool),
                                     attributes.FIG7_ATTRIBUTES, [], {"images": {"dataset": "celeba"}, "labels": {}})
    monkeypatch.setattr(fig7_models.attributes, "labelled_faces", lambda *a, **k: faces)
    report = {role: {"test": {"Smiling": {"accuracy": 0.9}}} for role in ("picker", "judge")}
    monkeypatch.setattr(fig7_models.attributes, "train_pair", lambda f, s: (picker, judge, None, report))
    a, b = tiny_run(tmp_path / "s0", 0), tiny_run(tmp_path / "s1", 1)
    path = fig7_models.compare([f"{a}@2", f"{b}@2", f"{a}@1"], "smoke", n_samples=300, n_y=4)
    rec = json.loads(path.read_text())
    assert path.name == "smoke_fig7_models.json" and (path.parent / "smoke_fig7_models.png").stat().st_size > 0
    assert list(rec["metrics"]["table"]) == ["seed 0, epoch 2", "seed 1, epoch 2", "seed 0, epoch 1"]
    first = rec["metrics"]["models"][0]
    assert first["model"]["step"] == 20 and first["model"]["train_seed"] == 0 and first["model"]["kernel"] == 4
    # the same G judged directly gives the recorded verdict (and its fingerprint names those weights)
    g, snap = fig7_models.store.snapshot_generator(a, 2, "smoke")
    assert first["model"]["fingerprint"] == latent.fingerprint(g) and snap == {"step": 20, "epoch": 2}
    direct = attributes.arithmetic_verdicts(g, picker, judge, n_samples=300, n_y=4)
    for name, v in direct.items():
        assert first["verdicts"][name]["results_rate"] == pytest.approx(v["results_rate"])
        assert first["verdicts"][name]["met"] == v["met"] and "centres" not in first["verdicts"][name]
    fps = [m["model"]["fingerprint"] for m in rec["metrics"]["models"]]
    assert len(set(fps)) == 3  # three different G
    twin = tiny_run(tmp_path / "s0b", 0)  # another run of seed 0: its rows are named by their folders
    rec = json.loads(fig7_models.compare([f"{a}@2", f"{twin}@2"], "smoke", n_samples=300, n_y=4).read_text())
    assert list(rec["metrics"]["table"]) == [f"{a} seed 0, epoch 2", f"{twin} seed 0, epoch 2"]
    with pytest.raises(ValueError, match="named twice"):
        fig7_models.compare([f"{a}@2", f"{a}@2"], "smoke", n_samples=300, n_y=4)
    with pytest.raises(FileNotFoundError, match="no snapshot after epoch 7"):
        fig7_models.compare([f"{a}@7"], "smoke", n_samples=300, n_y=4)
