"""Semantic-hash de-duplication (Paper §4.1): hash, grouping, radius search, groups file, command."""
from __future__ import annotations

import io
import itertools
import json
from dataclasses import replace

import numpy as np
import pytest
import torch
from PIL import Image

from dcgan_lib.data import datasets
from dcgan_lib.dedup import dedup, dedup_bench, dedup_robust, dedup_scan

SMALL = replace(dedup.config_for("smoke"), epochs=3, batch_size=32, bench_copies=12,
                bench_sets=(("synthetic", "test", 1, 60),))


def random_images(n: int, seed: int = 0) -> np.ndarray:
    """Smooth random 32x32 images (blocky, like real photos at this size)."""
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, (n, 8, 8, 3), dtype=np.uint8)
    return small.repeat(4, 1).repeat(4, 2)


def random_model(seed: int = 0) -> dedup.HashAutoencoder:
    torch.manual_seed(seed)
    return dedup.HashAutoencoder(SMALL).eval()


def flip_bits(key: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    bits = np.unpackbits(key)
    bits[rng.choice(bits.size, n, replace=False)] ^= 1
    return np.packbits(bits)


def brute_force_labels(keys: np.ndarray, radius: int) -> np.ndarray:
    """All-pairs reference: union of every pair within `radius` bits."""
    n = len(keys)
    parent = list(range(n))

    def root(i):
        while parent[i] != i:
            i = parent[i]
        return i
    for i, j in itertools.combinations(range(n), 2):
        if dedup.hamming(keys[i], keys[j]) <= radius:
            parent[root(i)] = root(j)
    return np.array([root(i) for i in range(n)])


def same_partition(a: np.ndarray, b: np.ndarray) -> bool:
    return len(set(zip(a.tolist(), b.tolist(), strict=True))) == len(set(a.tolist())) == len(set(b.tolist()))


# ---------------------------------------------------------------- hash


def test_hash_is_active_relus_packed_in_bit_order():
    model = random_model()
    model.bit_order.copy_(torch.randperm(128, generator=torch.Generator().manual_seed(1)))
    images = random_images(20)
    keys = dedup.hash_images(model, images)
    assert keys.shape == (20, 16) and keys.dtype == np.uint8
    with torch.no_grad():
        active = (model.encoder(dedup.as_input(images, True)) > 0).numpy()  # (20, 128)
    np.testing.assert_array_equal(np.unpackbits(keys, axis=1), active[:, model.bit_order.numpy()])
    assert (np.unpackbits(keys, axis=1) == (model.encode(dedup.as_input(images, True)) > 0).numpy()[
        :, model.bit_order.numpy()]).all()


def test_streamed_hashing_matches_whole_array_and_keeps_ids():
    model, images = random_model(), random_images(50)
    batches = [([f"img{i}" for i in range(s, min(s + 16, 50))], images[s:s + 16]) for s in range(0, 50, 16)]
    hashed = dedup_scan.hash_batches(model, iter(batches), "synthetic")
    np.testing.assert_array_equal(hashed.keys, dedup.hash_images(model, images))
    assert hashed.ids == [f"img{i}" for i in range(50)]
    assert hashed.images_per_s > 0


def test_training_lowers_loss_and_orders_bits():
    images = random_images(128, seed=3)[:, ::16, ::16].repeat(16, 1).repeat(16, 2)  # 2x2 blocks: learnable
    cfg = replace(SMALL, epochs=10, lr=1e-2)
    model, losses = dedup.train_autoencoder(images, cfg, seed=0, progress=False)
    assert np.mean(losses[-5:]) < 0.8 * np.mean(losses[:5])
    assert sorted(model.bit_order.tolist()) == list(range(128))
    again, _ = dedup.train_autoencoder(images, cfg, seed=0, progress=False)
    np.testing.assert_array_equal(dedup.hash_images(model, images), dedup.hash_images(again, images))
    assert dedup.reconstruct(model, images[:4]).shape == (4, 32, 32, 3)


def test_training_rejects_wrong_size():
    with pytest.raises(ValueError, match="32"):
        dedup.train_autoencoder(np.zeros((8, 64, 64, 3), np.uint8), SMALL)


def test_average_hash_ignores_uniform_brightness_but_not_content():
    images = random_images(10).astype(np.int16)
    brighter = np.clip(images // 2 + 20, 0, 255).astype(np.uint8)
    darker = (images // 2).astype(np.uint8)
    np.testing.assert_array_equal(dedup.average_hash(brighter), dedup.average_hash(darker))
    flipped = dedup.average_hash(darker[:, ::-1])
    assert (dedup.hamming(flipped, dedup.average_hash(darker)) > 0).all()


# ---------------------------------------------------------------- grouping


def test_group_exact_buckets_identical_keys():
    keys = np.array([[1, 2], [3, 4], [1, 2], [5, 6], [3, 4], [1, 2]], np.uint8)
    labels = dedup.group_exact(keys)
    assert dedup.groups_from_labels(labels) == [[0, 2, 5], [1, 4]]


@pytest.mark.parametrize("radius", [1, 3, 5])
def test_radius_search_equals_brute_force(radius):
    rng = np.random.default_rng(radius)
    centres = rng.integers(0, 256, (40, 16), dtype=np.uint8)
    keys = [c for c in centres]  # copies at 0 .. radius + 2 bits from a centre
    keys += [flip_bits(centres[rng.integers(40)], int(rng.integers(0, radius + 3)), rng) for _ in range(160)]
    keys = np.stack(keys)
    labels, stats = dedup.group_within(keys, radius)
    assert same_partition(labels, brute_force_labels(keys, radius))
    assert stats["candidates"] < len(keys) * (len(keys) - 1) // 2  # never all pairs


def test_radius_search_with_a_crowded_chunk_equals_brute_force():
    rng = np.random.default_rng(7)
    keys = rng.integers(0, 256, (150, 16), dtype=np.uint8)
    keys[:120, :8] = 0  # 120 keys share their first chunk: one big bucket, searched block by block
    keys[120:] = [flip_bits(keys[i], int(rng.integers(0, 4)), rng) for i in rng.integers(0, 120, 30)]
    labels, stats = dedup.group_within(keys, 1)
    assert same_partition(labels, brute_force_labels(keys, 1))
    assert stats["candidates"] >= 120 * 119 // 2


def test_radius_boundary_and_linear_candidates():
    rng = np.random.default_rng(0)
    base = rng.integers(0, 256, (3000, 16), dtype=np.uint8)
    near = np.stack([flip_bits(k, 4, rng) for k in base[:100]])
    far = np.stack([flip_bits(k, 5, rng) for k in base[100:200]])
    keys = np.concatenate([base, near, far])
    labels, stats = dedup.group_within(keys, 4)
    assert (labels[3000:3100] == labels[:100]).all()
    assert (labels[3100:3200] != labels[100:200]).all()
    assert len(dedup.groups_from_labels(labels)) == 100
    assert stats["candidates"] < 20 * len(keys)  # random keys rarely share a 3-4 byte chunk


def test_radius_zero_is_exact_and_too_large_radius_is_refused():
    keys = np.array([[0, 0], [0, 1], [0, 0]], np.uint8)
    labels, _ = dedup.group_within(keys, 0)
    assert dedup.groups_from_labels(labels) == [[0, 2]]
    with pytest.raises(ValueError, match="chunks"):
        dedup.group_within(keys, 2)


def test_pair_scores_counts_pairs():
    truth = np.array([0, 0, 1, 2, 3, 3])
    pred = np.array([7, 7, 8, 8, 9, 10])  # one true pair found, one false pair, one true pair missed
    s = dedup.pair_scores(truth, pred)
    assert (s["true_pairs"], s["predicted_pairs"], s["false_pairs"]) == (2, 2, 1)
    assert s["precision"] == 0.5 and s["recall"] == 0.5
    assert s["fpr"] == pytest.approx(1 / (15 - 2))
    assert dedup.pair_scores(np.arange(4), np.arange(4))["precision"] is None


# ---------------------------------------------------------------- groups file


def test_robust_groups_document_needs_probes():
    model, images = random_model(), random_images(8)
    images[7] = np.roll(images[2], 2, axis=1)
    plain = dedup_scan.hash_batches(model, [(list(range(8)), images)], "synthetic")
    with pytest.raises(ValueError, match="probe=True"):
        dedup_scan.groups_document(plain, 6, robust=True, cfg=SMALL)
    probed = dedup_scan.hash_batches(model, [(list(range(5)), images[:5]), (list(range(5, 8)), images[5:])],
                                     "synthetic", probe=True)
    np.testing.assert_array_equal(probed.keys, plain.keys)
    np.testing.assert_array_equal(probed.probes,
                                  dedup_robust.probe_keys(model, images, dedup_robust.probe_boxes(SMALL)))
    doc = dedup_scan.groups_document(probed, 6, robust=True, cfg=SMALL)
    assert doc["groups"] == [[2, 7]] and doc["search"]["verified_pairs"] == 1 and "beyond the paper" in doc["method"]


def test_groups_document_and_keep_mask():
    model, images = random_model(), random_images(30)
    images[[5, 17, 29]] = images[2]  # three copies of image 2
    images[11] = images[8]
    ids = [f"/data/{i:03d}.png" for i in range(30)]
    hashed = dedup_scan.hash_batches(model, [(ids[:16], images[:16]), (ids[16:], images[16:])], "folder:/data")
    doc = json.loads(json.dumps(dedup_scan.groups_document(hashed, radius=0)))
    assert doc["format"] == datasets.GROUPS_FORMAT and doc["dataset"] == "folder:/data"
    assert [ids[2], ids[5], ids[17], ids[29]] in doc["groups"] and [ids[8], ids[11]] in doc["groups"]
    assert doc["summary"]["images"] == 30
    assert doc["summary"]["images_removed"] == doc["summary"]["images_in_groups"] - doc["summary"]["groups"]
    mask = datasets.keep_mask(doc, ids)
    assert mask.sum() == 30 - doc["summary"]["images_removed"]
    assert mask[2] and mask[8] and not mask[[5, 11, 17, 29]].any()
    shuffled = ids[::-1]  # keeps the first of each group in the order of the ids it is given
    assert datasets.keep_mask(doc, shuffled).sum() == mask.sum()


def test_keep_mask_errors(tmp_path):
    with pytest.raises(ValueError, match="dedup"):
        datasets.keep_mask({"groups": [["a", "b"]]}, ["a", "b"])
    path = tmp_path / "groups.json"
    path.write_text(json.dumps({"format": datasets.GROUPS_FORMAT, "dataset": "x", "groups": [["a", "b"]]}))
    with pytest.raises(ValueError, match="none of the ids"):
        datasets.keep_mask(path, ["c", "d"])
    assert datasets.keep_mask(path, ["b", "c", "a"]).tolist() == [True, True, False]  # first in the given order


# ---------------------------------------------------------------- benchmark


def png_bytes(image: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, "PNG")
    return buf.getvalue()


@pytest.mark.parametrize("kind", dedup.KINDS)
def test_perturb_makes_a_decodable_changed_file(kind):
    image = random_images(1)[0].repeat(2, 0).repeat(2, 1)  # 64x64
    raw = png_bytes(image)
    out = dedup_bench.perturb(raw, kind, np.random.default_rng(0))
    decoded = np.asarray(Image.open(io.BytesIO(out)).convert("RGB"))
    assert (out == raw) == (kind == "exact")
    assert decoded.ndim == 3 and min(decoded.shape[:2]) >= 48


def test_benchmark_scores_every_kind_and_method(monkeypatch):
    images = random_images(60, seed=5)
    monkeypatch.setattr(dedup, "_raw", lambda name, split: ((str(i), png_bytes(im)) for i, im in enumerate(images)))
    model, _ = dedup.train_autoencoder(images, SMALL, progress=False)
    bench = dedup_bench.run_benchmark(model, SMALL, seed=0)
    rows = dedup_bench.score_table(bench, SMALL)
    assert len(rows) == len(dedup.KINDS) * len(dedup_bench.methods(SMALL))
    by = {(r["kind"], r["method"]): r for r in rows}
    assert by["exact", "file SHA-256"]["recall"] == 1.0 and by["exact", "file SHA-256"]["precision"] == 1.0
    assert by["jpeg", "file SHA-256"]["recall"] == 0.0
    assert by["exact", "semantic hash r=0 (paper)"]["recall"] == 1.0
    assert [s["radius"] for s in bench.sweep] == list(range(9))
    recalls = [s["recall"] for s in bench.sweep]
    assert recalls == sorted(recalls)  # a larger radius never finds fewer pairs
    pairs, kinds = dedup_bench.gallery(bench, "true", "semantic hash r=0 (paper)", n=4)
    assert pairs.shape == (8, 32, 32, 3) and len(kinds) == 4
    assert "| exact | file SHA-256 | 100.0% | 100.0% |" in dedup_bench.table_markdown(rows)


def test_group_images_decodes_only_members(monkeypatch):
    images = random_images(10, seed=2)
    monkeypatch.setattr(dedup, "_raw", lambda name, split: ((f"f{i}", png_bytes(im)) for i, im in enumerate(images)))
    tiles, per_group = dedup_scan.group_images("synthetic", [["f1", "f4", "f7"], ["f2", "f9"]], split="train")
    assert per_group == 3 and tiles.shape == (6, 32, 32, 3)
    np.testing.assert_array_equal(tiles[[0, 1, 2, 3, 4]], images[[1, 4, 7, 2, 9]])
    assert (tiles[5] == 255).all()  # the short group is padded with a blank tile


# ---------------------------------------------------------------- command line


def test_command_on_a_folder(tmp_path, monkeypatch):
    from dcgan_lib.cli import main  # a broken core import must fail here, never skip

    folder = tmp_path / "imgs"
    folder.mkdir()
    images = random_images(12, seed=9)
    for i, im in enumerate(images):
        Image.fromarray(im).save(folder / f"{i:02d}.png")
    Image.fromarray(images[3]).save(folder / "copy_of_03.png")
    Image.fromarray(np.pad(images[5], ((2, 0), (0, 3), (0, 0)), mode="edge")[:32, 3:]).save(folder / "shifted_05.png")
    model = random_model()
    monkeypatch.setattr(dedup, "load_or_train", lambda *a, **k: (model, {"path": "test-model", "loaded": True}))
    out = tmp_path / "groups.json"
    assert main(["dedup", "--dataset", f"folder:{folder}", "--out", str(out), "--radius", "2",
                 "--profile", "smoke"]) == 0
    doc = json.loads(out.read_text())
    assert doc["summary"]["images"] == 14
    names = [[p.rsplit("/", 1)[-1] for p in g] for g in doc["groups"]]
    assert sorted(names) == [["03.png", "copy_of_03.png"], ["05.png", "shifted_05.png"]]  # robust: the default
    assert main(["dedup", "--dataset", f"folder:{folder}", "--out", str(out), "--method", "hash", "--radius", "0",
                 "--profile", "smoke"]) == 0
    names = [[p.rsplit("/", 1)[-1] for p in g] for g in json.loads(out.read_text())["groups"]]
    assert names == [["03.png", "copy_of_03.png"]]  # the paper's key misses the 2-3 px shift
    assert main(["dedup", "--dataset", f"folder:{folder}", "--out", str(out), "--radius", "99"]) == 2
    assert main(["dedup", "--dataset", f"folder:{folder}", "--out", str(out), "--min-ncc", "2"]) == 2
    assert main(["dedup", "--dataset", f"folder:{folder}", "--out", str(out), "--method", "hash",
                 "--min-ncc", "0.5"]) == 2


# ---------------------------------------------------------------- shift-robust search (beyond the paper)


def smooth_images(n: int, seed: int = 0, size: int = 64) -> np.ndarray:
    """Smooth random images (6x6 colour noise, bicubic up-sampled): natural-looking at a few px of shift."""
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, (n, 6, 6, 3), dtype=np.uint8)
    return np.stack([np.asarray(Image.fromarray(s).resize((size, size), Image.BICUBIC)) for s in small])


def test_probe_boxes_stay_inside_and_start_with_the_centre():
    boxes = dedup_robust.probe_boxes(SMALL)
    m = SMALL.robust_margin
    np.testing.assert_array_equal(boxes[0], [m, m, 32 - 2 * m])
    assert (boxes[:, :2] >= 0).all() and (boxes[:, :2] + boxes[:, 2:] <= 32 + 1e-4).all()
    shifts = {(int(x - m), int(y - m)) for x, y, s in boxes[1:] if s == 32 - 2 * m}
    for dx, dy in itertools.product(range(-3, 4), repeat=2):  # every shift, from one side of the pair or the other
        assert (dx, dy) == (0, 0) or ((dx, dy) in shifts) != ((-dx, -dy) in shifts)
    with pytest.raises(ValueError, match="robust_margin"):
        dedup_robust.probe_boxes(replace(SMALL, robust_shift=SMALL.robust_margin + 1))


def test_windows_resample_integer_shifts_exactly():
    images = random_images(3)
    w = dedup_robust.windows(images, np.array([[3, 3, 26], [5, 2, 26], [0, 0, 32]], np.float32))
    assert w.shape == (3, 3, 32, 32, 3)
    np.testing.assert_allclose(w[:, 2].numpy(), images, atol=1e-3)  # the whole image is itself
    up = [np.asarray(Image.fromarray(im[2:28, 5:31]).resize((32, 32), Image.BILINEAR), np.float32) for im in images]
    assert np.abs(w[:, 1].numpy() - np.stack(up)).mean() < 6  # a 26 px window at (5, 2), up-sampled


def test_probe_keys_centre_column_is_the_hash_of_the_centre_window():
    model, images = random_model(), random_images(6)
    boxes = dedup_robust.probe_boxes(SMALL)
    probes = dedup_robust.probe_keys(model, images, boxes, batch_size=4)
    assert probes.shape == (6, len(boxes), 16)
    centre = dedup_robust.windows(images, boxes[:1])[:, 0].round().clamp(0, 255).to(torch.uint8).numpy()
    assert (dedup.hamming(probes[:, 0], dedup.hash_images(model, centre)) <= 2).all()  # rounding only


def test_probe_keys_on_several_threads_are_the_keys_of_one_bit_for_bit():
    model, images = random_model(), random_images(40)
    boxes = dedup_robust.probe_boxes(SMALL)
    one = dedup_robust.probe_keys(model, images, boxes, batch_size=8, workers=1)
    assert np.array_equal(dedup_robust.probe_keys(model, images, boxes, batch_size=8, workers=3), one)
    assert np.array_equal(dedup_robust.probe_keys(model, images[:5], boxes, batch_size=8, workers=3), one[:5])
    assert dedup_robust.probe_keys(model, images[:0], boxes, workers=2).shape == (0, len(boxes), 16)


def test_probe_workers_use_each_core_once(monkeypatch):
    monkeypatch.setattr(dedup_robust.os, "cpu_count", lambda: 16)
    old = torch.get_num_threads()
    try:
        for threads, workers in ((1, 16), (8, 2), (16, 1), (32, 1)):
            torch.set_num_threads(threads)
            assert dedup_robust.probe_workers() == workers
    finally:
        torch.set_num_threads(old)


def test_probe_pairs_equals_brute_force():
    rng = np.random.default_rng(4)
    keys = rng.integers(0, 256, (60, 16), dtype=np.uint8)
    probes = rng.integers(0, 256, (60, 5, 16), dtype=np.uint8)
    probes[:, 0] = keys
    for i in range(20):  # a probe of image i lands near the centre key of image 59 - i
        probes[i, 1 + i % 4] = flip_bits(keys[59 - i], i % 5, rng)
    for radius in (2, 4):
        pairs, _ = dedup_robust.probe_pairs(keys, probes, radius)
        want = {(min(i, j), max(i, j)) for i in range(60) for j in range(60) for p in range(5)
                if i != j and dedup.hamming(probes[i, p], keys[j]) <= radius}
        assert set(map(tuple, pairs.T.tolist())) == want and len(want) > 5


def test_aligned_ncc_finds_a_shifted_copy_and_rejects_other_images():
    grey = dedup_robust.grey_thumbs(smooth_images(3, seed=1, size=32))
    shifted = np.roll(grey[0], (2, -3), axis=(0, 1))  # wrapped border: outside the compared windows
    thumbs = np.concatenate([grey, shifted[None]])
    ncc = dedup_robust.aligned_ncc(thumbs, np.array([[0, 3], [1, 2]]).T, dedup_robust.probe_boxes(SMALL))
    assert ncc[0] > 0.99 and ncc[1] < SMALL.robust_ncc


def planted_synthetic(n: int, copies: int, seed: int):
    """Smooth 64 px images as PNG files with every ROBUST_KINDS kind planted, decoded at 32 px."""
    from dcgan_lib.data import data

    images = smooth_images(n, seed)
    rng = np.random.default_rng(seed)
    files, truth, kind_of = [png_bytes(im) for im in images], [np.arange(n)], [np.full(n, -1)]
    for k, kind in enumerate(dedup.ROBUST_KINDS):
        pick = np.sort(rng.choice(n, copies, replace=False))
        files += [dedup_bench.perturb(files[i], kind, rng) for i in pick]
        truth.append(pick)
        kind_of.append(np.full(copies, k))
    return np.stack([data.decode_image(f, 32) for f in files]), np.concatenate(truth), np.concatenate(kind_of)


@pytest.fixture(scope="module")
def trained_small():
    """A small hash trained on smooth images other than the planted ones."""
    model, _ = dedup.train_autoencoder(smooth_images(512, seed=11, size=32), replace(SMALL, epochs=8),
                                       progress=False)
    return model


def test_shifted_and_cropped_copies_are_found_by_the_robust_search_only(trained_small):
    from dcgan_lib.data import data

    originals = smooth_images(40, seed=2)
    rng = np.random.default_rng(0)
    files = [png_bytes(im) for im in originals]
    shifted = [dedup_bench.perturb(files[i], "shift", rng) for i in range(10)]
    cropped = [dedup_bench.perturb(files[i], "crop", rng) for i in range(10, 20)]
    images = np.stack([data.decode_image(f, 32) for f in files + shifted + cropped])
    truth = np.r_[np.arange(40), np.arange(20)]
    probes = dedup_robust.probe_keys(trained_small, images, dedup_robust.probe_boxes(SMALL))
    labels, stats = dedup_robust.robust_groups(probes, dedup_robust.grey_thumbs(images), SMALL)
    assert (labels[40:] == labels[:20]).all()  # every copy joins its original ...
    assert len(set(labels[:40].tolist())) == 40  # ... and no two originals are joined
    assert stats["verified_pairs"] >= 20 and stats["candidates"] < len(images) * len(probes[0]) * len(images)
    paper = dedup.group_within(dedup.hash_images(trained_small, images), SMALL.radius)[0]
    assert dedup.pair_scores(truth, paper)["recall"] < 0.5  # the full-image key misses most of them


def test_robust_search_meets_the_goals_on_a_planted_set(trained_small):
    images, truth, kind_of = planted_synthetic(300, 25, seed=3)
    probes = dedup_robust.probe_keys(trained_small, images, dedup_robust.probe_boxes(SMALL))
    labels, _ = dedup_robust.robust_groups(probes, dedup_robust.grey_thumbs(images), SMALL)
    everything = dedup.pair_scores(truth, labels)
    assert everything["precision"] >= dedup.ROBUST_GOALS["precision"]
    assert everything["recall"] >= dedup.ROBUST_GOALS["recall"]
    shift = (kind_of == -1) | (kind_of == dedup.ROBUST_KINDS.index("shift"))
    assert dedup.pair_scores(truth[shift], labels[shift])["recall"] >= dedup.ROBUST_GOALS["shift_recall"]
    colliding = probes.copy()  # key collisions between different images: a probe of i lands on j's centre key
    for i, j in [(0, 1), (2, 3), (4, 5)]:
        colliding[i, 1] = probes[j, 0]
    unchecked, _ = dedup_robust.robust_groups(colliding, dedup_robust.grey_thumbs(images), SMALL, min_ncc=-2)
    checked, _ = dedup_robust.robust_groups(colliding, dedup_robust.grey_thumbs(images), SMALL)
    assert (unchecked[[0, 2, 4]] == unchecked[[1, 3, 5]]).all()
    assert (checked[[0, 2, 4]] != checked[[1, 3, 5]]).all()  # the aligned-correlation check rejects them
    assert dedup.pair_scores(truth, checked)["precision"] >= dedup.ROBUST_GOALS["precision"]


def test_robust_benchmark_measures_a_held_out_split_and_records_it(monkeypatch, tmp_path, trained_small):
    images = smooth_images(120, seed=6)
    monkeypatch.setattr(dedup, "_raw", lambda name, split: ((str(i), png_bytes(im)) for i, im in enumerate(images)))
    cfg = replace(SMALL, bench_copies=10, bench_sets=(("synthetic", "test", 1, 60),),
                  holdout_sets=(("synthetic", "test", 1, 60, 60),))
    assert set(dedup._bench_ids(cfg)["synthetic", "test"]) == {str(i) for i in range(120)}  # kept out of training
    tuning = dedup_bench.run_robust_benchmark(trained_small, cfg, seed=0, held_out=False)
    held = dedup_bench.run_robust_benchmark(trained_small, cfg, seed=0, held_out=True)
    assert (held.split, held.seed, tuning.seed) == ("held-out", 1, 0)
    assert len(held.images) == 60 + 10 * len(dedup.ROBUST_KINDS)
    assert not (held.images[:60, None] == tuning.images[None, :60]).all((2, 3, 4)).any()  # other images
    rows = dedup_bench.robust_rows(held, cfg)
    assert len(rows) == (1 + len(dedup.ROBUST_KINDS)) * len(dedup_bench.robust_methods(cfg))
    by = {(r["kind"], r["method"]): r for r in rows}
    ours, paper = dedup_bench.robust_methods(cfg)[-1], dedup_bench.robust_methods(cfg)[1]
    assert by["shift", ours]["recall"] > by["shift", paper]["recall"]
    members = np.bincount(held.truth)  # an original and all its copies: copies of one image pair up too
    assert by["all", ours]["true_pairs"] == (members * (members - 1) // 2).sum() >= 10 * len(dedup.ROBUST_KINDS)
    from dcgan_lib.data import datasets

    monkeypatch.setattr(datasets, "describe", lambda name: {"dataset": name})
    bench = dedup_bench.run_benchmark(trained_small, cfg, seed=0)
    md, rec = dedup_bench.save_benchmark(bench, cfg, "smoke", 0, 1.0, {}, out_dir=tmp_path, robust=[tuning, held])
    robust = json.loads(rec.read_text())["metrics"]["robust"]
    assert [g["split"] for g in robust["goal"]] == ["tuning", "held-out"]
    goal = robust["goal"][1]
    assert goal["met"] == (goal["precision"] >= 0.99 and goal["recall"] >= 0.9 and goal["shift_recall"] >= 0.8)
    assert goal["recall"] == by["all", ours]["recall"]
    assert "held-out split, seed 1" in md.read_text() and f"| shift | {ours} |" in md.read_text()


# ---------------------------------------------------------------- the bedrooms' removal list (combined dataset)


def test_dedup_command_scans_every_bedroom_and_the_data_path_applies_its_list(bedrooms_mirror, monkeypatch):
    from dcgan_lib.cli import main
    from dcgan_lib.data import data

    model = random_model()
    monkeypatch.setattr(dedup, "load_or_train", lambda *a, **k: (model, {"path": "test-model", "loaded": True}))
    out = bedrooms_mirror.duplicates  # where the registry reads the bedrooms' removal list from
    assert main(["dedup", "--dataset", "bedrooms", "--out", str(out), "--profile", "smoke"]) == 0
    doc = json.loads(out.read_text())
    assert doc["scanned"] == {"split": "all", "limit": None} and doc["summary"]["images"] == 20  # both archives
    assert doc["groups"] == [list(pair) for pair in bedrooms_mirror.copies]  # the copy across the archives
    train = data.prepare("bedrooms", 16, "train", progress=False)
    held = data.heldout_of(train)
    original, copy = bedrooms_mirror.copies[0]
    assert copy not in train.ids + held.ids and original in train.ids + held.ids
    assert len(train) + len(held) == 19 and train.provenance()["splits"]["duplicates"]["applied"]
    first = out.read_bytes()
    assert main(["dedup", "--dataset", "bedrooms", "--out", str(out), "--profile", "smoke"]) == 0
    assert out.read_bytes() == first  # a rescan finding the same groups rewrites the tracked list byte for byte


def test_scan_counts_copies_across_the_archives_and_records_the_removed_groups(bedrooms_mirror, tmp_path):
    cfg = replace(SMALL, scan_limit=None)
    s = dedup_scan.scan(random_model(), "bedrooms", cfg, model_path="test-model")
    assert s["split"] == "all" and s["images"] == 20 and s["document"]["groups"] == s["groups"]
    assert s["across_parts"]["sha256"] == 1 and s["across_parts"]["robust"] == 1
    png, rec = dedup_scan.removed_groups(s, cfg, "smoke", out_dir=tmp_path / "figures")
    metrics = json.loads(rec.read_text())["metrics"]
    assert png.exists() and metrics["groups_listed"] == [list(bedrooms_mirror.copies[0])]
    assert metrics["groups_across_parts"] == 1 and metrics["images_removed"] == 1
    assert metrics["scanned"] == {"split": "all", "limit": None}
