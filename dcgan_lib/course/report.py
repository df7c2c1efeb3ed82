"""README's front page and RESULTS.md, generated from the JSON records in figures/ (never typed by hand).

README.md keeps its prose; `update_readme` rewrites the parts between its markers: the profiles table, the
course map (each notebook's time at each profile, from the course records) and the gallery (the key figures
beside the paper's claim, dcgan_lib.course.gallery). RESULTS.md, beside it, is wholly generated: every record, the
markdown tables and every figure. `stale` says which of the two no longer match the records.
"""
from __future__ import annotations

import hashlib
import json
import re
import subprocess
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path

from dcgan_lib.config import profiles
from dcgan_lib.config.paths import ROOT
from dcgan_lib.course import gallery
from dcgan_lib.course.course import LESSONS
from dcgan_lib.records import results

PROFILES_START, PROFILES_END = "<!-- profiles:start -->", "<!-- profiles:end -->"
MAP_START, MAP_END = "<!-- course:start -->", "<!-- course:end -->"
GALLERY_START, GALLERY_END = "<!-- gallery:start -->", "<!-- gallery:end -->"
RESULTS_NAME = "RESULTS.md"

# What each profile is for and what it costs: the targets it is built to, not results (those are the course
# records' times). One entry per profile in profiles.PROFILES (a test checks).
PROFILE_NOTES = {
    "smoke": ("CI, `make test`, quick checks", "2 CPU cores", "every notebook in well under a minute; checks the "
              "plumbing and the shape of every result, never writes figures/"),
    "cpu": ("a laptop without a GPU", "2 CPU cores, no download beyond the data", "the whole course in one sitting; "
            "widths and epochs chosen by measured quality per CPU-second"),
    "gpu": ("one GPU: Colab's T4, a workstation card, Apple silicon", "one GPU",
            "the paper's full-width nets and recipe on the mirror's or official small data: about an hour on a T4, "
            "about ten minutes on an H100/H200"),
    "paper": ("the paper's own settings", "GPUs and the paper's data (LSUN bedrooms, ImageNet-1k)",
              "the paper's nets, data and epochs: days; only when asked for"),
}

# "issue N", "issues N, M", "Issue #N" with N a number: this project's own tracker, meaningless to a reader
INTERNAL_REF = re.compile(r"\bissues?\s*#?\d+", re.I)
_REF_IN_PARENS = re.compile(r"\s*\([^()]*\bissues?\s*#?\d+(?:(?:\s*,\s*|\s+and\s+)#?\d+)*\)", re.I)


def internal_refs(text: str) -> list[str]:
    """Every reference to one of the project's own issue numbers in `text`."""
    return INTERNAL_REF.findall(text)


def public(text: str) -> str:
    """`text` without parenthesised references to the project's own issues ("Speed (issues N, M)" -> "Speed")."""
    return _REF_IN_PARENS.sub("", text)


def _replace(text: str, start: str, end: str, body: str) -> str:
    if start not in text or end not in text:
        raise ValueError(f"README.md has no {start} ... {end} markers; add them where that section goes")
    return re.sub(re.escape(start) + ".*?" + re.escape(end), lambda _: f"{start}\n{body}{end}", text, flags=re.S)


def _fmt(value) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, (list, dict)):
        text = json.dumps(value)
        return text if len(text) <= 60 else text[:57] + "..."
    return str(value)


def _data(record: dict) -> str:
    d = record.get("data") or {}
    if isinstance(d, dict) and d:
        name = d.get("dataset", "")
        source = d.get("source", "")
        return f"{name} ({source})" if source else str(name)
    return "-"


def load_records(folder: Path | None = None) -> list[tuple[Path, dict]]:
    """Every record in figures/, sorted by file name."""
    folder = folder or ROOT / "figures"
    out = []
    for path in sorted(folder.glob("*.json")):
        try:
            record = json.loads(path.read_text())
        except json.JSONDecodeError:
            continue
        if isinstance(record, dict) and "metrics" in record:
            out.append((path, record))
    return out


