"""The trainer: a step on tiny data, exact resume after SIGKILL, DDP on gloo, NaN and collapse stops."""
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch
from PIL import Image

from dcgan_lib import train
from dcgan_lib.train import TrainConfig, Trainer, TrainingStopped

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
    log = train.read_log(tmp_path)
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
    assert [r["step"] for r in train.read_log(tmp_path / "part")] == list(range(1, 11))


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
    log = train.read_log(out)
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
