"""Open in Colab: every notebook's badge and Colab install cell agree with the one URL in pyproject.toml."""
import json
import shutil
import sys

import pytest

from dcgan_lib.cli import main
from dcgan_lib.course import colab, course


@pytest.mark.parametrize("stem", [lesson.stem for lesson in course.LESSONS])
def test_notebook_badge_and_install_cell_agree_with_pyproject(stem):
    """Fix a failure with `python -m dcgan_lib colab --sync` (it rewrites both from [project.urls])."""
    assert colab.problems(course.notebook_path(stem)) == []


def test_sync_writes_from_the_url_and_the_check_follows_it(tmp_path, monkeypatch):
    nb = tmp_path / "08_latent_walk.ipynb"
    shutil.copy(course.notebook_path("08_latent_walk"), nb)
    moved = "https://github.com/someone/dcgan"
    assert colab.sync(nb, moved)
    assert colab.problems(nb, moved) == [] and len(colab.problems(nb, colab.repo_url())) == 2  # badge + cell
    cells = json.loads(nb.read_text())["cells"]
    assert "github/someone/dcgan/blob/main/notebooks/08_latent_walk.ipynb" in "".join(cells[0]["source"])
    code = [c for c in cells if c["cell_type"] == "code"]
    assert "".join(code[0]["source"]).startswith(colab.MARKER) and "parameters" in code[1]["metadata"]["tags"]
    assert not colab.sync(nb, moved)  # idempotent: one badge, one install cell
    assert [c["id"] for c in json.loads(nb.read_text())["cells"]] == [str(i) for i in range(len(cells))]
    with pytest.raises(ValueError, match="not https://github.com/OWNER/REPO"):
        colab.badge("08_latent_walk", "https://gitlab.com/a/b")


def test_install_cell_does_nothing_off_colab_and_installs_on_it(monkeypatch):
    """Off Colab the cell is a no-op; on Colab it clones, installs and fetches this notebook's datasets."""
    calls = []
    import os
    import subprocess

    monkeypatch.setattr(subprocess, "run", lambda cmd, check: calls.append(cmd))
    monkeypatch.setattr(os, "chdir", lambda path: calls.append(["chdir", path]))
    monkeypatch.setattr(os.path, "isdir", lambda path: False)
    source = colab.install_cell("03_train_bedrooms", "https://github.com/o/r")
    exec(source, {})  # noqa: S102
    assert calls == []  # not on Colab
    monkeypatch.setitem(sys.modules, "google.colab", object())
    monkeypatch.setattr(sys, "path", list(sys.path))
    exec(source, {})  # noqa: S102
    assert calls[0][:4] == ["git", "clone", "--depth", "1"] and calls[0][4] == "https://github.com/o/r"
    assert calls[1][-2:] == ["-e", colab.CLONE_DIR] and calls[2] == ["chdir", colab.CLONE_DIR]
    assert [c[-1] for c in calls[3:]] == list(course.lesson("03").data)


def test_colab_command_checks_and_names_the_fix(capsys):
    code = main(["colab", "--only", "00", "01"])
    out = capsys.readouterr().out
    assert code == 0 and "2 of 2 notebook(s) agree" in out
