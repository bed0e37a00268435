"""``hvlab run`` and ``hvlab report``: a conformance run and what it leaves."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import time
from pathlib import Path
from typing import Any, TextIO

from harness.cliparse import positive_int
from harness.errors import HarnessError

REPO = Path(__file__).resolve().parent.parent
POOL_ENV = "HVLAB_POOL_LEASE"  # the run's pool lease, for the report's run.json


class _Progress:
    """One status line on a terminal (rewritten in place), sparse lines elsewhere."""

    def __init__(self, stream: TextIO = sys.stderr) -> None:
        self.stream = stream
        self.tty = stream.isatty()
        self._last = 0.0
        self._dirty = False

    def __call__(self, step: str, done: int, total: int) -> None:
        now = time.monotonic()
        if self.tty:
            self.stream.write(f"\r\x1b[K{step} {done}/{total}")
            self._dirty = True
        elif done == total or now - self._last >= 5:
            self.stream.write(f"{step} {done}/{total}\n")
            self._last = now
        self.stream.flush()

    def done(self) -> None:
        if self._dirty:
            self.stream.write("\r\x1b[K")
            self.stream.flush()
            self._dirty = False


def _cmd_run(args: argparse.Namespace) -> int:
    import pytest

    from harness.report.results import RUN_ID_ENV, new_run_id

    suites = Path(args.suites) if args.suites else REPO / "suites"
    if not suites.is_dir():
        raise HarnessError(f"suites directory {suites} does not exist (use --suites DIR)")
    hosts = Path(args.hosts)
    if not hosts.is_file():
        raise HarnessError(f"inventory {hosts} does not exist (use --hosts FILE)")
    _preflight(args, hosts)  # bad input stops here: nothing created, reports/latest kept
    run_id = new_run_id()
    run_dir = Path(args.report_dir) / run_id
    argv = [
        str(suites),
        "-p",
        "no:pytest11.testinfra",
        "--report-dir",
        args.report_dir,
        "--hosts",
        str(hosts),
        "-q",
    ]
    for t in args.target:
        argv += ["--target", t]
    if args.k:
        argv += ["-k", args.k]
    if args.timeout_factor:
        argv += ["--timeout-factor", str(args.timeout_factor)]
    if args.jobs > 1:
        argv += ["-n", str(args.jobs), "--dist", "loadgroup"]
    if args.shard:
        argv += ["--shard", args.shard]
    if args.lab_hosts:
        if args.coordinator:
            raise HarnessError("--lab-hosts and --coordinator: the pool chooses the hosts")
        argv += ["--lab-hosts", args.lab_hosts]
    argv += args.pytest_args
    previous = os.environ.get(RUN_ID_ENV)
    os.environ[RUN_ID_ENV] = run_id  # the plugin writes exactly this run folder
    try:
        with _lease(args, hosts, run_id) as lease:
            if lease is not None:
                argv += ["--lab-hosts", ",".join(lease.hosts)]
                os.environ[POOL_ENV] = json.dumps(lease.__dict__)
            status = int(pytest.main(argv))
    finally:
        os.environ.pop(POOL_ENV, None)
        if previous is None:
            os.environ.pop(RUN_ID_ENV, None)
        else:
            os.environ[RUN_ID_ENV] = previous
    if (run_dir / "results.jsonl").exists() or (run_dir / "run.json").exists():
        index = _ensure_html(run_dir)
        print(f"hvlab: report {index}")
    # a stopped run exits 130 (as a shell reports SIGINT), never as a pass or a failure
    return 130 if status == int(pytest.ExitCode.INTERRUPTED) else status


def _preflight(args: argparse.Namespace, hosts: Path) -> None:
    """Every input checked before pytest starts (one line each, exit 2)."""
    from harness.inventory import load_inventory
    from harness.waits import timeout_factor

    timeout_factor()  # HVLAB_TIMEOUT_FACTOR, if set, must be a sane number
    inventory = load_inventory(hosts)
    report = Path(args.report_dir)
    if report.exists() and not report.is_dir():
        raise HarnessError(f"--report-dir {report} is not a folder")
    probe = report if report.exists() else report.parent
    if not os.access(probe if probe.exists() else Path("."), os.W_OK):
        raise HarnessError(f"--report-dir {report}: no permission to write there")
    if args.target:
        from harness.hostset import HostSet
        from harness.libvirt.target import LIBVIRT_TARGETS
        from harness.targets.registry import select

        hostset = HostSet(inventory)
        try:
            select(hostset.targets(), args.target, [t.name for t in LIBVIRT_TARGETS])
        except ValueError as exc:
            raise HarnessError(str(exc)) from None
        finally:
            hostset.close()


def _factor(text: str) -> float:
    from harness.waits import parse_factor

    try:
        return parse_factor(text, "--timeout-factor")
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _lease(args: argparse.Namespace, hosts: Path, run_id: str) -> Any:
    """The pool lease for ``--coordinator`` (released when the run ends), else nothing."""
    if not args.coordinator:
        return contextlib.nullcontext(None)
    from harness.inventory import load_inventory
    from harness.lab.pool import leased

    filters = {"pool": "hvlab", "kind": "pair"}
    for item in args.pool_filter:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise HarnessError(f"--pool-filter {item!r} is not KEY=VALUE")
        filters[key] = value
    return leased(args.coordinator, run_id, load_inventory(hosts), filters)


def _ensure_html(run_dir: Path) -> Path:
    """The run's index.html, rendered again if missing or older than its results."""
    from harness.report.writer import rebuild

    index = run_dir / "index.html"
    jsonl = run_dir / "results.jsonl"
    if index.exists() and (not jsonl.exists() or jsonl.stat().st_mtime <= index.stat().st_mtime):
        return index
    progress = _Progress()
    try:
        return rebuild(run_dir, progress)[1]
    finally:
        progress.done()


