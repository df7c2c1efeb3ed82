"""The front page and RESULTS.md: generated from the records, in step with them, honest about each image."""
import dataclasses
import json
from pathlib import Path

import nbformat
import pytest

from dcgan_lib.config import profiles
from dcgan_lib.course import gallery, report
from dcgan_lib.records import results

ROOT = Path(__file__).resolve().parents[1]


def _record(figures, stem, device=None, **fields):
    fields.setdefault("metrics", {})
    path = results.write_record(stem, name=fields.pop("name", f"result {stem}"),
                                profile=fields.pop("profile", "cpu"), out_dir=figures, **fields)
    if device:
        path.write_text(json.dumps({**json.loads(path.read_text()), "device": device}))


def _readme(tmp_path, prose="front page prose\n"):
    readme = tmp_path / "README.md"
    readme.write_text(prose + "".join(f"{start}\nold\n{end}\n" for start, end in [
        (report.PROFILES_START, report.PROFILES_END), (report.MAP_START, report.MAP_END),
        (report.GALLERY_START, report.GALLERY_END)]) + "more prose\n")
    return readme


def test_readme_and_results_are_in_step_with_the_records():
    """What `python -m dcgan_lib report` would write now is what README.md and RESULTS.md hold."""
    if not (ROOT / ".git").exists():
        pytest.skip("not a git checkout: the records' commits (shown in RESULTS.md) cannot be checked")
    stale = report.stale(ROOT / "README.md", ROOT / "figures")
    assert not stale, f"{', '.join(stale)} out of step with figures/: run `python -m dcgan_lib report`"


def test_every_gallery_image_has_a_caption_written_from_it():
    """Someone opened each gallery image as it is now (its sha256 matches the caption's) and described it."""
    records = dict((p.stem, r) for p, r in report.load_records(ROOT / "figures"))
    unseen = []
    for entry in gallery.ENTRIES:
        for stem in entry.stems:
            png = report._image(ROOT / "figures", stem, records[stem]) if stem in records else None
            if png is not None and gallery.LOOKED.get(png.name, ("",))[0] != report.sha12(png):
                unseen.append(f"{png.name} (sha256 {report.sha12(png)})")
    assert not unseen, ("open these images and write their captions in dcgan_lib/course/gallery.py LOOKED: "
                        + ", ".join(unseen))


def _issue_refs_in_notebook(path: Path) -> list[str]:
    nb = nbformat.read(path, as_version=4)
    return [ref for cell in nb.cells for ref in report.internal_refs(cell.source)]


def test_no_internal_issue_numbers_in_readme_results_or_notebooks():
    """A reader of the course has no access to this project's tracker: "issue 11" means nothing to them."""
    found = {}
    for path in [ROOT / "README.md", ROOT / report.RESULTS_NAME]:
        if refs := report.internal_refs(path.read_text()):
            found[path.name] = refs
    for path in sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb")):
        if refs := _issue_refs_in_notebook(path):
            found[path.name] = refs
    assert not found, "say what the thing is instead of its issue number: " + json.dumps(found)


def test_internal_refs_finds_the_forms_used_and_nothing_else():
    text = "Speed (issues 7, 13); FID (issue 11); see Issue #4; issues 2 and 3. An issue with BatchNorm; 11 issues."
    assert report.internal_refs(text) == ["issues 7", "issue 11", "Issue #4", "issues 2"]
    assert report.public("# Speed (issues 7, 13)") == "# Speed"
    assert report.public("pytorch-fid (value as cited in issue 11)") == "pytorch-fid"
    assert report.public("(issues 11 and 13) kept (an issue with BN)") == " kept (an issue with BN)"


def test_generated_pages_carry_no_internal_issue_numbers(tmp_path):
    """Records and tables written by other code may name an issue; what the report generates never does."""
    figures = tmp_path / "figures"
    _record(figures, "fid_demo", metrics={"fid": 5.2}, paper={"fid": 3.15, "code": "pytorch-fid (value as cited in "
                                                                                   "issue 11)"})
    (figures / "bench.md").write_text("# Speed (issues 7, 13)\n\nratio 1.3\n")
    text = report.results_markdown(figures)
    assert "## Speed" in text and "ratio 1.3" in text and "code: pytorch-fid" in text
    assert report.internal_refs(text) == []
    readme = _readme(tmp_path)
    report.update_readme(readme, figures)
    assert report.internal_refs(readme.read_text()) == []


def test_update_writes_results_beside_readme_and_keeps_the_prose(tmp_path):
    figures = tmp_path / "figures"
    _record(figures, "table9_demo", name="demo probe", metrics={"accuracy": 0.5}, paper={"accuracy": 0.828})
    readme = _readme(tmp_path)
    assert report.stale(readme, figures) == ["README.md", report.RESULTS_NAME]
    report.update_readme(readme, figures)
    text, full = readme.read_text(), (tmp_path / report.RESULTS_NAME).read_text()
    assert text.startswith("front page prose\n") and text.endswith("more prose\n") and "old" not in text
    assert "demo probe" in full and "accuracy: 0.5" in full and "accuracy: 0.828" in full
    assert "demo probe" not in text  # the full table lives in RESULTS.md only
    assert report.stale(readme, figures) == []
    _record(figures, "table9_demo", name="demo probe", metrics={"accuracy": 0.6}, paper={"accuracy": 0.828})
    assert report.stale(readme, figures) == [report.RESULTS_NAME]  # a changed record makes it stale


