"""The data registry: official formats (CIFAR batches, LSUN lmdb), the mirror, bad files, checksums, and the
combined bedrooms stand-in (two archives, a removal list, a held-out split)."""
import io
import json
import pickle
from dataclasses import replace

import numpy as np
import pytest
import torch
from conftest import smooth_jpeg, write_tar
from PIL import Image

from dcgan_lib.data import archives, data, datasets, registry
from dcgan_lib.gan.train import BatchSampler


@pytest.fixture
def data_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("DCGAN_DATA", str(tmp_path / "data"))
    monkeypatch.delenv("DCGAN_MIRROR", raising=False)
    return tmp_path / "data"


def encode(img: Image.Image, fmt: str = "JPEG") -> bytes:
    buf = io.BytesIO()
    img.save(buf, format=fmt)
    return buf.getvalue()


def rgb(seed, size=(40, 30)):
    return Image.fromarray(np.random.default_rng(seed).integers(0, 256, (size[1], size[0], 3), dtype=np.uint8))


def test_decode_min_resizes_and_centre_crops():
    img = Image.new("RGB", (60, 30), (255, 0, 0))
    img.paste((0, 0, 255), (0, 0, 15, 30))  # a blue band on the left that the crop must remove
    out = data.decode_image(encode(img, "PNG"), 16)
    assert out.shape == (16, 16, 3) and out.dtype == np.uint8
    assert out[:, 0, 2].max() < 40 and out[8, 8, 0] > 250


def test_to_float_range_and_layout():
    x = data.to_float(np.array([[[[0, 255, 128]]]], np.uint8))
    assert x.shape == (1, 3, 1, 1)
    torch.testing.assert_close(x.flatten(), torch.tensor([-1.0, 1.0, 128 / 127.5 - 1]))


