"""Records can be rerun: portable paths, a clean commit that exists, and a README/`report --strict` that say so."""
import json
import subprocess
from pathlib import Path

import pytest

from dcgan_lib.cli import main
from dcgan_lib.course import report
from dcgan_lib.records import results


def _strings(value):
    """Every string (keys and values) in a JSON value."""
    if isinstance(value, dict):
        for k, v in value.items():
            yield k
            yield from _strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from _strings(v)
    elif isinstance(value, str):
        yield value


def test_record_paths_are_relative_to_the_project_data_root_or_mirror(tmp_path, monkeypatch):
    data_root, mirror, elsewhere = tmp_path / "store", tmp_path / "mirror", tmp_path / "scratch"
    monkeypatch.setenv("DCGAN_DATA", str(data_root))
    monkeypatch.setenv("DCGAN_MIRROR", str(mirror))
    model = results.ROOT / "runs" / "models" / "bedrooms_lsun64_cpu" / "checkpoint.pt"
    path = results.write_record(
        "demo", name="demo", profile="cpu", out_dir=tmp_path / "figures",
        metrics={"n": 3, "checkpoint": model, "ids": [str(data_root / "cache" / "x.npy"), "img/s"]},
        data={"dataset": f"folder:{mirror / 'faces'}", "path": data_root / "archives" / "celeba-10k.tar.gz",
              "mirror": str(mirror / "celeba-10k.tar.gz"), "source": "mirror: celeba-10k.tar.gz"},
        trained_on={"run": str(model.parent / "run.json"), "log": f"wrote {model} and {model.parent}/log.csv",
                    "scratch": elsewhere / "tmp.png", "root": results.ROOT})
    record = results.read_record(path)
    assert record["metrics"]["checkpoint"] == "runs/models/bedrooms_lsun64_cpu/checkpoint.pt"
    assert record["metrics"]["ids"] == ["$DCGAN_DATA/cache/x.npy", "img/s"]
    assert record["data"]["path"] == "$DCGAN_DATA/archives/celeba-10k.tar.gz"
    assert record["data"]["mirror"] == "$DCGAN_MIRROR/celeba-10k.tar.gz"
    assert record["data"]["dataset"] == "folder:$DCGAN_MIRROR/faces"
    assert record["data"]["source"] == "mirror: celeba-10k.tar.gz"  # not a path: untouched
    assert record["trained_on"]["run"] == "runs/models/bedrooms_lsun64_cpu/run.json"
    assert record["trained_on"]["log"] == ("wrote runs/models/bedrooms_lsun64_cpu/checkpoint.pt and "
                                           "runs/models/bedrooms_lsun64_cpu/log.csv")
    assert record["trained_on"]["scratch"] == "<outside>/tmp.png"
    assert record["trained_on"]["root"] == "."
    machine = (str(tmp_path), str(results.ROOT), str(Path.home()))
    assert not [s for s in _strings(record) if any(m in s for m in machine)]


def test_project_data_root_is_written_project_relative(tmp_path, monkeypatch):
    monkeypatch.delenv("DCGAN_DATA", raising=False)
    path = results.write_record("demo", name="demo", profile="cpu", out_dir=tmp_path, metrics={},
                                data={"path": results.ROOT / "data" / "archives" / "svhn-mirror.tar.gz"})
    assert results.read_record(path)["data"]["path"] == "data/archives/svhn-mirror.tar.gz"


def git(repo, *args):
    return subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *args], cwd=repo, check=True,
                          capture_output=True, text=True).stdout.strip()


@pytest.fixture
def repo(tmp_path, monkeypatch):
    """A throwaway git repository that results.ROOT points at."""
    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "-q")
    (repo / "code.py").write_text("x = 1\n")
    (repo / ".gitignore").write_text("figures/\n")
    git(repo, "add", ".")
    git(repo, "commit", "-q", "-m", "one")
    monkeypatch.setattr(results, "ROOT", repo)
    return repo


def test_git_commit_marks_uncommitted_code_dirty_but_not_new_outputs(repo):
    head = git(repo, "rev-parse", "HEAD")
    assert results.git_commit() == head
    (repo / "figure.png").write_bytes(b"an output")  # an untracked output: still clean
    assert results.git_commit() == head
    (repo / "new_module.py").write_text("y = 2\n")  # untracked code the commit lacks
    assert results.git_commit() == head + "+dirty"
    (repo / "new_module.py").unlink()
    (repo / "code.py").write_text("x = 2\n")
    assert results.git_commit() == head + "+dirty"


def test_git_commit_outside_a_repository_is_unknown(tmp_path, monkeypatch):
    monkeypatch.setattr(results, "ROOT", tmp_path)
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path.parent))
    assert results.git_commit() == "unknown"


