"""Soak: the simulator's memory over a long non-converging migration and a console
client that never reads (issue 13).

Two simulator processes (qemu-7.2 profile, launched bare as QEMU's own tests launch
QEMU, plus a guest workload and a console socket): the source's guest dirties 64 MiB at
64 MiB/s while ``max-bandwidth`` allows 8 MiB/s, so the migration never converges; a
console client connects to the source's serial socket, types a command every 10 ms and
never reads a byte. Every ``--every`` seconds it prints the resident set size (VmRSS) of
both processes, the bytes transferred so far and the migration's status; at the end the
growth per minute of each side (from the sample after the first minute, when the
stream's buffers have filled, to the last). Usage:

    .venv/bin/python bench/bench_soak.py [--minutes 10] [--every 30]
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

from harness.bare import bare
from harness.cliparse import OneLineParser
from harness.leaks import check_no_leaks, kill_tagged, owner_tag, tagged_processes
from harness.qmp import QMPSession
from harness.runner import private_dir
from harness.waits import wait_for

SIMULATOR = [sys.executable, "-m", "simulator", "--profile", "qemu-7.2"]
WORKLOAD = ["--workload", "ws=64M,rate=64M", "--resident", "96M"]
MAX_BANDWIDTH = 8 << 20  # bytes/s: far below the dirty rate, so it never converges
COMMAND = b"cat /proc/cpuinfo\n"  # a screenful of output per line typed


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def pid_of(owner: str) -> int:
    procs = wait_for(lambda: tagged_processes(owner) or None, 30, f"process {owner}")
    return procs[0].pid


class DeafConsole:
    """A console client that types a command every 10 ms and never reads."""

    def __init__(self, path: Path) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(str(path))
        self.sock.settimeout(0.5)
        self.typed = 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._type, daemon=True)
        self.thread.start()

    def _type(self) -> None:
        while not self.stop.wait(0.01):
            try:
                self.typed += self.sock.send(COMMAND)
            except TimeoutError:
                continue  # the guest's input is full: it reads no more for now
            except OSError:
                return

    def close(self) -> None:
        self.stop.set()
        self.thread.join(2)
        self.sock.close()


@contextlib.contextmanager
def pair(run_dir: Path, owners: tuple[str, str]) -> Iterator[tuple[QMPSession, QMPSession]]:
    uri = f"unix:{run_dir / 'migration.sock'}"
    console = ["-serial", f"unix:{run_dir / 'console.sock'},server=on,wait=off"]
    with (
        bare(SIMULATOR, run_dir, "dst", owners[1], [*WORKLOAD, "-incoming", uri]) as dst,
        bare(SIMULATOR, run_dir, "src", owners[0], [*WORKLOAD, *console]) as src,
    ):
        src.execute("migrate-set-parameters", {"max-bandwidth": MAX_BANDWIDTH})
        src.execute("migrate", {"uri": uri})
        yield src, dst
        src.execute("migrate_cancel")


def soak(minutes: float, every: float) -> list[tuple[float, int, int, int, str]]:
    run_dir = private_dir("hvlab-soak-")
    tag = uuid.uuid4().hex[:12]
    owners = (owner_tag(f"soak-src-{tag}"), owner_tag(f"soak-dst-{tag}"))
    samples: list[tuple[float, int, int, int, str]] = []
    try:
        with pair(run_dir, owners) as (src, _):
            pids = pid_of(owners[0]), pid_of(owners[1])
            client = DeafConsole(run_dir / "console.sock")
            print(f"{'min':>6}{'src RSS MiB':>13}{'dst RSS MiB':>13}{'sent MiB':>10}  status")
            start = time.monotonic()
            try:
                while True:
                    elapsed = time.monotonic() - start
                    info = src.execute("query-migrate")
                    sent = int((info.get("ram") or {}).get("transferred", 0))
                    row = (elapsed / 60, rss_kib(pids[0]), rss_kib(pids[1]), sent,
                           str(info.get("status")))  # fmt: skip
                    samples.append(row)
                    print(f"{row[0]:>6.1f}{row[1] / 1024:>13.1f}{row[2] / 1024:>13.1f}"
                          f"{sent / 2**20:>10.0f}  {row[4]}", flush=True)  # fmt: skip
                    if elapsed >= minutes * 60:
                        break
                    time.sleep(min(every, minutes * 60 - elapsed))
            finally:
                client.close()
    except BaseException:
        for owner in owners:
            kill_tagged(owner)
        raise
    finally:
        shutil.rmtree(run_dir, ignore_errors=True)
    for owner in owners:
        check_no_leaks(owner)
    return samples


def main(argv: list[str] | None = None) -> int:
    p = OneLineParser(prog="bench_soak.py", description=__doc__.splitlines()[0])
    p.add_argument("--minutes", type=float, default=10.0, help="how long (default 10)")
    p.add_argument("--every", type=float, default=30.0, help="seconds between samples")
    args = p.parse_args(argv)
    if not (args.minutes > 0 and args.every > 0):
        p.error("--minutes and --every must be > 0")
    samples = soak(args.minutes, args.every)
    settled = [s for s in samples if s[0] >= min(1.0, samples[-1][0] / 2)]
    first, last = settled[0], samples[-1]
    span = last[0] - first[0]
    if span > 0:
        for side, i in (("source", 1), ("destination", 2)):
            growth = (last[i] - first[i]) / 1024 / span
            print(f"{side}: {first[i] / 1024:.1f} -> {last[i] / 1024:.1f} MiB "
                  f"({growth:+.2f} MiB/min after {first[0]:.1f} min)")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
