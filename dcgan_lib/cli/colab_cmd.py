"""`python -m dcgan_lib colab [--sync] [--only NN ...]`: the notebooks' Open-in-Colab badges and install cells.

Without --sync it checks that each notebook's badge and Colab install cell agree with the repository URL in
pyproject.toml's [project.urls] (exit 1 naming those that do not); with --sync it rewrites them from it.
"""
from __future__ import annotations

from dcgan_lib.cli.course_cmd import selected
from dcgan_lib.course import colab, course


def register(sub) -> None:
    p = sub.add_parser("colab", help="check (or --sync) the notebooks' Colab badges and install cells")
    p.add_argument("--sync", action="store_true", help="rewrite them from pyproject.toml's [project.urls]")
    p.add_argument("--only", nargs="+", default=None, metavar="NN", help="notebook numbers or stems (default: all)")
    p.set_defaults(func=run)


def run(args) -> int:
    url = colab.repo_url()
    stems = selected(args.only)
    if args.sync:
        for stem in stems:
            changed = colab.sync(course.notebook_path(stem), url)
            print(f"{stem}: {'updated' if changed else 'already in sync'}")
        return 0
    problems = [p for stem in stems for p in colab.problems(course.notebook_path(stem), url)]
    for p in problems:
        print(p)
    print(f"{len(stems) - len({p.split(':')[0] for p in problems})} of {len(stems)} notebook(s) agree with {url}"
          + ("" if not problems else "; run `python -m dcgan_lib colab --sync` to rewrite them"))
    return 1 if problems else 0