def _run_folder(name: str, report_dir: str) -> Path:
    """A run given as a folder, or as a run id (or ``latest``) under --report-dir."""
    run = Path(name)
    if not run.is_dir():
        candidate = Path(report_dir) / name
        if candidate.is_dir():
            run = candidate
        elif run.is_absolute() or len(run.parts) > 1:
            raise HarnessError(f"{name}: no such run folder")
        else:
            raise HarnessError(f"{name}: no such run folder, nor a run id in {report_dir}")
    if not (run / "results.jsonl").exists() and not (run / "run.json").exists():
        raise HarnessError(f"{run}: not a run folder (no results.jsonl or run.json)")
    _check_readable(run)
    return run.resolve()


def _check_readable(run: Path) -> None:
    """A run folder whose files are not hvlab's is refused (one line), not reported as
    "0 results"; lines that are not results are named (and left out)."""
    from harness.report.results import read_results

    meta = run / "run.json"
    if meta.exists():
        try:
            if not isinstance(json.loads(meta.read_text()), dict):
                raise ValueError("not a JSON object")
        except (OSError, ValueError, UnicodeDecodeError) as exc:
            raise HarnessError(f"{meta}: not an hvlab run.json ({exc})") from None
    jsonl = run / "results.jsonl"
    problems: list[str] = []
    results = read_results(run, problems) if jsonl.exists() else []
    for problem in problems[:10]:
        print(f"hvlab: warning: {run.name}/{problem} (left out)", file=sys.stderr)
    if jsonl.exists() and jsonl.stat().st_size and not results:
        first = problems[0] if problems else "no line is a test result"
        raise HarnessError(f"{jsonl}: not hvlab results ({first})")


def _cmd_report(args: argparse.Namespace) -> int:
    from harness.report.compare import compare, format_comparison
    from harness.report.html import read_meta
    from harness.report.results import read_results, summarize
    from harness.report.writer import rebuild

    if args.prune:
        from harness.retention import prune_runs

        if args.runs:
            raise HarnessError("--prune takes no RUN: it keeps the newest --keep runs")
        gone = prune_runs(Path(args.report_dir), args.keep)
        print(f"hvlab: removed {len(gone)} old run(s), kept the newest {args.keep}")
        return 0
    if not args.runs:
        raise HarnessError("report needs a RUN (or --prune)")
    if len(args.runs) > 2 and not args.merge:
        raise HarnessError("report takes one run (rebuild it) or two (compare them)")
    runs = [_run_folder(name, args.report_dir) for name in args.runs]
    if args.merge:
        from harness.report.merge import merge_runs

        merged = merge_runs(runs, Path(args.report_dir))
        print(f"hvlab: merged {len(runs)} runs into {merged}")
        runs = [merged]
    if len(runs) == 2:
        result = compare(read_results(runs[0]), read_results(runs[1]))
        for line in format_comparison(result, runs[0].name, runs[1].name):
            print(line)
        return 1 if result.regressions else 0
    run = runs[0]
    progress = _Progress()
    try:
        results, index = rebuild(run, progress)
    finally:
        progress.done()
    for target, counts in summarize(results).items():
        print(f"{target:<24} " + " ".join(f"{k} {v}" for k, v in counts.items()))
    partial = "" if "finished" in read_meta(run) else " (partial run: it did not finish)"
    print(f"rebuilt results.json, junit.xml and the HTML from {len(results)} results{partial}")
    print(f"report: {index}")
    return 0


