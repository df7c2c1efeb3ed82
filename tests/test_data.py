"""The data registry: official formats (CIFAR batches, LSUN lmdb), the mirror, bad files, checksums."""
import io
import pickle

import numpy as np
import pytest
import torch
from PIL import Image

from dcgan_lib import archives, data, datasets, registry
from dcgan_lib.train import BatchSampler


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
