"""hvlab command line: run the suites, check hosts, build and compare reports, benchmarks.

Exit codes (CI can rely on them):
  0  success: every test passed, diverged as documented or was skipped
  1  tests failed; a check found a problem; ``report A B`` found a regression
     (a test that passed in A fails or errors in B); a benchmark failed
  2  bad usage or bad input: one line on stderr naming what is wrong, no traceback
  other pytest codes pass through from ``run``: 3 internal error, 4 pytest usage error,
  5 no tests collected; 130 interrupted (Ctrl-C)
``hvlab sim`` exits with the simulator's own code (1: a command line it cannot accept).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import NoReturn, TextIO

from harness.errors import HarnessError

REPO = Path(__file__).resolve().parent.parent


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


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} must be at least 1")
    return value


def _cmd_run(args: argparse.Namespace) -> int:
    import pytest

    from harness.report.results import RUN_ID_ENV, new_run_id

    suites = Path(args.suites) if args.suites else REPO / "suites"
    if not suites.is_dir():
        raise HarnessError(f"suites directory {suites} does not exist (use --suites DIR)")
    hosts = Path(args.hosts)
    if not hosts.is_file():
        raise HarnessError(f"inventory {hosts} does not exist (use --hosts FILE)")
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
    argv += args.pytest_args
    previous = os.environ.get(RUN_ID_ENV)
    os.environ[RUN_ID_ENV] = run_id  # the plugin writes exactly this run folder
    try:
        status = int(pytest.main(argv))
    finally:
        if previous is None:
            os.environ.pop(RUN_ID_ENV, None)
        else:
            os.environ[RUN_ID_ENV] = previous
    if (run_dir / "results.jsonl").exists() or (run_dir / "run.json").exists():
        index = _ensure_html(run_dir)
        print(f"hvlab: report {index}")
    return status


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


def _cmd_hosts_check(args: argparse.Namespace) -> int:
    from harness.hosts import gather_facts
    from harness.inventory import load_inventory

    hosts = load_inventory(Path(args.hosts))
    status = 0
    for host in hosts:
        if host.connection != "local" and not args.remote:
            print(f"{host.name}: ssh host (use --remote to connect)")
            continue
        try:
            facts = gather_facts(host, probe=not args.no_probe)
        except HarnessError as exc:
            print(f"{host.name}: {exc}")
            status = 1
            continue
        if args.json:
            print(json.dumps(facts.to_json(), indent=2))
            continue
        qemu = ", ".join(f"{a} {v}" for a, v in facts.qemu.items()) or "none"
        print(f"{host.name}: {facts.arch}, kernel {facts.kernel}")
        print(
            f"  qemu: {qemu}; stratovirt: {facts.stratovirt or 'absent'}; "
            f"libvirt: {facts.libvirt or 'absent'}"
        )
        print(
            f"  kvm: {'works' if facts.kvm_works else 'no'} ({facts.kvm_detail}); "
            f"accel: {facts.accel}"
        )
        print(f"  groups: {', '.join(sorted(host.groups))}")
    return status


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
    return run.resolve()


def _cmd_report(args: argparse.Namespace) -> int:
    from harness.report.compare import compare, format_comparison
    from harness.report.html import read_meta
    from harness.report.results import read_results, summarize
    from harness.report.writer import rebuild

    if len(args.runs) > 2:
        raise HarnessError("report takes one run (rebuild it) or two (compare them)")
    runs = [_run_folder(name, args.report_dir) for name in args.runs]
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


def _cmd_bench(args: argparse.Namespace) -> int:
    folder = Path(args.bench_dir)
    scripts = sorted(p for p in folder.glob("*.py") if not p.name.startswith("_"))
    if args.names:
        by_name = {p.stem: p for p in scripts}
        unknown = [n for n in args.names if n.removesuffix(".py") not in by_name]
        if unknown:
            known = ", ".join(by_name) or "none"
            raise HarnessError(f"no benchmark {', '.join(unknown)} in {folder} (have: {known})")
        scripts = [by_name[n.removesuffix(".py")] for n in args.names]
    if args.list:
        for p in scripts:
            print(p.stem)
        return 0
    if not scripts:
        print(f"hvlab: no benchmarks in {folder}")
        return 0
    failed: list[str] = []
    for i, script in enumerate(scripts, start=1):
        print(f"== [{i}/{len(scripts)}] {script.name}", flush=True)
        start = time.monotonic()
        proc = subprocess.run([sys.executable, str(script)], cwd=REPO, check=False)
        took = time.monotonic() - start
        if proc.returncode != 0:
            failed.append(script.name)
            print(f"== {script.name}: exit code {proc.returncode} after {took:.1f} s", flush=True)
        else:
            print(f"== {script.name}: done in {took:.1f} s", flush=True)
    if failed:
        print(f"hvlab: {len(failed)} benchmark(s) failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


def _cmd_fuzz(args: argparse.Namespace) -> int:
    from harness.libvirt.fuzz import fuzz

    seed = args.seed if args.seed is not None else int.from_bytes(os.urandom(4), "big")
    print(
        f"fuzzing {args.examples} migration scenarios against {args.target}, seed {seed}",
        flush=True,
    )
    return fuzz(seed, args.examples, args.target)


def _cmd_sim(argv: Sequence[str]) -> int:
    from simulator.__main__ import main as sim_main

    return sim_main(list(argv))


def _cmd_images(args: argparse.Namespace) -> int:
    from harness.guest import guest_image
    from harness.spec import Arch

    arches = [Arch.parse(a) for a in args.arch] if args.arch else list(Arch)
    for arch in arches:
        image = guest_image(arch)
        print(f"guest {arch.value}: kernel {image.kernel_release}, {image.initrd}")
    return 0


def _cmd_leaks(args: argparse.Namespace) -> int:
    from harness.leaks import leftover_sockets, tagged_processes

    procs = tagged_processes(None)
    sockets = leftover_sockets(Path(args.tmp))
    for p in procs:
        print(f"leaked process {p.pid}: {p.cmdline[:150]}")
    for s in sockets:
        print(f"leaked socket {s}")
    if procs or sockets:
        return 1
    print("no hvlab process or socket left behind")
    return 0


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (and exit code 2), not a usage dump."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: {message} (see {self.prog} --help)\n")


_EPILOG = """\
examples:
  hvlab run                               every target this host can run
  hvlab run --target qemu-aarch64 -k stop  one target, tests matching 'stop'
  hvlab hosts check                       host facts and the KVM verdict
  hvlab report latest                     rebuild the newest run's report
  hvlab report RUN_A RUN_B                what changed between two runs
  hvlab fuzz --examples 500 --seed 7      fuzz libvirt migration flags on the model
  hvlab sim -machine q35 -m 512 -qmp unix:/tmp/q.sock,server,nowait