def add_run_parsers(sub: Any) -> None:
    run = sub.add_parser(
        "run",
        help="run the conformance suites and write a report",
        description="Run the conformance suites on every target of the inventory (or the "
        "ones chosen with --target) and write reports/<run-id>/: results.jsonl as tests "
        "finish, then results.json, junit.xml and index.html, whose path is printed. "
        "Exit code: pytest's (0 passed, 1 failed, 5 nothing collected).",
    )
    run.add_argument(
        "--target",
        action="append",
        default=[],
        metavar="NAME",
        help="only this target (name or prefix, e.g. qemu-x86_64 or qemu; repeatable)",
    )
    run.add_argument("-k", metavar="EXPR", help="only tests matching EXPR (as pytest -k)")
    run.add_argument(
        "--coordinator",
        metavar="HOST:PORT",
        help="take lab hosts from labgrid's coordinator (a host pair by default), waiting "
        "while they are busy, and release them on exit",
    )
    run.add_argument(
        "--pool-filter",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="tags the place must have (default: pool=hvlab kind=pair; repeatable)",
    )
    run.add_argument(
        "--lab-hosts",
        metavar="NAMES",
        help="use only these ssh hosts of the inventory (comma list); local hosts stay",
    )
    run.add_argument(
        "--shard",
        metavar="K/N",
        help="run only the K-th of N shards of the tests (several runs split one suite)",
    )
    run.add_argument(
        "--hosts", default=str(REPO / "hosts.ini"), metavar="INI", help="inventory file"
    )
    run.add_argument(
        "--report-dir",
        default=str(REPO / "reports"),
        metavar="DIR",
        help="where run folders are written (default: reports/)",
    )
    run.add_argument(
        "--timeout-factor", type=_factor, metavar="X", help="multiply every timeout by X"
    )
    run.add_argument(
        "--jobs",
        type=positive_int,
        default=1,
        metavar="N",
        help="run tests in N parallel workers (pytest-xdist; default 1)",
    )
    run.add_argument("--suites", metavar="DIR", help="suites directory (default: suites/)")
    run.add_argument(
        "pytest_args", nargs="*", metavar="PYTEST_ARG", help="more pytest arguments, after --"
    )
    run.set_defaults(func=_cmd_run)

    report = sub.add_parser(
        "report",
        help="rebuild a run's report, or compare two runs",
        description="With one RUN: rebuild results.json, junit.xml and the HTML report "
        "from results.jsonl (works on a run that was killed midway) and print the path "
        "of index.html. With RUN_A RUN_B: list the tests whose outcome changed; exit "
        "code 1 if any regressed (passed in RUN_A, failed or errored in RUN_B).",
    )
    report.add_argument(
        "runs",
        nargs="*",
        metavar="RUN",
        help="a run folder, or a run id (or 'latest') under --report-dir; one or two",
    )
    report.add_argument("--prune", action="store_true", help="remove old run folders (see --keep)")
    report.add_argument(
        "--keep", type=positive_int, default=10, metavar="N", help="runs --prune keeps"
    )
    report.add_argument(
        "--merge",
        action="store_true",
        help="merge the RUNs (shards of one suite) into one new run and report it",
    )
    report.add_argument(
        "--report-dir",
        default=str(REPO / "reports"),
        metavar="DIR",
        help="where run ids are looked up (default: reports/)",
    )
    report.set_defaults(func=_cmd_report)
