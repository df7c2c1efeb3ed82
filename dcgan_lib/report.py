"""README's results section, generated from the JSON records in figures/ (never typed by hand)."""
from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

from dcgan_lib import results
from dcgan_lib.course import LESSONS
from dcgan_lib.results import ROOT

START, END = "<!-- results:start -->", "<!-- results:end -->"
MAP_START, MAP_END = "<!-- course:start -->", "<!-- course:end -->"


def course_markdown() -> str:
    """The course map table from dcgan_lib.course."""
    rows = [f"| [{x.stem}](notebooks/{x.stem}.ipynb) | {x.paper} | {x.makes} |" for x in LESSONS]
    return "\n".join(["| notebook | paper | makes |", "|---|---|---|", *rows]) + "\n"


def _replace(text: str, start: str, end: str, body: str) -> str:
    if start not in text or end not in text:
        raise ValueError(f"README.md has no {start} ... {end} markers")
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


def results_markdown(folder: Path | None = None) -> str:
    """A results table (ours beside the paper's, with provenance), the markdown tables and a gallery."""
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
        commit = str(r.get("commit", ""))
        short = commit[:8] + ("+dirty" if commit.endswith("+dirty") else "")
        if path.name in problems:
            short = f"**NOT RERUNNABLE** {short}" if short else "**NOT RERUNNABLE** (none)"
        lines.append(f"| [{r.get('name', path.stem)}](figures/{path.name}) | {ours} | {theirs} | "
                     f"{r.get('profile', '')} | {_data(r)} | {r.get('device', '')} | {wall} | {short} |")
    parts = ["### Every recorded result", ""]
    if problems:
        parts += [f"> **Warning: {len(problems)} of {len(records)} records cannot be rerun as recorded**: a record "
                  "must name a clean commit of this repository (`python -m dcgan_lib report --strict` refuses "
                  "them). Rerun each from a clean checkout to replace it:", ">",
                  *(f"> - `{name}`: {'; '.join(why)}" for name, why in problems.items()), ""]
    parts += [*lines, ""]
    tables = sorted(folder.glob("table*.md"))
    tables += sorted(p for p in folder.glob("*.md") if not p.name.startswith("table"))
    for table in tables:
        text = table.read_text().strip().splitlines()
        title = text[0].lstrip("# ").strip() if text and text[0].startswith("#") else table.stem
        body = text[1:] if text and text[0].startswith("#") else text
        parts += [f"### {title}", "", *(("#### " + b.lstrip("# ")) if b.startswith("#") else b for b in body), ""]
    pngs = sorted(folder.glob("*.png"))
    if pngs:
        parts += ["### Gallery", ""]
        parts += [f"**{p.stem}**\n\n![{p.stem}](figures/{p.name})\n" for p in pngs]
    return "\n".join(parts).rstrip() + "\n"


def update_readme(readme: Path | None = None, folder: Path | None = None) -> Path:
    """Rewrite README.md's generated parts: the course map and the results section."""
    readme = readme or ROOT / "README.md"
    text = _replace(readme.read_text(), MAP_START, MAP_END, course_markdown())
    readme.write_text(_replace(text, START, END, results_markdown(folder)))
    return readme