def make_bad_folder(folder):
    folder.mkdir(parents=True)
    rgb(0).save(folder / "good.jpg")
    rgb(1).convert("CMYK").save(folder / "cmyk.jpg")
    rgb(2).convert("RGBA").save(folder / "rgba.png")
    rgb(3).convert("P").save(folder / "palette.png")
    rgb(4).convert("L").save(folder / "grey.png")
    Image.fromarray((np.arange(900, dtype=np.uint16).reshape(30, 30) * 70)).save(folder / "deep16.png")
    (folder / "zero.jpg").write_bytes(b"")
    (folder / "notes.txt").write_text("not an image")
    whole = encode(rgb(5, (64, 64)))
    (folder / "truncated.jpg").write_bytes(whole[: len(whole) // 2])
    return {"cmyk.jpg", "rgba.png", "palette.png", "grey.png", "deep16.png", "good.jpg"}


def test_folder_with_bad_images_is_prepared_and_bad_ones_reported(data_dir, tmp_path):
    good = make_bad_folder(tmp_path / "photos")
    images = data.prepare(f"folder:{tmp_path / 'photos'}", 16, progress=False)
    assert {p.rsplit("/", 1)[1] for p in images.ids} == good
    assert images.images.shape == (len(good), 16, 16, 3)
    assert images.info["bad"] == 3
    assert {b["id"].rsplit("/", 1)[1] for b in images.info["bad_files"]} == {"zero.jpg", "notes.txt", "truncated.jpg"}
    deep = images.images[[i for i, p in enumerate(images.ids) if p.endswith("deep16.png")][0]]
    assert deep.std() > 10  # 16-bit scaled into 8 bits, not clipped to white
    assert len(data.prepare(f"folder:{tmp_path / 'photos'}", 16, progress=False)) == len(good)  # from cache
    rgb(9).save(tmp_path / "photos" / "added.png")  # a changed folder is decoded again, not served stale
    assert len(data.prepare(f"folder:{tmp_path / 'photos'}", 16, progress=False)) == len(good) + 1
    (tmp_path / "photos" / "added.png").unlink()
    streamed, skipped = [], []
    for ids, batch in data.stream(f"folder:{tmp_path / 'photos'}", 8, batch_size=4, skipped=skipped):
        assert len(batch) <= 4
        streamed += ids
    assert len(streamed) == len(good) and len(skipped) == 3


def test_the_data_path_takes_a_spec_looked_up_once(data_dir, tmp_path, monkeypatch):
    """A DatasetSpec passes through get_spec unchanged, so the data path looks a name up once and hands the spec
    on: prepare and the store serve the same images for a name and for its spec, with no second look-up."""
    folder = tmp_path / "few"
    folder.mkdir()
    for i in range(3):
        rgb(i).save(folder / f"img{i}.png")
    spec = registry.get_spec(f"folder:{folder}")
    assert registry.get_spec(spec) is spec
    by_name = data.prepare(spec.name, 8, progress=False)
    looked_up = []
    real = registry.get_spec
    monkeypatch.setattr(registry, "get_spec", lambda d: looked_up.append(d) or real(d))
    monkeypatch.setattr(datasets, "get_spec", registry.get_spec)
    by_spec = data.prepare(spec, 8, progress=False)
    assert by_spec.ids == by_name.ids and np.array_equal(by_spec.images, by_name.images)
    assert looked_up and all(d is spec for d in looked_up)  # every step was handed the spec, never the name


def test_official_cifar_batches(data_dir):
    folder = data_dir / "official" / "cifar10" / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, (10, 3072), dtype=np.uint8)
    with open(folder / "test_batch", "wb") as f:
        pickle.dump({b"data": pixels, b"labels": list(range(10))}, f)
    images = data.prepare("cifar10", 32, "test", progress=False)
    assert images.info["source"] == "official"
    assert images.labels.tolist() == list(range(10))
    np.testing.assert_array_equal(images.images[3], pixels[3].reshape(3, 32, 32).transpose(1, 2, 0))


def test_lsun_lmdb(data_dir, tmp_path, monkeypatch):
    import lmdb  # a pinned dependency: missing, this must fail, not skip

    path = tmp_path / "bedroom_train_lmdb"
    env = lmdb.open(str(path), map_size=1 << 24)
    stored = {f"{i:040x}": encode(rgb(i, (48, 36)), "WEBP" if i % 2 else "JPEG") for i in range(5)}
    with env.begin(write=True) as txn:
        for key, payload in stored.items():
            txn.put(key.encode(), payload)
        txn.put(b"f" * 40, b"\x00garbage")
    env.close()
    monkeypatch.setenv("DCGAN_LSUN_LMDB", str(path))
    (data_dir / "official" / "lsun_bedroom").mkdir(parents=True)
    images = data.prepare("lsun_bedroom", 16, progress=False)
    assert len(images) == 5 and images.info["bad"] == 1 and images.labels is None
    assert images.ids == sorted(stored) and images.info["bad_files"][0]["id"] == "f" * 40
    for key, img in zip(images.ids, images.images, strict=True):  # each key's own image, min-resized + cropped
        whole = np.asarray(Image.open(io.BytesIO(stored[key])).convert("RGB"))
        np.testing.assert_array_equal(img, data.decode_image(whole, 16))


def test_missing_dataset_names_the_fetch_command(data_dir):
    with pytest.raises(registry.DatasetMissing, match="python -m dcgan_lib data fetch celeba"):
        data.prepare("celeba", 64)


def test_unknown_dataset_lists_valid_names():
    with pytest.raises(ValueError, match="tiny_imagenet"):
        registry.get_spec("mnist")


def test_checksum_mismatch_stops_and_copies_nothing(data_dir, tmp_path, monkeypatch):
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    (mirror / "celeba-10k.tar.gz").write_bytes(b"not the real archive")
    monkeypatch.setenv("DCGAN_MIRROR", str(mirror))
    with pytest.raises(archives.ChecksumMismatch, match="expected ba2e6311"):
        datasets.fetch("celeba")
    assert not (data_dir / "archives" / "celeba-10k.tar.gz").exists()


def test_subset_spans_the_set():
    idx = data.subset_indices(50_000, 100)
    assert len(idx) == 100 and idx[0] == 0 and idx[-1] == 49_999
    assert data.subset_indices(10, None).tolist() == list(range(10))


def test_batch_sampler_position_is_its_state():
    images = np.arange(40, dtype=np.uint8).reshape(40, 1, 1, 1).repeat(3, -1)
    a = BatchSampler(images, 8, seed=3)
    seen = [a.next() for _ in range(7)]  # crosses an epoch boundary (5 steps per epoch)
    b = BatchSampler(images, 8, seed=3)
    for _ in range(3):
        b.next()
    c = BatchSampler(images, 8, seed=3)
    c.load_state_dict(b.state_dict())
    np.testing.assert_array_equal(c.next(), seen[3])
    epoch0 = np.concatenate(seen[:5])[:, 0, 0, 0]
    assert sorted(epoch0.tolist()) == list(range(40))  # one epoch sees each image once


def make_svhn_mirror(folder, n_test=12, n_train=5):
    """A tiny svhn-mirror.tar.gz in the mirror's layout (PNG digits + labels.csv); returns (path, labels, pixels)."""
    import csv
    import tarfile

    rng = np.random.default_rng(7)
    labels = rng.integers(0, 10, n_test).tolist()
    pixels, members = {}, {}
    rows = io.StringIO()
    writer = csv.writer(rows)
    writer.writerow(["file", "label", "test_index"])
    for i in range(n_test):
        name = f"{i:05d}.png"
        pixels[name] = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
        members[f"svhn-mirror/test_first10k/{name}"] = encode(Image.fromarray(pixels[name]), "PNG")
        writer.writerow([name, labels[i], i])
    members["svhn-mirror/test_first10k/labels.csv"] = rows.getvalue().encode()
    for i in range(n_train):
        members[f"svhn-mirror/train_first1083_unlabeled/{i:05d}.png"] = encode(rgb(100 + i, (32, 32)), "PNG")
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "svhn-mirror.tar.gz"
    with tarfile.open(path, "w:gz") as tar:
        for name, payload in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(payload)
            tar.addfile(info, io.BytesIO(payload))
    return path, dict(zip(sorted(pixels), labels, strict=True)), pixels


def test_mirror_svhn_labels_follow_labels_csv(data_dir, tmp_path, monkeypatch):
    from dataclasses import replace

    archive, labels, pixels = make_svhn_mirror(tmp_path / "mirror")
    monkeypatch.setenv("DCGAN_MIRROR", str(archive.parent))
    monkeypatch.setitem(registry.DATASETS, "svhn",
                        replace(registry.DATASETS["svhn"], sha256=archives.sha256_of(archive)))
    images = data.prepare("svhn", 32, "test", limit=7, progress=False)
    assert images.info["source"] == "mirror" and len(images) == 7
    assert (data_dir / "archives" / "svhn-mirror.tar.gz").read_bytes() == archive.read_bytes()  # copied, verified
    names = [i.rsplit("/", 1)[1] for i in images.ids]
    assert names == [sorted(pixels)[i] for i in data.subset_indices(len(pixels), 7)]
    assert images.labels.tolist() == [labels[n] for n in names]
    for name, img in zip(names, images.images, strict=True):
        np.testing.assert_array_equal(img, pixels[name])  # pixel-exact PNG digits, no resize at 32 px
    train = data.prepare("svhn", 32, "train", progress=False)
    assert len(train) == 5 and train.labels is None


# ---------------------------------------------------------------------------------------------
# The bedrooms stand-in: two archives combined, de-duplicated by a removal list, 1,000 held out
# ---------------------------------------------------------------------------------------------

def removal_list(path, groups, scanned=None, dataset="bedrooms"):
    """A dedup groups file as `python -m dcgan_lib dedup` writes it (only what the data path reads)."""

    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"format": datasets.GROUPS_FORMAT, "dataset": dataset, "method": "test groups",
                                "model": None, "scanned": scanned or {"split": "all", "limit": None},
                                "summary": {"groups": len(groups)}, "groups": groups}))
    return path