def test_readme_without_a_marker_is_refused_saying_what_to_add(tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text(f"{report.MAP_START}\n{report.MAP_END}\n")
    with pytest.raises(ValueError, match="profiles:start"):
        report.update_readme(readme, tmp_path)
    assert not (tmp_path / report.RESULTS_NAME).exists()


def test_course_map_times_come_from_the_course_records(tmp_path):
    figures = tmp_path / "figures"
    _record(figures, "course_cpu", metrics={"notebook_wall_s": {"03_train_bedrooms": 324.2, "08_latent_walk": 8.2},
                                            "total_min": 5.54}, device="cpu: test machine")
    records = report.load_records(figures)
    rows = {line.split("](notebooks/")[1].split(".ipynb")[0]: line.split(" | ")
            for line in report.course_markdown(records).splitlines() if "](notebooks/" in line}
    column = report._profile_names().index("cpu") + 3
    assert rows["03_train_bedrooms"][column] == "5.4 min" and rows["08_latent_walk"][column] == "8 s"
    assert rows["01_architecture"][column] == "not measured"
    for name in report._profile_names():
        if name != "cpu":
            assert rows["03_train_bedrooms"][report._profile_names().index(name) + 3].startswith("not measured")
    assert "5.5 min on cpu: test machine" in report.profiles_markdown(records)
    badged = report.course_markdown(records, badge=lambda stem: f"[open {stem}](x)")
    assert "| open | notebook |" in badged and "| [open 12_face_pose](x) | [12_face_pose]" in badged


def test_a_course_timed_with_other_settings_says_so(tmp_path):
    figures = tmp_path / "figures"
    walls = {"notebook_wall_s": {"03_train_bedrooms": 324.2}, "total_min": 5.4}
    _record(figures, "course_cpu", metrics={**walls, "profile_digest": profiles.digest("cpu")}, device="cpu: m")
    current = report.load_records(figures)
    assert "changed since" not in report.profiles_markdown(current) + report.course_markdown(current)
    for stale in ({**walls, "profile_digest": profiles.digest("smoke")}, walls):  # other settings, or not said
        _record(figures, "course_cpu", metrics=stale, device="cpu: m")
        records = report.load_records(figures)
        assert "5.4 min on cpu: m, with the settings of commit" in report.profiles_markdown(records)
        assert "changed since: today's course takes a different time" in report.course_markdown(records)


def test_the_profile_digest_follows_every_knob():
    cpu = profiles.get_profile("cpu")
    assert profiles.digest("cpu") == profiles.digest(cpu) != profiles.digest("smoke")
    assert profiles.digest(dataclasses.replace(cpu, epochs={**cpu.epochs, ("celeba", "faces64"): 1})) != \
        profiles.digest(cpu)


def test_every_profile_is_described():
    assert set(profiles.PROFILES) <= set(report.PROFILE_NOTES)


def test_gallery_shows_the_paper_beside_ours_and_the_drawn_weights_quality(tmp_path, monkeypatch):
    figures = tmp_path / "figures"
    training = {"steps": 100, "fid": 321.7, "kid": 0.39, "kid_std": 0.002, "fid_samples": 500,
                "fid_real_images": 1000, "width": 0.25, "batch_size": 64}
    _record(figures, "walk", name="Fig. W", metrics={}, paper={"caption": "smooth transitions"},
            model={"path": "m.pt", "step": 100}, training=training, caption="0 jumps", verdict="matches")
    _record(figures, "early", name="Fig. E", metrics={"epoch": 1, "steps": 5}, paper={"caption": "after 1 epoch"},
            training=training)
    _record(figures, "own", name="Fig. O", metrics={}, training=training,
            quality={"weights": "snapshot after epoch 1", "fid": 400.0, "kid": 0.5, "samples": 200,
                     "real_images": 1000, "real_split": "heldout"})
    _record(figures, "none", name="Fig. N", metrics={}, training={**training, "kernel": 4},
            quality={"weights": "checkpoint at step 7", "fid": None, "note": "no FID/KID for exactly these"})
    png = figures / "walk.png"
    png.write_bytes(b"an image")
    monkeypatch.setattr(gallery, "ENTRIES", (gallery.Entry("Walks", ("walk", "early", "own", "none", "absent")),))
    monkeypatch.setattr(gallery, "NUMBERS", (gallery.Row("a row", "walk", "x", "", "pct"),))
    monkeypatch.setattr(gallery, "LOOKED", {"walk.png": (report.sha12(png), "blurry rooms")})
    text = report.gallery_markdown(figures)
    walk, early, own, none = (text.split(f"**Fig. {k}**")[1].split("**Fig.")[0] for k in "WEON")
    assert "**The paper:** smooth transitions." in walk and "0 jumps. Verdict: matches." in walk
    assert "FID 321.7, KID 0.390" in walk and "against 1,000 real images" in walk  # its split not recorded
    assert "not recorded" not in walk  # the drawn weights are the final ones
    assert "FID/KID of these weights not recorded (the final model, step 100: FID 321.7" in early
    # a figure's own quality comes first, naming the weights it scored
    assert "model quality: FID 400.0, KID 0.500, from 200 samples against 1,000 held-out images (snapshot after " in own
    assert "model quality: no FID/KID for exactly these" in none and "321.7" not in none
    assert "nets at 1/4 width, 4x4 kernels, batch 64" in none and "kernels" not in walk  # only an override is said
    assert "**By eye:** blurry rooms" in walk and "![Fig. W](figures/walk.png)" in text
    assert "**absent**: no record yet" in text and "profile `cpu`" in walk
    png.write_bytes(b"a regenerated image")
    assert "blurry rooms" not in report.gallery_markdown(figures)
    assert "not looked at yet" in report.gallery_markdown(figures)
