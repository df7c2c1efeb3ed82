"""The device rule (CUDA, then MPS, then the CPU), faked on a CPU; the `gpu` profile and its budgets."""
import os
from dataclasses import replace

import pytest
import torch

from dcgan_lib.cli import main
from dcgan_lib.config import device, profiles
from dcgan_lib.course import course
from dcgan_lib.data import datasets
from dcgan_lib.models import store
from dcgan_lib.records import results


def fake(monkeypatch, cuda: bool = False, mps: bool = False, accelerator_api: bool = True, cuda_count: int = 1):
    """Pretend this machine has CUDA and/or MPS (as torch reports them); without `accelerator_api`, a torch
    that predates torch.accelerator."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: cuda_count if cuda else 0)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: mps)
    if not accelerator_api:
        monkeypatch.delattr(torch, "accelerator", raising=False)
    else:  # the accelerator this build of torch targets: a CUDA build, or a macOS (MPS) build
        built = "cuda" if cuda else "mps" if mps else None
        monkeypatch.setattr(torch.accelerator, "current_accelerator",
                            lambda check_available=False: None if built is None else torch.device(built))


@pytest.mark.parametrize("api", [True, False], ids=["torch.accelerator", "older torch"])
def test_auto_takes_cuda_then_mps_then_cpu(monkeypatch, api):
    monkeypatch.delenv("DCGAN_PROFILE", raising=False)  # `auto` (make test sets smoke)
    fake(monkeypatch, cuda=True, accelerator_api=api)
    assert device.get_device() == torch.device("cuda") and profiles.get_device("auto").type == "cuda"
    assert profiles.resolve_name("auto") == "gpu"  # a learner's GPU gets the gpu tier, never `paper` unasked
    fake(monkeypatch, mps=True, accelerator_api=api)
    assert device.get_device("auto") == torch.device("mps") and device.has_accelerator()
    assert profiles.resolve_name("auto") == "gpu" and profiles.get_profile().name == "gpu"
    fake(monkeypatch, accelerator_api=api)
    assert device.get_device(None) == torch.device("cpu") and not device.has_accelerator()
    assert profiles.resolve_name("auto") == "cpu"
    assert profiles.resolve_name("paper") == "paper"  # paper only when asked for


def test_without_torch_accelerator_cuda_comes_before_mps(monkeypatch):
    fake(monkeypatch, cuda=True, mps=True, accelerator_api=False)
    assert device.get_device() == torch.device("cuda")


def test_named_devices_are_checked_with_clear_errors(monkeypatch):
    fake(monkeypatch)
    assert device.get_device("cpu") == torch.device("cpu")
    with pytest.raises(ValueError, match=r"--device cuda: no CUDA device here; use --device auto \(picks cpu"):
        device.get_device("cuda")
    with pytest.raises(ValueError, match="no MPS device"):
        device.get_device("mps")
    with pytest.raises(ValueError, match="unknown device 'gpu0'"):
        device.get_device("gpu0")
    fake(monkeypatch, cuda=True, cuda_count=2)
    assert device.get_device("cuda:1") == torch.device("cuda", 1)
    with pytest.raises(ValueError, match="has 2 CUDA device"):
        device.get_device("cuda:2")


def test_float64_work_leaves_mps_for_the_cpu():
    assert device.float64_device("mps") == torch.device("cpu")
    assert device.float64_device("cuda:1") == torch.device("cuda", 1)
    assert device.float64_device(torch.device("cpu")) == torch.device("cpu")
    x = device.to_float64(torch.ones(3))
    assert x.dtype == torch.float64 and x.device.type == "cpu"
    assert os.environ.get("PYTORCH_ENABLE_MPS_FALLBACK") == "1"  # ops MPS lacks run on the CPU


class Stop(Exception):
    """Raised by a stand-in Trainer, carrying the device the store asked for."""


def test_store_and_cli_train_on_the_rule_s_device(folder_dataset, monkeypatch):
    def trainer(cfg, images, out, device=None, progress=True):
        raise Stop(device, cfg)

    monkeypatch.setattr(store, "Trainer", trainer)
    fake(monkeypatch, mps=True)
    with pytest.raises(Stop) as stop:
        store.train_model(folder_dataset, "imagenet32", "smoke")
    assert stop.value.args[0] == torch.device("mps")
    with pytest.raises(Stop) as stop:  # --device cpu on an MPS machine: the user's choice wins
        main(["train", "--dataset", folder_dataset, "--variant", "imagenet32", "--profile", "smoke", "--device", "cpu"])
    assert stop.value.args[0] == torch.device("cpu")


def test_cli_refuses_a_device_this_machine_lacks(folder_dataset, monkeypatch, capsys):
    fake(monkeypatch)
    assert main(["train", "--dataset", folder_dataset, "--variant", "imagenet32", "--device", "mps"]) == 2
    assert "no MPS device here" in capsys.readouterr().err
    assert main(["bench", "--device", "cuda", "--tiny", "--no-probe"]) == 2
    assert "no CUDA device here" in capsys.readouterr().err


def test_gpu_profile_is_the_papers_nets_and_recipe_on_the_mirrors_sets():
    gpu, paper = profiles.get_profile("gpu"), profiles.get_profile("paper")
    assert (gpu.width, gpu.widths, gpu.batch_size, gpu.max_steps) == (1.0, {}, paper.batch_size, None)
    assert not gpu.paper_data
    assert (gpu.dataset("lsun_bedroom"), gpu.dataset("imagenet")) == ("bedrooms", "tiny_imagenet")
    cfg = store.plan("bedrooms", "lsun64", "gpu", 7000)
    assert (cfg.width, cfg.batch_size, cfg.lr, cfg.beta1) == (1.0, 128, 2e-4, 0.5)  # Paper §4
    assert cfg.steps == gpu.epochs_of("bedrooms", "lsun64") * (7000 // 128)
    svhn = store.plan("svhn", "svhn32", "gpu", 1000)  # authors' SVHN recipe: lr 5e-4 at batch 64
    assert (svhn.lr, svhn.batch_size) == (5e-4, 64)
    assert svhn.steps == gpu.epochs_of("svhn", "svhn32") * (1000 // 64)  # epochs counted at the batch it trains
    assert gpu.images_of("celeba") == 10_000 and gpu.images_of("cifar10") is None
    capped = replace(gpu, max_images=500)
    assert capped.images_of("celeba") == 500 and capped.images_of("cifar10") == 500


@pytest.fixture(scope="module")
def mirror_counts(tmp_path_factory):
    """Training images of each dataset the gpu profile trains on, read from the mirror (a data root of its own:
    partial official downloads elsewhere on disk do not count)."""
    if not os.environ.get("DCGAN_MIRROR"):
        pytest.skip("needs the data mirror (DCGAN_MIRROR)")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("DCGAN_DATA", str(tmp_path_factory.mktemp("data")))
        gpu = profiles.get_profile("gpu")
        names = {gpu.dataset(d) for lesson in course.LESSONS for d, _ in lesson.models}
        return {name: datasets.find_source(name).count("train") for name in names}


def test_gpu_course_training_fits_an_h200_in_minutes_and_a_t4_in_under_an_hour(mirror_counts):
    """The gpu profile's epochs against the budgets: the whole course ~10 min on an H200 and ~1 hour on a T4,
    of which training may take at most half (FID, probes, face detection and figures take the rest). The
    H200's speed is its measured GPU check; the T4's an estimate from it (course.t4_from)."""
    h200 = course.throughput_from_gpu_check(results.read_record(results.ROOT / "figures" / "bench_gpu_check_cuda.json"))
    t4 = course.t4_from(h200)
    est = course.training_estimate("gpu", [h200, t4], mirror_counts)
    assert {r["lesson"] for r in est["models"]} == {lesson.stem for lesson in course.LESSONS if lesson.models}
    assert all(r["steps"] > 0 and r["gflop_per_step"] > 0 for r in est["models"])
    assert est["total_s"][h200.name] <= 5 * 60 and est["total_s"][t4.name] <= 30 * 60, est["total_s"]
    # the model itself: a step at the measured batch is what the GPU check timed
    lsun = next(r for r in est["models"] if r["variant"] == "lsun64")
    step_s = lsun["seconds"][h200.name] / lsun["steps"]
    assert 128 / step_s == pytest.approx(results.read_record(
        results.ROOT / "figures" / "bench_gpu_check_cuda.json")["metrics"]["ours_fp32_images_per_s"], rel=0.02)


def test_every_lessons_data_is_a_registered_dataset():
    from dcgan_lib.data import registry

    for lesson in course.LESSONS:
        assert set(lesson.data) <= set(registry.DATASETS), lesson.stem
        gpu = profiles.get_profile("gpu")
        assert {gpu.dataset(d) for d, _ in lesson.models} <= set(lesson.data), lesson.stem