def test_places365_bedrooms_entry_reads_its_layout_and_pins_its_checksum(bedrooms_mirror):
    spec = registry.get_spec("bedrooms_places365")
    assert spec.archive == "bedrooms-places365-5100.tar.gz"
    images = data.prepare("bedrooms_places365", 16, progress=False)
    want = sorted(i for i in bedrooms_mirror.files if i.startswith("bedrooms-places365/"))
    assert images.ids == want and len(want) == 10  # train and eval folders, sorted, nothing else
    for item_id, img in zip(images.ids, images.images, strict=True):
        np.testing.assert_array_equal(img, data.decode_image(bedrooms_mirror.files[item_id], 16))
    (bedrooms_mirror.mirror / spec.archive).write_bytes(b"altered")  # a changed archive is refused, never copied
    (datasets.data_root() / "archives" / spec.archive).unlink()
    with pytest.raises(archives.ChecksumMismatch, match=f"expected {spec.sha256}"):
        datasets.fetch("bedrooms_places365")


def test_registry_pins_the_mirror_checksums():
    """Every mirror archive's pinned sha256 is the one the mirror publishes in SHA256SUMS."""
    import os
    from pathlib import Path

    mirror = os.environ.get("DCGAN_MIRROR")
    if not mirror or not (Path(mirror) / "SHA256SUMS").exists():
        pytest.skip("no mirror with SHA256SUMS (set DCGAN_MIRROR)")
    sums = dict(line.split()[::-1] for line in (Path(mirror) / "SHA256SUMS").read_text().splitlines() if line)
    pinned = {s.archive: s.sha256 for s in registry.DATASETS.values() if s.archive}
    assert "bedrooms-places365-5100.tar.gz" in pinned
    assert {a: sums.get(a) for a in pinned} == pinned


