"""``hvlab fuzz qmp``: the command line of the lockstep QMP fuzzer (harness/cli.py adds it
as a subcommand of ``hvlab fuzz``, whose own options keep fuzzing libvirt)."""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

from harness.cliparse import positive_int

REPO = Path(__file__).resolve().parent.parent.parent


def add_parser(fuzz: argparse.ArgumentParser) -> None:
    """``qmp`` under ``hvlab fuzz`` (optional: without it, ``hvlab fuzz`` is libvirt's)."""
    sub = fuzz.add_subparsers(dest="fuzz_kind", metavar="KIND")
    qmp = sub.add_parser(
        "qmp",
        help="lockstep QMP fuzzing: real QEMU against the simulator",
        description="Drive one Hypothesis state machine over QMP on two targets in lockstep "
        "(stop/cont, queries, blockdev/netdev/device hotplug, migrate, cancel, parameters "
        "and capabilities, snapshot and restore, malformed and unknown commands) and compare "
        "replies, errors, events and states step by step. Each difference is shrunk and "
        "written as a regression test into the run folder. Exit code 1 if any was found.",
    )
    qmp.add_argument(
        "--target",
        dest="qmp_target",
        default="qemu-x86_64",
        metavar="NAME",
        help="the reference (default qemu-x86_64; qemu-aarch64)",
    )
    qmp.add_argument(
        "--against",
        default="sim:qemu-7.2",
        metavar="NAME",
        help="the candidate (default sim:qemu-7.2; sim:aarch64:qemu-7.2)",
    )
    qmp.add_argument(
        "--examples",
        dest="qmp_examples",
        type=positive_int,
        default=100,
        metavar="N",
        help="state machine runs (default 100)",
    )
    qmp.add_argument(
        "--steps",
        type=positive_int,
        default=10,
        metavar="K",
        help="at most K steps per run (default 10)",
    )
    qmp.add_argument(
        "--seed",
        dest="qmp_seed",
        type=int,
        metavar="S",
        help="random seed (default: a fresh one, printed)",
    )
    qmp.add_argument(
        "--report-dir",
        default=str(REPO / "reports"),
        metavar="DIR",
        help="the run folder goes to DIR/fuzz-qmp-<run id>/ (default reports)",
    )
    qmp.add_argument(
        "--no-shrink",
        action="store_true",
        help="report differences as found, without shrinking them",
    )
    qmp.add_argument(
        "--survey",
        action="store_true",
        help="note the first difference of each command and carry on",
    )
    qmp.set_defaults(func=run)


def run(args: Any) -> int:
    from harness.conformance.fuzz import FuzzConfig, main

    seed = args.qmp_seed if args.qmp_seed is not None else int.from_bytes(os.urandom(4), "big")
    cfg = FuzzConfig(
        reference=args.qmp_target,
        candidate=args.against,
        examples=args.qmp_examples,
        seed=seed,
        steps=args.steps,
        report_dir=Path(args.report_dir),
        shrink=not args.no_shrink,
        survey=args.survey,
    )
    return main(cfg)
