"""The trainer: a step on tiny data, exact resume after SIGKILL, DDP on gloo, NaN and collapse stops,
the last good checkpoint, damaged checkpoints and nonsense settings."""
import dataclasses
import os
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch
from PIL import Image

from dcgan_lib.cli import main
from dcgan_lib.gan import runs
from dcgan_lib.gan.runs import CheckpointError
from dcgan_lib.gan.train import TrainConfig, Trainer, TrainingStopped

TINY = dict(variant="imagenet32", width=1 / 16, batch_size=8, log_every=1)


def tiny_images(n=32, size=32, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (n, size, size, 3), dtype=np.uint8)


def test_one_step_changes_both_nets_and_logs(tmp_path):
    t = Trainer(TrainConfig(**TINY, steps=2, checkpoint_every=2), tiny_images(), tmp_path, progress=False)
    g0 = [p.clone() for p in t.G.parameters()]
    d0 = [p.clone() for p in t.D.parameters()]
    t.fit()
    assert any(not torch.equal(a, b) for a, b in zip(g0, t.G.parameters()))
    assert any(not torch.equal(a, b) for a, b in zip(d0, t.D.parameters()))
    log = runs.read_log(tmp_path)
    assert [r["step"] for r in log] == [1, 2]
    assert all(0 < r["d_real"] < 1 and 0 < r["d_fake"] < 1 for r in log)
    assert (tmp_path / "checkpoint.pt").exists() and (tmp_path / "samples_latest.png").exists()
    assert not (tmp_path / "snapshots").exists()  # 2 steps < one epoch (32 images / 8 = 4 steps)
    t2 = Trainer(TrainConfig(**TINY, steps=9, checkpoint_every=9), tiny_images(), tmp_path / "b", progress=False)
    t2.fit()
    assert sorted(p.name for p in (tmp_path / "b" / "snapshots").iterdir()) == ["G_epoch001.pt", "G_epoch002.pt"]


def test_resume_in_process_is_exact(tmp_path):
    cfg = TrainConfig(**TINY, steps=10, checkpoint_every=4)
    full = Trainer(cfg, tiny_images(), tmp_path / "full", progress=False)
    full.fit()
    part = Trainer(TrainConfig(**{**TINY, "steps": 10, "checkpoint_every": 4}), tiny_images(), tmp_path / "part",
                   progress=False)
    part.cfg = TrainConfig(**TINY, steps=6, checkpoint_every=4)  # stop early: last checkpoint at step 4
    part.fit()
    resumed = Trainer(cfg, tiny_images(), tmp_path / "part", progress=False)
    resumed.fit()
    assert resumed.step == 10
    for a, b in zip(full.G.state_dict().values(), resumed.G.state_dict().values()):
        assert torch.equal(a, b)
    assert [r["step"] for r in runs.read_log(tmp_path / "part")] == list(range(1, 11))


def _cli(out, folder, steps):
    return [sys.executable, "-m", "dcgan_lib", "train", "--dataset", f"folder:{folder}", "--variant", "imagenet32",
            "--profile", "smoke", "--out", str(out), "--steps", str(steps), "--checkpoint-every", "5",
            "--no-progress"]


@pytest.fixture
def image_folder(tmp_path):
    folder = tmp_path / "imgs"
    folder.mkdir()
    for i, img in enumerate(tiny_images(48)):
        Image.fromarray(img).save(folder / f"{i:03d}.png")
    return folder


@pytest.fixture
def cli_env(tmp_path):
    return {**os.environ, "DCGAN_DATA": str(tmp_path / "data"), "OMP_NUM_THREADS": "1"}


