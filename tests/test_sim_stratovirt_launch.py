"""The simulator launched with StratoVirt's usual options (hydropper's launcher uses them):
``-daemonize -pidfile F``, a console on ``-device virtconsole``, and the ``-D`` log.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest

from harness.console import Console
from harness.leaks import OWNER_ENV, check_no_leaks, kill_tagged, owner_tag
from harness.qmp import QMPSession
from harness.waits import scaled, wait_for

ROOT = Path(__file__).resolve().parent.parent
SIM = [sys.executable, "-m", "simulator"]
BOOT = ["-machine", "microvm", "-smp", "2", "-m", "256", "-kernel", "/k", "-initrd", "/i"]
#: util/src/logger.rs: ``{time}: [{pid}][{tid}][{file}:{line}]:{LEVEL}: {message}``.
LOG_LINE = re.compile(
    r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}): \[(\d+)\]\[(\d+)\]\[([^\]]+)\]:(\w+): (.*)"
)


@pytest.fixture
def owner() -> Iterator[str]:
    """A tag every process of the test carries; none may survive it."""
    tag = owner_tag(f"svlaunch-{uuid.uuid4().hex[:12]}")
    try:
        yield tag
    except BaseException:
        kill_tagged(tag)
        raise
    check_no_leaks(tag)


def start(argv: list[str], owner: str) -> subprocess.CompletedProcess[str]:
    """Run the simulator's command to completion (a daemonizing one returns at once)."""
    env = dict(os.environ, PYTHONPATH=str(ROOT), **{OWNER_ENV: owner})
    return subprocess.run(argv, env=env, capture_output=True, text=True, timeout=scaled(60))


