"""The speed benchmark: timing windows, the same data and nets for both loops, the CLI's tiny mode."""
import os
import pickle
import shutil
import time

import numpy as np
import pytest
import torch
from PIL import Image

from dcgan_lib.bench import bench, bench_loops, bench_quality, bench_report
from dcgan_lib.cli import main
from dcgan_lib.data import data
from dcgan_lib.gan import train
from dcgan_lib.gan.train import TrainConfig, Trainer
from dcgan_lib.records import results


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
    cfg = bench_loops.BenchConfig(seconds=0.02, windows=3, warmup_steps=1, batch_size=2)
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
    files, images, source = bench_loops.prepare_files(f"folder:{png_folder}", 10, 32, tmp_path / "bench")
    assert images.shape == (10, 32, 32, 3) and images.dtype == np.uint8
    assert len(list((files / "images").iterdir())) == 10  # the broken file is skipped by both loops
    cfg = bench_loops.BenchConfig(variant="imagenet32", width=1 / 16, batch_size=4, workers=0)
    ref = bench_loops.Reference(cfg, files, torch.device("cpu"))
    for i in (0, 9):  # ImageFolder sorts files by name, the order they were written in
        x_ref = ref.loader.dataset[i][0]  # 3 x H x W in [-1, 1]
        x_ours = data.to_float(np.array(images[i:i + 1]))[0]
        assert torch.allclose(x_ref, x_ours, atol=1e-5)
    with pytest.raises(ValueError, match="smaller --files"):
        bench_loops.prepare_files(f"folder:{png_folder}", 50, 32, tmp_path / "bench2")


def test_reference_runs_the_same_nets_without_the_fast_path(tmp_path, png_folder, monkeypatch):
    monkeypatch.setenv("DCGAN_DATA", str(tmp_path / "data"))
    files, images, _ = bench_loops.prepare_files(f"folder:{png_folder}", 8, 32, tmp_path / "bench")
    cfg = bench_loops.BenchConfig(variant="imagenet32", width=1 / 16, batch_size=4, workers=0)
    ref = bench_loops.Reference(cfg, files, torch.device("cpu"))
    ours = bench_loops.Ours("ours", bench_loops.ours_specs(cfg, torch.device("cpu"))["ours"], images,
                            tmp_path / "o", torch.device("cpu"))
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


def test_ablations_switch_one_choice_off_each_at_fp32(monkeypatch):
    cpu = torch.device("cpu")
    monkeypatch.setattr(train, "fast_cpu_bf16", lambda: True)
    monkeypatch.setattr(torch, "get_num_threads", lambda: 2)
    specs = bench_loops.ours_specs(bench_loops.BenchConfig(compile=True, compile_modes=("reduce-overhead",)), cpu)
    base = specs["ours"]
    assert not base.config.amp  # the headline is fp32 against the fp32 reference
    assert base.config.channels_last and base.config.fused_adam and not base.config.compile
    assert base.array_batches and not base.host_sync and not base.d_grads_in_g_step and base.threads is None
    changed = {}
    for flag in bench_loops.ABLATIONS:
        spec = specs[f"ours without {flag}"]
        assert not spec.config.amp and spec.numerics == "fp32"
        diff = {k for k in ("array_batches", "host_sync", "d_grads_in_g_step", "threads") if getattr(spec, k) !=
                getattr(base, k)}
        diff |= {k for k in bench_loops.CONFIG_FLAGS if getattr(spec.config, k) != getattr(base.config, k)}
        assert len(diff) == 1, (flag, diff)  # exactly one choice off
        changed[flag] = diff.pop()
    assert changed["all_threads"] == "threads" and specs["ours without all_threads"].threads == 1
    off = specs["ours, all choices off"]
    assert not (off.config.channels_last or off.config.fused_adam or off.array_batches) and off.host_sync
    assert specs["ours + compile"].config.compile and specs["ours + compile"].config.compile_mode == "default"
    graphs = specs["ours + compile reduce-overhead"].config  # CUDA graphs: one row of its own, fp32 otherwise as ours
    assert graphs.compile and graphs.compile_mode == "reduce-overhead" and not graphs.amp and graphs.channels_last
    assert specs["ours bf16"].config.amp and specs["ours bf16"].numerics == "bf16"
    monkeypatch.setattr(train, "fast_cpu_bf16", lambda: False)
    monkeypatch.setattr(torch, "get_num_threads", lambda: 1)
    specs = bench_loops.ours_specs(bench_loops.BenchConfig(), cpu)
    assert "ours bf16" not in specs  # no AMX: the Trainer runs no bf16 here, so no bf16 row
    assert "ours without all_threads" not in specs  # one thread already
    assert not any("compile" in name for name in specs)  # compile rows only when asked for
    with pytest.raises(ValueError, match="unknown ablation"):
        bench_loops.ours_specs(bench_loops.BenchConfig(ablations=("tf32",)), cpu)
    with pytest.raises(ValueError, match="unknown torch.compile mode"):
        bench_loops.ours_specs(bench_loops.BenchConfig(compile_modes=("fast",)), cpu)


