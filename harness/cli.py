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
import os
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from harness.cli_run import add_run_parsers
from harness.cliparse import OneLineParser, positive_int
from harness.conformance.cli import add_parser as add_fuzz_qmp_parser
from harness.errors import HarnessError
from harness.leaks import RUN_ENV

REPO = Path(__file__).resolve().parent.parent


def _cmd_hosts_check(args: argparse.Namespace) -> int:
    from harness.lab.commands import hosts_check

    return hosts_check(Path(args.hosts), probe=not args.no_probe, as_json=args.json)


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
    extra: list[str] = args.bench_args
    if extra and len(scripts) != 1:
        raise HarnessError("arguments after -- go to one benchmark: name exactly one")
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
        proc = subprocess.run([sys.executable, str(script), *extra], cwd=REPO, check=False)
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


def _cmd_lab_export(args: argparse.Namespace) -> int:
    from harness.lab.commands import export

    return export(Path(args.hosts), Path(args.out))


def _cmd_leaks(args: argparse.Namespace) -> int:
    from harness.lab.commands import leaks

    run = None if args.all else os.environ.get(RUN_ENV) or None
    return leaks(Path(args.tmp), Path(args.hosts) if args.hosts else None, run, args.reap)


_EPILOG = """\
examples:
  hvlab run                               every target this host can run
  hvlab run --target qemu-aarch64 -k stop  one target, tests matching 'stop'
  hvlab hosts check                       host facts and the KVM verdict
  hvlab report latest                     rebuild the newest run's report
  hvlab report RUN_A RUN_B                what changed between two runs
  hvlab fuzz --examples 500 --seed 7      fuzz libvirt migration flags on the model
  hvlab fuzz qmp --examples 50 --seed 1   QMP in lockstep: qemu-x86_64 vs sim:qemu-7.2
  hvlab sim -machine q35 -m 512 -qmp unix:/tmp/q.sock,server,nowait

exit codes: 0 ok; 1 tests failed, a check failed or a regression was found;
2 bad usage or input (one line on stderr); pytest's 3/4/5 pass through from run.
"""


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog="hvlab",
        description="Conformance harness for QEMU and StratoVirt: live migration, "
        "cancellation, snapshot/restore, hotplug and lifecycle, with a lab report.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    add_run_parsers(sub)

    hosts = sub.add_parser("hosts", help="inventory commands (hosts check)")
    hosts_sub = hosts.add_subparsers(dest="hosts_command", required=True, metavar="ACTION")
    check = hosts_sub.add_parser("check", help="show facts of each host, probing KVM for real")
    check.add_argument("--hosts", default=str(REPO / "hosts.ini"), help="inventory file")
    check.add_argument("--json", action="store_true", help="print facts as JSON")
    check.add_argument("--no-probe", action="store_true", help="skip the KVM boot probe")
    check.set_defaults(func=_cmd_hosts_check)

    bench = sub.add_parser(
        "bench",
        help="run the benchmarks in bench/ and print what they report",
        description="Run each bench/*.py (or the ones named) with this Python and print "
        "its output. Arguments after -- go to the one benchmark named "
        "(hvlab bench fidelity -- --runs 1). Exit code 1 if any benchmark exits non-zero.",
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
        "--examples",
        type=positive_int,
        default=200,
        metavar="N",
        help="scenarios to try (default 200)",
    )
    fuzz.add_argument(
        "--target",
        choices=["model", "libvirt", "both"],
        default="model",
        help="what to check (default: model)",
    )
    fuzz.set_defaults(func=_cmd_fuzz)
    add_fuzz_qmp_parser(fuzz)  # hvlab fuzz qmp ...: lockstep QMP, real QEMU vs the simulator

    # Only listed here: `hvlab sim ...` hands its whole command line to the simulator.
    sub.add_parser(
        "sim",
        help="a simulated hypervisor with a QEMU/StratoVirt command line (hvlab sim -h)",
        add_help=False,
    )

    images = sub.add_parser("images", help="build (or verify cached) guest images")
    images.add_argument("--arch", action="append", help="x86_64 or aarch64 (default both)")
    images.set_defaults(func=_cmd_images)

    lab = sub.add_parser("lab", help="the shared host pool (labgrid): lab export")
    lab_sub = lab.add_subparsers(dest="lab_command", required=True, metavar="ACTION")
    export = lab_sub.add_parser(
        "export",
        help="write labgrid exporter configs (one per ssh host) and the places script",
    )
    export.add_argument("--hosts", default=str(REPO / "hosts.ini"), help="inventory file")
    export.add_argument("--out", default="lab-export", metavar="DIR", help="output folder")
    export.set_defaults(func=_cmd_lab_export)

    leaks = sub.add_parser(
        "leaks", help="fail if any hvlab process, socket, namespace or lab is left"
    )
    leaks.add_argument("--tmp", default="/tmp", help=argparse.SUPPRESS)
    leaks.add_argument(
        "--hosts", default=None, metavar="INI", help="also check the ssh hosts of this inventory"
    )
    leaks.add_argument(
        "--all",
        action="store_true",
        help="everything hvlab on this machine (default with HVLAB_RUN set: that run only)",
    )
    leaks.add_argument(
        "--reap", action="store_true", help="first remove what runs that died left behind"
    )
    leaks.set_defaults(func=_cmd_leaks)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["sim"]:  # a hypervisor-style command line argparse must not touch
        return _cmd_sim(argv[1:])
    bench_args: list[str] = []
    if argv[:1] == ["bench"] and "--" in argv:  # the rest belongs to the benchmark
        cut = argv.index("--")
        argv, bench_args = argv[:cut], argv[cut + 1 :]
    parser = build_parser()
    args = parser.parse_args(argv)
    args.bench_args = bench_args
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
