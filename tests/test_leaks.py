"""The leak check catches what teardown left behind."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from harness.errors import LeakError
from harness.leaks import OWNER_ENV, check_no_leaks, tagged_processes
from harness.waits import wait_for


def _spawn_detached(tag: str) -> subprocess.Popen[bytes]:
    """A process that escapes into its own session, as a leaked VM would.

    Returns once it runs with its own environment (before exec, /proc shows the
    parent's).
    """
    env = dict(os.environ, **{OWNER_ENV: tag})
    proc = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(300)"], env=env, start_new_session=True
    )
    wait_for(
        lambda: any(p.pid == proc.pid for p in tagged_processes(tag)),
        10,
        "the detached process to exec",
    )
    return proc


def test_leaked_process_is_caught_and_killed() -> None:
    """A deliberately leaked process fails the check.

    1. The tagged process is found by its tag.
    2. check_no_leaks raises LeakError naming its pid.
    3. The leaked process is killed by the check.
    4. A second check is clean.
    """
    tag = f"test-{uuid.uuid4().hex}"
    proc = _spawn_detached(tag)
    try:
        assert [p.pid for p in tagged_processes(tag)] == [proc.pid]
        with pytest.raises(LeakError) as info:
            check_no_leaks(tag)
        assert f"pid {proc.pid}" in str(info.value)
        assert proc.wait(10) != 0
        check_no_leaks(tag)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_leftover_socket_is_caught(tmp_path: Path) -> None:
    """A socket file left after teardown fails the check.

    1. LeakError names the socket path.
    2. The file is removed by the check.
    3. Other tags' processes are not touched (no false positives).
    """
    other = _spawn_detached(f"other-{uuid.uuid4().hex}")
    try:
        sock = tmp_path / "qmp.sock"
        sock.write_text("")
        with pytest.raises(LeakError, match=r"qmp\.sock"):
            check_no_leaks(f"mine-{uuid.uuid4().hex}", [sock])
        assert not sock.exists()
        assert other.poll() is None
    finally:
        other.kill()
        other.wait()


def test_vm_factory_teardown_fails_on_escaped_child(tmp_path: Path) -> None:
    """The per-test VM factory's teardown catches a child that escaped its group.

    1. A process carrying the factory's owner tag survives in its own session.
    2. VMFactory.close() raises LeakError naming it.
    3. Afterwards nothing with the tag is alive.
    """
    from harness.fixtures import VMFactory
    from harness.spec import Arch
    from harness.targets.qemu import QemuTarget

    factory = VMFactory(QemuTarget(Arch.X86_64), tmp_path)
    proc = _spawn_detached(factory.owner)
    try:
        with pytest.raises(LeakError, match=f"pid {proc.pid}"):
            factory.close()
        proc.wait(10)
        assert tagged_processes(factory.owner) == []
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