def test_ablation_wrappers_change_what_they_say(tmp_path, png_folder, monkeypatch):
    monkeypatch.setenv("DCGAN_DATA", str(tmp_path / "data"))
    files, images, _ = bench_loops.prepare_files(f"folder:{png_folder}", 8, 32, tmp_path / "bench")
    cfg = bench_loops.BenchConfig(variant="imagenet32", width=1 / 16, batch_size=4, workers=0)
    cpu = torch.device("cpu")
    base = bench_loops.ours_specs(cfg, cpu)["ours"]
    import dataclasses
    files_spec = dataclasses.replace(base, array_batches=False, d_grads_in_g_step=True, host_sync=True)
    ours = bench_loops.Ours("o", files_spec, images, tmp_path / "o", cpu,
                            loader=bench_loops.file_loader(cfg, files, 32))
    seen = []
    ours.trainer.D.register_full_backward_hook(lambda m, gi, go: seen.append(m.classify.weight.requires_grad))
    synced = []
    monkeypatch.setattr(ours, "check", lambda: synced.append(1))
    batch = ours.trainer._batch()
    assert batch.shape == (4, 3, 32, 32) and batch.is_contiguous(memory_format=torch.channels_last)
    assert any(torch.allclose(batch[0], data.to_float(np.array(images[i:i + 1]))[0], atol=1e-5) for i in range(8))
    ours.step()
    assert seen[-1] is True  # D kept its weight gradients through the G step, as the reference does
    assert synced == [1]  # one read-back per step
    plain = bench_loops.Ours("p", base, images, tmp_path / "p", cpu)
    seen_plain = []
    plain.trainer.D.register_full_backward_hook(lambda m, gi, go: seen_plain.append(m.classify.weight.requires_grad))
    plain.step()
    assert seen_plain[-1] is False  # the fast path switches them off
    with pytest.raises(ValueError, match="file loader"):
        bench_loops.Ours("x", files_spec, images, tmp_path / "x", cpu)
    ours.close()


def test_loop_threads_apply_only_inside_its_windows():
    calls = []

    class Counting(Sleeper):
        def step(self):
            calls.append((self.name, torch.get_num_threads()))

    before = torch.get_num_threads()
    a, b = Counting("a", 0, []), Counting("b", 0, [])
    b.threads = 1 if before > 1 else 2
    bench.interleaved([a, b], bench_loops.BenchConfig(seconds=0.01, windows=2, warmup_steps=1), torch.device("cpu"),
                      progress=False)
    assert {n for name, n in calls if name == "a"} == {before}
    assert {n for name, n in calls if name == "b"} == {b.threads}
    assert torch.get_num_threads() == before


