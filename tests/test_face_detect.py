"""The §4.2 face pipeline: Haar detection, the size floor, crops, and a trainable crop folder."""
import itertools
import os
from pathlib import Path

import numpy as np
import pytest

from dcgan_lib.data import data, datasets
from dcgan_lib.figures import face_detect as fd

MIRROR = os.environ.get("DCGAN_MIRROR")


@pytest.fixture(scope="module")
def lfw_photos():
    if not (MIRROR and (Path(MIRROR) / "lfw-3k.tar.gz").exists()):
        pytest.skip("needs DCGAN_MIRROR with lfw-3k.tar.gz")
    return [(i, data.decode_image(b)) for i, b in itertools.islice(datasets.iter_raw("lfw"), 6)]


def test_crop_box_centres_the_box_and_stays_inside():
    image = np.zeros((100, 120, 3), np.uint8)
    image[40:60, 50:70] = 255  # a white 20x20 "face"
    crop = fd.crop_box(image, (50, 40, 20, 20), margin=0.5, size=16)
    assert crop.shape == (16, 16, 3)
    assert crop[8, 8].min() == 255 and crop[0, 0].max() == 0  # box in the middle, margin around it
    corner = fd.crop_box(image, (0, 0, 30, 30), margin=0.5, size=16)  # margin would leave the photo
    assert corner.shape == (16, 16, 3)
    huge = fd.crop_box(image, (10, 10, 90, 90), margin=0.5, size=16)  # box + margin wider than the photo
    assert huge.shape == (16, 16, 3)


def test_no_faces_in_a_flat_image_and_wrong_dtype_is_refused():
    flat = np.full((150, 150, 3), 128, np.uint8)
    assert len(fd.detect(flat)) == 0
    with pytest.raises(ValueError, match="uint8"):
        fd.detect(flat.astype(np.float32))


def test_scan_counts_bad_files_and_no_faces():
    flat = np.full((80, 80, 3), 90, np.uint8)
    result = fd.scan_photos([("a", b"not an image"), ("b", flat)], progress=False)
    c = result.counts()
    assert c["photos"] == 2 and c["bad_files"] == 1 and c["photos_without_face"] == 1 and c["kept"] == 0
    assert result.crops.shape == (0, 64, 64, 3)


def test_detects_faces_in_real_photos_and_the_size_floor_filters(lfw_photos):
    result = fd.scan_photos(lfw_photos, progress=False)
    c = result.counts()
    assert c["photos_with_face"] >= 4  # LFW photos are centred on a detectable face
    assert c["detections"] == c["kept"] + c["rejected_too_small"]
    assert result.crops.shape == (c["kept"], 64, 64, 3) and len(result.crop_ids) == c["kept"]
    for boxes in result.boxes.values():
        assert (np.diff(boxes[:, 2]) <= 0).all()  # widest first
    strict = fd.scan_photos(lfw_photos, fd.DetectConfig(min_face=10_000), progress=False)
    assert strict.kept == 0 and strict.too_small == c["detections"]
    loose = fd.scan_photos(lfw_photos, fd.DetectConfig(min_face=0, size=32), progress=False)
    assert loose.kept == c["detections"] and loose.crops.shape[1:] == (32, 32, 3)


def test_crop_folder_is_a_trainable_dataset(lfw_photos, tmp_path, monkeypatch):
    monkeypatch.setenv("DCGAN_DATA", str(tmp_path / "data"))
    result = fd.scan_photos(lfw_photos, progress=False)
    folder = fd.write_folder(result, tmp_path / "faces")
    assert (tmp_path / "faces.csv").read_text().count("\n") == result.kept + 1
    images = data.prepare(f"folder:{folder}", 64, progress=False)
    assert len(images) == result.kept and images.info["bad"] == 0
    np.testing.assert_array_equal(np.asarray(images.images), result.crops)  # PNG is lossless
    again = fd.write_folder(fd.scan_photos(lfw_photos[:1], progress=False), folder)
    assert len(list(again.glob("face_*.png"))) <= 2  # a rerun replaces old crops


def test_figure_draws(lfw_photos):
    import matplotlib.pyplot as plt

    result = fd.scan_photos(lfw_photos, fd.DetectConfig(min_face=70), progress=False)
    assert result.examples
    fig = fd.detection_figure(result, fd.DetectConfig(min_face=70), n_crops=8)
    assert len(fig.axes) == len(result.examples) + 1
    plt.close(fig)
