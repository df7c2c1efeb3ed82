"""The speed benchmark: timing windows, the same data and nets for both loops, the CLI's tiny mode."""
import os
import time

import numpy as np
import pytest
import torch
from PIL import Image

from dcgan_lib import bench, data, results, train
from dcgan_lib.cli import main
from dcgan_lib.train import TrainConfig, Trainer

MIRROR = os.environ.get("DCGAN_MIRROR")


class Sleeper:
    """A fake loop whose step takes `dt` seconds and records the order of calls."""

    def __init__(self, name, dt, calls):
        self.name, self.dt, self.calls, self.steps = name, dt, calls, 0

    def step(self):
        time.sleep(self.dt)
        self.steps += 1
        self.calls.append(self.name)


def test_time_window_excludes_warmup_and_counts_images():
    loop = Sleeper("a", 0.01, [])
    rate = bench.time_window(loop, seconds=0.1, warmup=3, batch_size=10, device=torch.device("cpu"))
    timed = loop.steps - 3
    assert timed >= 1
    assert 100 < rate <= 1000 + 1e-6  # 10 images per >= 10 ms step
    assert rate == pytest.approx(timed * 10 / (timed * 0.01), rel=0.5)


def test_windows_alternate_between_loops_and_drain_prefetch():
    calls = []
    a, b = Sleeper("a", 0.001, calls), Sleeper("b", 0.001, calls)
    b.prefetched = 4  # like the reference's DataLoader: 4 ready batches are drained untimed
    cfg = bench.BenchConfig(seconds=0.02, windows=3, warmup_steps=1, batch_size=2)
    rates = bench.interleaved([a, b], cfg, torch.device("cpu"), progress=False)
    assert {k: len(v) for k, v in rates.items()} == {"a": 3, "b": 3}
    runs = [calls[0]]  # collapse consecutive calls: one entry per window
    for name in calls[1:]:
        if name != runs[-1]:
            runs.append(name)
    assert runs == ["a", "b", "a", "b", "a", "b"]
    assert calls[:calls.index("b")].count("a") >= 2  # one warm-up step, then at least one timed step
    first_b = calls[calls.index("b"):]
    assert first_b[:first_b.index("a")].count("b") >= 1 + 4 + 1  # warm-up + drained prefetch + timed


def test_paired_ratio_cancels_load_drift_between_rounds():
    ours, ref = [100.0, 100.0, 300.0], [50.0, 150.0, 150.0]  # the machine got busier, then quieter
    assert bench.paired_ratio(ours, ref) == pytest.approx(2.0)
    assert np.median(ours) / np.median(ref) == pytest.approx(2 / 3)  # what a ratio of medians would say


@pytest.fixture
def png_folder(tmp_path):
    folder = tmp_path / "pngs"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(12):
        Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(folder / f"{i:02d}.png")
    (folder / "broken.png").write_bytes(b"not an image")
    return folder


def test_both_loops_see_the_same_images(tmp_path, png_folder, monkeypatch):
    monkeypatch.setenv("DCGAN_DATA", str(tmp_path / "data"))
    files, images, source = bench.prepare_files(f"folder:{png_folder}", 10, 32, tmp_path / "bench")
    assert images.shape == (10, 32, 32, 3) and images.dtype == np.uint8
    assert len(list((files / "images").iterdir())) == 10  # the broken file is skipped by both loops
    cfg = bench.BenchConfig(variant="imagenet32", width=1 / 16, batch_size=4, workers=0)
    ref = bench.Reference(cfg, files, torch.device("cpu"))
    for i in (0, 9):  # ImageFolder sorts files by name, the order they were written in
        x_ref = ref.loader.dataset[i][0]  # 3 x H x W in [-1, 1]
        x_ours = data.to_float(np.array(images[i:i + 1]))[0]
        assert torch.allclose(x_ref, x_ours, atol=1e-5)
    with pytest.raises(ValueError, match="smaller --files"):
        bench.prepare_files(f"folder:{png_folder}", 50, 32, tmp_path / "bench2")


def test_reference_runs_the_same_nets_without_the_fast_path(tmp_path, png_folder, monkeypatch):
    monkeypatch.setenv("DCGAN_DATA", str(tmp_path / "data"))
    files, images, _ = bench.prepare_files(f"folder:{png_folder}", 8, 32, tmp_path / "bench")
    cfg = bench.BenchConfig(variant="imagenet32", width=1 / 16, batch_size=4, workers=0)
    ref = bench.Reference(cfg, files, torch.device("cpu"))
    ours = bench.Ours("ours", bench.ours_configs(cfg, torch.device("cpu"))["ours"], images, tmp_path / "o",
                      torch.device("cpu"))
    for mine, theirs in ((ours.trainer.G, ref.G), (ours.trainer.D, ref.D)):
        assert [p.shape for p in mine.parameters()] == [p.shape for p in theirs.parameters()]
    conv = ref.D.blocks[1][0].weight
    assert conv.is_contiguous() and not conv.is_contiguous(memory_format=torch.channels_last)
    assert not ref.opt_d.defaults.get("fused")
    w0 = [p.clone() for p in ref.G.parameters()]
    for _ in range(3):  # 8 files, batch 4: crosses an epoch boundary
        ref.step()
        ours.step()
    assert any(not torch.equal(a, b) for a, b in zip(w0, ref.G.parameters()))
    assert set(ref.check()) >= {"loss_d", "loss_g"} and set(ours.check()) == {"loss_d", "loss_g", "d_real", "d_fake"}
    ref.close()


