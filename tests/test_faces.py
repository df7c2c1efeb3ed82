"""Pose proposals from the profile-face cascade (helpers for Paper Fig. 8)."""
import itertools
import os

import numpy as np
import pytest

from dcgan_lib.figures import faces


def test_propose_orders_and_excludes():
    scores = np.array([0.1, 5.0, 3.0, -2.0, 4.0])
    assert faces.propose(scores, 2) == [1, 4]
    assert faces.propose(scores, 2, highest=False) == [3, 0]
    assert faces.propose(scores, 3, exclude=[1]) == [4, 2, 0]


def test_pose_of_a_blank_image_is_zero():
    assert faces.face_scores(np.full((64, 64, 3), 128, np.uint8)) == {"pose": 0.0}


def test_missing_cascade_is_a_clear_error():
    with pytest.raises(FileNotFoundError, match="cascade"):
        faces.load_cascade("no_such_thing")


@pytest.fixture(scope="module")
def celeba():
    if not os.environ.get("DCGAN_MIRROR"):
        pytest.skip("needs the offline mirror (DCGAN_MIRROR) for real faces")
    from dcgan_lib.data import data, datasets

    items = list(itertools.islice(datasets.iter_raw("celeba_aligned"), 301))  # every face, in file order
    pick = {"left": 74, "right": 60, "frontal": 300}  # 0-based: 000075.jpg etc.
    return {k: data.decode_image(items[i][1], 64) for k, i in pick.items()}


def test_pose_on_real_celeba_faces(celeba):
    pose = faces.score_faces(np.stack(list(celeba.values())), progress=False)["pose"]
    left, right, frontal = range(3)
    assert pose[left] > 2 and pose[right] < -2  # profile cascade: faces turned to viewer's left
    assert pose[right] < pose[frontal] < pose[left]


def test_pose_flips_sign_on_the_mirror_image(celeba):
    for img in celeba.values():
        a, b = faces.face_scores(img)["pose"], faces.face_scores(img[:, ::-1])["pose"]
        assert a == pytest.approx(-b, abs=1e-6)


def test_show_numbered_labels_every_sample_and_frames_candidates():
    import matplotlib

    matplotlib.use("Agg")
    from dcgan_lib.figures.plots import image_grid

    imgs = (np.arange(7, dtype=np.uint8)[:, None, None, None] * 30 + 10).repeat(8, 1).repeat(8, 2).repeat(3, 3)
    ax = faces.show_numbered(imgs, cols=3, highlight={"left": [0, 4], "right": [6]})
    np.testing.assert_array_equal(np.asarray(ax.images[0].get_array()), image_grid(imgs, 3, 2))
    grid = np.asarray(ax.images[0].get_array())

    def sample_at(x, y):  # the sample whose pixels lie under a point of the grid image
        return int(np.flatnonzero(imgs[:, 0, 0, 0] == grid[int(y), int(x), 0])[0])
    assert all(sample_at(*t.get_position()) == int(t.get_text()) for t in ax.texts)
    assert sorted(t.get_text() for t in ax.texts) == sorted(str(i) for i in range(7))
    framed = {}
    for r in ax.patches:  # each frame surrounds its sample: its centre lies on that sample's pixels
        x, y = r.get_x() + r.get_width() / 2, r.get_y() + r.get_height() / 2
        framed.setdefault(tuple(r.get_edgecolor()), []).append(sample_at(x, y))
    assert sorted(framed.values()) == [[0, 4], [6]]  # one colour per group
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["left", "right"]