def test_compare_curves_flags_bf16_drift_beyond_seed_spread():
    rng = np.random.default_rng(0)
    fp32 = {m: list(rng.normal(1.0, 0.1, 50)) for m in bench_quality.QUALITY_METRICS}
    seed1 = {m: [x + 0.05 for x in v] for m, v in fp32.items()}  # another seed: 0.05 apart
    close = {m: [x + 0.01 for x in v] for m, v in fp32.items()}
    res = bench_quality.compare_curves({"fp32": fp32, "bf16": close, "fp32, seed + 1": seed1})
    assert res["passed"] and res["metrics"]["loss_g"]["bf16_gap"] == pytest.approx(0.01, abs=1e-3)
    assert res["metrics"]["d_real"]["tolerance"] == pytest.approx(0.075, abs=1e-3)  # 1.5 x the seed gap
    drifted = {m: [x + (0.5 if i >= 40 else 0.0) for i, x in enumerate(v)] for m, v in fp32.items()}
    res = bench_quality.compare_curves({"fp32": fp32, "bf16": drifted, "fp32, seed + 1": seed1})
    assert not res["passed"] and not res["metrics"]["loss_d"]["ok"]  # the last block drifted


def test_bf16_quality_really_trains_bf16_on_cpu(tmp_path):
    images = np.random.default_rng(0).integers(0, 256, (16, 32, 32, 3), dtype=np.uint8)
    res = bench_quality.bf16_quality("imagenet32", 1 / 16, 4, images, 2, torch.device("cpu"), tmp_path, blocks=2)
    means = res["block_means"]
    assert res["forced_on_cpu"] and res["steps"] == 2 and set(res["metrics"]) == set(bench_quality.QUALITY_METRICS)
    assert means["bf16"] != means["fp32"]  # autocast was on: bf16 rounding moved the curves
    assert means["fp32, seed + 1"] != means["fp32"]
    assert res["passed"] == all(r["ok"] for r in res["metrics"].values())


def test_bf16_quality_scores_or_saves_samples_of_each_run(tmp_path, monkeypatch):
    """FID/KID of every run's samples where the Inception weights are installed, else the samples are saved."""
    from dcgan_lib.measure import fid

    images = np.random.default_rng(0).integers(0, 256, (16, 32, 32, 3), dtype=np.uint8)
    monkeypatch.setattr(fid, "features", lambda x, *a, **k: np.random.default_rng(len(x)).normal(
        size=(len(x), 8)) + x.reshape(len(x), -1)[:, :8] / 255)  # cheap stand-in: the wiring is tested here
    res = bench_quality.bf16_quality("imagenet32", 1 / 16, 4, images, 2, torch.device("cpu"), tmp_path / "a",
                                     blocks=2, fid_samples=6)
    assert set(res["fid"]["by_run"]) == {"fp32", "bf16", "fp32, seed + 1"} and res["fid"]["n"] == 6
    assert all(v["fid"] > 0 for v in res["fid"]["by_run"].values())
    monkeypatch.setattr(fid, "available", lambda: False)
    res = bench_quality.bf16_quality("imagenet32", 1 / 16, 4, images, 2, torch.device("cpu"), tmp_path / "b",
                                     blocks=2, fid_samples=6, samples_dir=tmp_path / "s")
    assert "deferred" in res["fid"] and len(res["fid"]["files"]) == 3
    for name in res["fid"]["files"].values():
        with np.load(tmp_path / "s" / name) as f:
            assert f["images"].shape == (6, 32, 32, 3) and f["images"].dtype == np.uint8
    with np.load(tmp_path / "s" / res["fid"]["files"]["fp32"]) as a, \
            np.load(tmp_path / "s" / res["fid"]["files"]["fp32, seed + 1"]) as b:
        assert not np.array_equal(a["images"], b["images"])  # two seeds, two generators


