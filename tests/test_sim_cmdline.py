"""The simulator's command line: real products' forms accepted, bad ones one line + exit 1
(the product's refusal) or exit 2 (a bad value of one of the simulator's own options)."""

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


HOSTILE_PRODUCT = [
    # the products refuse these themselves: their words, exit 1 (as QEMU 7.2 and StratoVirt)
    (["-m", "99999999999999999999T"], "qemu-7.2", "expects a non-negative number below 2^64"),
    (["-m", "99999999999999999999T"], "stratovirt-2.5", "Unable to parse '99999999999999999999T'"),
    (["-m", "infG"], "qemu-7.2", "invalid size 'infG'"),
    (["-device", "virtio-net-pci,id=n0,mac=zz:zz"], "qemu-7.2", "doesn't take value 'zz:zz'"),
    (["-device", "virtio-net-pci,id=n0,mac=zz:zz"], "stratovirt-2.5", "Mac address is illegal."),
    (["-device", "virtio-net-pci,id=n0,mac=52-54-00-12-34-56"], "stratovirt-2.4", "illegal"),
]
HOSTILE_OWN = [
    # the simulator's own options: a usage error, exit 2
    (["--time-scale", "inf"], "--time-scale: 'inf'"),
    (["--time-scale", "nan"], "--time-scale: 'nan'"),
    (["--time-scale", "0"], "--time-scale: '0'"),
    (["--time-scale", "-3"], "--time-scale: '-3'"),
    (["--qmp-rate-limit", "-5"], "--qmp-rate-limit: '-5'"),
    (["--workload", "ws=1G,rate=1M,bogus=1"], "unknown key"),
]


def _refused(argv: list[str]) -> tuple[int, list[str]]:
    proc = subprocess.run(
        [sys.executable, "-m", "simulator", *argv], capture_output=True, text=True, timeout=30
    )
    return proc.returncode, proc.stderr.strip().splitlines()


@pytest.mark.parametrize(("args", "profile", "needle"), HOSTILE_PRODUCT)
def test_hostile_product_options(
    args: list[str], profile: str, needle: str, tmp_path: Path
) -> None:
    """Values the product refuses are refused, not accepted (issue 13).

    1. Exit status 1 (the product's), exactly one line on stderr naming the problem.
    2. Nothing is created (no QMP socket).
    """
    qmp = tmp_path / "q.sock"
    base = ["-machine", "q35", "-kernel", "k", "-initrd", "i", "-qmp", f"unix:{qmp},server,nowait"]
    code, lines = _refused(["--profile", profile, *base, *args])
    assert code == 1 and len(lines) == 1 and needle in lines[0], lines
    assert not qmp.exists()


@pytest.mark.parametrize(("args", "needle"), HOSTILE_OWN)
def test_hostile_simulator_options(args: list[str], needle: str, tmp_path: Path) -> None:
    """Bad values of the simulator's own options are usage errors.

    1. Exit status 2, exactly one line on stderr naming the option and the value.
    2. Nothing is created (no QMP socket).
    """
    qmp = tmp_path / "q.sock"
    code, lines = _refused([*args, "-qmp", f"unix:{qmp},server,nowait"])
    assert code == 2 and len(lines) == 1 and needle in lines[0], lines
    assert not qmp.exists()


def test_accepted_macs() -> None:
    """Well-formed MACs pass: QEMU takes ':' or '-' separators, StratoVirt ':' only.

    1. qemu-7.2 parses both spellings; stratovirt-2.5 the ':' one.
    """
    for profile, mac in (("qemu-7.2", "52:54:00:AB:cd:01"), ("qemu-7.2", "52-54-00-ab-cd-01"),
                         ("stratovirt-2.5", "52:54:00:ab:cd:01")):  # fmt: skip
        cfg = parse(["--profile", profile, "-machine", "q35", *BASE,
                     "-device", f"virtio-net-pci,id=n0,mac={mac}"])  # fmt: skip
        assert cfg.devices[0].mac == mac
