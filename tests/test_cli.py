"""The command line: valid names on errors, exit codes, the train flags, the course runner, the model store."""
import json
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from dcgan_lib.cli import main
from dcgan_lib.config import profiles
from dcgan_lib.gan import runs
from dcgan_lib.models import store
from dcgan_lib.records import results


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


def test_store_trains_a_missing_model_once_and_serves_it(folder_dataset):
    g, d, info = store.get_model(folder_dataset, "imagenet32", "smoke")
    assert info["step"] == 2  # smoke: 40 images // batch 16 = 2 steps per epoch x 1 epoch (cap 4)
    record = json.loads((runs.model_dir(folder_dataset, "imagenet32", "smoke") / "run.json").read_text())
    assert record["profile"] == "smoke" and record["metrics"]["images"] == 40
    z = g.cfg.sample_z(3, torch.Generator().manual_seed(0))
    first = store.sample(g, z)
    again, _, _ = store.get_model(folder_dataset, "imagenet32", "smoke")
    assert first.dtype == np.uint8 and first.shape == (3, 32, 32, 3)
    np.testing.assert_array_equal(first, store.sample(again, z))  # served from disk, deterministic


def test_store_trains_on_when_the_profile_asks_for_more_and_refuses_a_changed_net(folder_dataset, monkeypatch):
    dataset, smoke = folder_dataset, profiles.PROFILES["smoke"]
    assert store.get_model(dataset, "imagenet32", "smoke")[2]["step"] == 2  # 1 epoch of 2 steps
    monkeypatch.setitem(profiles.PROFILES, "smoke", replace(smoke, default_epochs=2))
    assert store.get_model(dataset, "imagenet32", "smoke")[2]["step"] == 4  # trained on, not served stale
    monkeypatch.setitem(profiles.PROFILES, "smoke", replace(smoke, widths={(dataset, "imagenet32"): 1 / 8}))
    with pytest.raises(ValueError, match=r"'width': \(0.0625, 0.125\).*move the folder aside"):
        store.get_model(dataset, "imagenet32", "smoke")
    monkeypatch.setitem(profiles.PROFILES, "smoke", replace(smoke, diffaug={(dataset, "imagenet32"): "color"}))
    with pytest.raises(ValueError, match=r"'diffaug': \('', 'color'\)"):  # another recipe: not the profile's model
        store.get_model(dataset, "imagenet32", "smoke")
    assert store.get_model(dataset, "lsun64", "smoke")[0].cfg.kernel == 4
    monkeypatch.setitem(profiles.PROFILES, "smoke", replace(smoke, kernels={(dataset, "lsun64"): 5}))
    with pytest.raises(ValueError, match=r"'kernel': \(None, 5\)"):  # another net: not the profile's model
        store.get_model(dataset, "lsun64", "smoke")


def test_store_refuses_a_model_trained_on_other_images(folder_dataset):
    """A held-out split added after training (or any change to the images) must not serve the old model."""
    store.get_model(folder_dataset, "imagenet32", "smoke")
    Image.fromarray(np.zeros((32, 32, 3), np.uint8)).save(Path(folder_dataset[len("folder:"):]) / "extra.png")
    with pytest.raises(ValueError, match=r"trained on other images \(n differ.*move the folder aside"):
        store.get_model(folder_dataset, "imagenet32", "smoke")


