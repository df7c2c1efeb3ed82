"""`python -m dcgan_lib report`: regenerate README's results section from figures/*.json."""
from __future__ import annotations

from dcgan_lib import report


def register(sub) -> None:
    p = sub.add_parser("report", help="rewrite README's results section from the records in figures/")
    p.add_argument("--print", action="store_true", help="print the section instead of writing README.md")
    p.set_defaults(func=run)


def run(args) -> int:
    if args.print:
        print(report.results_markdown())
    else:
        print(f"updated {report.update_readme()}")
    return 0
