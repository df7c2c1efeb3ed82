"""The command line: valid names listed on errors, non-zero exit codes, report generation, model store."""
import json
import subprocess
import sys
from dataclasses import replace

import numpy as np
import pytest
import torch
from PIL import Image

from dcgan_lib import profiles, report, results, runs, store
from dcgan_lib.cli import main


def run_cli(*args, env=None):
    return subprocess.run([sys.executable, "-m", "dcgan_lib", *args], capture_output=True, text=True, env=env)


def test_unknown_names_list_the_valid_ones(capsys):
    assert main(["data", "prepare", "mnist"]) == 2
    assert "tiny_imagenet" in capsys.readouterr().err
    with pytest.raises(SystemExit) as err:
        main(["train", "--dataset", "cifar10", "--variant", "lsun65"])
    assert err.value.code == 2
    assert "lsun64" in capsys.readouterr().err


def test_missing_dataset_exits_non_zero_naming_the_command(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("DCGAN_DATA", str(tmp_path))
    monkeypatch.delenv("DCGAN_MIRROR", raising=False)
    assert main(["data", "prepare", "celeba"]) == 2
    assert "python -m dcgan_lib data fetch celeba" in capsys.readouterr().err


def test_data_list_runs():
    out = run_cli("data", "list")
    assert out.returncode == 0 and "cifar10" in out.stdout and "lsun_bedroom" in out.stdout


def test_report_puts_records_and_paper_numbers_in_readme(tmp_path):
    figures = tmp_path / "figures"
    results.write_record("table9_demo", name="demo probe", profile="cpu", metrics={"accuracy": 0.5, "n": 3},
                         paper={"accuracy": 0.828}, data={"dataset": "cifar10", "source": "mirror"},
                         seed=0, wall_s=1.5, out_dir=figures)
    readme = tmp_path / "README.md"
    readme.write_text(f"x\n{report.MAP_START}\nold\n{report.MAP_END}\n{report.START}\nold\n{report.END}\ny\n")
    report.update_readme(readme, figures)
    text = readme.read_text()
    assert "old" not in text and "demo probe" in text and "accuracy: 0.5" in text and "accuracy: 0.828" in text
    assert "02_dedup_autoencoder" in text and text.endswith("y\n")


@pytest.fixture
def store_dataset(tmp_path, monkeypatch):
    """A dataset of 40 random 32 px images in a folder, with the model store and data root under tmp_path."""
    monkeypatch.setattr(results, "ROOT", tmp_path)
    monkeypatch.setenv("DCGAN_DATA", str(tmp_path / "data"))
    folder = tmp_path / "imgs"
    folder.mkdir()
    for i, img in enumerate(np.random.default_rng(0).integers(0, 256, (40, 32, 32, 3), dtype=np.uint8)):
        Image.fromarray(img).save(folder / f"{i}.png")
    return f"folder:{folder}"


def test_store_trains_a_missing_model_once_and_serves_it(store_dataset):
    g, d, info = store.get_model(store_dataset, "imagenet32", "smoke")
    assert info["step"] == 2  # smoke: 40 images // batch 16 = 2 steps per epoch x 1 epoch (cap 4)
    record = json.loads((runs.model_dir(store_dataset, "imagenet32", "smoke") / "run.json").read_text())
    assert record["profile"] == "smoke" and record["metrics"]["images"] == 40
    z = g.cfg.sample_z(3, torch.Generator().manual_seed(0))
    first = store.sample(g, z)
    again, _, _ = store.get_model(store_dataset, "imagenet32", "smoke")
    assert first.dtype == np.uint8 and first.shape == (3, 32, 32, 3)
    np.testing.assert_array_equal(first, store.sample(again, z))  # served from disk, deterministic


def test_store_trains_on_when_the_profile_asks_for_more_and_refuses_a_changed_net(store_dataset, monkeypatch):
    dataset, smoke = store_dataset, profiles.PROFILES["smoke"]
    assert store.get_model(dataset, "imagenet32", "smoke")[2]["step"] == 2  # 1 epoch of 2 steps
    monkeypatch.setitem(profiles.PROFILES, "smoke", replace(smoke, default_epochs=2))
    assert store.get_model(dataset, "imagenet32", "smoke")[2]["step"] == 4  # trained on, not served stale
    monkeypatch.setitem(profiles.PROFILES, "smoke", replace(smoke, widths={(dataset, "imagenet32"): 1 / 8}))
    with pytest.raises(ValueError, match=r"'width': \(0.0625, 0.125\).*move the folder aside"):
        store.get_model(dataset, "imagenet32", "smoke")


def test_store_plan_takes_each_models_width_and_epochs_from_the_profile():
    tuned_model = ("tiny_imagenet", "imagenet32")
    prof = replace(profiles.get_profile("smoke"), max_steps=None, widths={tuned_model: 1 / 8},
                   epochs={tuned_model: 3})
    tuned, other = store.plan("tiny_imagenet", "imagenet32", prof, 128), store.plan("cifar10", "imagenet32", prof, 128)
    assert (tuned.width, other.width) == (1 / 8, prof.width) != (prof.width, prof.width)
    assert (tuned.steps, other.steps) == (3 * 128 // prof.batch_size, prof.default_epochs * 128 // prof.batch_size)


def test_fetch_with_a_bad_checksum_exits_non_zero_naming_the_file(tmp_path, monkeypatch, capsys):
    from dcgan_lib import registry

    monkeypatch.setenv("DCGAN_DATA", str(tmp_path))
    monkeypatch.setattr(registry, "_download", lambda url, folder, name: (folder / name).write_bytes(b"junk")
                        and folder / name)
    assert main(["data", "fetch", "tiny_imagenet", "--official"]) == 1
    err = capsys.readouterr().err
    assert "tiny-imagenet-200.zip" in err and f"expected the published {registry.TINY_IMAGENET_MD5}" in err
    assert not (tmp_path / "official" / "tiny_imagenet" / "tiny-imagenet-200.zip").exists()


def test_probe_full_size_with_a_missing_checkpoint_is_one_clear_error(tmp_path, capsys):
    code = main(["probe", "cifar10-full", "--profile", "smoke", "--checkpoint", str(tmp_path / "nope.pt")])
    assert code != 0
    assert "nope.pt" in capsys.readouterr().err


def test_probe_authors_without_the_files_names_how_to_get_them(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("DCGAN_AUTHORS_REPO", str(tmp_path))  # a clone without models/
    code = main(["probe", "svhn", "--authors", "--profile", "smoke"])
    assert code != 0
    assert "Newmu/dcgan_code" in capsys.readouterr().err


def test_course_runs_the_chosen_notebooks_and_names_unknown_ones(tmp_path, monkeypatch, capsys):
    from dcgan_lib.cli import course_cmd

    ran = []
    monkeypatch.setattr(course_cmd.results, "ROOT", tmp_path)
    monkeypatch.setattr(course_cmd.papermill, "execute_notebook",
                        lambda src, out, parameters, progress_bar: ran.append((src.name, parameters)))
    assert main(["course", "--profile", "smoke", "--only", "1", "03_train_bedrooms"]) == 0
    assert ran == [("01_architecture.ipynb", {"profile": "smoke"}), ("03_train_bedrooms.ipynb", {"profile": "smoke"})]
    assert not list(tmp_path.rglob("course_*.json"))  # only a full run is recorded
    assert main(["course", "--profile", "smoke"]) == 0
    assert len(ran) == 2 + len(course_cmd.LESSONS)
    record = json.loads(next(tmp_path.rglob("course_smoke.json")).read_text())
    assert list(record["metrics"]["notebook_wall_s"]) == [lesson.stem for lesson in course_cmd.LESSONS]
    assert main(["course", "--only", "99"]) == 2 and "no notebook 99" in capsys.readouterr().err