exit codes: 0 ok; 1 tests failed, a check failed or a regression was found;
2 bad usage or input (one line on stderr); pytest's 3/4/5 pass through from run.
"""


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="hvlab",
        description="Conformance harness for QEMU and StratoVirt: live migration, "
        "cancellation, snapshot/restore, hotplug and lifecycle, with a lab report.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

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
        "--hosts", default=str(REPO / "hosts.ini"), metavar="INI", help="inventory file"
    )
    run.add_argument(
        "--report-dir",
        default=str(REPO / "reports"),
        metavar="DIR",
        help="where run folders are written (default: reports/)",
    )
    run.add_argument(
        "--timeout-factor", type=float, metavar="X", help="multiply every timeout by X"
    )
    run.add_argument(
        "--jobs",
        type=_positive_int,
        default=1,
        metavar="N",
        help="run tests in N parallel workers (pytest-xdist; default 1)",
    )
    run.add_argument("--suites", metavar="DIR", help="suites directory (default: suites/)")
    run.add_argument(
        "pytest_args", nargs="*", metavar="PYTEST_ARG", help="more pytest arguments, after --"
    )
    run.set_defaults(func=_cmd_run)

    hosts = sub.add_parser("hosts", help="inventory commands (hosts check)")
    hosts_sub = hosts.add_subparsers(dest="hosts_command", required=True, metavar="ACTION")
    check = hosts_sub.add_parser("check", help="show facts of each host, probing KVM for real")
    check.add_argument("--hosts", default=str(REPO / "hosts.ini"), help="inventory file")
    check.add_argument("--json", action="store_true", help="print facts as JSON")
    check.add_argument("--no-probe", action="store_true", help="skip the KVM boot probe")
    check.add_argument("--remote", action="store_true", help="also connect to ssh hosts")
    check.set_defaults(func=_cmd_hosts_check)

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
        nargs="+",
        metavar="RUN",
        help="a run folder, or a run id (or 'latest') under --report-dir; one or two",
    )
    report.add_argument(
        "--report-dir",
        default=str(REPO / "reports"),
        metavar="DIR",
        help="where run ids are looked up (default: reports/)",
    )
    report.set_defaults(func=_cmd_report)

    bench = sub.add_parser(
        "bench",
        help="run the benchmarks in bench/ and print what they report",
        description="Run each bench/*.py (or the ones named) with this Python and print "
        "its output. Exit code 1 if any benchmark exits non-zero.",
    )
    bench.add_argument("names", nargs="*", metavar="NAME", help="only these benchmarks")
    bench.add_argument("--list", action="store_true", help="list the benchmarks and exit")
    bench.add_argument("--bench-dir", default=str(REPO / "bench"), help=argparse.SUPPRESS)
    bench.set_defaults(func=_cmd_bench)

    fuzz = sub.add_parser(
        "fuzz",
        help="fuzz libvirt migration flag combinations (Hypothesis)",
        description="Generate migration scenarios (flag combinations, domain states) with "
        "Hypothesis and check them against the libvirt model, real libvirt, or both "
        "(which must agree). On failure the shrunk reproducer is printed; exit code 1.",
    )
    fuzz.add_argument("--seed", type=int, help="random seed (default: a fresh one, printed)")
    fuzz.add_argument(
        "--examples", type=int, default=200, metavar="N", help="scenarios to try (default 200)"
    )
    fuzz.add_argument(
        "--target",
        choices=["model", "libvirt", "both"],
        default="model",
        help="what to check (default: model)",
    )
    fuzz.set_defaults(func=_cmd_fuzz)

    # Only listed here: `hvlab sim ...` hands its whole command line to the simulator.
    sub.add_parser(
        "sim",
        help="a simulated hypervisor with a QEMU/StratoVirt command line (hvlab sim -h)",
        add_help=False,
    )

    images = sub.add_parser("images", help="build (or verify cached) guest images")
    images.add_argument("--arch", action="append", help="x86_64 or aarch64 (default both)")
    images.set_defaults(func=_cmd_images)

    leaks = sub.add_parser("leaks", help="fail if any hvlab process or socket is left")
    leaks.add_argument("--tmp", default="/tmp", help=argparse.SUPPRESS)
    leaks.set_defaults(func=_cmd_leaks)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["sim"]:  # a hypervisor-style command line argparse must not touch
        return _cmd_sim(argv[1:])
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except HarnessError as exc:
        print(f"hvlab: {exc}", file=sys.stderr)
        return 2
    except (ValueError, OSError) as exc:
        print(f"hvlab: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("hvlab: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
