"""The simulator's memory stays bounded (issue 13): a dirty log nobody takes, a long
migration's time series, and a console client that types and never reads."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

from harness.leaks import OWNER_ENV, check_no_leaks, owner_tag
from harness.waits import scaled, wait_for
from simulator.guest_memory import LOG_LIMIT, PageMap
from simulator.model import MachineType, World
from simulator.model.memory import Workload
from simulator.model.spec import VMSpec
from simulator.model.units import MiB
from simulator.model.world import TIMELINE_LIMIT

ROOT = Path(__file__).resolve().parent.parent


def test_dirty_log_nobody_takes_is_bounded() -> None:
    """A guest writing for hours with no migration to take its dirty log.

    1. The log never holds more than LOG_LIMIT intervals.
    2. What it then reports covers every page written (coarser, never missing one).
    """
    mem = PageMap(1 << 18)
    written = set()
    for i in range(20 * LOG_LIMIT):
        page = (i * 7919) % mem.pages  # scattered single pages: no two intervals merge
        mem.write(page, page + 1)
        written.add(page)
        assert len(mem._log) <= LOG_LIMIT
    log = mem.take_log()
    assert all(any(a <= p < b for a, b in log) for p in list(written)[:: len(written) // 500])


def test_long_migration_time_series_is_bounded() -> None:
    """A migration that never converges, run for an hour of virtual time in a World.

    1. It is still active (never converges: the guest dirties 64 MiB/s at 8 MiB/s).
    2. Samples, events and effects the world has applied are not kept past the limit.
    """
    world = World()
    spec = VMSpec(machine=MachineType.Q35, memory=512 * MiB,
                  workload=Workload(working_set=64 * MiB, dirty_rate=64 * MiB))  # fmt: skip
    src = world.create_vm("src", spec, "qemu-7.2")
    world.create_vm("dst", spec, "qemu-7.2", incoming="tcp:127.0.0.1:4444")
    src.execute("migrate-set-capabilities",
                {"capabilities": [{"capability": "events", "state": True}]})  # fmt: skip
    src.execute("migrate-set-parameters", {"max-bandwidth": 8 * MiB})
    src.execute("migrate", {"uri": "tcp:127.0.0.1:4444"})
    for _ in range(3600):
        world.advance(1.0)
        src.take_events()
    eng = src.engine
    assert eng is not None and eng.status.value == "active"
    assert len(eng.tl.samples) <= TIMELINE_LIMIT
    assert len(eng.tl.events) + len(eng.tl.effects) <= TIMELINE_LIMIT


def _rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError(f"no VmRSS for {pid}")


def test_console_client_that_never_reads(tmp_path: Path) -> None:
    """A console client types 10,000 commands (each ~8 KiB of output) and reads nothing.

    1. The simulator takes what it can (its guest reads until its console blocks).
    2. Its resident memory grows by less than 16 MiB (unbounded, it would hold ~80 MiB
       of output and the typed lines behind it).
    3. A client that connects afterwards and reads gets a working shell.
    """
    qmp, console = tmp_path / "q.sock", tmp_path / "c.sock"
    owner = owner_tag(f"bounds-{uuid.uuid4().hex[:12]}")
    argv = [sys.executable, "-m", "simulator", "--profile", "qemu-7.2", "-smp", "8",
            "-qmp", f"unix:{qmp},server=on,wait=off",
            "-serial", f"unix:{console},server=on,wait=off"]  # fmt: skip
    env = dict(os.environ, PYTHONPATH=str(ROOT), **{OWNER_ENV: owner})
    proc = subprocess.Popen(argv, env=env, stdin=subprocess.DEVNULL, start_new_session=True)
    try:
        wait_for(lambda: console.exists() or None, 30, "the console socket")
        deaf = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        deaf.connect(str(console))
        time.sleep(scaled(1.0))  # the guest boots, prints its banner
        before = _rss_kib(proc.pid)
        deaf.settimeout(scaled(5.0))
        typed = 0
        line = b"cat" + b" /proc/cpuinfo" * 10 + b"\n"
        try:
            for _ in range(10_000):
                typed += deaf.send(line)
        except TimeoutError:
            pass  # the simulator stopped reading: its guest's input is full
        time.sleep(scaled(2.0))
        grown = _rss_kib(proc.pid) - before
        assert typed > 0
        assert grown < 16 * 1024, f"RSS grew {grown} KiB"
        deaf.close()
        reader = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        reader.connect(str(console))
        reader.settimeout(scaled(10.0))
        reader.sendall(b"echo hvlab-alive\n")
        got = b""
        while b"hvlab-alive\r\n" not in got:
            got += reader.recv(65536)
        reader.close()
    finally:
        proc.kill()
        proc.wait()
        check_no_leaks(owner)