def test_flop_count_and_machine_limits_are_measured(monkeypatch):
    from dcgan_lib.bench import flops
    from dcgan_lib.gan import nets

    a, b = torch.randn(64, 32), torch.randn(32, 16)
    assert flops.count_flops(lambda: a @ b) == 2 * 64 * 32 * 16
    gemm = flops.gemm_throughput(torch.device("cpu"), n=128, seconds=0.05)
    assert gemm["n"] == 128 and gemm["flop_per_s"] > 0
    cfg = nets.get_config("lsun64", None, 1 / 16)
    conv = flops.conv_throughput(cfg, 4, torch.device("cpu"), seconds=0.1)
    kinds = {(r["layer"].split()[0], r["layout"]) for r in conv["layers"]}
    assert kinds == {(n, fmt) for n in ("D", "G") for fmt in ("channels_last", "NCHW")}
    assert conv["flop_per_s"] == max(r["flop_per_s"] for r in conv["layers"])
    d_layers = [x for x in flops.conv_layers(cfg, 4) if x["net"] == "D"]
    assert len(d_layers) == len(cfg.d_layers) and d_layers[0]["input_shape"] == (4, 3, 64, 64)
    timeline = iter([0.0, 1.0])  # best_rate reports the best chunk: 10 FLOPs in 1 s
    monkeypatch.setattr(flops.time, "perf_counter", lambda: next(timeline, 1.0))
    assert flops.best_rate(lambda: None, 10.0, torch.device("cpu"), seconds=0.5, chunks=1) == pytest.approx(10.0)


def test_time_breakdown_groups_the_step(tmp_path):
    from dcgan_lib.bench import flops

    images = np.random.default_rng(0).integers(0, 256, (16, 32, 32, 3), dtype=np.uint8)
    t = Trainer(TrainConfig(variant="imagenet32", width=1 / 16, batch_size=8, amp=False), images, tmp_path,
                device="cpu", progress=False)
    prof = flops.time_breakdown(t.train_step, steps=1, data_fn=(t, "_batch"))
    secs = prof["seconds_per_step"]
    assert set(prof["fraction"]) == set(flops.PROFILE_GROUPS)
    assert secs["convolutions"] > 0 and secs["BatchNorm"] > 0 and secs["optimizer"] > 0 and secs["data"] > 0
    assert sum(secs.values()) == pytest.approx(prof["step_s"], rel=0.05)
    assert "_batch" not in vars(t)  # the data wrapper is removed again


def test_cpu_autocast_follows_fast_bf16_and_keeps_fp32_weights(tmp_path, monkeypatch):
    """amp=True (the bench's bf16 row): bf16 autocast on a CPU exactly when it has fast bf16; the default
    (amp None) and amp=False keep CPU training fp32 even there."""
    images = np.random.default_rng(0).integers(0, 256, (16, 32, 32, 3), dtype=np.uint8)
    cfg = TrainConfig(variant="imagenet32", width=1 / 16, batch_size=8, amp=True)
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
    for amp in (False, None):
        t = Trainer(TrainConfig(variant="imagenet32", width=1 / 16, batch_size=8, amp=amp), images,
                    tmp_path / f"off{amp}", device="cpu", progress=False)
        with t._autocast():
            assert t.G(cfg.net_config().sample_z(2)).dtype == torch.float32


def test_bf16_peak_only_for_known_gpus():
    assert bench.bf16_peak(torch.device("cpu")) is None


@pytest.fixture(scope="module")
def offline(tmp_path_factory):
    """The CLI's data without the mirror: a folder of 72 random 64 px PNGs for the training loops (`--dataset
    folder:PATH`) and a data root holding CIFAR-10 in its official python-batch format for the probe.

    The CIFAR-10 stand-in has the real set's shape (5 x 10,000 train, 10,000 test, 10 classes), because
    the dataset registry counts the official set as 50,000 + 10,000 and takes evenly spaced subsets of
    that; each class is one colour plus noise, so the SVM can learn it as it learns CIFAR-10."""
    root = tmp_path_factory.mktemp("offline")
    pngs = root / "pngs"
    pngs.mkdir()
    rng = np.random.default_rng(0)
    for i in range(72):  # the tiny mode reads 64 files
        Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(pngs / f"{i:02d}.png")
    batches = root / "data" / "official" / "cifar10" / "cifar-10-batches-py"
    batches.mkdir(parents=True)
    colours = rng.integers(48, 208, (10, 3, 1, 1), dtype=np.int16)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        labels = np.arange(10_000) % 10
        images = colours[labels] + rng.integers(-48, 48, (10_000, 3, 32, 32), dtype=np.int16)
        with open(batches / name, "wb") as f:
            pickle.dump({b"data": images.astype(np.uint8).reshape(10_000, 3072), b"labels": labels.tolist()}, f)
    yield {"dataset": f"folder:{pngs}", "data_root": root / "data"}
    shutil.rmtree(root)  # 185 MB: not left for pytest's kept temporary folders


