"""A run killed with SIGKILL leaves its hypervisors and files; the next start reaps them."""

from __future__ import annotations

import fcntl
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from harness import reap
from harness.leaks import OWNER_FILE, hvlab_processes, run_of, run_of_pid
from harness.waits import wait_for

ROOT = Path(__file__).resolve().parents[1]


#: tests that start hvlab sessions of their own run on one xdist worker (make test:
#: --dist loadgroup): every session reaps dead runs at its start, so two at once would
#: take each other's evidence
pytestmark = pytest.mark.xdist_group("hvlab-sessions")


def _folders_of(run: str) -> list[Path]:
    out = []
    for top in Path("/tmp").glob("hvlab-*"):
        try:
            if (top / OWNER_FILE).read_text().strip() == run:
                out.append(top)
        except OSError:
            continue
    return out


def test_killed_run_is_reaped_by_the_next_start(tmp_path: Path) -> None:
    """SIGKILL of ``hvlab run`` mid-test, then the next run.

    1. While the first run snapshots a real QEMU guest, its QEMU processes and run
       folders (sockets, the boot template's guest memory) carry its run tag.
    2. After SIGKILL of hvlab itself they are still there (nothing could clean up).
    3. ``hvlab leaks --all`` reports them as left by a dead run and exits 1.
    4. The next ``hvlab run`` says it reaped them at its start; afterwards no process
       and no folder of the dead run is left. (The test holds the machine's reaper lock
       from the kill on and hands it to that run, so no other session starting on the
       machine reaps first.)
    """
    env = {k: v for k, v in os.environ.items() if k != "HVLAB_RUN"}
    first = subprocess.Popen(
        [sys.executable, "-m", "harness.cli", "run", "--target", "qemu-x86_64",
         "-k", "test_snapshot_and_restore", "--report-dir", str(tmp_path / "r1")],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    run = wait_for(lambda: _run_tag(first.pid), 30, "the first run to start")
    wait_for(
        lambda: (
            (
                [p for p in hvlab_processes() if run_of(p.owner) == run and "qemu" in p.cmdline]
                and _folders_of(run)
            )
            or None
        ),
        120,
        "the first run's QEMU and folders",
    )
    # the machine's reaper lock, held from the kill until the next start has reaped: no
    # other session starting on this machine meanwhile (another CI job, make test's
    # other worker) takes the evidence; the next run reaps under it (inherited fd)
    lock = os.open(reap.lock_path(), os.O_RDWR | os.O_CREAT, 0o600)
    try:
        wait_for(lambda: _try_flock(lock), 120, "the machine's reaper lock")
        os.kill(first.pid, signal.SIGKILL)
        first.wait()
        _dead_run_is_reaped_by_the_next_start(run, env, tmp_path, lock)
    finally:
        os.close(lock)
        if first.poll() is None:
            first.kill()
            first.wait()
    assert _folders_of(run) == []


def _dead_run_is_reaped_by_the_next_start(
    run: str, env: dict[str, str], tmp_path: Path, lock: int
) -> None:
    assert [p for p in hvlab_processes() if run_of(p.owner) == run]
    assert _folders_of(run)
    leaks = subprocess.run(
        [sys.executable, "-m", "harness.cli", "leaks", "--all"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert leaks.returncode == 1 and f"of run {run}" in leaks.stdout, leaks.stdout[-2000:]
    nxt = subprocess.run(
        [sys.executable, "-m", "harness.cli", "run", "--target", "sim:qemu-7.2",
         "-k", "test_greeting_shape", "--report-dir", str(tmp_path / "r2")],
        cwd=ROOT, env={**env, reap.LOCK_FD_ENV: str(lock)}, pass_fds=(lock,),
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert nxt.returncode == 0, nxt.stdout[-2000:] + nxt.stderr[-2000:]
    assert "leftovers of runs that died" in nxt.stderr, nxt.stderr[-2000:]
    wait_for(
        lambda: not [p for p in hvlab_processes() if run_of(p.owner) == run],
        10,
        "the dead run's processes to be gone",
    )


def _try_flock(fd: int) -> bool:
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def _run_tag(pid: int) -> str | None:
    """The run tag hvlab made for itself (its pid and start time)."""
    try:
        return run_of_pid(pid)
    except Exception:
        return None


def test_reaper_lock_is_one_at_a_time_and_handed_down(tmp_path: Path) -> None:
    """The machine's reaper lock (harness/reap.py reaper_lock).

    1. While this process holds it, another process's reaper gets None after its wait.
    2. A child given the holder's descriptor (HVLAB_REAP_LOCK_FD) reaps under it.
    3. A variable naming a descriptor that is some other file does not count.
    4. Released, the other process gets it.
    """
    code = (
        "from harness.reap import reaper_lock\n"
        "with reaper_lock(timeout=0.5) as held: print(held is not None)"
    )

    def other(fd_env: str | None = None, pass_fds: tuple[int, ...] = ()) -> str:
        env = {k: v for k, v in os.environ.items() if k != reap.LOCK_FD_ENV}
        if fd_env is not None:
            env[reap.LOCK_FD_ENV] = fd_env
        done = subprocess.run(
            [sys.executable, "-c", code], cwd=ROOT, env=env, pass_fds=pass_fds,
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        return done.stdout.strip()

    lock = os.open(reap.lock_path(), os.O_RDWR | os.O_CREAT, 0o600)
    decoy = os.open(tmp_path / "decoy", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        wait_for(lambda: _try_flock(lock), 120, "the machine's reaper lock")
        assert other() == "False"
        assert other(str(lock), (lock,)) == "True"
        assert other(str(decoy), (decoy,)) == "False"
        fcntl.flock(lock, fcntl.LOCK_UN)
        assert other() == "True"
    finally:
        os.close(lock)
        os.close(decoy)
