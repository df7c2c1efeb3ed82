"""`python -m dcgan_lib course`: execute the notebooks at one profile (papermill) under one progress bar.

Every notebook runs top to bottom with its `profile` parameter set, into runs/notebooks/ (the
sources stay as they are); the bar counts notebooks and shows the minutes spent. When every
notebook ran, the wall time of each and of the whole course is recorded (figures/course_<profile>.json),
which is how the cpu tier is held to its budget (about 2 hours of 2 cores).
"""
from __future__ import annotations

import time

import papermill
from tqdm import tqdm

from dcgan_lib import profiles, results
from dcgan_lib.cli import CommandError
from dcgan_lib.course import LESSONS


def register(sub) -> None:
    p = sub.add_parser("course", help="run the notebooks at a profile (papermill) under one progress bar")
    p.add_argument("--profile", default="auto", choices=profiles.NAMES)
    p.add_argument("--only", nargs="+", default=None, metavar="NN",
                   help="notebook numbers or stems to run (default: all; only a full run is recorded)")
    p.add_argument("--out", default="runs/notebooks", help="folder for the executed notebooks")
    p.set_defaults(func=run)


def selected(only: list[str] | None) -> list[str]:
    """Stems of the lessons to run, in course order: all, or those whose number or stem is in `only`."""
    stems = [lesson.stem for lesson in LESSONS]
    if not only:
        return stems
    def names(stem: str, wanted: str) -> bool:  # "03", "3" or "03_train_bedrooms"
        return wanted == stem or stem.split("_")[0] == wanted.zfill(2)

    picked = [s for s in stems if any(names(s, o) for o in only)]
    unknown = [o for o in only if not any(names(s, o) for s in stems)]
    if unknown:
        raise CommandError(f"no notebook {', '.join(unknown)}; the course has {', '.join(stems)}")
    return picked


def run(args) -> int:
    profile = profiles.resolve_name(args.profile)
    stems = selected(args.only)
    out = results.ROOT / args.out
    out.mkdir(parents=True, exist_ok=True)
    walls: dict[str, float] = {}
    start = time.perf_counter()
    with tqdm(stems, desc=f"course ({profile})", unit="notebook") as bar:
        for stem in bar:
            bar.set_postfix_str(f"{stem}, {(time.perf_counter() - start) / 60:.0f} min so far")
            t0 = time.perf_counter()
            papermill.execute_notebook(results.ROOT / "notebooks" / f"{stem}.ipynb", out / f"{stem}.ipynb",
                                       parameters={"profile": profile}, progress_bar=False)
            walls[stem] = round(time.perf_counter() - t0, 1)
    total = time.perf_counter() - start
    print(f"{len(stems)} notebook(s) at profile {profile} in {total / 60:.1f} min")
    if len(stems) == len(LESSONS):
        path = results.write_record(f"course_{profile}", name=f"the whole course at profile {profile}",
                                    profile=profile, metrics={"notebook_wall_s": walls, "total_min": total / 60},
                                    paper={"note": "not in the paper: what regenerating every figure costs"},
                                    wall_s=total)
        print(f"recorded in {path}")
    return 0