def use_offline(monkeypatch, offline) -> None:
    """Read only the fixture: no mirror, and a data root of its own (caches land there, not in data/)."""
    monkeypatch.delenv("DCGAN_MIRROR", raising=False)
    monkeypatch.setenv("DCGAN_DATA", str(offline["data_root"]))


@pytest.mark.parametrize("amx", [False, True], ids=["no_amx", "amx"])
def test_tiny_cli_writes_records_and_table_from_them(tmp_path, offline, monkeypatch, amx):
    """The rows follow the CPU's bf16 check, faked both ways so that every machine tests both: no AMX, no bf16
    row; AMX, a bf16 row with its machine limits and its training-curve check. The probe runs once."""
    use_offline(monkeypatch, offline)
    monkeypatch.setattr(train, "fast_cpu_bf16", lambda: amx)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        code = main(["bench", "--tiny", "--workers", "1", "--dataset", offline["dataset"],  # one worker: the real path
                     "--out", str(tmp_path)] + (["--no-probe"] if amx else []))
    finally:
        torch.set_num_threads(threads)
    assert code == 0
    stem = "bench_lsun64_w0.0625_cpu" + ("" if os.cpu_count() == 1 else "_1thread")  # fewer threads than cores
    rec = results.read_record(tmp_path / f"{stem}.json")
    assert rec["threads"] == 1 and rec["host"]["cpu_amx_bf16"] is amx
    m = rec["metrics"]
    assert rec["profile"] == "smoke" and rec["bench_config"]["width"] == 1 / 16
    assert {len(v) for v in m["windows_images_per_s"].values()} == {2}
    assert set(m["windows_images_per_s"]) == {"ours", "reference", "ours without channels_last"} | (
        {"ours bf16"} if amx else set())
    assert m["ours_images_per_s"] == pytest.approx(np.median(m["windows_images_per_s"]["ours"]), abs=0.1)
    w = m["windows_images_per_s"]
    assert m["ratio"] == pytest.approx(np.median(np.divide(w["ours"], w["reference"])), abs=0.01)
    assert m["numerics"].startswith("fp32") and rec["bench_config"]["bf16"]
    lim = m["limits"]
    assert lim["step_flops"]["reference"] > lim["step_flops"]["ours"] > 0  # the reference also does D grads in G step
    f = lim["fp32"]
    assert f["fraction_of_conv"] == pytest.approx(
        lim["step_flops"]["ours"] / 16 * m["ours_images_per_s"] / 1e9 / f["conv_gflop_per_s"], rel=0.02)
    assert set(lim["profile"]["fraction"]) == {"convolutions", "BatchNorm", "optimizer", "data", "other ops",
                                               "Python/other"}
    t = m["targets"]
    assert t["met"] == (m["ratio"] >= 1.5 and f["fraction_of_conv"] >= 0.6) and "no GPU" in t["not_measured"]
    assert len(rec["load_average_before"]) == 3 and rec["host"]["cpu_count"] >= 1
    assert rec["data"]["dataset"] == offline["dataset"] and rec["data"]["files"] == 64
    assert rec["cpu_pressure_after"] is None or 0 <= rec["cpu_pressure_after"] <= 1
    table = (tmp_path / "bench.md").read_text()
    assert f"| {m['ours_images_per_s']:,.1f} | {m['reference_images_per_s']:,.1f} | {m['ratio']:.2f}x |" in table
    assert f"| {f['conv_gflop_per_s']:,.1f} | {100 * f['fraction_of_conv']:.0f}% |" in table
    assert "Not measured" in table and "NOT equal numerics" in table and "issue" not in table.lower()
    b = m["bf16"]
    if not amx:
        assert not b["used"] and "no AMX" in b["reason"] and "bf16" not in lim and b["quality"] is None
        assert "no AMX" in table
    else:
        assert b["used"] and b["images_per_s"] == pytest.approx(np.median(w["ours bf16"]), abs=0.1)
        assert lim["bf16"]["conv_gflop_per_s"] > 0  # the machine limit in bf16 too, beside the bf16 row
        assert b["quality"]["steps"] == 6 and b["shown_as_win"] == b["quality"]["passed"]
        assert f"{b['images_per_s']:,.1f} img/s, {b['ratio_to_ours_fp32']:.2f}x ours fp32" in table
        assert not (tmp_path / "bench_probe_cpu.json").exists()  # --no-probe
        return
    probe = results.read_record(tmp_path / "bench_probe_cpu.json")["metrics"]
    assert probe["images_featurised"] == 300 and probe["feature_dim"] == 1792  # 28,672 / 16 at width 1/16
    assert set(probe["svm_fits"]) == {"torch", "sklearn"}  # the fast solver and liblinear, same objective
    assert abs(probe["svm_fits"]["torch"]["accuracy"] - probe["svm_fits"]["sklearn"]["accuracy"]) <= 0.05
    assert probe["features_plus_svm_s"] == pytest.approx(
        probe["features_s"] + probe["standardise_s"] + probe["svm_fit_s"], abs=0.2)
    assert f"{probe['svm_fit_s']} s" in table


