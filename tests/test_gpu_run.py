"""scripts/gpu_run.sh in its tiny CPU mode: every stage runs and comes back, also from a call cut short."""
import json
import os
import subprocess
import sys
import tarfile

import pytest

from dcgan_lib.records import results

SCRIPT = results.ROOT / "scripts" / "gpu_run.sh"


def gpu_run(out, budget: int, **env) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", str(SCRIPT), str(out), str(budget), "--tiny"], capture_output=True, text=True,
                          timeout=budget + 120, env={**os.environ, "PYTHON": sys.executable, **env})


def members(path) -> dict[str, bytes]:
    with tarfile.open(path) as tar:
        return {m.name: tar.extractfile(m).read() for m in tar.getmembers() if m.isfile()}


@pytest.mark.slow
def test_tiny_run_brings_back_every_stage_s_figures_records_and_logs(tmp_path):
    before = sorted((results.ROOT / "runs").rglob("*")) if (results.ROOT / "runs").exists() else []
    proc = gpu_run(tmp_path / "out", 900)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    for stage in ("env", "gpu_check", "01_architecture", "08_latent_walk"):
        assert f"== {stage} rc=0" in proc.stdout, proc.stdout
    back = sorted(p.name for p in (tmp_path / "out").iterdir() if p.is_file())
    assert {"results.tar.gz", "logs.tar.gz"} <= set(back) and len(back) <= 8  # what a device call brings back
    got = members(tmp_path / "out" / "results.tar.gz")
    fig = "runs/smoke/figures/"
    assert {fig + "bench_gpu_check_cpu.json", fig + "fig1_generator.png", fig + "fig1_generator.json",
            fig + "fig4_bedrooms_walk.png", fig + "fig4_bedrooms_walk.json"} <= set(got)
    assert {"runs/models/bedrooms_lsun64_smoke/run.json", "runs/course_walls.json"} <= set(got)
    check = json.loads(got[fig + "bench_gpu_check_cpu.json"])
    assert check["profile"] == "smoke" and check["metrics"]["ours_fp32_images_per_s"] > 0
    walls = json.loads(got["runs/course_walls.json"])["smoke"]
    assert set(walls) == {"01_architecture", "08_latent_walk"} and all(w > 0 for w in walls.values())
    logs = members(tmp_path / "out" / "logs.tar.gz")
    assert {f"logs/{s}.log" for s in ("env", "gpu_check", "01_architecture", "08_latent_walk")} <= set(logs)
    after = sorted((results.ROOT / "runs").rglob("*")) if (results.ROOT / "runs").exists() else []
    assert before == after  # tiny mode works in a temporary project root, not in the repository


@pytest.mark.slow
def test_a_run_cut_short_still_returns_the_stages_that_finished(tmp_path):
    """With too little time left, the stage in flight is stopped and the rest skipped; what finished (env, the
    logs so far) is packed in OUT after each stage."""
    # 33 s: after env (~2 s) and the 15 s reserve, gpu_check gets at most 16 s; unless it ends within 6 s (it takes
    # 13-15 s on 2 cores), less than the 10 s a stage needs is left for 01. At 40 s a 13 s gpu_check left exactly 10.
    proc = gpu_run(tmp_path / "out", 33, TINY_NOTEBOOKS="01")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "== env rc=0" in proc.stdout and "== 01_architecture skipped" in proc.stdout
    logs = members(tmp_path / "out" / "logs.tar.gz")
    assert "logs/env.log" in logs and b"2." in logs["logs/env.log"]  # torch's version, from the finished stage
    assert "logs/gpu_check.log" in logs  # the cut stage's log comes back too
    assert logs["logs/01_architecture.log"].startswith(b"== 01_architecture skipped")