def commit_problem(commit, repo: Path | None = None) -> str | None:
    """Why a record's commit cannot be rerun (dirty, unknown, not in this repository), or None if it can."""
    commit = str(commit or "")
    if commit.endswith("+dirty"):
        return "dirty (made from uncommitted changes)"
    if not re.fullmatch(r"[0-9a-f]{7,40}", commit):
        return f"unknown commit {commit!r}"
    found = subprocess.run(["git", "cat-file", "-e", f"{commit}^{{commit}}"], cwd=repo or results.ROOT,
                           capture_output=True)
    return None if found.returncode == 0 else f"commit {commit[:12]} is not in this repository"


def _commits(value, where: str = "") -> list[tuple[str, object]]:
    """Every (key path, value) of a 'commit' key in a record, the top-level one first."""
    out = []
    if isinstance(value, dict):
        for key, v in value.items():
            path = f"{where}.{key}" if where else str(key)
            out += [(path, v)] if key == "commit" else _commits(v, path)
    elif isinstance(value, list):
        for i, v in enumerate(value):
            out += _commits(v, f"{where}[{i}]")
    return out


def record_problems(records: list[tuple[Path, dict]], repo: Path | None = None) -> dict[str, list[str]]:
    """{record file name: [problem, ...]} for records that do not name a clean commit of this repository.

    Checks the record's own commit and any nested one (the run a model came from); a record with no
    commit at all is a problem too.
    """
    seen: dict[str, str | None] = {}
    out: dict[str, list[str]] = {}
    for path, record in records:
        commits = _commits(record)
        if "commit" not in record:
            commits.insert(0, ("commit", None))
        for key, commit in commits:
            if str(commit) not in seen:
                seen[str(commit)] = commit_problem(commit, repo)
            if seen[str(commit)]:
                out.setdefault(path.name, []).append(f"{key}: {seen[str(commit)]}")
    return out


def problems_text(problems: dict[str, list[str]]) -> str:
    """One line per record that cannot be rerun as recorded."""
    return "\n".join(f"{name}: {'; '.join(why)}" for name, why in problems.items())


def _scalars(values: dict, keys: list[str] | None = None, most: int = 4) -> str:
    """The short scalar entries of a dict (numbers and short strings), at most `most` of them."""
    keys = keys if keys is not None else list(values)
    picked = [k for k in keys if isinstance(values.get(k), (int, float)) and not isinstance(values.get(k), bool)
              or isinstance(values.get(k), str) and len(values[k]) <= 40]
    return "; ".join(f"{k}: {_fmt(values[k])}" for k in picked[:most]) or "see record"


# ---- small formatters ------------------------------------------------------------------------------------------

