"""`python -m dcgan_lib report`: regenerate README's results section from figures/*.json."""
from __future__ import annotations

from pathlib import Path

from dcgan_lib.cli import CommandError
from dcgan_lib.course import report


def register(sub) -> None:
    p = sub.add_parser("report", help="rewrite README's results section from the records in figures/")
    p.add_argument("--print", action="store_true", help="print the section instead of writing README.md")
    p.add_argument("--strict", action="store_true",
                   help="refuse (exit 2, README untouched) when a record does not name a clean commit of this repo")
    p.add_argument("--figures", default=None, help="the records' folder (default figures/)")
    p.add_argument("--readme", default=None, help="the README to rewrite (default README.md)")
    p.set_defaults(func=run)


def run(args) -> int:
    folder = Path(args.figures) if args.figures else None
    if args.strict:
        problems = report.record_problems(report.load_records(folder))
        if problems:
            raise CommandError(f"{len(problems)} record(s) cannot be rerun as recorded; rerun them from a clean "
                               f"checkout of a commit in this repository:\n{report.problems_text(problems)}")
    if args.print:
        print(report.results_markdown(folder))
    else:
        print(f"updated {report.update_readme(Path(args.readme) if args.readme else None, folder)}")
    return 0
