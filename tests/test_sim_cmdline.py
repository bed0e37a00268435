"""The simulator's command line: real products' forms accepted, bad ones one line + exit 1."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from harness.guest import GuestImage
from harness.spec import Arch, DeviceSpec, MachineType, Topology, VMSpec
from harness.targets.base import RunPaths
from harness.targets.sim import PROFILES, SimTarget
from simulator.cmdline import CmdlineError, parse
from simulator.model import DeviceClass
from simulator.model import MachineType as SimMachine

PATHS = RunPaths(Path("/tmp/hvlab-x"), Path("/tmp/logs"))
IMAGE = GuestImage(Arch.X86_64, Path("/img/vmlinuz"), Path("/img/initrd.gz"), "6.1")


@pytest.mark.parametrize("profile", PROFILES)
def test_harness_argv_parses(profile: str) -> None:
    """The argv the sim target builds (the real product's) parses.

    1. Target names are sim:<profile>; the argv runs python -m simulator --profile P.
    2. Machine, -smp topology, -m, devices and -incoming come through.
    3. QMP and serial are the run dir's unix sockets.
    """
    spec = VMSpec(
        machine=MachineType.Q35,
        topology=Topology(2, 2, 2, 1, 4),
        memory_mib=512,
        devices=(DeviceSpec("virtio-net-pci", "net0", (("mac", "52:54:00:12:34:56"),)),),
        incoming="tcp:127.0.0.1:4444",
    )
    t = SimTarget(profile)
    argv = t.argv(spec, PATHS, IMAGE)
    assert t.name == f"sim:{profile}" and argv[1:5] == ["-m", "simulator", "--profile", profile]
    cfg = parse(argv[3:])
    assert cfg.machine is SimMachine.Q35 and (cfg.smp.cpus, cfg.smp.maxcpus) == (2, 4)
    assert cfg.memory == 512 << 20 and cfg.incoming == "tcp:127.0.0.1:4444"
    assert [d.cls for d in cfg.devices] == [DeviceClass.NET]
    assert cfg.qmp.path == str(PATHS.qmp)
    assert cfg.serial.endpoint is not None and cfg.serial.endpoint.path == str(PATHS.serial)


BASE = ["-kernel", "k", "-initrd", "i", "-qmp", "unix:/tmp/q.sock,server,nowait"]


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["--profile", "stratovirt-2.5", "-machine", "pc", *BASE], "Invalid machine type."),
        (["--profile", "stratovirt-2.5", "-m", "64", *BASE], "Memory size must >= 128MiB"),
        (["--profile", "stratovirt-2.5", "-kernel", "k"], "Please use '-qmp'"),
        (["--profile", "stratovirt-2.5", "-incoming", "tcp:localhost:1", *BASE], "Invalid"),
        (["--profile", "qemu-7.2", "-incoming", "file:/tmp/x", *BASE], "unknown migration"),
        (["--profile", "nope", *BASE], "unknown profile"),
        (["-bogus", *BASE], "invalid option '-bogus'"),
        (["-smp", "4,maxcpus=2", *BASE], "MAX CPU number"),
        (["-device", "e1000,id=x", *BASE], "not a valid device model"),
        (["-qmp", "tcp:192.0.2.1:4444,server,nowait", "-kernel", "k"], "loopback"),
    ],
)
def test_bad_command_lines(argv: list[str], needle: str) -> None:
    """Rejected command lines.

    1. parse raises CmdlineError naming the problem.
    """
    with pytest.raises(CmdlineError) as info:
        parse(argv)
    assert needle in str(info.value)


def test_bad_command_line_process() -> None:
    """A process started with a bad command line.

    1. exits with status 1,
    2. printing exactly one line on stderr, no traceback.
    """
    proc = subprocess.run(
        [sys.executable, "-m", "simulator", "--profile", "stratovirt-2.5", "-machine", "pc"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert proc.returncode == 1
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "Invalid machine type." in lines[0], proc.stderr
