"""`python -m dcgan_lib course`: execute the notebooks at one profile under one progress bar.

Every notebook runs top to bottom with its `profile` parameter set: with papermill into runs/notebooks/ (the
sources stay as they are), or, where papermill is not installed (a lent GPU's image), as a script
(course.run_as_script: the same figures and records, no executed notebook). The bar counts notebooks and
shows the minutes spent. When every notebook ran, the wall time of each and of the whole course is recorded
(figures/course_<profile>.json), which is how a tier is held to its budget; a course run in stages (one
notebook per call, as scripts/gpu_run.sh does) collects its wall times in a --walls file and is recorded
when that file covers every notebook.
"""
from __future__ import annotations

import importlib.util
import json
import time
from pathlib import Path

from tqdm import tqdm

from dcgan_lib.cli import CommandError
from dcgan_lib.config import profiles
from dcgan_lib.course import course
from dcgan_lib.course.course import LESSONS
from dcgan_lib.data import datasets, registry
from dcgan_lib.records import results


def register(sub) -> None:
    p = sub.add_parser("course", help="run the notebooks at a profile (papermill) under one progress bar")
    p.add_argument("--profile", default="auto", choices=profiles.NAMES)
    p.add_argument("--only", nargs="+", default=None, metavar="NN",
                   help="notebook numbers or stems to run (default: all; only a full run is recorded)")
    p.add_argument("--out", default="runs/notebooks", help="folder for the executed notebooks")
    p.add_argument("--runner", default="auto", choices=("auto", "papermill", "script"),
                   help="papermill (keeps executed notebooks), script (no Jupyter needed), auto: papermill "
                        "where it is installed")
    p.add_argument("--skip-missing-data", action="store_true",
                   help="skip (and say so) a notebook whose datasets are neither on disk nor in DCGAN_MIRROR")
    p.add_argument("--walls", default=None,
                   help="JSON file collecting each notebook's wall time over several calls; the course is "
                        "recorded once it holds every notebook")
    p.set_defaults(func=run)


def selected(only: list[str] | None) -> list[str]:
    """Stems of the lessons to run, in course order: all, or those whose number or stem is in `only`."""
    stems = [lesson.stem for lesson in LESSONS]
    if not only:
        return stems
    unknown = []
    for o in only:
        try:
            course.lesson(o)
        except ValueError:
            unknown.append(o)
    if unknown:
        raise CommandError(f"no notebook {', '.join(unknown)}; the course has {', '.join(stems)}")
    picked = {course.lesson(o).stem for o in only}
    return [s for s in stems if s in picked]


def missing_data(stem: str) -> list[str]:
    """The datasets a notebook reads that are neither on disk nor in the mirror (nothing is downloaded)."""
    missing = []
    for name in course.lesson(stem).data:
        try:
            datasets.find_source(name)  # copies a mirror archive when DCGAN_MIRROR holds it
        except registry.DatasetMissing:
            missing.append(name)
    return missing


def runner_of(name: str) -> str:
    if name == "auto":
        return "papermill" if importlib.util.find_spec("papermill") else "script"
    return name


def execute(stem: str, profile: str, runner: str, out: Path) -> None:
    """Run one notebook at a profile with the chosen runner."""
    if runner == "papermill":
        import papermill  # deferred: not installed on every machine (a lent GPU's image)

        papermill.execute_notebook(results.ROOT / "notebooks" / f"{stem}.ipynb", out / f"{stem}.ipynb",
                                   parameters={"profile": profile}, progress_bar=False)
    else:
        course.run_as_script(stem, {"profile": profile})


def record(profile: str, walls: dict[str, float], total: float) -> Path:
    return results.write_record(f"course_{profile}", name=f"the whole course at profile {profile}",
                                profile=profile, metrics={"notebook_wall_s": walls, "total_min": total / 60,
                                         "profile_digest": profiles.digest(profile)},
                                paper={"note": "not in the paper: what regenerating every figure costs"},
                                wall_s=total)


def run(args) -> int:
    profile = profiles.resolve_name(args.profile)
    stems = selected(args.only)
    runner = runner_of(args.runner)
    out = results.ROOT / args.out
    out.mkdir(parents=True, exist_ok=True)
    walls: dict[str, float] = {}
    skipped: dict[str, list[str]] = {}
    start = time.perf_counter()
    with tqdm(stems, desc=f"course ({profile})", unit="notebook") as bar:
        for stem in bar:
            bar.set_postfix_str(f"{stem}, {(time.perf_counter() - start) / 60:.0f} min so far")
            if args.skip_missing_data and (missing := missing_data(stem)):
                skipped[stem] = missing
                bar.write(f"{stem}: skipped, its data is not here ({', '.join(missing)})")
                continue
            t0 = time.perf_counter()
            execute(stem, profile, runner, out)
            walls[stem] = round(time.perf_counter() - t0, 1)
    total = time.perf_counter() - start
    print(f"{len(walls)} notebook(s) at profile {profile} in {total / 60:.1f} min ({runner})"
          + (f"; skipped {', '.join(skipped)}" if skipped else ""))
    if args.walls:
        path = Path(args.walls)
        kept = json.loads(path.read_text()) if path.exists() else {}
        walls = {**kept.get(profile, {}), **walls}
        path.write_text(json.dumps({**kept, profile: walls}, indent=1) + "\n")
        total = sum(walls.values())
    if set(walls) == {lesson.stem for lesson in LESSONS}:
        walls = {lesson.stem: walls[lesson.stem] for lesson in LESSONS}
        print(f"recorded in {record(profile, walls, total)}")
    return 0
