"""Whole training runs compared along training: at kept epochs, against training images, and at equal time."""
import json
from pathlib import Path

import numpy as np
import pytest

from dcgan_lib.bench import whole_runs


def test_follows_whole_runs_on_training_images(tmp_path, monkeypatch):
    monkeypatch.setattr(whole_runs.results, "ROOT", tmp_path)
    kids = {"paper": [0.30, 0.10], "diffaug": [0.20, 0.12]}

    def record(folder):
        label = folder.name
        return {"data": {"dataset": "celeba"}, "commit": "abc", "device": "cpu: m", "seed": 0,
                "numerics": {"numerics": "fp32"}, "train_config": {"diffaug": label == "diffaug", "steps": 8},
                "metrics": {"step": 8, "wall_s": 60.0, "kid": 0.09, "kid_std": 0.001, "fid": 100.0}}
    calls = []

    def curve(folder, epochs, progress, seed, against):
        calls.append(against)
        return [{"epoch": e, "kid": k, "kid_std": 0.01, "samples": 8} for e, k in zip(epochs, kids[folder.name])]
    monkeypatch.setattr(whole_runs.runs, "read_record", record)
    monkeypatch.setattr(whole_runs.trainlog, "quality_curve", curve)
    path = whole_runs.compare({"paper": tmp_path / "paper", "diffaug": tmp_path / "diffaug"}, [10, 20], "smoke")
    rec = json.loads(path.read_text())
    assert calls == ["train", "train"]  # chosen on training images; the held-out KID is only reported
    first, second = rec["metrics"]["points"]
    assert first["lowest"] == "diffaug" and first["gap_in_std"] == pytest.approx(0.1 / np.hypot(0.01, 0.01), 0.01)
    assert second["lowest"] == "paper" and rec["metrics"]["real_split"] == "train"
    assert rec["metrics"]["runs"]["diffaug"]["train_config"]["diffaug"] and rec["metrics"]["runs"]["paper"][
        "heldout_final"]["kid"] == 0.09
    assert (path.parent / "cpu_recipe_runs_celeba.png").stat().st_size > 0
    monkeypatch.setattr(whole_runs.runs, "read_record",
                        lambda folder: {**record(folder), "data": {"dataset": folder.name}})
    with pytest.raises(ValueError, match="different datasets"):
        whole_runs.compare({"paper": tmp_path / "paper", "diffaug": tmp_path / "diffaug"}, [10, 20], "smoke")


def test_takes_a_run_of_an_earlier_record_scored_alike_and_compares_at_equal_time(tmp_path, monkeypatch):
    monkeypatch.setattr(whole_runs.results, "ROOT", tmp_path)
    slow_kids, fast_kids = [0.30, 0.20, 0.10], [0.25, 0.15, 0.12]

    def curve(folder, epochs, progress, seed, against):
        return [{"epoch": e, "step": 10 * e, "kid": k, "kid_std": 0.01, "samples": 8, "reference": "train_abc"}
                for e, k in zip(epochs, slow_kids if folder.name == "slow" else fast_kids)]

    def record(folder, wall):
        return {"data": {"dataset": "celeba"}, "commit": "abc", "device": "cpu: m", "seed": 0, "train_config": {},
                "metrics": {"step": 30, "wall_s": wall, "kid": 0.09, "kid_std": 0.001, "fid": 100.0}}
    monkeypatch.setattr(whole_runs.trainlog, "quality_curve", curve)
    monkeypatch.setattr(whole_runs.runs, "read_record", lambda folder: record(folder, 300.0))
    earlier = whole_runs.compare({"slow": tmp_path / "slow", "other": tmp_path / "slow"}, [1, 2, 3], "smoke")
    monkeypatch.setattr(whole_runs.runs, "read_record", lambda folder: record(folder, 100.0))  # 3x faster a step
    path = whole_runs.compare({"fast": tmp_path / "fast"}, [1, 2, 3], "smoke",
                                   name="kernel", recorded={"slow": (earlier, "slow")})
    rec = json.loads(path.read_text())
    assert path.name == "cpu_kernel_runs_celeba.json" and rec["sources"][0]["run"] == "slow"
    m = rec["metrics"]
    assert [p["lowest"] for p in m["points"]] == ["fast", "fast", "slow"]  # per epoch, the slow run ends ahead
    assert [r["train_s"] for r in m["curves"]["slow"]] == [100.0, 200.0, 300.0]  # its own wall time, pro rata
    eq = m["at_equal_time"]  # the fast run's 100 s beside the slow run's point at 100 s: the fast one is ahead
    assert (eq["run"], eq["train_s"], eq["others"]["slow"]["epoch"], eq["others"]["slow"]["lower"]) == (
        "fast", 100.0, 1, "fast")
    untimed = whole_runs.compare({"fast": tmp_path / "fast"}, [1, 2, 3], "smoke",
                                      name="kernel", timed=False, recorded={"slow": (earlier, "slow")})
    m = json.loads(untimed.read_text())["metrics"]
    assert m["at_equal_time"] is None and all(r["train_s"] is None for rows in m["curves"].values() for r in rows)
    monkeypatch.setattr(whole_runs.trainlog, "quality_curve",
                        lambda *a, **k: [{**row, "reference": "heldout"} for row in curve(*a, **k)])
    with pytest.raises(ValueError, match="scored otherwise.*real images"):  # other real images: not comparable
        whole_runs.compare({"fast": tmp_path / "fast"}, [1, 2, 3], "smoke", recorded={"slow": (earlier, "slow")})
    with pytest.raises(ValueError, match="no run 'nope'"):
        whole_runs.compare({"fast": tmp_path / "fast"}, [1, 2, 3], "smoke",
                                 recorded={"slow": (earlier, "nope")})


def test_cli_splits_folders_from_recorded_runs(monkeypatch):
    seen = {}
    monkeypatch.setattr(whole_runs, "compare", lambda folders, *a, recorded, **k: seen.update(
        folders=folders, recorded=recorded) or "ok")
    whole_runs.main(["k4=runs/c", "k5=figures/x.json#paper", "--epochs", "1", "2"])
    assert seen == {"folders": {"k4": "runs/c"}, "recorded": {"k5": (Path("figures/x.json"), "paper")}}
    with pytest.raises(SystemExit):  # a record without #RUN: which of its runs?
        whole_runs.main(["k4=runs/c", "k5=figures/x.json", "--epochs", "1"])