def test_gpu_check_tiny_mode_writes_one_record(tmp_path, offline, monkeypatch):
    def broken_probe(*args, **kwargs):
        raise OSError("the CIFAR-10 mirror is not mounted")

    use_offline(monkeypatch, offline)
    monkeypatch.setattr(bench_report, "bench_probe", broken_probe)  # a probe failure keeps the training numbers
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        code = main(["bench", "gpu-check", "--tiny", "--workers", "0", "--dataset", offline["dataset"],
                     "--out", str(tmp_path)])
    finally:
        torch.set_num_threads(threads)
    assert code == 0
    assert [p.name for p in tmp_path.iterdir()] == ["bench_gpu_check_cpu.json"]  # one record
    rec = results.read_record(tmp_path / "bench_gpu_check_cpu.json")
    m = rec["metrics"]
    assert rec["bench_config"]["variant"] == "lsun64" and rec["profile"] == "smoke"
    assert m["ours_fp32_images_per_s"] > 0 and m["reference_images_per_s"] > 0 and m["ratio_fp32"] > 0
    assert m["bf16_quality_passed"] == m["training"]["bf16"]["quality"]["passed"]  # run even without a bf16 row
    assert m["training"]["bf16"]["quality"]["steps"] == 6 and m["fraction_of_bf16_peak"] is None  # no GPU
    assert "not mounted" in m["probe"]["error"]


def test_gpu_check_times_each_compile_mode_with_its_kid_at_equal_steps(tmp_path, offline, monkeypatch):
    """The torch.compile rows (CUDA graphs: reduce-overhead) beside ours and the reference, each trained in the
    quality check for curves and KID after the same steps as fp32. torch.compile is faked (it records its mode
    and returns the net): the wiring is what runs on a CPU; the speed-up itself needs CUDA."""
    use_offline(monkeypatch, offline)
    modes = []
    monkeypatch.setattr(torch, "compile", lambda model, mode="default", **kw: modes.append(mode) or model)
    monkeypatch.setattr(train, "fast_cpu_bf16", lambda: False)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        code = main(["bench", "gpu-check", "--tiny", "--no-probe", "--workers", "0", "--dataset", offline["dataset"],
                     "--compile-modes", "reduce-overhead", "--fid-samples", "0", "--out", str(tmp_path)])
    finally:
        torch.set_num_threads(threads)
    assert code == 0
    m = results.read_record(tmp_path / "bench_gpu_check_cpu.json")["metrics"]
    assert modes.count("reduce-overhead") == 4  # G and D of the timed row, G and D of the quality run
    c = m["compile"]["reduce-overhead"]
    rates = m["training"]["windows_images_per_s"]["ours + compile reduce-overhead"]
    assert c["images_per_s"] == pytest.approx(np.median(rates), abs=0.1) and c["first_steps_s"] >= 0
    assert c["ratio_to_ours_fp32"] == m["training"]["speedups"]["compile reduce-overhead"]
    compiled = m["training"]["bf16"]["quality"]["compiled"]["compile reduce-overhead"]
    assert c["curves_within_tolerance"] == compiled["passed"] and set(compiled["metrics"]) == set(
        bench_quality.QUALITY_METRICS)
    assert "compile" not in m["training"]["bf16"]["quality"]["compiled"]  # only the modes asked for
    assert main(["bench", "gpu-check", "--tiny", "--compile-modes", "fastest"]) == 2


