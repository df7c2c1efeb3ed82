"""Official downloads with the network faked: checksums refuse a bad file, CelebA (gdown) and LFW (scikit-learn) land
where the registry's readers read them."""
import hashlib
import io
import tarfile
import zipfile

import numpy as np
import pytest
from PIL import Image

from dcgan_lib.data import archives, data, datasets, registry


@pytest.fixture
def data_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("DCGAN_DATA", str(tmp_path / "data"))
    monkeypatch.delenv("DCGAN_MIRROR", raising=False)
    return tmp_path / "data"


def jpeg(seed: int, size=(40, 30)) -> bytes:
    img = Image.fromarray(np.random.default_rng(seed).integers(0, 256, (size[1], size[0], 3), dtype=np.uint8))
    buf = io.BytesIO()
    img.save(buf, format="JPEG")
    return buf.getvalue()


def fake_download(monkeypatch, payload: bytes) -> list[str]:
    """Replace the registry's downloader: every URL 'downloads' `payload`; returns the URLs asked for."""
    asked = []

    def download(url, folder, filename):
        asked.append(url)
        folder.mkdir(parents=True, exist_ok=True)
        (folder / filename).write_bytes(payload)
        return folder / filename
    monkeypatch.setattr(registry, "_download", download)
    return asked


@pytest.mark.parametrize("name, archive", [("lsun_bedroom", "bedroom_train_lmdb.zip"),
                                           ("tiny_imagenet", "tiny-imagenet-200.zip")])
def test_a_download_that_differs_from_the_published_checksum_is_refused(data_dir, monkeypatch, name, archive):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("tiny-imagenet-200/wnids.txt", "n01443537\n")  # a well-formed zip, just not the release
    asked = fake_download(monkeypatch, buf.getvalue())
    with pytest.raises(archives.ChecksumMismatch, match="expected the published"):
        datasets.fetch(name, official=True)
    assert asked and asked[0].endswith(archive)
    root = data_dir / "official" / registry.get_spec(name).official_dir
    assert list(root.iterdir()) == []  # the bad file is deleted and nothing was extracted
    with pytest.raises(registry.DatasetMissing):
        datasets.find_source(name, auto_fetch=False)


def test_url_fetch_extracts_a_matching_download_and_warns_when_unverified(tmp_path, monkeypatch, capsys):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("pack/a.txt", "hello")
    payload = buf.getvalue()
    fake_download(monkeypatch, payload)
    url = "http://example.org/pack.zip"
    registry._url_fetch(url, sha256=hashlib.sha256(payload).hexdigest())(tmp_path / "a")
    registry._url_fetch(url, hashlib.md5(payload).hexdigest())(tmp_path / "b")
    assert (tmp_path / "a" / "pack" / "a.txt").read_text() == "hello" == (tmp_path / "b" / "pack" / "a.txt").read_text()
    assert "UNVERIFIED" not in capsys.readouterr().out
    registry._url_fetch(url)(tmp_path / "c")
    assert "pack.zip is UNVERIFIED" in capsys.readouterr().out
    assert (tmp_path / "c" / "pack" / "a.txt").read_text() == "hello"


