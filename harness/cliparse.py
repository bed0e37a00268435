"""Command-line parsing shared by `hvlab` and the benchmarks: a usage error is one line.

`OneLineParser` prints `PROG: what is wrong (see PROG --help)` and exits 2, instead of
argparse's usage dump; `positive_int` is the type of every count (runs, rounds, workers).
"""

from __future__ import annotations

import argparse
from typing import NoReturn


class OneLineParser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (and exit code 2), not a usage dump."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: {message} (see {self.prog} --help)\n")


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} must be at least 1")
    return value


def rounds_argument(prog: str, doc: str | None, argv: list[str] | None, default: int) -> int:
    """A benchmark's one optional argument, ROUNDS (a positive whole number)."""
    parser = OneLineParser(prog=prog, description=(doc or "").split("\n\n")[0])
    parser.add_argument(
        "rounds", nargs="?", type=positive_int, default=default,
        help=f"measurements per figure (default {default})",
    )  # fmt: skip
    return int(parser.parse_args(argv).rounds)
