"""The cpu-tier sweep: trains to CPU budgets, resumes between them, scores each point, writes its record."""
import json

import pytest

from dcgan_lib import fid, tier_sweep

pytestmark = pytest.mark.skipif(not fid.available(), reason="FID Inception weights not installed")


def test_sweep_trains_to_each_budget_and_scores(tmp_path, monkeypatch):
    monkeypatch.setattr(tier_sweep.results, "ROOT", tmp_path)
    monkeypatch.setattr(tier_sweep, "FIRST_STEPS", 2)
    setting = tier_sweep.Setting("cifar10", "imagenet32", 1 / 16, 8)
    path = tier_sweep.run((setting,), budgets=(1, 15), profile="smoke", progress=False)
    rec = json.loads(path.read_text())
    rows = rec["metrics"]["curves"][setting.label]
    assert [r["budget_cpu_s"] for r in rows] == [1, 15]
    assert rows[0]["steps"] < rows[1]["steps"] and rows[0]["cpu_s"] >= 0.98 and rows[1]["cpu_s"] >= 0.98 * 15
    assert all(r["kid"] == r["kid"] and r["fid"] > 0 for r in rows)
    assert rec["metrics"]["best_at_largest_budget"]["cifar10"]["setting"] == setting.label
    assert rec["metrics"]["settings_done"] == "1 of 1"
    assert (path.parent / "cpu_tier_sweep_cifar10.png").stat().st_size > 0


def test_a_d_judged_by_table1_is_probed_on_cifar10_and_drawn_beside_the_tables_rows(tmp_path, monkeypatch):
    monkeypatch.setattr(tier_sweep.results, "ROOT", tmp_path)
    monkeypatch.setattr(tier_sweep, "FIRST_STEPS", 2)
    figures = tmp_path / "runs/smoke/figures"
    figures.mkdir(parents=True)
    rows = [{"model": "ours", "paper_key": "dcgan", "accuracy": 0.3}, {"model": "K-means", "accuracy": 0.4}]
    (figures / "table1_cifar10.json").write_text(json.dumps({"metrics": {"rows": rows}}))
    setting = tier_sweep.Setting("cifar10", "imagenet32", 1 / 16, 8, judge="table1")
    path = tier_sweep.run((setting,), budgets=(1,), profile="smoke", progress=False)
    rec = json.loads(path.read_text())
    (row,) = rec["metrics"]["curves"][setting.label]
    assert 0 < row["accuracy"] <= 1 and row["C"] > 0 and row["features"] > 0 and "kid" not in row
    assert rec["metrics"]["table1_references"] == {"K-means": 0.4}  # our own D's row is what the sweep retrains
    assert rec["metrics"]["best_at_largest_budget"]["cifar10"]["accuracy"] == row["accuracy"]
