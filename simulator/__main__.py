"""``python -m simulator`` / ``hvlab sim``: a simulated hypervisor launched like a real one.

Takes a StratoVirt- or QEMU-style command line (``-machine q35 -smp 2 -m 1024
-qmp unix:PATH,server,nowait -incoming tcp:127.0.0.1:4444 ...``) plus ``--profile``,
``--seed``, ``--workload ws=SIZE,rate=SIZE``, ``--resident SIZE``, ``--time-scale X``,
``--arch x86_64|aarch64`` and ``--build-features vfio[,...]``.
``-daemonize``, ``-pidfile FILE`` and ``-D FILE`` behave as the profile's product says.
A command line it cannot accept gets one line on stderr and exit code 1 (what the
product does), a bad value of one of the simulator's own options exit code 2.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys

from simulator.cmdline import CmdlineError, SimConfig, UsageError, parse
from simulator.cmdline_values import HelpRequested
from simulator.daemon import detach, write_pidfile
from simulator.model.product_logs import LogLine
from simulator.process import SimProcess
from simulator.product_log import ProductLog


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if args and args[0] in ("-h", "--help", "-help"):
        print(__doc__)
        return 0
    try:
        cfg = parse(args)
    except HelpRequested as listing:
        print(listing, end="", flush=True)
        return 0
    except CmdlineError as exc:
        print(f"simulator: {exc}", file=sys.stderr, flush=True)
        return 2 if isinstance(exc, UsageError) else 1
    try:
        return _run(cfg)
    except OSError as exc:
        print(f"simulator: {exc}", file=sys.stderr, flush=True)
        return 1
    except KeyboardInterrupt:
        return 0


def _run(cfg: SimConfig) -> int:
    """Log the start, detach (-daemonize), write the pid file, run; clean up after."""
    log = ProductLog.open(cfg)
    if log is not None:
        log.started(cfg)
    report = None
    pidfile = cfg.pidfile
    if cfg.daemonize:
        rules = cfg.product_profile().cmdline
        if pidfile is not None and rules.pidfile_must_not_exist and os.path.exists(pidfile):
            why = "Daemonize start failed: Pidfile path is existed yet."
            print(f"simulator: {why}", file=sys.stderr, flush=True)
            if log is not None:
                log.exited(1, None, why)
            return 1
        report = detach()
        if log is not None:
            log.write(LogLine.DAEMONIZED)
    try:
        if pidfile is not None:
            write_pidfile(pidfile)
        on_listening = (lambda: report(True)) if report is not None else None
        return asyncio.run(SimProcess(cfg, log, on_listening).run())
    finally:
        if report is not None:
            report(False)  # nothing if the sockets were reported open already
        if pidfile is not None:
            with contextlib.suppress(OSError):
                os.unlink(pidfile)
        if log is not None:
            log.close()


if __name__ == "__main__":
    sys.exit(main())
