"""DiffAugment as a trainer option, and the numerics a training run uses and records.

DiffAugment: differentiable, applied to every batch D sees (real and fake, D and G steps), never called
when off, and replayed exactly by a resumed run. Numerics: CPU training is fp32 by default whether or not
the CPU has AMX (both outcomes of the bf16 detection are forced here), and the run record says which.
"""
import json

import numpy as np
import pytest
import torch
from PIL import Image

from dcgan_lib.gan import diffaug, runs, train
from dcgan_lib.gan.train import TrainConfig, Trainer
from dcgan_lib.models import store
from dcgan_lib.records import results

TINY = dict(variant="imagenet32", width=1 / 16, batch_size=8, log_every=1)


def tiny_images(n=32, size=32, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (n, size, size, 3), dtype=np.uint8)


def batch(seed=0, b=4, size=16):
    return torch.rand(b, 3, size, size, generator=torch.Generator().manual_seed(seed)) * 2 - 1


@pytest.mark.parametrize("policy", ["color", "translation", "cutout", diffaug.DEFAULT])
def test_each_policy_changes_the_images_and_passes_gradients_back(policy):
    x = batch().requires_grad_(True)
    y = diffaug.augment(x, policy, torch.Generator().manual_seed(1))
    assert y.shape == x.shape and not torch.equal(y, x)
    (y * torch.linspace(-1, 1, y.numel()).view_as(y)).sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0  # G's gradient reaches through the augmentation
    again = diffaug.augment(x.detach(), policy, torch.Generator().manual_seed(1))
    torch.testing.assert_close(again, y.detach())  # the generator is the only source of randomness


def test_translation_shifts_content_and_cutout_blanks_a_square():
    x = torch.zeros(1, 3, 16, 16)
    x[..., 8, 8] = 1.0
    gen = torch.Generator().manual_seed(3)
    moved = [tuple(map(tuple, torch.nonzero(diffaug.translation(x, gen)[0, 0]).tolist())) for _ in range(20)]
    assert len(set(moved)) > 1  # the bright pixel lands in different places
    assert all(abs(r - 8) <= 2 and abs(c - 8) <= 2 for pos in moved for r, c in pos)  # at most 1/8 of 16 px
    cut = diffaug.cutout(torch.ones(8, 3, 16, 16), torch.Generator().manual_seed(0))
    zeros = (cut[:, 0] == 0).flatten(1).sum(1)
    assert (zeros > 0).all() and (zeros <= 64).all()  # one square of at most 8 x 8 px per image


def test_unknown_policy_is_refused_naming_the_flag():
    with pytest.raises(ValueError, match="--diffaug"):
        TrainConfig(**TINY, diffaug="colour")


def test_trainer_augments_real_and_fake_in_the_d_step_and_fake_in_the_g_step(tmp_path, monkeypatch):
    seen = []

    def spy(x, policy, gen):
        seen.append((x.requires_grad, x.grad_fn is not None))
        return x + 0.0

    monkeypatch.setattr(diffaug, "augment", spy)
    t = Trainer(TrainConfig(**TINY, steps=1, diffaug="color"), tiny_images(), tmp_path, progress=False)
    t.train_step()
    # real batch (no graph), fake detached for D (no graph), fake for G (G's graph attached)
    assert seen == [(False, False), (False, False), (True, True)]


def test_off_never_augments_and_draws_nothing(tmp_path, monkeypatch):
    def refuse(*args):
        raise AssertionError("DiffAugment called while off")

    monkeypatch.setattr(diffaug, "augment", refuse)
    t = Trainer(TrainConfig(**TINY, steps=3, checkpoint_every=3), tiny_images(), tmp_path, progress=False)
    before = t.aug_gen.get_state().clone()
    t.fit()
    assert torch.equal(t.aug_gen.get_state(), before)  # the paper's recipe: not one extra random draw


def test_resume_with_diffaug_is_exact(tmp_path):
    cfg = TrainConfig(**TINY, steps=8, checkpoint_every=4, diffaug=diffaug.DEFAULT)
    full = Trainer(cfg, tiny_images(), tmp_path / "full", progress=False)
    full.fit()
    part = Trainer(cfg, tiny_images(), tmp_path / "part", progress=False)
    part.cfg = TrainConfig(**{**cfg.__dict__, "steps": 6})  # stops at 6; the last checkpoint is step 4
    part.fit()
    resumed = Trainer(cfg, tiny_images(), tmp_path / "part", progress=False)
    resumed.fit()
    for a, b in zip([*full.G.state_dict().values(), *full.D.state_dict().values()],
                    [*resumed.G.state_dict().values(), *resumed.D.state_dict().values()]):
        assert torch.equal(a, b)
    off = Trainer(TrainConfig(**{**cfg.__dict__, "diffaug": ""}), tiny_images(), tmp_path / "off", progress=False)
    off.fit()
    assert any(not torch.equal(a, b) for a, b in zip(off.G.parameters(), full.G.parameters()))  # it did something


@pytest.mark.parametrize("amx", [True, False])
def test_cpu_training_is_fp32_by_default_with_or_without_amx(tmp_path, monkeypatch, amx):
    monkeypatch.setattr(train, "fast_cpu_bf16", lambda: amx)
    default = Trainer(TrainConfig(**TINY, steps=1), tiny_images(), tmp_path / "a", progress=False)
    assert default.numerics() == {"numerics": "fp32", "amp_setting": None, "cpu_amx": amx, "device_type": "cpu"}
    asked = Trainer(TrainConfig(**TINY, steps=1, amp=True), tiny_images(), tmp_path / "b", progress=False)
    assert asked.numerics()["numerics"] == ("bf16 autocast" if amx else "fp32")
    with asked._autocast():
        out = asked.D(torch.zeros(2, 3, 32, 32))
    assert out.dtype == (torch.bfloat16 if amx else torch.float32)
    assert Trainer(TrainConfig(**TINY, steps=1, amp=False), tiny_images(), tmp_path / "c",
                   progress=False).numerics()["numerics"] == "fp32"


@pytest.mark.parametrize("amx", [True, False])
def test_the_run_record_states_its_numerics(tmp_path, monkeypatch, amx):
    monkeypatch.setattr(train, "fast_cpu_bf16", lambda: amx)
    monkeypatch.setattr(results, "ROOT", tmp_path)
    monkeypatch.setenv("DCGAN_DATA", str(tmp_path / "data"))
    folder = tmp_path / "imgs"
    folder.mkdir()
    for i, img in enumerate(tiny_images(40)):
        Image.fromarray(img).save(folder / f"{i}.png")
    store.train_model(f"folder:{folder}", "imagenet32", "smoke", tmp_path / "run", progress=False, quality=False)
    record = json.loads((tmp_path / "run" / "run.json").read_text())
    assert record["numerics"] == {"numerics": "fp32", "amp_setting": None, "cpu_amx": amx, "device_type": "cpu"}
    assert runs.read_record(tmp_path / "run")["train_config"]["diffaug"] == ""