def test_bedrooms_combines_both_archives_and_holds_images_out(bedrooms_mirror):
    src = datasets.find_source("bedrooms")
    every = [i for i, _, _ in src.items("all")]
    assert every == sorted(bedrooms_mirror.files) and src.count("all") == 20  # 10 + 10, both archives, in order
    assert [p.path.name for p in src.parts] == ["bedrooms-3k.tar.gz", "bedrooms-places365-5100.tar.gz"]
    train = data.prepare("bedrooms", 16, "train", progress=False)
    held = data.prepare("bedrooms", 16, "heldout", progress=False)
    assert len(held) == 4 and len(train) == 16 and not set(train.ids) & set(held.ids)
    record = train.provenance()["splits"]
    assert record["counts"] == {"all": 20, "removed": 0, "heldout": 4, "train": 16}
    assert [p["sha256"] for p in record["parts"]] == [registry.get_spec(n).sha256 for n in registry.get_spec(
        "bedrooms").parts] == [archives.sha256_of(p.path) for p in src.parts]
    assert datasets.describe("bedrooms")["source"] == "mirror: bedrooms-3k.tar.gz + bedrooms-places365-5100.tar.gz"


def test_faces_hold_images_out_without_a_removal_list(tmp_path, monkeypatch, recwarn):
    from dcgan_lib.models import store

    faces = {f"celeba-10k/{i:06d}.jpg": smooth_jpeg(i, 40) for i in range(1, 13)}
    path = write_tar(tmp_path / "mirror" / "celeba-10k.tar.gz", faces)
    monkeypatch.setitem(registry.DATASETS, "celeba_aligned",
                        replace(registry.DATASETS["celeba_aligned"], sha256=archives.sha256_of(path)))
    monkeypatch.setitem(registry.DATASETS, "celeba", replace(registry.DATASETS["celeba"], heldout=3))
    monkeypatch.setenv("DCGAN_DATA", str(tmp_path / "data"))
    monkeypatch.setenv("DCGAN_MIRROR", str(tmp_path / "mirror"))
    train = store.load_training_images("celeba", "faces64", "cpu")
    held = data.heldout_of(train)
    assert len(train) == 9 and len(held) == 3 and not set(train.ids) & set(held.ids)
    assert sorted(train.ids + held.ids) == sorted(faces)
    splits = train.provenance()["splits"]
    assert splits["counts"] == {"all": 12, "removed": 0, "heldout": 3, "train": 9}
    assert splits["duplicates"] == {"list": None, "applied": False, "why": "celeba has no removal list"}
    assert not [w for w in recwarn if "de-duplicated" in str(w.message)]  # nothing to warn about: no list is due
    ref = store.reference_images(train, "smoke")
    assert ref.info["split"] == "heldout" and ref.info["dataset"] == "celeba" and set(ref.ids) <= set(held.ids)


def test_removal_list_is_applied_before_the_heldout_pick(bedrooms_mirror):
    from dcgan_lib.models import store

    original, copy = bedrooms_mirror.copies[0]
    removal_list(bedrooms_mirror.duplicates, [[original, copy]])
    train = store.load_training_images("bedrooms", "lsun64", "cpu")
    held = data.heldout_of(train)
    assert copy not in train.ids + held.ids and original in train.ids + held.ids  # the first of the group is kept
    assert len(train) + len(held) == 19 and len(held) == 4
    assert not set(train.ids) & set(held.ids)
    assert not set(data.content_digests(train.images)) & set(data.content_digests(held.images))  # by pixels too
    dup = train.provenance()["splits"]["duplicates"]
    assert dup["applied"] and dup["groups_sha256"] == datasets.groups_digest(json.loads(
        bedrooms_mirror.duplicates.read_text()))
    assert train.provenance()["splits"]["counts"]["removed"] == 1
    ref = store.reference_images(train, "smoke")
    assert ref.info["split"] == "heldout" and ref.info["dataset"] == "bedrooms" and len(ref) == 4
    assert set(ref.ids) <= set(held.ids)
    with pytest.raises(ValueError, match="never trained on"):
        store.load_training_images("bedrooms", "lsun64", "cpu", split="heldout")