def test_sigkill_then_same_command_ends_bitwise_identical(tmp_path, image_folder, cli_env):
    steps = 150
    subprocess.run(_cli(tmp_path / "a", image_folder, steps), env=cli_env, check=True, capture_output=True)
    proc = subprocess.Popen(_cli(tmp_path / "b", image_folder, steps), env=cli_env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    ckpt = tmp_path / "b" / "checkpoint.pt"
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None:
        if ckpt.exists() and torch.load(ckpt, weights_only=False)["step"] >= 10:
            break
        time.sleep(0.05)
    assert proc.poll() is None, "the run finished before it could be killed; raise `steps`"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    killed_at = torch.load(ckpt, weights_only=False)["step"]
    assert 0 < killed_at < steps
    subprocess.run(_cli(tmp_path / "b", image_folder, steps), env=cli_env, check=True, capture_output=True)
    a = torch.load(tmp_path / "a" / "checkpoint.pt", weights_only=False)
    b = torch.load(ckpt, weights_only=False)
    assert a["step"] == b["step"] == steps
    for net in ("G", "D"):
        for key in a[net]:
            assert torch.equal(a[net][key], b[net][key]), f"{net}.{key} differs after resume"
    assert torch.equal(a["opt_g"]["state"][0]["exp_avg"], b["opt_g"]["state"][0]["exp_avg"])


def test_ddp_two_cpu_processes_on_gloo(tmp_path, image_folder, cli_env):
    out = tmp_path / "ddp"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", "29517",
           "-m", "dcgan_lib", "train", "--dataset", f"folder:{image_folder}", "--variant", "imagenet32",
           "--profile", "smoke", "--out", str(out), "--steps", "3", "--no-progress"]
    run = subprocess.run(cmd, env=cli_env, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    state = torch.load(out / "checkpoint.pt", weights_only=False)
    assert state["step"] == 3
    ranks = state["ranks"]  # each rank's own noise state, so that a resume gives each rank its own z
    assert len(ranks) == 2 and not torch.equal(ranks[0]["z_gen"], ranks[1]["z_gen"])
    log = runs.read_log(out)
    assert len(log) == 3 and all(np.isfinite(r["loss_d"]) for r in log)
    # 48 images, 16 per rank per step, 2 ranks: one step per epoch, so 3 steps end in epoch 2
    assert state["sampler"] == {"epoch": 2, "index": 1}


def test_nan_stops_and_keeps_last_good_checkpoint(tmp_path, monkeypatch):
    t = Trainer(TrainConfig(**TINY, steps=8, checkpoint_every=2), tiny_images(), tmp_path, progress=False)
    real_step = t.train_step

    def poisoned():
        stats = real_step()
        if t.step >= 3:
            stats["loss_d"] = torch.tensor(float("nan"))
        return stats

    monkeypatch.setattr(t, "train_step", poisoned)
    with pytest.raises(TrainingStopped, match="non-finite"):
        t.fit()
    assert torch.load(tmp_path / "checkpoint.pt", weights_only=False)["step"] == 2


def test_collapse_is_detected(tmp_path, monkeypatch):
    cfg = TrainConfig(**TINY, steps=20, checkpoint_every=100, collapse_patience=3)
    t = Trainer(cfg, tiny_images(), tmp_path, progress=False)
    real_step = t.train_step
    monkeypatch.setattr(t, "train_step", lambda: {**real_step(), "d_fake": torch.tensor(1e-5)})
    with pytest.raises(TrainingStopped, match="collapse at step 3"):
        t.fit()


def test_resume_with_another_config_is_refused(tmp_path):
    Trainer(TrainConfig(**TINY, steps=2, checkpoint_every=2), tiny_images(), tmp_path, progress=False).fit()
    other = Trainer(TrainConfig(**{**TINY, "lr": 1e-3}, steps=4), tiny_images(), tmp_path, progress=False)
    with pytest.raises(ValueError, match="different configuration"):
        other.fit()


def test_a_second_trainer_on_the_same_folder_is_refused(tmp_path):
    first = Trainer(TrainConfig(**TINY, steps=2, checkpoint_every=2), tiny_images(), tmp_path, progress=False)
    second = Trainer(TrainConfig(**TINY, steps=2, checkpoint_every=2), tiny_images(), tmp_path, progress=False)
    with first._lock():
        with pytest.raises(RuntimeError, match="another process is training"):
            second.fit()
    second.fit()  # free again once the first lets go


def _patch_step(monkeypatch, t, change):
    """Run the real step, then `change(stats, step)` where step is the one just taken (1-based)."""
    real_step = t.train_step

    def step():
        stats = real_step()
        change(stats, t.step + 1)
        return stats

    monkeypatch.setattr(t, "train_step", step)


def _finite(state: dict) -> bool:
    return all(bool(torch.isfinite(v).all()) for v in state.values() if v.is_floating_point())


def test_collapse_spanning_checkpoints_restores_the_last_good_one(tmp_path, monkeypatch):
    # collapse from step 7; checkpoints every 2 steps, so 8 and 10 are written inside the window; stop at 11
    t = Trainer(TrainConfig(**TINY, steps=30, checkpoint_every=2, collapse_patience=5), tiny_images(), tmp_path,
                progress=False)
    good_g = {}

    def collapse(stats, step):
        if step == 6:
            good_g.update({k: v.clone() for k, v in t.G.state_dict().items()})
        if step >= 7:
            stats["d_fake"] = torch.tensor(1e-5)

    _patch_step(monkeypatch, t, collapse)
    with pytest.raises(TrainingStopped, match="collapse at step 11") as err:
        t.fit()
    assert "step 6" in str(err.value)
    kept = torch.load(tmp_path / "checkpoint.pt", weights_only=False)
    assert kept["step"] == 6 and kept["collapse_count"] == 0
    assert all(torch.equal(kept["G"][k], v) for k, v in good_g.items())
    # 32 images / 8 per step = 4 steps per epoch: the epoch-2 snapshot (step 8) was taken inside the window
    assert sorted(p.name for p in (tmp_path / "snapshots").iterdir()) == ["G_epoch001.pt"]
    # the restored checkpoint resumes exactly like any other
    again = Trainer(TrainConfig(**TINY, steps=8, checkpoint_every=2, collapse_patience=5), tiny_images(), tmp_path,
                    progress=False)
    again.fit()
    assert [r["step"] for r in runs.read_log(tmp_path)] == list(range(1, 9))


def test_collapse_before_any_good_checkpoint_keeps_none(tmp_path, monkeypatch):
    t = Trainer(TrainConfig(**TINY, steps=20, checkpoint_every=2, collapse_patience=3), tiny_images(), tmp_path,
                progress=False)
    _patch_step(monkeypatch, t, lambda stats, step: stats.update(d_fake=torch.tensor(1e-5)))
    with pytest.raises(TrainingStopped, match="none is kept"):
        t.fit()
    assert not (tmp_path / "checkpoint.pt").exists()  # the step-2 one was written inside the collapse
    assert not (tmp_path / "checkpoint_good.pt").exists()


@pytest.mark.parametrize("what, checkpoint_every, log_every, bad_step, stop_step, kept_step", [
    ("weights", 3, 4, 5, 6, 3),  # NaN weights after step 5; checkpoint at 6 comes before the log point at 8
    ("loss", 3, 4, 6, 6, 3),  # a NaN loss at step 6, a checkpoint step but no log point
    ("weights", 6, 5, 7, 8, 6),  # the epoch-2 snapshot (step 8) comes before the log point at 10
])
def test_non_finite_weights_are_never_written(tmp_path, monkeypatch, what, checkpoint_every, log_every, bad_step,
                                              stop_step, kept_step):
    cfg = TrainConfig(**{**TINY, "log_every": log_every}, steps=12, checkpoint_every=checkpoint_every)
    t = Trainer(cfg, tiny_images(), tmp_path, progress=False)

    def poison(stats, step):
        if step == bad_step and what == "weights":
            with torch.no_grad():
                next(t.G.parameters()).fill_(float("nan"))
        if step == bad_step and what == "loss":
            stats["loss_g"] = torch.tensor(float("nan"))

    _patch_step(monkeypatch, t, poison)
    with pytest.raises(TrainingStopped, match=f"non-finite losses or weights at step {stop_step}"):
        t.fit()
    kept = torch.load(tmp_path / "checkpoint.pt", weights_only=False)
    assert kept["step"] == kept_step and _finite(kept["G"]) and _finite(kept["D"])
    for path in (tmp_path / "snapshots").glob("*.pt"):
        assert _finite(torch.load(path, weights_only=False)["G"]), path.name


def _damage(path, how):
    if how == "truncated":
        data = path.read_bytes()
        path.write_bytes(data[:len(data) // 2])
    else:
        path.write_bytes(b"I am not a checkpoint\n")  # torch.load: "could not convert string to int"


@pytest.mark.parametrize("how", ["truncated", "garbage"])
def test_damaged_checkpoint_is_set_aside_with_how_to_restart(tmp_path, how):
    cfg = TrainConfig(**TINY, steps=4, checkpoint_every=2)
    Trainer(cfg, tiny_images(), tmp_path, progress=False).fit()
    ckpt = tmp_path / "checkpoint.pt"
    _damage(ckpt, how)
    damaged = ckpt.read_bytes()
    longer = TrainConfig(**TINY, steps=6, checkpoint_every=2)
    with pytest.raises(CheckpointError) as err:
        Trainer(longer, tiny_images(), tmp_path, progress=False).fit()
    message = str(err.value)
    aside = list(tmp_path.glob("checkpoint.pt.corrupt-*"))
    assert len(aside) == 1 and aside[0].read_bytes() == damaged and not ckpt.exists()
    assert f"{ckpt} is not a valid checkpoint" in message and str(aside[0]) in message and "\n" not in message
    assert f"copy {tmp_path / 'checkpoint_good.pt'} to {ckpt}" in message and "(step 4)" in message
    shutil.copyfile(tmp_path / "checkpoint_good.pt", ckpt)  # follow the advice: resume from step 4
    resumed = Trainer(longer, tiny_images(), tmp_path, progress=False)
    resumed.fit()
    assert resumed.step == 6 and [r["step"] for r in runs.read_log(tmp_path)] == list(range(1, 7))
    # without a good checkpoint the advice is to start again, and the same command does
    _damage(ckpt, how)
    (tmp_path / "checkpoint_good.pt").unlink()
    with pytest.raises(CheckpointError, match="run the same command again to start training from step 0"):
        Trainer(longer, tiny_images(), tmp_path, progress=False).fit()
    fresh = Trainer(longer, tiny_images(), tmp_path, progress=False)
    fresh.fit()
    assert fresh.step == 6 and [r["step"] for r in runs.read_log(tmp_path)] == list(range(1, 7))


@pytest.mark.parametrize("how", ["truncated", "garbage"])
def test_cli_damaged_checkpoint_is_one_line_and_non_zero(tmp_path, image_folder, monkeypatch, capsys, how):
    monkeypatch.setenv("DCGAN_DATA", str(tmp_path / "data"))
    out = tmp_path / "run"
    Trainer(TrainConfig(**TINY, steps=1, checkpoint_every=1), tiny_images(), out, progress=False).fit()
    _damage(out / "checkpoint.pt", how)  # unreadable, so which run wrote it never matters
    args = ["train", "--dataset", f"folder:{image_folder}", "--variant", "imagenet32", "--profile", "smoke",
            "--out", str(out), "--steps", "2", "--no-progress"]
    assert main(args) == 2
    err = capsys.readouterr().err
    lines = [line for line in err.split("\n") if "error" in line.lower()]  # (the data step's progress bar aside)
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in err, err
    assert f"{out / 'checkpoint.pt'} is not a valid checkpoint" in lines[0] and "checkpoint.pt.corrupt-" in lines[0]
    assert "run the same command again" in lines[0]


@pytest.mark.parametrize("bad", [
    {"steps": -5}, {"steps": 0}, {"steps": 2.5}, {"batch_size": 0}, {"lr": 0.0}, {"lr": -2e-4},
    {"lr": float("nan")}, {"checkpoint_every": 0}, {"log_every": -1}, {"sample_every": 0}, {"beta1": 1.0},
    {"weight_decay": -1e-5}, {"seed": -1}, {"collapse_patience": -1}, {"collapse_threshold": 1.5}, {"width": 0},
    {"n_samples": 0}, {"image_size": 0}, {"kernel": 3}, {"kernel": True},
])
def test_nonsense_settings_are_refused(bad):
    name, value = next(iter(bad.items()))
    with pytest.raises(ValueError, match=f"{name} must be .*, got {value!r}"):
        TrainConfig(**{**TINY, **bad})
    with pytest.raises(ValueError, match=name):  # replace() (store.plan's overrides) checks again
        dataclasses.replace(TrainConfig(**TINY), **bad)


@pytest.mark.parametrize("flag, value", [("--steps", "-5"), ("--checkpoint-every", "0"), ("--log-every", "-1"),
                                         ("--seed", "-3"), ("--epochs", "0"), ("--kernel", "4")])
def test_cli_refuses_nonsense_before_touching_the_data(tmp_path, monkeypatch, capsys, flag, value):
    monkeypatch.setenv("DCGAN_DATA", str(tmp_path / "data"))
    rc = main(["train", "--dataset", f"folder:{tmp_path / 'no_such_folder'}", "--variant", "imagenet32",
               "--profile", "smoke", "--out", str(tmp_path / "run"), flag, value, "--no-progress"])
    err = capsys.readouterr().err
    assert rc == 2 and flag in err and value in err and "no_such_folder" not in err, err
    assert not (tmp_path / "run").exists()
