"""Two simulator processes migrate over real sockets; snapshots round-trip through files."""

from __future__ import annotations

import os
import shutil
import stat
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.console import Console
from harness.qmp import QMPSession
from simulator.testing import SimProc, private_dir

#: 1 GiB guest, 64 MiB written while it migrates; 20x faster than real time.
SIM_OPTS = ["--time-scale", "20", "--workload", "ws=64M,rate=32M", "--resident", "96M"]


@pytest.fixture
def run_dir() -> Iterator[Path]:
    d = private_dir()
    yield d
    shutil.rmtree(d, ignore_errors=True)


def _session(proc: SimProc) -> QMPSession:
    s = QMPSession(proc.name)
    s.connect(proc.qmp, timeout=20)
    return s


def _until(fn, timeout: float, what: str):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = fn()
        if got:
            return got
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def _console(proc: SimProc) -> Console:
    c = Console(proc.serial, proc.log, proc.name)
    c.wait_ready(20)
    return c


@pytest.mark.parametrize("profile", ["qemu-7.2", "stratovirt-2.5"])
@pytest.mark.parametrize("transport", ["tcp", "unix"])
def test_migration_memory_arrives_identical(run_dir: Path, profile: str, transport: str) -> None:
    """A live migration between two simulator processes over a real socket.

    1. The source guest writes a memory pattern and runs a counter.
    2. migrate is accepted and the source reaches "completed".
    3. The destination verified the stream against the source's digest (else it exits 1)
       and runs; the digest it received equals the stopped source's memory digest.
    4. The destination guest reads back the same pattern md5.
    5. The counter carried over and keeps advancing on the destination.
    6. StratoVirt's source process exits 0 after completion; QEMU's stays postmigrate.
    """
    if transport == "tcp":
        port = _free_port()
        uri = f"tcp:127.0.0.1:{port}"
    else:
        uri = f"unix:{run_dir}/mig.sock"
    with (
        SimProc("src", run_dir, profile, SIM_OPTS) as src,
        SimProc("dst", run_dir, profile, [*SIM_OPTS, "-incoming", uri]) as dst,
    ):
        sq = _session(src)
        con = _console(src)
        status, md5 = con.run("hvlab-pattern write 32 7")
        assert status == 0 and len(md5) == 32
        assert con.run("hvlab-counter start")[0] == 0
        sq.execute("migrate", {"uri": uri})
        strato = profile.startswith("stratovirt")
        src_digest = None
        if strato:
            assert src.wait(60) == 0  # 6 (StratoVirt): the source exits after completion
        else:
            _until(lambda: sq.execute("query-migrate")["status"] == "completed", 60, "completed")
            assert sq.execute("query-status")["status"] == "postmigrate"  # 6 (QEMU)
            src_digest = sq.execute("x-hvlab-memory-digest")["digest"]
        dq = _session(dst)
        _until(lambda: dq.execute("query-migrate")["status"] == "completed", 20, "dst completed")
        assert dq.execute("query-status")["status"] == "running"
        received = dq.execute("x-hvlab-memory-digest")["received"]
        if src_digest is not None:
            assert received == src_digest
        dcon = Console(dst.serial, dst.log, "dst")
        assert dcon.run("hvlab-pattern check") == (0, md5)
        first = int(dcon.run("hvlab-counter read")[1])
        time.sleep(0.3)
        assert int(dcon.run("hvlab-counter read")[1]) > first > 0
        for c in (con, dcon):
            c.close()
        dq.close()
        sq.close()


def test_snapshot_restore_keeps_memory(run_dir: Path) -> None:
    """migrate file:DIR writes memory and state; -incoming file:DIR restores them.

    1. The snapshot returns and leaves the source paused (2.5 auto-stops).
    2. DIR holds exactly "memory" and "state", both private (0600).
    3. The restored VM runs straight away (no -S) with the same memory digest.
    4. Its guest reads back the same pattern md5.
    """
    snap = run_dir / "snap"
    opts = ["--workload", "ws=16M,rate=8M", "--time-scale", "10"]
    with SimProc("src", run_dir, "stratovirt-2.5", opts, memory="512") as src:
        sq = _session(src)
        con = _console(src)
        status, md5 = con.run("hvlab-pattern write 16 3")
        assert status == 0
        sq.execute("migrate", {"uri": f"file:{snap}"})
        assert sq.execute("query-status")["status"] == "paused"
        digest = sq.execute("x-hvlab-memory-digest")["digest"]
        assert sorted(os.listdir(snap)) == ["memory", "state"]
        for name in ("memory", "state"):
            assert stat.S_IMODE((snap / name).stat().st_mode) == 0o600
        con.close()
        sq.close()
    with SimProc(
        "dst", run_dir, "stratovirt-2.5", [*opts, "-incoming", f"file:{snap}"], memory="512"
    ) as dst:
        dq = _session(dst)
        assert dq.execute("query-status")["status"] == "running"
        assert dq.execute("x-hvlab-memory-digest")["received"] == digest
        dcon = Console(dst.serial, dst.log, "dst")
        assert dcon.run("hvlab-pattern check") == (0, md5)
        dcon.close()
        dq.close()


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