def test_store_plan_takes_each_models_width_and_epochs_from_the_profile():
    tuned_model = ("tiny_imagenet", "imagenet32")
    prof = replace(profiles.get_profile("smoke"), max_steps=None, widths={tuned_model: 1 / 8},
                   epochs={tuned_model: 3}, diffaug={tuned_model: "color,cutout"}, kernels={("cifar10", "lsun64"): 5})
    tuned, other = store.plan("tiny_imagenet", "imagenet32", prof, 128), store.plan("cifar10", "imagenet32", prof, 128)
    assert (tuned.width, other.width) == (1 / 8, prof.width) != (prof.width, prof.width)
    assert (tuned.diffaug, other.diffaug) == ("color,cutout", "")  # the paper's recipe unless the profile says
    kernel5 = store.plan("cifar10", "lsun64", prof, 128)
    assert (kernel5.kernel, other.kernel) == (5, None) and kernel5.net_config().kernel == 5  # the variant's unless said
    assert (tuned.steps, other.steps) == (3 * 128 // prof.batch_size, prof.default_epochs * 128 // prof.batch_size)
    half = store.plan("tiny_imagenet", "imagenet32", replace(prof, epochs={tuned_model: 1.5}), 128)
    assert half.steps == round(1.5 * (128 // prof.batch_size)) and isinstance(half.steps, int)  # ends mid-pass


def test_fetch_with_a_bad_checksum_exits_non_zero_naming_the_file(tmp_path, monkeypatch, capsys):
    from dcgan_lib.data import registry

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
    import papermill

    from dcgan_lib.cli import course_cmd

    ran = []
    monkeypatch.setattr(course_cmd.results, "ROOT", tmp_path)
    monkeypatch.setattr(papermill, "execute_notebook",
                        lambda src, out, parameters, progress_bar: ran.append((src.name, parameters)))
    assert main(["course", "--profile", "smoke", "--only", "1", "03_train_bedrooms", "--runner", "papermill"]) == 0
    assert ran == [("01_architecture.ipynb", {"profile": "smoke"}), ("03_train_bedrooms.ipynb", {"profile": "smoke"})]
    assert not list(tmp_path.rglob("course_*.json"))  # only a full run is recorded
    assert main(["course", "--profile", "smoke"]) == 0  # auto: papermill where it is installed
    assert len(ran) == 2 + len(course_cmd.LESSONS)
    record = json.loads(next(tmp_path.rglob("course_smoke.json")).read_text())
    assert list(record["metrics"]["notebook_wall_s"]) == [lesson.stem for lesson in course_cmd.LESSONS]
    assert main(["course", "--only", "99"]) == 2 and "no notebook 99" in capsys.readouterr().err


def test_course_in_stages_is_recorded_once_every_notebook_ran(tmp_path, monkeypatch, capsys):
    """One notebook per call (scripts/gpu_run.sh), wall times collected in --walls; a notebook whose data is
    missing is skipped and said so, and the course is recorded only once every notebook ran."""
    from dcgan_lib.cli import course_cmd

    ran = []
    monkeypatch.setattr(course_cmd.results, "ROOT", tmp_path)
    monkeypatch.setattr(course_cmd, "execute", lambda stem, profile, runner, out: ran.append((stem, runner)))
    monkeypatch.setattr(course_cmd, "missing_data", lambda stem: ["bedrooms"] if stem == "03_train_bedrooms" else [])
    walls = tmp_path / "walls.json"
    stems = [lesson.stem for lesson in course_cmd.LESSONS]
    for stem in stems:
        assert main(["course", "--profile", "smoke", "--only", stem, "--runner", "script", "--skip-missing-data",
                     "--walls", str(walls)]) == 0
    assert ran == [(s, "script") for s in stems if s != "03_train_bedrooms"]
    assert "03_train_bedrooms: skipped, its data is not here (bedrooms)" in capsys.readouterr().out
    assert not list(tmp_path.rglob("course_smoke.json"))
    monkeypatch.setattr(course_cmd, "missing_data", lambda stem: [])
    assert main(["course", "--profile", "smoke", "--only", "3", "--walls", str(walls), "--skip-missing-data"]) == 0
    record = json.loads(next(tmp_path.rglob("course_smoke.json")).read_text())
    assert list(record["metrics"]["notebook_wall_s"]) == stems
    assert set(json.loads(walls.read_text())["smoke"]) == set(stems)


def test_a_notebook_runs_as_a_script_without_jupyter(tmp_path, monkeypatch):
    """course.run_as_script: code cells in order, parameters set after the `parameters` cell, errors named."""
    from dcgan_lib.course import course

    nb = {"cells": [{"cell_type": "markdown", "metadata": {}, "source": ["# title"]},
                    {"cell_type": "code", "metadata": {"tags": ["parameters"]},
                     "source": ["profile = 'auto'\n", "n = 1"]},
                    {"cell_type": "code", "metadata": {}, "source": "from IPython.display import Markdown, display\n"
                                                                    "shown = (profile, n * 2)"},
                    {"cell_type": "code", "metadata": {}, "source": "1 / n if profile == 'smoke' else None"}]}
    (tmp_path / "notebooks").mkdir()
    (tmp_path / "notebooks" / "99_demo.ipynb").write_text(json.dumps(nb))
    monkeypatch.setattr(results, "ROOT", tmp_path)
    assert course.run_as_script("99_demo", {"profile": "smoke"})["shown"] == ("smoke", 2)
    with pytest.raises(RuntimeError, match=r"99_demo: code cell 2 failed: ZeroDivisionError"):
        course.run_as_script("99_demo", {"profile": "smoke", "n": 0})


def test_train_takes_the_flags_pytorch_examples_users_know(folder_dataset, tmp_path):
    """--batch-size, --lr, --beta1, --width, --image-size (folder datasets) and --device reach the run."""
    out = tmp_path / "run"
    assert main(["train", "--dataset", folder_dataset, "--variant", "lsun64", "--profile", "smoke", "--out", str(out),
                 "--batch-size", "8", "--lr", "1e-3", "--beta1", "0.6", "--width", "0.0625", "--image-size", "32",
                 "--device", "cpu", "--steps", "2", "--no-fid", "--no-progress"]) == 0
    saved = runs.read_checkpoint(out / "checkpoint.pt", keys=("train_config",))["train_config"]
    assert {k: saved[k] for k in ("batch_size", "lr", "beta1", "width", "image_size", "steps")} == {
        "batch_size": 8, "lr": 1e-3, "beta1": 0.6, "width": 0.0625, "image_size": 32, "steps": 2}
    assert runs.read_record(out)["device"].startswith("cpu")


@pytest.mark.parametrize("flags, message", [
    (["--batch-size", "0"], "batch_size must be a whole number >= 1, got 0 (set by --batch-size)"),
    (["--lr", "-0.1"], "lr must be a number > 0, got -0.1 (set by --lr)"),
    (["--lr", "nan"], "lr must be a number > 0, got nan (set by --lr)"),
    (["--beta1", "1"], "beta1 must be a number in [0, 1), got 1.0 (set by --beta1)"),
    (["--width", "0"], "width must be a number > 0, got 0.0 (set by --width)"),
    (["--image-size", "48"], "--image-size 48: image_size must be 4 * 2^k"),
    (["--image-size", "48", "--kernel", "5"], "--image-size 48 --kernel 5: image_size must be 4 * 2^k"),
    (["--device", "cuda:7"], "--device cuda:7: no CUDA device here"),
])
def test_train_flags_are_checked_before_any_work(folder_dataset, monkeypatch, capsys, flags, message):
    monkeypatch.setattr(store, "load_training_images", lambda *a, **k: pytest.fail("data prepared before the checks"))
    if torch.cuda.is_available() and flags[0] == "--device":
        pytest.skip("this machine has CUDA")
    assert main(["train", "--dataset", folder_dataset, "--variant", "lsun64", "--profile", "smoke", *flags]) == 2
    assert message in capsys.readouterr().err


def test_image_size_is_for_folder_datasets_and_sizes_the_nets_allow(folder_dataset, capsys):
    assert main(["train", "--dataset", "bedrooms", "--variant", "lsun64", "--image-size", "32"]) == 2
    assert "--image-size applies to folder:PATH datasets" in capsys.readouterr().err
    assert main(["train", "--dataset", folder_dataset, "--variant", "svhn32", "--image-size", "64"]) == 2
    assert "svhn32 is fixed at 32 px" in capsys.readouterr().err
    assert main(["train", "--dataset", folder_dataset, "--variant", "svhn32", "--kernel", "4"]) == 2
    assert "--kernel 4: variant svhn32 has fixed" in capsys.readouterr().err
    with pytest.raises(SystemExit):  # not a number: argparse's own error, exit 2
        main(["train", "--dataset", folder_dataset, "--variant", "lsun64", "--lr", "fast"])


def test_train_numerics_flag_sets_amp_and_auto_leaves_the_default():
    from dcgan_lib.cli import build_parser
    from dcgan_lib.cli.train_cmd import overrides_of

    def amp_of(*flags):
        args = build_parser().parse_args(["train", "--dataset", "bedrooms", "--variant", "lsun64", *flags])
        return overrides_of(args).get("amp", "unset")

    assert (amp_of(), amp_of("--numerics", "bf16"), amp_of("--numerics", "fp32")) == ("unset", True, False)
    with pytest.raises(SystemExit):
        amp_of("--numerics", "fp16")
