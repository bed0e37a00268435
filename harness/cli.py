"""hvlab command line: run the suites, check hosts, rebuild reports, build images.

Exit codes: 0 success; 1 tests failed or a check found a problem; 2 bad usage or bad
input (one line on stderr naming what is wrong); other pytest codes pass through
(3 internal error, 4 usage, 5 no tests collected).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from harness.errors import HarnessError

REPO = Path(__file__).resolve().parent.parent


def _cmd_run(args: argparse.Namespace) -> int:
    import pytest

    suites = Path(args.suites) if args.suites else REPO / "suites"
    if not suites.is_dir():
        raise HarnessError(f"suites directory {suites} does not exist (use --suites DIR)")
    argv = [
        str(suites),
        "-p",
        "no:pytest11.testinfra",
        "--report-dir",
        args.report_dir,
        "--hosts",
        args.hosts,
        "-q",
    ]
    for t in args.target:
        argv += ["--target", t]
    if args.k:
        argv += ["-k", args.k]
    if args.timeout_factor:
        argv += ["--timeout-factor", str(args.timeout_factor)]
    argv += args.pytest_args
    return int(pytest.main(argv))


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


def _cmd_report(args: argparse.Namespace) -> int:
    from harness.report.results import summarize, write_final

    run = Path(args.run)
    if not run.is_dir():
        candidate = Path(args.report_dir) / args.run
        run = candidate if candidate.is_dir() else run
    if not (run / "results.jsonl").exists():
        raise HarnessError(f"{run}: not a run folder (no results.jsonl)")
    results = write_final(run)
    for target, counts in summarize(results).items():
        print(f"{target:<24} " + " ".join(f"{k} {v}" for k, v in counts.items()))
    print(f"rebuilt {run}/results.json and junit.xml from {len(results)} results")
    return 0


def _cmd_images(args: argparse.Namespace) -> int:
    from harness.guest import guest_image
    from harness.spec import Arch

    arches = [Arch.parse(a) for a in args.arch] if args.arch else list(Arch)
    for arch in arches:
        image = guest_image(arch)
        print(f"guest {arch.value}: kernel {image.kernel_release}, {image.initrd}")
    return 0


def _cmd_leaks(args: argparse.Namespace) -> int:
    from harness.leaks import OWNER_ENV, ProcInfo

    procs: list[ProcInfo] = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            env = (entry / "environ").read_bytes().split(b"\0")
            if any(e.startswith(OWNER_ENV.encode() + b"=") for e in env):
                stat = (entry / "stat").read_text()
                if stat.rsplit(")", 1)[1].split()[0] != "Z":
                    cmd = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
                    procs.append(ProcInfo(int(entry.name), cmd))
        except (OSError, IndexError):
            continue
    sockets = [p for p in Path(args.tmp).glob("hvlab-*/**/*") if p.is_socket()]
    for p in procs:
        print(f"leaked process {p.pid}: {p.cmdline[:150]}")
    for s in sockets:
        print(f"leaked socket {s}")
    if procs or sockets:
        return 1
    print("no hvlab process or socket left behind")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="hvlab",
        description="Conformance harness for QEMU and StratoVirt: live migration, "
        "cancellation, snapshot/restore, hotplug and lifecycle.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = sub.add_parser("run", help="run the conformance suites and write a report")
    run.add_argument(
        "--target",
        action="append",
        default=[],
        metavar="NAME",
        help="only this target (name or prefix; repeatable)",
    )
    run.add_argument("-k", metavar="EXPR", help="only tests matching EXPR (pytest -k)")
    run.add_argument("--hosts", default=str(REPO / "hosts.ini"), help="inventory file")
    run.add_argument("--report-dir", default=str(REPO / "reports"), help="where runs are written")
    run.add_argument("--timeout-factor", type=float, help="scale every timeout")
    run.add_argument("--suites", help="suites directory (default: the repository's)")
    run.add_argument("pytest_args", nargs="*", help="extra pytest arguments (after --)")
    run.set_defaults(func=_cmd_run)

    hosts = sub.add_parser("hosts", help="inventory commands")
    hosts_sub = hosts.add_subparsers(dest="hosts_command", required=True, metavar="ACTION")
    check = hosts_sub.add_parser("check", help="show facts of each host, probing KVM for real")
    check.add_argument("--hosts", default=str(REPO / "hosts.ini"), help="inventory file")
    check.add_argument("--json", action="store_true", help="print facts as JSON")
    check.add_argument("--no-probe", action="store_true", help="skip the KVM boot probe")
    check.add_argument("--remote", action="store_true", help="also connect to ssh hosts")
    check.set_defaults(func=_cmd_hosts_check)

    report = sub.add_parser("report", help="rebuild results.json and junit.xml of a run")
    report.add_argument("run", help="run folder or run id")
    report.add_argument("--report-dir", default=str(REPO / "reports"))
    report.set_defaults(func=_cmd_report)

    images = sub.add_parser("images", help="build (or verify cached) guest images")
    images.add_argument("--arch", action="append", help="x86_64 or aarch64 (default both)")
    images.set_defaults(func=_cmd_images)

    leaks = sub.add_parser("leaks", help="fail if any hvlab process or socket is left")
    leaks.add_argument("--tmp", default="/tmp", help=argparse.SUPPRESS)
    leaks.set_defaults(func=_cmd_leaks)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except HarnessError as exc:
        print(f"hvlab: {exc}", file=sys.stderr)
        return 2
    except ValueError as exc:
        print(f"hvlab: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("hvlab: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