def test_ablations_switch_one_flag_off_each(monkeypatch):
    cpu = torch.device("cpu")
    monkeypatch.setattr(bench, "fast_cpu_bf16", lambda: True)
    configs = bench.ours_configs(bench.BenchConfig(compile=True), cpu)
    base = configs["ours"]
    assert base.amp and base.channels_last and base.fused_adam and not base.compile
    for flag in bench.ABLATIONS:
        cfg = configs[f"ours without {flag}"]
        assert getattr(cfg, flag) is False
        assert all(getattr(cfg, f) for f in bench.ABLATIONS if f != flag)
    assert configs["ours + compile"].compile
    monkeypatch.setattr(bench, "fast_cpu_bf16", lambda: False)
    assert "ours without amp" not in bench.ours_configs(bench.BenchConfig(), cpu)  # autocast is off there anyway


def test_cpu_autocast_follows_fast_bf16_and_keeps_fp32_weights(tmp_path, monkeypatch):
    images = np.random.default_rng(0).integers(0, 256, (16, 32, 32, 3), dtype=np.uint8)
    cfg = TrainConfig(variant="imagenet32", width=1 / 16, batch_size=8)
    for fast in (False, True):
        monkeypatch.setattr(train, "fast_cpu_bf16", lambda fast=fast: fast)
        t = Trainer(cfg, images, tmp_path / str(fast), device="cpu", progress=False)
        with t._autocast():
            out = t.G(cfg.net_config().sample_z(2))
        assert out.dtype == (torch.bfloat16 if fast else torch.float32)
        stats = t.train_step()
        assert all(torch.isfinite(v) for v in stats.values())
        assert all(p.dtype == torch.float32 for p in [*t.G.parameters(), *t.D.parameters()])
    monkeypatch.setattr(train, "fast_cpu_bf16", lambda: True)
    t = Trainer(TrainConfig(variant="imagenet32", width=1 / 16, batch_size=8, amp=False), images, tmp_path / "off",
                device="cpu", progress=False)
    with t._autocast():
        assert t.G(cfg.net_config().sample_z(2)).dtype == torch.float32


def test_bf16_peak_only_for_known_gpus():
    assert bench.bf16_peak(torch.device("cpu")) is None


@pytest.mark.skipif(not MIRROR, reason="needs the offline mirror (DCGAN_MIRROR)")
def test_tiny_cli_writes_records_and_table_from_them(tmp_path):
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        code = main(["bench", "--tiny", "--workers", "1", "--out", str(tmp_path)])  # one worker process: the real path
    finally:
        torch.set_num_threads(threads)
    assert code == 0
    stem = "bench_lsun64_cpu" if os.cpu_count() == 1 else "bench_lsun64_cpu_1thread"  # fewer threads than cores
    rec = results.read_record(tmp_path / f"{stem}.json")
    assert rec["threads"] == 1
    m = rec["metrics"]
    assert rec["profile"] == "smoke" and rec["bench_config"]["width"] == 1 / 16
    assert {len(v) for v in m["windows_images_per_s"].values()} == {2}
    assert set(m["windows_images_per_s"]) == {"ours", "reference", "ours without fused_adam"}
    assert m["ours_images_per_s"] == pytest.approx(np.median(m["windows_images_per_s"]["ours"]), abs=0.1)
    w = m["windows_images_per_s"]
    assert m["ratio"] == pytest.approx(np.median(np.divide(w["ours"], w["reference"])), abs=0.01)
    assert m["train_gflop_per_image"] > 0 and m["fraction_of_bf16_peak"] is None
    assert m["targets"]["met"] == (m["ratio"] >= 1.5) and "no GPU" in m["targets"]["not_measured"]
    assert len(rec["load_average_before"]) == 3 and rec["data"]["sha256"] and rec["host"]["cpu_count"] >= 1
    probe = results.read_record(tmp_path / "bench_probe_cpu.json")["metrics"]
    assert probe["images_featurised"] == 300 and probe["feature_dim"] == 1792  # 28,672 / 16 at width 1/16
    assert set(probe["svm_fits"]) == {"torch", "sklearn"}  # the fast solver and liblinear, same objective
    assert abs(probe["svm_fits"]["torch"]["accuracy"] - probe["svm_fits"]["sklearn"]["accuracy"]) <= 0.05
    assert probe["features_plus_svm_s"] == pytest.approx(
        probe["features_s"] + probe["standardise_s"] + probe["svm_fit_s"], abs=0.2)
    table = (tmp_path / "bench.md").read_text()
    assert f"| {m['ours_images_per_s']:,.1f} | {m['reference_images_per_s']:,.1f} | {m['ratio']:.2f}x |" in table
    assert "Not measured" in table and f"{probe['svm_fit_s']} s" in table


def test_cli_rejects_bad_arguments(capsys):
    assert main(["bench", "--batch", "1", "--no-probe"]) == 2
    assert "--batch" in capsys.readouterr().err
