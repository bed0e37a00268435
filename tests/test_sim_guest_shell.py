"""The simulated guest shell: what the suites type on the serial console."""

from __future__ import annotations

import hashlib
import json
import re
import time
from dataclasses import dataclass, field
from pathlib import Path

from simulator.guest_files import Disk
from simulator.guest_memory import PageMap
from simulator.guest_shell import PROMPT, GuestShell
from simulator.guest_state import GuestState


@dataclass
class FakeGuest:
    blocks: list[str] = field(default_factory=list)
    nics: list[tuple[str, str]] = field(default_factory=lambda: [("lo", "00:00:00:00:00:00")])
    arch: str = "x86_64"
    online_cpus: int = 2
    present_cpus: list[int] = field(default_factory=lambda: [0, 1])
    memory: PageMap = field(default_factory=lambda: PageMap(1024))
    guest: GuestState = field(default_factory=lambda: GuestState(booted=True))
    images: dict[str, str] = field(default_factory=dict)

    def block_devices(self) -> list[str]:
        return self.blocks

    def disks(self) -> list[Disk]:
        return [Disk(name, self.images.get(name, "")) for name in self.blocks]

    def virtio_drivers(self) -> list[str]:
        return ["virtio_blk"] * len(self.blocks)

    def uptime(self) -> float:
        return self.guest.runtime

    def mac_addresses(self) -> list[tuple[str, str]]:
        return self.nics

    def pattern_base(self) -> int:
        return 0


def out(shell: GuestShell, line: str) -> str:
    text = shell.feed_line(line)
    assert text.endswith(PROMPT)
    return text[: -len(PROMPT)].replace("\r\n", "\n")


def test_pipe_grep_and_or_true() -> None:
    guest = FakeGuest(blocks=["vda"])
    shell = GuestShell(guest)
    assert out(shell, "ls /sys/block | grep vd || true") == "vda\n"
    guest.blocks.clear()
    assert out(shell, "ls /sys/block | grep vd || true") == ""
    assert out(shell, "echo $?") == "0\n"


def test_glob_and_stderr_redirect() -> None:
    guest = FakeGuest()
    shell = GuestShell(guest)
    line = "cat /sys/class/net/eth*/address 2>/dev/null || true"
    assert out(shell, line) == ""
    assert "can't open" in out(shell, "cat /sys/class/net/eth*/address")
    guest.nics.append(("eth0", "52:54:00:12:34:56"))
    assert out(shell, line) == "52:54:00:12:34:56\n"


def test_and_or_chains() -> None:
    shell = GuestShell(FakeGuest())
    assert out(shell, "false && echo no || echo yes") == "yes\n"
    assert out(shell, "true && echo a; echo b") == "a\nb\n"
    assert out(shell, "nosuch 2>/dev/null; echo $?") == "127\n"


def test_present_cpus_in_cpulist_format() -> None:
    """/sys/devices/system/cpu/present lists the guest's vCPUs as Linux does.

    1. Contiguous vCPUs are one range; a gap starts another; a single vCPU stands alone.
    """
    guest = FakeGuest()
    shell = GuestShell(guest)
    assert out(shell, "cat /sys/devices/system/cpu/present") == "0-1\n"
    guest.present_cpus = [0, 1, 2, 5]
    assert out(shell, "cat /sys/devices/system/cpu/present") == "0-2,5\n"


def test_device_files_and_tools_as_the_real_guest_prints_them(tmp_path: Path) -> None:
    """What tooling reads about the guest's devices, as the hvlab guest prints it on real
    QEMU 7.2 (a 3,000,000-byte raw image as virtio-blk, captured on its serial console).

    1. ``ls`` (the login shell's ``/``) and ``ls`` of a driver's sysfs folder print
       busybox's columns on the console, one name per line into a pipe.
    2. /sys/block/vda/size and /proc/partitions count the image rounded up to whole
       512-byte sectors (5860 sectors, 2930 KiB); the device is 254:0.
    3. ``md5sum /dev/vda`` is the md5 of the image read zero-padded to that size.
    4. ``lsblk`` and ``lsblk -J`` print util-linux's columns and JSON for it.
    5. ``date +%s`` is the host's clock; ``date`` busybox's format.
    6. A file or folder the guest has not got is an error, as before.
    """
    image = tmp_path / "disk.img"
    data = bytes((i * 7919) % 251 for i in range(3_000_000))
    image.write_bytes(data)
    guest = FakeGuest(blocks=["vda"], images={"vda": str(image)})
    shell = GuestShell(guest)
    root = "bin   dev   etc   init  lib   proc  root  run   sbin  sys   tmp   usr\n"
    assert out(shell, "ls") == root
    assert out(shell, "ls /") == root
    assert out(shell, "ls /sys/bus/virtio/drivers/virtio_blk/") == (
        "bind     module   uevent   unbind   virtio0\n"
    )
    assert out(shell, "ls / | grep u") == "run\nusr\n"
    assert out(shell, "cat /sys/block/vda/size") == "5860\n"
    assert out(shell, "cat /sys/block/vda/dev") == "254:0\n"
    assert out(shell, "cat /proc/partitions") == (
        "major minor  #blocks  name\n\n 254        0       2930 vda\n"
    )
    padded = hashlib.md5(data + bytes(320)).hexdigest()
    assert out(shell, "md5sum /dev/vda") == f"{padded}  /dev/vda\n"
    assert out(shell, "lsblk") == (
        "NAME MAJ:MIN RM  SIZE RO TYPE MOUNTPOINTS\nvda  254:0    0  2.9M  0 disk \n"
    )
    blk = json.loads(out(shell, "lsblk -J"))["blockdevices"]
    assert blk == [
        {
            "name": "vda",
            "maj:min": "254:0",
            "rm": False,
            "size": "2.9M",
            "ro": False,
            "type": "disk",
            "mountpoints": [None],
        }
    ]
    before = int(time.time())
    assert before <= int(out(shell, "date +%s")) <= int(time.time())
    assert re.fullmatch(r"\w{3} \w{3} [ \d]\d \d\d:\d\d:\d\d UTC \d{4}\n", out(shell, "date"))
    assert "can't open '/dev/vdb'" in out(shell, "md5sum /dev/vdb")
    assert "No such file or directory" in out(shell, "ls /nonexistent")
