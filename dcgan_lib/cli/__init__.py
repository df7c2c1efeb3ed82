"""The `python -m dcgan_lib` command line: one subcommand module per concern, over the library.

Each module in COMMANDS defines `register(subparsers)` (adds its parser and sets `func`) and
is imported only here; the library never imports the command line.
"""
from __future__ import annotations

import argparse
import importlib
import sys

COMMANDS = ("data", "train", "dedup", "probe", "bench", "report", "fid", "course", "colab")


class CommandError(Exception):
    """A failure the user can fix; printed without a traceback, exit code 2."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m dcgan_lib", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True, metavar="{" + ",".join(COMMANDS) + "}")
    for name in COMMANDS:
        try:
            module = importlib.import_module(f"dcgan_lib.cli.{name}_cmd")
        except ModuleNotFoundError as err:
            if err.name != f"dcgan_lib.cli.{name}_cmd":
                raise
            continue  # a command not built yet
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except (CommandError, ValueError, FileNotFoundError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
