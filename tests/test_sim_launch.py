"""The simulator launched the way QEMU's own tooling launches QEMU 7.2.

QEMU's Python launcher (``qemu.machine.QEMUMachine``) listens itself and lets QEMU
connect (``-chardev socket,id=mon,path=P`` or an inherited ``fd=N``), relies on the
default machine, lists machines with ``-machine help``, probes ``query-commands`` and
starts guests with ``-S``. Where real QEMU is installed the same questions are asked of
it, and the answers compared.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from qemu.qmp.legacy import QEMUMonitorProtocol

from harness.leaks import OWNER_ENV, check_no_leaks, owner_tag
from harness.waits import scaled, wait_for
from simulator.cmdline import parse
from simulator.model import MachineType, World
from simulator.model.spec import VMSpec

ROOT = Path(__file__).resolve().parent.parent
SIM = [sys.executable, "-m", "simulator", "--profile", "qemu-7.2"]
QEMU = shutil.which("qemu-system-x86_64")
needs_qemu = pytest.mark.skipif(QEMU is None, reason="qemu-system-x86_64 is not installed")
BASE = ["-display", "none", "-vga", "none", "-nodefaults"]


@contextmanager
def launched(argv: list[str], pass_fds: tuple[int, ...] = ()) -> Iterator[subprocess.Popen[str]]:
    """The process in its own session; killed (and reaped) if it outlives the block, and
    nothing it started may survive it."""
    owner = owner_tag(f"launch-{uuid.uuid4().hex[:12]}")
    env = dict(os.environ, PYTHONPATH=str(ROOT), **{OWNER_ENV: owner})
    proc = subprocess.Popen(
        argv,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        pass_fds=pass_fds,
        start_new_session=True,
    )
    try:
        yield proc
    except BaseException as exc:
        if proc.poll() is None:
            proc.kill()
        _, err = proc.communicate()
        exc.add_note(f"simulator exit {proc.returncode}, stderr:\n{err}")
        raise
    finally:
        if proc.poll() is None:
            proc.kill()
        if proc.returncode is None or (proc.stdout and not proc.stdout.closed):
            proc.communicate()
        check_no_leaks(owner)


def _quit(mon: QEMUMonitorProtocol, proc: subprocess.Popen[str]) -> int:
    """quit; the exit status. After a quit, qemu.qmp's reader may meet the end of the
    stream first (QEMUMachine._close_qmp_connection tolerates that EOF, as here)."""
    with contextlib.suppress(EOFError):
        assert mon.cmd_obj({"execute": "quit"}) == {"return": {}}
    with contextlib.suppress(EOFError):
        mon.close()
    return proc.wait(timeout=scaled(30))


@pytest.mark.parametrize("form", ["chardev-path", "qmp-unix", "chardev-host"])
def test_monitor_the_launcher_listens_on(form: str, tmp_path: Path) -> None:
    """A client monitor: the launcher listens, the simulator connects (char-socket.c).

    1. The simulator connects to the launcher's socket and greets as QEMU 7.2 (oob).
    2. Commands work after qmp_capabilities (query-version: 7.2.0).
    3. quit ends the process with status 0; the launcher's socket is left alone.
    """
    if form == "chardev-host":
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        address: Any = ("127.0.0.1", port)
        args = ["-chardev", f"socket,id=mon,host=127.0.0.1,port={port}"]
    else:
        address = str(tmp_path / "qmp.sock")
        args = (
            ["-chardev", f"socket,id=mon,path={address}"]
            if form == "chardev-path"
            else ["-qmp", f"unix:{address}"]
        )
    if form != "qmp-unix":
        args += ["-mon", "chardev=mon,mode=control"]
    mon = QEMUMonitorProtocol(address, server=True)
    with launched([*SIM, *BASE, *args]) as proc:
        greeting = mon.accept(timeout=scaled(20))
        assert greeting["QMP"]["version"]["qemu"] == {"micro": 0, "minor": 2, "major": 7}
        assert greeting["QMP"]["capabilities"] == ["oob"]
        version = mon.cmd_obj({"execute": "query-version"})["return"]
        assert (version["qemu"]["major"], version["qemu"]["minor"]) == (7, 2)
        assert _quit(mon, proc) == 0
    if form != "chardev-host":
        assert Path(address).exists()


def test_monitor_on_an_inherited_socket() -> None:
    """``-chardev socket,id=mon,fd=N``: QEMUMachine's socketpair end, inherited.

    1. The simulator speaks QMP on the inherited socket at once (greeting, commands).
    2. quit ends it with status 0.
    """
    ours, theirs = socket.socketpair()
    with ours:
        fd = theirs.fileno()
        argv = [*SIM, *BASE, "-chardev", f"socket,id=mon,fd={fd}"]
        with launched([*argv, "-mon", "chardev=mon,mode=control"], pass_fds=(fd,)) as proc:
            theirs.close()
            mon = QEMUMonitorProtocol(ours)
            greeting = mon.connect(negotiate=True)
            assert greeting is not None and greeting["QMP"]["capabilities"] == ["oob"]
            assert mon.cmd_obj({"execute": "query-status"})["return"]["status"] == "running"
            assert _quit(mon, proc) == 0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["-chardev", "socket,id=mon,path=/nonexistent/hvlab.sock"],
            "-chardev socket,id=mon,path=/nonexistent/hvlab.sock: "
            "Failed to connect to '/nonexistent/hvlab.sock': No such file or directory",
        ),
        (
            ["-chardev", "socket,id=mon,fd=987"],
            "-chardev socket,id=mon,fd=987: File descriptor '987' is not a socket",
        ),
        (
            ["-chardev", "socket,id=mon,path=/x,fd=3"],
            "None or one of 'path', 'fd' or 'host' option required.",
        ),
    ],
)
def test_monitor_that_cannot_open(args: list[str], message: str) -> None:
    """A client monitor that cannot be opened ends the process as QEMU does.

    1. Exit status 1 and one line on stderr with QEMU's words (char-socket.c).
    """
    with launched([*SIM, *BASE, *args, "-mon", "chardev=mon,mode=control"]) as proc:
        _, err = proc.communicate(timeout=scaled(30))
    assert proc.returncode == 1
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].endswith(message), err


@pytest.mark.parametrize("option", ["-M", "-machine"])
def test_machine_help(option: str) -> None:
    """``-machine help`` prints QEMU 7.2's machine list and exits 0.

    1. Exit status 0; the first line is QEMU's heading.
    2. pc is the alias of pc-i440fx-7.2, which is the default; q35 and isapc are listed.
    3. Where real QEMU 7.2 is installed, its output is the same, byte for byte.
    """
    with launched([*SIM, option, "help"]) as proc:
        out, err = proc.communicate(timeout=scaled(30))
    assert proc.returncode == 0, err
    lines = out.splitlines()
    assert lines[0] == "Supported machines are:"
    rows = {line.split()[0]: line for line in lines[1:]}
    assert rows["pc"].endswith("(alias of pc-i440fx-7.2)")
    assert rows["pc-i440fx-7.2"].endswith("(default)")
    assert {"q35", "isapc", "microvm"} <= set(rows)
    if QEMU is not None:
        real = subprocess.run([QEMU, option, "help"], capture_output=True, text=True, timeout=60)
        assert out == real.stdout


def test_machines_modelled() -> None:
    """The default machine and the other x86 PCs.

    1. No -machine: pc (QEMU's default), a PCI machine on pci.0.
    2. isapc is accepted; a listed type the simulator does not model is refused naming
       what it models; an unknown type keeps QEMU's "unsupported machine type".
    3. pc: device_add goes onto pci.0, the first free slot being 2.
    4. isapc: device_add of a PCI device is refused with QEMU's words.
    """
    qmp = ["-qmp", "unix:/tmp/hvlab-never-bound.sock,server=on,wait=off"]
    assert parse(qmp).machine is MachineType.PC
    assert parse(["-M", "isapc", *qmp]).machine is MachineType.ISAPC
    with pytest.raises(ValueError, match=r"not modelled by the simulator.*pc, pc-i440fx-7\.2"):
        parse(["-M", "pc-i440fx-2.0", *qmp])
    with pytest.raises(ValueError, match="unsupported machine type"):
        parse(["-M", "pc-i440fx-99", *qmp])
    w = World()
    pc = w.create_vm("pc", VMSpec(machine=MachineType.PC), "qemu-7.2")
    pc.execute("netdev_add", {"type": "user", "id": "n0"})
    add = {"driver": "virtio-net-pci", "netdev": "n0", "id": "nic0"}
    assert pc.execute("device_add", add)[0] == {}
    nic = pc.table.devices["nic0"]
    assert (nic.bus, nic.addr) == ("pci.0", 2)
    isa = w.create_vm("isa", VMSpec(machine=MachineType.ISAPC), "qemu-7.2")
    isa.execute("netdev_add", {"type": "user", "id": "n0"})
    reply = isa.execute("device_add", add)[0]
    assert getattr(reply, "desc", None) == "No 'PCI' bus found for device 'virtio-net-pci'"


def _probe(binary: list[str], tmp_path: Path) -> dict[str, Any]:
    """query-commands and the -S runstates (start, after stop, after cont) of a launch."""
    path = str(tmp_path / f"probe-{len(list(tmp_path.iterdir()))}.sock")
    argv = [*binary, *BASE, "-S", "-qmp", f"unix:{path},server=on,wait=off"]
    with launched(argv) as proc:
        mon = QEMUMonitorProtocol(path)
        wait_for(lambda: Path(path).exists() or None, 20, "the QMP socket")
        mon.connect(negotiate=True)
        names = [c["name"] for c in mon.cmd_obj({"execute": "query-commands"})["return"]]
        states = [mon.cmd_obj({"execute": "query-status"})["return"]]
        mon.cmd_obj({"execute": "stop"})
        states.append(mon.cmd_obj({"execute": "query-status"})["return"])
        mon.cmd_obj({"execute": "cont"})
        states.append(mon.cmd_obj({"execute": "query-status"})["return"])
        assert _quit(mon, proc) == 0
    return {"commands": names, "states": [(s["status"], s["running"]) for s in states]}


def test_query_commands_and_prelaunch(tmp_path: Path) -> None:
    """What a client probes right after launch, with ``-S``.

    1. query-commands lists QEMU 7.2's commands (216, migrate and query-commands among
       them), as real QEMU 7.2 lists them where it is installed.
    2. -S starts in prelaunch (not running); a stop there leaves it in prelaunch; cont
       runs it.
    """
    sim = _probe(SIM, tmp_path)
    assert len(sim["commands"]) == 216
    assert {"migrate", "query-commands", "query-qmp-schema", "device_add"} <= set(sim["commands"])
    assert sim["states"] == [("prelaunch", False), ("prelaunch", False), ("running", True)]
    if QEMU is not None:
        real = _probe([QEMU], tmp_path)
        assert sim == real