def _minutes(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 90 else f"{seconds / 60:.1f} min"


def _width(width: float) -> str:
    return "full width" if width == 1 else f"{Fraction(width).limit_denominator(64)} width"


def _pct(value: float) -> str:
    return f"{100 * value:.2f}%"


def _short_commit(record: dict) -> str:
    commit = str(record.get("commit", ""))
    return commit[:8] + ("+dirty" if commit.endswith("+dirty") else "")


def _by_stem(records: list[tuple[Path, dict]]) -> dict[str, dict]:
    return {path.stem: record for path, record in records}


# ---- README: profiles ------------------------------------------------------------------------------------------

def _course_record(by_stem: dict[str, dict], profile: str) -> dict | None:
    return by_stem.get(f"course_{profile}")


def _settings_changed(course: dict, profile: str) -> bool:
    """Whether a course record was timed with other settings than the profile has now (or did not say which)."""
    return course["metrics"].get("profile_digest") != profiles.digest(profile)


def _changed_note(course: dict) -> str:
    return f"the settings of commit {_short_commit(course)}, changed since"


def _profile_names() -> list[str]:
    """The profiles of profiles.PROFILES, in PROFILE_NOTES' order (the cheapest first)."""
    order = list(PROFILE_NOTES)
    return sorted(profiles.PROFILES, key=lambda n: order.index(n) if n in order else len(order))


def profiles_markdown(records: list[tuple[Path, dict]]) -> str:
    """The profiles table: what each is for and needs, its nets and data (from profiles.py), its budget, and
    the whole course's measured time (from its course record, figures/course_<profile>.json)."""
    by_stem = _by_stem(records)
    lines = ["| profile | for | needs | nets and data | budget | whole course, measured |", "|---" * 6 + "|"]
    for name in _profile_names():
        prof = profiles.PROFILES[name]
        where, needs, budget = PROFILE_NOTES.get(name, ("?", "?", "not described: add it to report.PROFILE_NOTES"))
        data = "the paper's datasets" if prof.paper_data else "the mirror's or official small datasets"
        if prof.max_images:
            data += f", at most {prof.max_images:,} images each"
        course = _course_record(by_stem, name)
        measured = (f"{_minutes(60 * course['metrics']['total_min'])} on {course.get('device', '?')}"
                    + (f", with {_changed_note(course)}" if _settings_changed(course, name) else "")
                    if course else "not measured")
        lines.append(f"| `{name}` | {where} | {needs} | {_width(prof.width)}, batch {prof.batch_size}; {data} | "
                     f"{budget} | {measured} |")
    return "\n".join(lines) + "\n"


# ---- README: course map ----------------------------------------------------------------------------------------

def course_markdown(records: list[tuple[Path, dict]] | None = None,
                    badge: Callable[[str], str] | None = None) -> str:
    """The course map from dcgan_lib.course.course, with each notebook's time at each profile from the course records.

    `badge(stem)` (markdown, e.g. an "Open in Colab" badge) adds a first column when given.
    """
    records = load_records() if records is None else records
    by_stem = _by_stem(records)
    names = _profile_names()
    courses = {n: _course_record(by_stem, n) for n in names}
    head = ["notebook", "paper", "makes", *(f"`{n}`" for n in names)]
    if badge:
        head.insert(0, "open")
    lines = ["| " + " | ".join(head) + " |", "|---" * len(head) + "|"]
    for lesson in LESSONS:
        times = []
        for n in names:
            walls = (courses[n] or {}).get("metrics", {}).get("notebook_wall_s", {})
            times.append(_minutes(walls[lesson.stem]) if lesson.stem in walls else "not measured")
        cells = [f"[{lesson.stem}](notebooks/{lesson.stem}.ipynb)", lesson.paper, lesson.makes, *times]
        if badge:
            cells.insert(0, badge(lesson.stem))
        lines.append("| " + " | ".join(cells) + " |")
    totals = [_minutes(60 * c["metrics"]["total_min"]) if c else "not measured" for c in courses.values()]
    lines.append("| " + " | ".join([*([""] if badge else []), "**whole course**", "", "", *totals]) + " |")
    sources = [f"`{n}`: [course_{n}.json](figures/course_{n}.json) ({c.get('device', '?')}, commit "
               f"{_short_commit(c)}" + ("; timed with the profile's settings of then, which have changed since: "
                                        "today's course takes a different time" if _settings_changed(c, n) else "")
               + ")" for n, c in courses.items() if c]
    lines += ["", "Times from the course records (`python -m dcgan_lib course --profile NAME` writes them): "
              + ("; ".join(sources) if sources else "none yet") + "."]
    return "\n".join(lines) + "\n"


# ---- README: gallery -------------------------------------------------------------------------------------------

def _image(folder: Path, stem: str, record: dict) -> Path | None:
    """The first image of a record: <stem>.png, else the first PNG its `files` name."""
    names = [f"{stem}.png", *(f for f in record.get("files", []) if str(f).endswith(".png"))]
    return next((folder / n for n in names if (folder / n).exists()), None)


def sha12(path: Path) -> str:
    """The first 12 hex digits of a file's sha256 (how gallery.LOOKED ties a caption to one image)."""
    return hashlib.sha256(path.read_bytes()).hexdigest()[:12]


def _looked(png: Path) -> str:
    seen = gallery.LOOKED.get(png.name)
    digest = sha12(png)
    if seen and seen[0] == digest:
        return seen[1]
    return (f"*not looked at yet: nobody has written a caption for this image (sha256 {digest}...); open it and "
            "add one to `dcgan_lib.course.gallery.LOOKED`*")


def quality(record: dict) -> str:
    """The FID/KID of the exact weights a figure draws, or why the record does not have it.

    A figure record's own `quality` (figure_records.write) comes first; an older record without it has its
    model's training summary, which scores the final weights only.
    """
    own = record.get("quality")
    if isinstance(own, dict):
        if own.get("fid") is None:
            return own.get("note") or "no FID/KID measured for these weights"
        return _fid_kid(own) + (f" ({own['weights']})" if own.get("weights") else "")
    training = record.get("training") or {}
    model = record.get("model") or {}
    if training.get("fid") is None:
        return "no FID/KID in its record"
    if model.get("step") is not None and model.get("step") == training.get("steps"):
        return _fid_kid(training)
    return (f"FID/KID of these weights not recorded (the final model, step {training.get('steps', '?'):,}: "
            f"{_fid_kid(training)})")


def _fid_kid(q: dict) -> str:
    text = f"FID {q['fid']:.1f}"
    if q.get("kid") is not None:
        text += f", KID {q['kid']:.3f}" + (f" ± {q['kid_std']:.3f}" if q.get("kid_std") is not None else "")
    n = q.get("fid_samples") or q.get("samples") or q.get("n")
    real = q.get("fid_real_images") or q.get("real_images") or q.get("n_real")
    split = q.get("fid_real_split") or q.get("real_split")
    images = {"heldout": "held-out", "train": "training"}.get(split, "real")  # records before splits were named: real
    return text + (f", from {n:,} samples against {real:,} {images} images" if n and real else "")


def _paper_side(record: dict, entry: gallery.Entry) -> str:
    paper = record.get("paper") or {}
    text = paper.get("caption") or entry.paper or "the paper shows no such figure"
    facts = []
    if paper.get("train_images"):
        facts.append(f"{paper['train_images']:,} training images")
    if paper.get("steps") and paper.get("batch_size"):
        facts.append(f"{paper['steps']:,} steps of batch {paper['batch_size']}")
    return text.rstrip(".") + "." + (f" ({'; '.join(facts)})" if facts else "")


def _our_side(record: dict) -> str:
    metrics, training = record.get("metrics") or {}, record.get("training") or {}
    facts = [f"profile `{record.get('profile', '?')}`", _data(record)]
    n = (record.get("data") or {}).get("n") or training.get("train_images")
    if n:
        facts[-1] += f", {n:,} training images"
    if training.get("width") is not None:
        kernel = f", {training['kernel']}x{training['kernel']} kernels" if training.get("kernel") else ""
        facts.append(f"nets at {_width(float(training['width']))}{kernel}, batch {training.get('batch_size', '?')}")
    if metrics.get("epoch") is not None and metrics.get("steps") is not None:
        wall = metrics.get("train_wall_s_to_epoch")
        facts.append(f"snapshot after epoch {metrics['epoch']} ({metrics['steps']:,} steps"
                     + (f", {_minutes(wall)} of training)" if wall is not None else ")"))
    elif (record.get("model") or {}).get("step") is not None:
        facts.append(f"model at step {record['model']['step']:,}")
    facts.append(f"model quality: {quality(record)}")
    return "; ".join(facts)


def _measured(record: dict) -> str | None:
    """What the notebook measured and concluded (the record's caption and verdict), or None."""
    if not record.get("caption"):
        return None
    verdict = record.get("verdict")
    return record["caption"].rstrip(".") + "." + (f" Verdict: {verdict}." if verdict else "")


def _entry_markdown(entry: gallery.Entry, folder: Path, by_stem: dict[str, dict]) -> list[str]:
    lines = [f"### {entry.title}", ""]
    images = []
    for stem in entry.stems:
        record = by_stem.get(stem)
        if record is None:
            lines += [f"**{stem}**: no record yet (the notebook that makes it has not run at a real profile).", ""]
            continue
        png = _image(folder, stem, record)
        lines += [f"**{record.get('name', stem)}** ([record](figures/{stem}.json))", "",
                  f"- **The paper:** {_paper_side(record, entry)}",
                  f"- **Ours:** {_our_side(record)}."]
        if _measured(record):
            lines.append(f"- **Measured:** {_measured(record)}")
        if png is not None:
            lines.append(f"- **By eye:** {_looked(png)}")
            images.append((record.get("name", stem), png))
        lines.append("")
    if len(images) == 1:
        lines += [f"![{images[0][0]}](figures/{images[0][1].name})", ""]
    elif images:
        lines += ["| " + " | ".join(name for name, _ in images) + " |", "|---" * len(images) + "|",
                  "| " + " | ".join(f"![{name}](figures/{png.name})" for name, png in images) + " |", ""]
    return lines


def _number(value, kind: str) -> str:
    if value is None:
        return "-"
    return _pct(value) if kind == "pct" else f"{value:.1f}"


def numbers_markdown(by_stem: dict[str, dict]) -> list[str]:
    """Tables 1-2 and the CIFAR-10 FID as one small table (gallery.NUMBERS), ours beside the paper's."""
    lines = ["| result | the paper | ours | profile, measured on | record |", "|---" * 5 + "|"]
    for row in gallery.NUMBERS:
        record = by_stem.get(row.stem)
        if record is None:
            lines.append(f"| {row.label} | | not run | | `{row.stem}.json` missing |")
            continue
        metrics, paper = record.get("metrics") or {}, record.get("paper") or {}
        theirs = _number(paper.get(row.paper), row.kind) if row.paper else "-"
        # the paper's table row of this metric ("supervised_cnn_error" -> "supervised_cnn") may carry a note
        note = next((t.get("note") for t in paper.get("table") or [] if t.get("key") == row.paper.rsplit("_", 1)[0]),
                    "")
        if note and row.paper:
            theirs += f" ({note})"
        if row.kind == "fid" and paper.get("what"):
            theirs += f" ({paper['what'].split(':')[0]}; the paper reports no FID)"
        ours = _number(metrics.get(row.ours), row.kind)
        if row.kind == "fid" and metrics.get("kid") is not None:
            ours += f" (KID {metrics['kid']:.3f})"
        lines.append(f"| {row.label} | {theirs} | {ours} | `{record.get('profile', '?')}` on "
                     f"{record.get('device', '?')} | [{row.stem}](figures/{row.stem}.json) |")
    return lines


def gallery_markdown(folder: Path | None = None, records: list[tuple[Path, dict]] | None = None) -> str:
    """The front page's gallery: each key figure beside the paper's claim, then the numbers table."""
    folder = folder or ROOT / "figures"
    by_stem = _by_stem(load_records(folder) if records is None else records)
    lines = []
    for entry in gallery.ENTRIES:
        lines += _entry_markdown(entry, folder, by_stem)
    lines += ["### Tables 1-2 and the CIFAR-10 FID", "", *numbers_markdown(by_stem), ""]
    return public("\n".join(lines).rstrip() + "\n")


# ---- RESULTS.md ------------------------------------------------------------------------------------------------

def results_markdown(folder: Path | None = None) -> str:
    """RESULTS.md: every record (ours beside the paper's, with provenance), the markdown tables and every figure."""
    folder = folder or ROOT / "figures"
    records = load_records(folder)
    problems = record_problems(records)
    lines = ["| result | ours | paper | profile | data | device | wall s | commit |", "|---" * 8 + "|"]
    for path, r in records:
        paper = r.get("paper") or {}
        metrics = r.get("metrics") or {}
        shared = [k for k in paper if k in metrics]
        ours = _scalars(metrics, shared + [k for k in metrics if k not in shared])
        theirs = _scalars(paper, shared + [k for k in paper if k not in shared]) if paper else "-"
        wall = _fmt(r["wall_s"]) if r.get("wall_s") is not None else "-"
        short = _short_commit(r)
        if path.name in problems:
            short = f"**NOT RERUNNABLE** {short}" if short else "**NOT RERUNNABLE** (none)"
        lines.append(f"| [{r.get('name', path.stem)}](figures/{path.name}) | {ours} | {theirs} | "
                     f"{r.get('profile', '')} | {_data(r)} | {r.get('device', '')} | {wall} | {short} |")
    parts = ["# Every recorded result", "",
             "Generated from the JSON records in `figures/` by `python -m dcgan_lib report`; do not edit by hand. "
             "Each record names its commit, profile, data source, device, seed and wall time, and holds the "
             "paper's number beside ours where the paper has one. The front page is [README.md](README.md).", ""]
    if problems:
        parts += [f"> **Warning: {len(problems)} of {len(records)} records cannot be rerun as recorded**: a record "
                  "must name a clean commit of this repository (`python -m dcgan_lib report --strict` refuses "
                  "them). Rerun each from a clean checkout to replace it:", ">",
                  *(f"> - `{name}`: {'; '.join(why)}" for name, why in problems.items()), ""]
    parts += ["## Every record", "", *lines, ""]
    tables = sorted(folder.glob("table*.md"))
    tables += sorted(p for p in folder.glob("*.md") if not p.name.startswith("table"))
    for table in tables:
        text = table.read_text().strip().splitlines()
        title = text[0].lstrip("# ").strip() if text and text[0].startswith("#") else table.stem
        body = text[1:] if text and text[0].startswith("#") else text
        parts += [f"## {title}", "", *(("### " + b.lstrip("# ")) if b.startswith("#") else b for b in body), ""]
    pngs = sorted(folder.glob("*.png"))
    if pngs:
        parts += ["## Every figure", ""]
        parts += [f"**{p.stem}**\n\n![{p.stem}](figures/{p.name})\n" for p in pngs]
    return public("\n".join(parts).rstrip() + "\n")


# ---- writing and checking --------------------------------------------------------------------------------------

def colab_badge() -> Callable[[str], str] | None:
    """The course map's "Open in Colab" badge: a function stem -> markdown (from pyproject.toml's [project.urls],
    the one home of the repository's URL), or None where pyproject.toml names none (no badge column)."""
    from dcgan_lib.course import colab

    try:
        url = colab.repo_url()
    except (ValueError, FileNotFoundError):
        return None
    return lambda stem: colab.badge(stem, url)


def readme_markdown(text: str, folder: Path | None = None) -> str:
    """README text with its generated sections (profiles, course map, gallery) rebuilt from the records."""
    records = load_records(folder)
    text = _replace(text, PROFILES_START, PROFILES_END, profiles_markdown(records))
    text = _replace(text, MAP_START, MAP_END, course_markdown(records, colab_badge()))
    return _replace(text, GALLERY_START, GALLERY_END, gallery_markdown(folder, records))


def update_readme(readme: Path | None = None, folder: Path | None = None) -> Path:
    """Rewrite README.md's generated sections and RESULTS.md beside it; returns README's path."""
    readme = readme or ROOT / "README.md"
    text = readme_markdown(readme.read_text(), folder)
    (readme.parent / RESULTS_NAME).write_text(results_markdown(folder))
    readme.write_text(text)
    return readme


def stale(readme: Path | None = None, folder: Path | None = None) -> list[str]:
    """The files (README.md, RESULTS.md) that differ from what `update_readme` would write now."""
    readme = readme or ROOT / "README.md"
    out = []
    if readme.read_text() != readme_markdown(readme.read_text(), folder):
        out.append(readme.name)
    path = readme.parent / RESULTS_NAME
    if not path.exists() or path.read_text() != results_markdown(folder):
        out.append(RESULTS_NAME)
    return out