def test_git_commit_of_a_copied_tree_is_the_one_it_was_copied_from(tmp_path, monkeypatch):
    """A device machine gets a copy of the tree (its own .git, if any, is older): the caller names the commit
    and its code digest; the copy is that commit only while its code still has that digest."""
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "a.py").write_text("x = 1\n")
    (tmp_path / "runs").mkdir()
    monkeypatch.setattr(results, "ROOT", tmp_path)
    sha = "0123456789abcdef0123456789abcdef01234567"
    monkeypatch.setenv("DCGAN_COMMIT", sha)
    assert results.git_commit() == sha + "+dirty"  # no digest given: nothing vouches for the copy
    monkeypatch.setenv("DCGAN_CODE_DIGEST", results.code_digest(tmp_path))
    assert results.git_commit() == sha
    (tmp_path / "runs" / "log.py").write_text("outputs")  # outputs never count
    (tmp_path / "figures").mkdir()
    (tmp_path / "figures" / "plot.py").write_text("outputs")
    assert results.git_commit() == sha
    (tmp_path / "pkg" / "a.py").write_text("x = 2\n")  # a code change does
    assert results.git_commit() == sha + "+dirty"
    (tmp_path / "pkg" / "a.py").write_text("x = 1\n")
    (tmp_path / "pkg" / "b.py").write_text("")  # so does a new code file
    assert results.git_commit() == sha + "+dirty"


def _write(figures, stem, commit, **extra):
    path = results.write_record(stem, name=f"result {stem}", profile="cpu", metrics={"accuracy": 0.5},
                                out_dir=figures, **extra)
    record = json.loads(path.read_text())
    if commit is None:
        del record["commit"]
    else:
        record["commit"] = commit
    path.write_text(json.dumps(record))


def test_readme_flags_and_strict_report_refuses_records_that_cannot_be_rerun(repo, capsys):
    head = git(repo, "rev-parse", "HEAD")
    figures = repo / "figures"
    _write(figures, "clean", head)
    _write(figures, "dirty", head + "+dirty")
    _write(figures, "unknown", "unknown")
    _write(figures, "missing", "0123456789abcdef0123456789abcdef01234567")
    _write(figures, "nocommit", None)
    _write(figures, "nested", head, trained_on={"checkpoint": "runs/x.pt", "commit": head + "+dirty"})
    bad = {"dirty.json", "unknown.json", "missing.json", "nocommit.json", "nested.json"}

    problems = report.record_problems(report.load_records(figures))
    assert set(problems) == bad
    assert "dirty" in problems["dirty.json"][0] and "not in this repository" in problems["missing.json"][0]
    assert problems["nested.json"] == ["trained_on.commit: dirty (made from uncommitted changes)"]

    text = report.results_markdown(figures)
    rows = {line.split("](figures/")[1].split(")")[0]: line for line in text.splitlines() if "](figures/" in line}
    assert "NOT RERUNNABLE" not in rows["clean.json"] and rows["clean.json"].endswith(f"| {head[:8]} |")
    for name in bad:
        assert "NOT RERUNNABLE" in rows[name]
        assert f"`{name}`" in text  # listed in the warning above the table
    assert "+dirty" in rows["dirty.json"]  # the short commit keeps its +dirty mark
    assert f"{len(bad)} of 6 records cannot be rerun" in text

    readme, results_md = repo / "README.md", repo / report.RESULTS_NAME
    before = "".join(f"{start}\nold\n{end}\n" for start, end in [(report.PROFILES_START, report.PROFILES_END),
                                                                   (report.MAP_START, report.MAP_END),
                                                                   (report.GALLERY_START, report.GALLERY_END)])
    readme.write_text(before)
    assert main(["report", "--strict", "--figures", str(figures), "--readme", str(readme)]) == 2
    err = capsys.readouterr().err
    assert all(name in err for name in bad) and "clean.json" not in err
    assert readme.read_text() == before and not results_md.exists()  # refused: nothing written
    for name in bad:
        (figures / name).unlink()
    assert main(["report", "--strict", "--figures", str(figures), "--readme", str(readme)]) == 0
    assert "result clean" in results_md.read_text() and "NOT RERUNNABLE" not in results_md.read_text()
    assert "old" not in readme.read_text() and report.stale(readme, figures) == []


def test_changed_tracked_figures_do_not_make_a_record_dirty(repo):
    """A notebook saves its figures (tracked files in figures/) before it writes their record."""
    (repo / ".gitignore").write_text("")
    (repo / "figures").mkdir()
    (repo / "figures" / "fig.png").write_bytes(b"old")
    git(repo, "add", ".")
    git(repo, "commit", "-q", "-m", "figures")
    head = git(repo, "rev-parse", "HEAD")
    (repo / "figures" / "fig.png").write_bytes(b"new")  # rewritten by the run that writes the record
    (repo / "figures" / "new.py").write_text("")  # anything under figures/ is output
    assert results.git_commit() == head
    (repo / "code.py").write_text("x = 3\n")  # code still counts
    assert results.git_commit() == head + "+dirty"


def test_every_committed_record_names_a_clean_commit_of_this_repository():
    """The figures shipped in the repository can all be rerun as recorded (what `report --strict` checks)."""
    root = Path(__file__).resolve().parents[1]
    if not (root / ".git").exists():
        pytest.skip("not a git checkout: commits cannot be checked")
    records = report.load_records(root / "figures")
    assert records, "no committed records found"
    problems = report.record_problems(records, root)
    assert not problems, report.problems_text(problems)


def test_a_cpu_is_named_by_its_model(monkeypatch):
    monkeypatch.setattr(results, "cpu_model", lambda: "Test CPU 9000")
    assert results.device_name("cpu").startswith("cpu: Test CPU 9000, ")
    monkeypatch.setattr(results, "cpu_model", lambda: None)  # a system that does not say: the architecture
    assert results.device_name("cpu").startswith("cpu: ") and "None" not in results.device_name("cpu")
