"""DDP on gloo with 2 CPU processes: a SIGKILLed run resumes bitwise exactly, each rank with its own noise,
and a NaN or collapse seen by one rank stops both.

The test launches this file twice as a script (RANK 0 and 1, env:// rendezvous), so a worker can
pause, fault on one rank only, and dump what it drew and learned for the test to compare.
"""
import os
import signal
import socket
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
TINY = dict(variant="imagenet32", width=1 / 16, batch_size=8, log_every=1, collapse_patience=2)
N_IMAGES = 64  # 2 ranks x 8 per step: 4 steps per epoch


def worker(out: str, steps: int, checkpoint_every: int, pause_at: int, fault: str, dump: str) -> None:
    """One rank: train, optionally pause before step pause_at + 1 or fault on rank 1; dump the outcome."""
    import torch.distributed as dist

    from dcgan_lib.gan.train import TrainConfig, Trainer, TrainingStopped

    torch.set_num_threads(1)
    dist.init_process_group("gloo", timeout=timedelta(seconds=60))
    rank = dist.get_rank()
    images = np.random.default_rng(0).integers(0, 256, (N_IMAGES, 32, 32, 3), dtype=np.uint8)
    cfg = TrainConfig(**TINY, steps=steps, checkpoint_every=checkpoint_every)
    t = Trainer(cfg, images, out, progress=False)
    real_step, drawn = t.train_step, {}

    def step():
        done = t.step
        if done == pause_at:
            Path(dump, f"paused{rank}").touch()
            time.sleep(600)  # killed here by the test
        replay = torch.Generator().manual_seed(0)
        replay.set_state(t.z_gen.get_state())
        drawn[done + 1] = t.net_cfg.sample_z(cfg.batch_size, replay)  # the z this step draws
        stats = real_step()
        if rank == 1 and fault == "collapse" and done + 1 >= 3:
            stats["d_fake"] = torch.tensor(1e-5)
        if rank == 1 and fault == "nan" and done + 1 == 3:
            stats["loss_d"] = torch.tensor(float("nan"))
        return stats

    t.train_step = step
    try:
        t.fit()
        outcome = "finished"
    except TrainingStopped as err:
        outcome = f"stopped: {err}"
    torch.save({"outcome": outcome, "step": t.step, "G": t.G.state_dict(), "D": t.D.state_dict(), "z": drawn,
                "z_gen": t.z_gen.get_state()}, Path(dump, f"rank{rank}.pt"))
    dist.barrier()  # both done before either tears down: gloo can abort a rank whose peer left first
    dist.destroy_process_group()
    sys.stdout.flush()
    os._exit(0)  # skip interpreter teardown, where gloo's threads can still SIGABRT


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _launch(tmp_path, out, dump, steps=12, checkpoint_every=4, pause_at=-1, fault="none"):
    Path(dump).mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(_free_port()),
           "WORLD_SIZE": "2", "PYTHONPATH": str(ROOT)}
    args = [sys.executable, __file__, str(out), str(steps), str(checkpoint_every), str(pause_at), fault, str(dump)]
    return [subprocess.Popen(args, env={**env, "RANK": str(r), "LOCAL_RANK": str(r)}, cwd=ROOT,
                             stdout=open(Path(dump, f"log{r}.txt"), "w"), stderr=subprocess.STDOUT)
            for r in range(2)]


def _kill(procs):
    for p in procs:
        if p.poll() is None:
            os.kill(p.pid, signal.SIGKILL)
        p.wait()


def _finish(procs, dump, timeout=180):
    """Wait for both ranks; a hang (one rank waiting at an all-reduce forever) fails instead of blocking CI."""
    deadline = time.time() + timeout
    try:
        for p in procs:
            p.wait(timeout=max(1.0, deadline - time.time()))
    except subprocess.TimeoutExpired:
        _kill(procs)
        pytest.fail(f"the ranks did not finish within {timeout} s (a rank left waiting at an all-reduce)")
    logs = [Path(dump, f"log{r}.txt").read_text()[-3000:] for r in range(2)]
    assert [p.returncode for p in procs] == [0, 0], "\n".join(logs)
    return [torch.load(Path(dump, f"rank{r}.pt"), weights_only=False) for r in range(2)]


def _equal(a: dict, b: dict) -> bool:
    """Bitwise equality of two state dicts."""
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_sigkill_then_restart_ends_bitwise_equal_with_each_rank_drawing_its_own_z(tmp_path):
    full = _finish(_launch(tmp_path, tmp_path / "a", tmp_path / "dump_a"), tmp_path / "dump_a")
    procs = _launch(tmp_path, tmp_path / "b", tmp_path / "dump_k", pause_at=6)  # last checkpoint: step 4
    deadline = time.time() + 180
    while not all(Path(tmp_path, "dump_k", f"paused{r}").exists() for r in range(2)):
        assert time.time() < deadline and all(p.poll() is None for p in procs), "the run never reached step 6"
        time.sleep(0.05)
    _kill(procs)
    assert torch.load(tmp_path / "b" / "checkpoint.pt", weights_only=False)["step"] == 4
    resumed = _finish(_launch(tmp_path, tmp_path / "b", tmp_path / "dump_b"), tmp_path / "dump_b")
    assert min(resumed[0]["z"]) == 5  # it went on from the checkpoint at step 4
    assert not torch.equal(resumed[0]["z"][5], resumed[1]["z"][5]), "both ranks drew the same z after resuming"
    for r in range(2):
        assert all(torch.equal(z, full[r]["z"][s]) for s, z in resumed[r]["z"].items()), f"rank {r} drew other z"
        assert torch.equal(resumed[r]["z_gen"], full[r]["z_gen"])
        assert resumed[r]["outcome"] == full[r]["outcome"] == "finished"
        assert _equal(resumed[r]["G"], full[r]["G"]) and _equal(resumed[r]["D"], full[r]["D"]), f"rank {r}"
    for net in ("G", "D"):  # BatchNorm running statistics are each rank's own; the weights are shared
        params = [{k: v for k, v in r[net].items() if "running" not in k and "num_batches" not in k} for r in resumed]
        assert _equal(*params), f"the ranks disagree on {net}'s weights"
    a = torch.load(tmp_path / "a" / "checkpoint.pt", weights_only=False)
    b = torch.load(tmp_path / "b" / "checkpoint.pt", weights_only=False)
    assert a["step"] == b["step"] == 12 and _equal(a["G"], b["G"]) and _equal(a["D"], b["D"])
    assert [torch.equal(x["z_gen"], y["z_gen"]) for x, y in zip(a["ranks"], b["ranks"])] == [True, True]


@pytest.mark.parametrize("fault, stop", [("collapse", "collapse at step 4"),
                                         ("nan", "non-finite losses or weights at step 3")])
def test_a_stop_seen_by_one_rank_stops_both(tmp_path, fault, stop):
    ranks = _finish(_launch(tmp_path, tmp_path / "run", tmp_path / "dump", steps=20, checkpoint_every=2,
                            fault=fault), tmp_path / "dump", timeout=120)
    assert all(r["outcome"].startswith(f"stopped: {stop}") for r in ranks), [r["outcome"] for r in ranks]
    assert ranks[0]["step"] == ranks[1]["step"] == int(stop.split()[-1])
    assert torch.load(tmp_path / "run" / "checkpoint.pt", weights_only=False)["step"] == 2  # the last good one


if __name__ == "__main__":
    worker(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5], sys.argv[6])