def _alive(pid: int) -> bool:
    """Still running (a zombie waiting for its reaper has ended)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def console_args(folder: Path) -> list[str]:
    return [
        "-device",
        "virtio-serial-device",
        "-chardev",
        f"socket,id=con0,path={folder / 'console.sock'},server,nowait",
        "-device",
        "virtconsole,chardev=con0,id=console0",
    ]


def test_daemonized_with_a_virtio_console(tmp_path: Path, owner: str) -> None:
    """``-daemonize -pidfile F`` with the guest's console on a virtconsole.

    1. The command returns 0 with the sockets already there and the pid file written:
       the pid of a live daemon in a session of its own, not its leader.
    2. The guest's shell answers on the virtconsole's socket.
    3. QMP answers; quit ends the daemon, which removes its pid file.
    """
    pidfile, qmp_sock = tmp_path / "vm.pid", tmp_path / "qmp.sock"
    argv = [*SIM, "--profile", "stratovirt-2.5", *BOOT, *console_args(tmp_path)]
    argv += ["-qmp", f"unix:{qmp_sock},server,nowait", "-daemonize", "-pidfile", str(pidfile)]
    done = start(argv, owner)
    assert done.returncode == 0, done.stderr
    assert qmp_sock.exists() and (tmp_path / "console.sock").exists()
    pid = int(pidfile.read_text())
    try:
        assert os.getsid(pid) not in (pid, os.getsid(0))  # double fork: not a leader
        console = Console(tmp_path / "console.sock", name="virtconsole")
        try:
            console.wait_ready(30)
            assert console.run("echo from-hvc0") == (0, "from-hvc0")
        finally:
            console.close()
        qmp = QMPSession("daemon")
        try:
            qmp.connect(qmp_sock)
            assert qmp.execute("query-status")["status"] == "running"
            qmp.execute("quit")
        finally:
            qmp.close()
        wait_for(lambda: not pidfile.exists() or None, 30, "the daemon to remove its pid file")
        wait_for(lambda: not _alive(pid) or None, 30, "the daemon to exit")
    finally:
        if pidfile.exists():
            os.kill(pid, signal.SIGKILL)


@pytest.mark.parametrize(
    ("profile", "extra", "message"),
    [
        ("stratovirt-2.5", ["-pidfile", "PID"], "-pidfile must be used with -daemonize together."),
        (
            "stratovirt-2.4",
            ["-daemonize", "-pidfile", "EXISTING"],
            "Daemonize start failed: Pidfile path is existed yet.",
        ),
        ("stratovirt-2.5", ["-device", "virtconsole,chardev=x"], "No virtio serial device found"),
        (
            "stratovirt-2.5",
            ["-device", "virtio-serial-device", "-device", "virtconsole,chardev=x"],
            'Chardev "x" not found or is in use',
        ),
    ],
)
def test_refused_as_stratovirt_refuses(
    profile: str, extra: list[str], message: str, tmp_path: Path, owner: str
) -> None:
    """What StratoVirt refuses at start: exit status 1, its words on one line."""
    (tmp_path / "EXISTING").write_text("1")
    extra = [str(tmp_path / a) if a in ("PID", "EXISTING") else a for a in extra]
    qmp = ["-qmp", f"unix:{tmp_path / 'qmp.sock'},server,nowait"]
    done = start([*SIM, "--profile", profile, *BOOT, *qmp, *extra], owner)
    assert done.returncode == 1
    assert done.stderr.strip().splitlines()[-1].endswith(message), done.stderr


def test_qemu_pidfile_without_daemonize(tmp_path: Path, owner: str) -> None:
    """QEMU writes ``-pidfile`` without ``-daemonize`` and removes it at exit."""
    pidfile, qmp_sock = tmp_path / "vm.pid", tmp_path / "qmp.sock"
    argv = [*SIM, "--profile", "qemu-7.2", "-qmp", f"unix:{qmp_sock},server=on,wait=off"]
    env = dict(os.environ, PYTHONPATH=str(ROOT), **{OWNER_ENV: owner})
    proc = subprocess.Popen([*argv, "-pidfile", str(pidfile)], env=env)
    try:
        wait_for(lambda: qmp_sock.exists() or None, 30, "the QMP socket")
        assert int(pidfile.read_text()) == proc.pid
        qmp = QMPSession("qemu")
        qmp.connect(qmp_sock)
        qmp.execute("quit")
        qmp.close()
        assert proc.wait(timeout=scaled(30)) == 0
        assert not pidfile.exists()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def _log(path: Path) -> list[tuple[datetime, int, int, str, str, str]]:
    rows = []
    for line in path.read_text().splitlines():
        m = LOG_LINE.fullmatch(line)
        assert m is not None, line
        stamp = datetime.strptime(m.group(1)[:26], "%Y-%m-%dT%H:%M:%S.%f")
        rows.append((stamp, int(m.group(2)), int(m.group(3)), m.group(4), m.group(5), m[6]))
    return rows


def test_log_times_a_restore(tmp_path: Path, owner: str) -> None:
    """``-D FILE``: StratoVirt's log lines at start-up, on restore and at exit.

    1. A snapshot taken with ``migrate file:DIR``, then restored with
       ``-incoming file:DIR -D LOG``: every line has StratoVirt 2.5's format.
    2. The first line is ``VmConfig is ...``; one ``vcpuN start running`` follows per
       vCPU (from the vCPU's thread), so the restore's time is measurable from the log
       (hydropper's quickstart test); SIGTERM logs the signal and ``MainLoop over``.
    3. A restore that fails logs its error at level ERROR.
    """
    snap, qmp_sock = tmp_path / "snap", tmp_path / "a.sock"
    env = dict(os.environ, PYTHONPATH=str(ROOT), **{OWNER_ENV: owner})
    base = [*SIM, "--profile", "stratovirt-2.5", *BOOT]
    src = subprocess.Popen([*base, "-qmp", f"unix:{qmp_sock},server,nowait"], env=env)
    try:
        wait_for(lambda: qmp_sock.exists() or None, 30, "the QMP socket")
        qmp = QMPSession("src")
        qmp.connect(qmp_sock)
        qmp.execute("stop")
        assert qmp.execute("migrate", {"uri": f"file:{snap}"}) == {}
        qmp.execute("quit")
        qmp.close()
        src.wait(timeout=scaled(30))
    finally:
        if src.poll() is None:
            src.kill()
            src.wait()
    log, restored_sock = tmp_path / "restore.log", tmp_path / "b.sock"
    argv = [*base, "-qmp", f"unix:{restored_sock},server,nowait", "-incoming", f"file:{snap}"]
    dst = subprocess.Popen([*argv, "-D", str(log)], env=env)
    try:
        wait_for(lambda: restored_sock.exists() or None, 30, "the restored VM's QMP socket")
        wait_for(lambda: log.read_text().count("start running") == 2 or None, 30, "vCPUs")
        dst.send_signal(signal.SIGTERM)
        assert dst.wait(timeout=scaled(30)) == 0
    finally:
        if dst.poll() is None:
            dst.kill()
            dst.wait()
    rows = _log(log)
    assert rows[0][3:5] == ("src/main.rs:89", "INFO") and rows[0][5].startswith("VmConfig is ")
    vcpus = [r for r in rows if r[5].endswith("start running")]
    assert [r[5] for r in vcpus] == ["vcpu0 start running", "vcpu1 start running"]
    assert all(r[2] != r[1] for r in vcpus) and rows[0][0] <= vcpus[-1][0]
    assert [r[5] for r in rows[-2:]] == [
        "MainLoop exits due to receive signal 15",
        "MainLoop over, Vm exit",
    ]
    bad, bad_log = tmp_path / "nothing-here", tmp_path / "bad.log"
    done = start([*base, "-qmp", f"unix:{tmp_path / 'c.sock'},server,nowait",
                  "-incoming", f"file:{bad}", "-D", str(bad_log)], owner)  # fmt: skip
    assert done.returncode == 1
    last = _log(bad_log)[-1]
    assert last[4] == "ERROR" and "Failed to start VM." in last[5]