def test_official_celeba_downloads_through_gdown_into_the_readers_folder(data_dir, monkeypatch):
    import gdown  # a dependency: torchvision's CelebA download needs it
    from torchvision.datasets import celeba

    photos = {f"{i:06d}.jpg": jpeg(i) for i in (1, 2, 3)}
    zbuf = io.BytesIO()
    with zipfile.ZipFile(zbuf, "w") as z:
        for name, b in photos.items():
            z.writestr(f"img_align_celeba/{name}", b)
    rows = "".join(f"{n} 1\n" for n in photos)
    files = {"img_align_celeba.zip": zbuf.getvalue(),  # the annotation files torchvision parses, in their format
             "list_eval_partition.txt": rows.encode(), "identity_CelebA.txt": rows.encode(),
             "list_attr_celeba.txt": f"3\nSmiling\n{rows}".encode(),
             "list_bbox_celeba.txt": ("3\nimage_id x_1 y_1 width height\n"
                                      + "".join(f"{n} 1 2 3 4\n" for n in photos)).encode(),
             "list_landmarks_align_celeba.txt": ("3\nlefteye_x lefteye_y\n"
                                                 + "".join(f"{n} 5 6\n" for n in photos)).encode()}
    monkeypatch.setattr(celeba.CelebA, "file_list",
                        [(f"id-{f}", hashlib.md5(b).hexdigest(), f) for f, b in files.items()])
    fetched = []

    def download(id, output, **kwargs):
        fetched.append(id)
        with open(output, "wb") as f:
            f.write(files[id[len("id-"):]])
    monkeypatch.setattr(gdown, "download", download)

    src = datasets.fetch("celeba", official=True)  # the faces stand-in fetches its part, celeba_aligned
    assert src.parts[0].kind == "official" and sorted(fetched) == sorted(f"id-{f}" for f in files)
    images = data.prepare("celeba_aligned", 16, progress=False)
    assert [i.rsplit("/", 1)[1] for i in images.ids] == sorted(photos)
    for item_id, img in zip(images.ids, images.images, strict=True):
        np.testing.assert_array_equal(img, data.decode_image(photos[item_id.rsplit("/", 1)[1]], 16))


def test_official_lfw_downloads_through_scikit_learn_into_the_readers_folder(data_dir, monkeypatch):
    from sklearn.datasets import _lfw

    photos = {"Ada_Lovelace/Ada_Lovelace_0001.jpg": jpeg(1, (50, 50)),
              "Ada_Lovelace/Ada_Lovelace_0002.jpg": jpeg(2, (50, 50)),
              "Alan_Turing/Alan_Turing_0001.jpg": jpeg(3, (50, 50))}
    tbuf = io.BytesIO()
    with tarfile.open(fileobj=tbuf, mode="w:gz") as tar:  # lfw.tgz's layout: lfw/<Person>/<Person>_NNNN.jpg
        for name, b in photos.items():
            info = tarfile.TarInfo(f"lfw/{name}")
            info.size = len(b)
            tar.addfile(info, io.BytesIO(b))
    fetched = []

    def fetch_remote(remote, dirname=None, n_retries=3, delay=1):
        fetched.append(remote.filename)
        path = f"{dirname}/{remote.filename}"
        with open(path, "wb") as f:
            f.write(tbuf.getvalue() if remote.filename == "lfw.tgz" else b"10\n")
        return path
    monkeypatch.setattr(_lfw, "_fetch_remote", fetch_remote)

    src = datasets.fetch("lfw", official=True)
    assert src.kind == "official" and "lfw.tgz" in fetched  # the original photos, not the funneled set
    images = data.prepare("lfw", 32, progress=False)
    reader_dir = str(data_dir / "official" / "lfw" / "lfw_home" / "lfw") + "/"  # sklearn's lfw_home layout
    assert all(i.startswith(reader_dir) for i in images.ids)
    got = {i[len(reader_dir):]: img for i, img in zip(images.ids, images.images, strict=True)}
    assert sorted(got) == sorted(photos)
    for name, img in got.items():
        np.testing.assert_array_equal(img, data.decode_image(photos[name], 32))


@pytest.mark.parametrize("name, archive", [("bedrooms_places365", "bedrooms-places365-5100.tar.gz"),
                                           ("bedrooms_3k", "bedrooms-3k.tar.gz")])
def test_mirror_only_bedrooms_name_their_archive_and_the_fetch_command(data_dir, name, archive):
    """The bedrooms stand-in's parts exist only in the mirror (Places365's bedrooms are inside a 100 GB
    all-class archive): asking for them says which archive to put in the mirror and which command copies it."""
    with pytest.raises(registry.DatasetMissing, match=f"{archive}.*python -m dcgan_lib data fetch {name}"):
        datasets.find_source(name)
    with pytest.raises(registry.DatasetMissing, match=f"set DCGAN_MIRROR to a folder holding {archive}"):
        datasets.fetch(name, official=True)
    with pytest.raises(registry.DatasetMissing, match=f"{archive}.*python -m dcgan_lib data fetch bedrooms"):
        data.prepare("bedrooms", 16, progress=False)