def test_missing_removal_list_falls_back_loudly_and_is_recorded(bedrooms_mirror):
    with pytest.warns(UserWarning, match="NOT de-duplicated.*python -m dcgan_lib dedup --dataset bedrooms --split all"):
        train = data.prepare("bedrooms", 16, "train", progress=False)
    dup = train.provenance()["splits"]["duplicates"]
    assert dup["applied"] is False and "python -m dcgan_lib dedup" in dup["why"]
    removal_list(bedrooms_mirror.duplicates, [list(bedrooms_mirror.copies[0])])
    assert len(data.prepare("bedrooms", 16, "train", progress=False)) + 4 == 19  # a new list: the cache is rebuilt


def test_a_rescan_with_the_same_groups_keeps_the_cache(bedrooms_mirror):
    groups = [list(bedrooms_mirror.copies[0])]
    removal_list(bedrooms_mirror.duplicates, groups)
    first = data.prepare("bedrooms", 16, "train", progress=False)
    doc = json.loads(bedrooms_mirror.duplicates.read_text())
    doc["summary"]["images_per_s"] = 123.4  # a rescan's timing differs; its groups do not
    bedrooms_mirror.duplicates.write_text(json.dumps(doc, indent=1))
    cache = data.cache_path("bedrooms", "train", 16, None)
    before = cache.stat().st_mtime_ns
    again = data.prepare("bedrooms", 16, "train", progress=False)
    assert cache.stat().st_mtime_ns == before and again.ids == first.ids  # read back, not rebuilt
    removal_list(bedrooms_mirror.duplicates, [])  # other groups (none): rebuilt, the copy is back
    assert len(data.prepare("bedrooms", 16, "train", progress=False)) + len(data.prepare(
        "bedrooms", 16, "heldout", progress=False)) == len(first) + 4 + 1


@pytest.mark.parametrize("scanned, dataset", [({"split": "all", "limit": 5}, "bedrooms"),
                                              ({"split": "train", "limit": None}, "bedrooms"),
                                              ({"split": "all", "limit": None}, "bedrooms_3k")])
def test_a_removal_list_that_did_not_scan_every_image_is_refused(bedrooms_mirror, scanned, dataset):
    removal_list(bedrooms_mirror.duplicates, [list(bedrooms_mirror.copies[0])], scanned, dataset)
    with pytest.raises(ValueError, match="python -m dcgan_lib dedup --dataset bedrooms --split all"):
        data.prepare("bedrooms", 16, "train", progress=False)


def test_a_missing_part_names_the_command_that_fetches_it(bedrooms_mirror):
    (bedrooms_mirror.mirror / "bedrooms-places365-5100.tar.gz").unlink()
    with pytest.raises(registry.DatasetMissing, match="bedrooms-places365-5100.tar.gz.*"
                                                     "python -m dcgan_lib data fetch bedrooms"):
        data.prepare("bedrooms", 16, progress=False)


def test_heldout_pick_depends_on_ids_and_seed_only():
    ids = [f"img{i:03d}" for i in range(200)]
    a = datasets.assign_splits(ids, None, 20, seed=0)
    assert len(a["heldout"]) == 20 and a["heldout"] == sorted(a["heldout"]) and not a["removed"]
    assert sorted(a["train"] + a["heldout"]) == ids
    more = datasets.assign_splits(ids + ["img999"], None, 20, seed=0)  # a new image moves at most one other
    assert len(set(a["heldout"]) ^ set(more["heldout"])) <= 2
    assert datasets.assign_splits(ids, None, 20, seed=1)["heldout"] != a["heldout"]

    groups = {"format": datasets.GROUPS_FORMAT, "groups": [[a["heldout"][0], "img000"], ["img001", "img002", "img003"]]}
    b = datasets.assign_splits(ids, groups, 20, seed=0)
    assert set(b["removed"]) == {max(a["heldout"][0], "img000"), "img002", "img003"}
    assert not set(b["removed"]) & set(b["train"] + b["heldout"]) and len(b["heldout"]) == 20
    with pytest.raises(ValueError, match="cannot hold out"):
        datasets.assign_splits(ids[:10], None, 10, seed=0)


def test_empty_folders_left_by_a_failed_download_are_not_an_official_copy(tmp_path):
    """`data fetch` of a torchvision set can die after making its folders: the mirror must still be used."""
    spec = registry.get_spec("celeba_aligned")
    (tmp_path / "celeba" / "celeba").mkdir(parents=True)
    assert not registry.official_present(spec, tmp_path)
    (tmp_path / "celeba" / "celeba" / "img_align_celeba.zip").write_bytes(b"x")
    assert registry.official_present(spec, tmp_path)
