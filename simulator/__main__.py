"""``python -m simulator`` / ``hvlab sim``: a simulated hypervisor launched like a real one.

Takes a StratoVirt- or QEMU-style command line (``-machine q35 -smp 2 -m 1024
-qmp unix:PATH,server,nowait -incoming tcp:127.0.0.1:4444 ...``) plus ``--profile``,
``--seed``, ``--workload ws=SIZE,rate=SIZE``, ``--resident SIZE``, ``--time-scale X``,
``--arch x86_64|aarch64`` and ``--build-features vfio[,...]``.
A command line it cannot accept gets one line on stderr and exit code 1.
"""

from __future__ import annotations

import asyncio
import sys

from simulator.cmdline import CmdlineError, parse
from simulator.process import SimProcess


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if args and args[0] in ("-h", "--help", "-help"):
        print(__doc__)
        return 0
    try:
        cfg = parse(args)
    except CmdlineError as exc:
        print(f"simulator: {exc}", file=sys.stderr, flush=True)
        return 1
    try:
        return asyncio.run(SimProcess(cfg).run())
    except OSError as exc:
        print(f"simulator: {exc}", file=sys.stderr, flush=True)
        return 1
    except KeyboardInterrupt:
        return 0


if __name__ == "__main__":
    sys.exit(main())