def test_compiled_quality_run_gets_kid_at_the_same_steps(tmp_path, monkeypatch):
    from dcgan_lib.measure import fid

    images = np.random.default_rng(0).integers(0, 256, (16, 32, 32, 3), dtype=np.uint8)
    monkeypatch.setattr(torch, "compile", lambda model, mode="default", **kw: model)
    monkeypatch.setattr(fid, "features", lambda x, *a, **k: np.random.default_rng(len(x)).normal(
        size=(len(x), 8)) + x.reshape(len(x), -1)[:, :8] / 255)
    res = bench_quality.bf16_quality("imagenet32", 1 / 16, 4, images, 2, torch.device("cpu"), tmp_path, blocks=2,
                                     fid_samples=6, compile_modes=("reduce-overhead", "default"))
    assert set(res["compiled"]) == {"compile reduce-overhead", "compile"}
    assert set(res["fid"]["by_run"]) == {"fp32", "bf16", "fp32, seed + 1", "compile reduce-overhead", "compile"}
    # the same seed and steps as fp32 and fp32 numerics: an identity "compile" trains exactly as fp32 does
    assert res["compiled"]["compile"]["block_means"]["compile"] == res["block_means"]["fp32"]
    assert all(r["gap"] == 0 for r in res["compiled"]["compile"]["metrics"].values())
    assert res["fid"]["by_run"]["compile"]["kid"] == pytest.approx(res["fid"]["by_run"]["fp32"]["kid"])


@pytest.mark.slow
def test_reduce_overhead_compile_trains_on_cpu(tmp_path):
    """torch.compile(mode="reduce-overhead") for real at a tiny size: on a CPU inductor compiles C++ and skips
    CUDA graphs (a CUDA-only part); the compiled fp32 run still tracks plain fp32 within the seed spread."""
    import shutil as sh

    if sh.which(os.environ.get("CXX", "g++")) is None:
        pytest.skip("no C++ compiler for torch.compile's CPU code")
    images = np.random.default_rng(0).integers(0, 256, (16, 32, 32, 3), dtype=np.uint8)
    res = bench_quality.bf16_quality("imagenet32", 1 / 16, 4, images, 3, torch.device("cpu"), tmp_path, blocks=3,
                                     compile_modes=("reduce-overhead",))
    compiled = res["compiled"]["compile reduce-overhead"]
    assert all(r["gap"] <= r["tolerance"] for r in compiled["metrics"].values()) and compiled["passed"]


def test_gpu_check_asks_for_a_gpu_or_tiny(capsys):
    if torch.cuda.is_available():
        pytest.skip("a GPU is here")
    assert main(["bench", "gpu-check", "--no-probe"]) == 2
    assert "--tiny" in capsys.readouterr().err


def test_table_skips_records_from_before_equal_numerics(tmp_path):
    results.write_record("bench_lsun64_cpu", name="training speed lsun64", profile="cpu", out_dir=tmp_path,
                         metrics={"ours_images_per_s": 1.0, "reference_images_per_s": 1.0, "ratio": 1.0},
                         bench_config={"variant": "lsun64"}, threads=2)
    text = bench_report.write_table(tmp_path).read_text()
    assert "Not shown" in text and "lsun64 (2 threads)" in text


def test_cli_rejects_bad_arguments(capsys):
    assert main(["bench", "--batch", "1", "--no-probe"]) == 2
    assert "--batch" in capsys.readouterr().err
