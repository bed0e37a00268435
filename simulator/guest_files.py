"""What the simulated guest's files and tools show about its devices.

The guest is the harness's busybox initramfs on a Debian 6.1 kernel; the texts below are
what that guest prints on real QEMU 7.2 (captured once through its serial console):
busybox ``ls`` lays names out in columns on a terminal (width 80, two spaces between
columns, column-major) and one per line into a pipe; ``/sys/block/vdX/size`` counts
512-byte sectors, an image whose size is not a multiple of 512 reads as zero-padded to
the next sector; ``/proc/partitions`` counts 1 KiB blocks; virtio-blk's major is 254.
``lsblk`` (util-linux 2.38, not in busybox but in the distribution guests StratoVirt's
tests log into) prints its default columns or, with ``-J``, libsmartcols' JSON.
Each command returns ``(status, stdout, stderr)``.
"""

from __future__ import annotations

import hashlib
import os
import time
from dataclasses import dataclass
from typing import Protocol

from simulator.guest_memory import PageMap
from simulator.model.devices import DeviceClass
from simulator.model.units import PAGE_SIZE

Out = tuple[int, str, str]
SECTOR = 512
VIRTIO_BLK_MAJOR = 254
TERMINAL_WIDTH = 80
#: The initramfs's top level (harness/guest.py builds it): ``ls`` in the login shell's ``/``.
ROOT_DIR = ("bin", "dev", "etc", "init", "lib", "proc", "root", "run", "sbin", "sys", "tmp", "usr")
#: The guest driver of each virtio device class (/sys/bus/virtio/drivers/<driver>/virtioN).
VIRTIO_DRIVER = {
    DeviceClass.BLK: "virtio_blk",
    DeviceClass.NET: "virtio_net",
    DeviceClass.VHOST_NET: "virtio_net",
    DeviceClass.VHOST_USER_NET: "virtio_net",
    DeviceClass.BALLOON: "virtio_balloon",
}


@dataclass(frozen=True)
class Disk:
    """A virtio disk as the guest sees it: ``vdX`` backed by an image file."""

    name: str
    image: str  # "" when the backend names no file

    def size(self) -> int:
        """Bytes the guest sees: the image, rounded up to whole sectors."""
        try:
            n = os.path.getsize(self.image) if self.image else 0
        except OSError:
            n = 0
        return -(-n // SECTOR) * SECTOR

    def md5(self) -> str:
        """md5 of what the guest reads from the whole device."""
        h = hashlib.md5()
        done = 0
        if self.image:
            try:
                with open(self.image, "rb") as f:
                    while chunk := f.read(1 << 20):
                        h.update(chunk)
                        done += len(chunk)
            except OSError:
                done = 0
        h.update(bytes(self.size() - done))
        return h.hexdigest()


class FilesView(Protocol):
    """What the guest's files are made of."""

    @property
    def online_cpus(self) -> int: ...

    @property
    def present_cpus(self) -> list[int]:
        """The vCPUs the guest has, hot-added ones included."""

    @property
    def memory(self) -> PageMap: ...

    def mac_addresses(self) -> list[tuple[str, str]]: ...

    def disks(self) -> list[Disk]: ...

    def virtio_drivers(self) -> list[str]:
        """The guest driver of each virtio device, in probe order (virtio0, virtio1, ...)."""

    def uptime(self) -> float:
        """Seconds the guest has run."""


def columns(names: list[str], width: int = TERMINAL_WIDTH) -> str:
    """busybox ``ls`` on a terminal: column-major, each column max name length + 2."""
    if not names:
        return ""
    col = max(len(n) for n in names) + 2
    ncols = max(1, width // col)
    nrows = -(-len(names) // ncols)
    lines = []
    for r in range(nrows):
        row = [names[c * nrows + r] for c in range(ncols) if c * nrows + r < len(names)]
        lines.append("".join(n.ljust(col) for n in row[:-1]) + row[-1])
    return "\n".join(lines) + "\n"


def _cpu_list(n: int) -> str:
    return "0" if n == 1 else f"0-{n - 1}"


def cpulist(cpus: list[int]) -> str:
    """Linux's cpulist format: ``0-2,5``."""
    runs: list[list[int]] = []
    for c in sorted(cpus):
        if runs and c == runs[-1][1] + 1:
            runs[-1][1] = c
        else:
            runs.append([c, c])
    return ",".join(f"{a}-{b}" if b > a else str(a) for a, b in runs)


def list_dir(v: FilesView, path: str) -> list[str] | None:
    """The names in a directory the guest has, sorted as ls sorts them; None: no such."""
    path = path.rstrip("/") or "/"
    if path in ("/", "."):
        return list(ROOT_DIR)
    if path == "/sys/block":
        return [d.name for d in v.disks()]
    if path == "/sys/class/net":
        return sorted(name for name, _ in v.mac_addresses())
    prefix = "/sys/bus/virtio/drivers/"
    if path.startswith(prefix):
        driver = path[len(prefix) :]
        ids = [f"virtio{i}" for i, d in enumerate(v.virtio_drivers()) if d == driver]
        if ids:
            return sorted(["bind", "module", "uevent", "unbind", *ids])
    return None


def read_file(v: FilesView, path: str) -> str | None:
    """A /proc or /sys file's contents; None when the guest has no such file."""
    parts = path.split("/")
    disks = {d.name: (i, d) for i, d in enumerate(v.disks())} if "block" in parts else {}
    if len(parts) == 5 and parts[1:3] == ["sys", "block"] and parts[3] in disks:
        i, d = disks[parts[3]]
        files = {
            "size": f"{d.size() // SECTOR}",
            "dev": f"{VIRTIO_BLK_MAJOR}:{16 * i}",
            "ro": "0",
            "removable": "0",
        }
        return files.get(parts[4])
    nics = dict(v.mac_addresses())
    if len(parts) == 6 and parts[1:4] == ["sys", "class", "net"] and parts[4] in nics:
        lo = parts[4] == "lo"
        files = {
            "address": nics[parts[4]],
            "mtu": "65536" if lo else "1500",
            "operstate": "unknown" if lo else "down",
        }
        return files.get(parts[5])
    if path == "/proc/meminfo":
        return f"MemTotal: {v.memory.pages * PAGE_SIZE // 1024} kB"
    if path == "/proc/uptime":
        return f"{v.uptime():.2f} {v.uptime() * 0.66:.2f}"
    cpus = v.online_cpus
    if path == "/sys/devices/system/cpu/online":
        return _cpu_list(cpus)
    if path == "/sys/devices/system/cpu/present":  # hot-added vCPUs included
        return cpulist(v.present_cpus)
    if path == "/proc/partitions":
        rows = [
            f" {VIRTIO_BLK_MAJOR:>3} {16 * i:>8} {d.size() // 1024:>10} {d.name}"
            for i, d in enumerate(v.disks())
        ]
        return "\n".join(["major minor  #blocks  name", "", *rows])
    if path == "/proc/cpuinfo":
        return "\n\n".join(
            f"processor\t: {i}\nvendor_id\t: AuthenticAMD\n"
            f"model name\t: QEMU Virtual CPU version 2.5+\ncpu cores\t: 1"
            for i in range(cpus)
        )
    return None


def md5sum(v: FilesView, args: list[str]) -> Out:
    """``md5sum FILE...`` of the guest's block devices (``/dev/vdX``)."""
    disks = {f"/dev/{d.name}": d for d in v.disks()}
    out, err = [], []
    for path in args:
        if path in disks:
            out.append(f"{disks[path].md5()}  {path}\n")
        else:
            err.append(f"md5sum: can't open '{path}': No such file or directory\n")
    return (1 if err else 0), "".join(out), "".join(err)


def date(v: FilesView, args: list[str]) -> Out:
    """busybox ``date`` and ``date +FORMAT`` (the guest's clock follows the host's, UTC)."""
    now = time.time()
    if not args:
        return 0, time.strftime("%a %b %e %H:%M:%S UTC %Y", time.gmtime(now)) + "\n", ""
    if len(args) == 1 and args[0].startswith("+"):
        fmt = args[0][1:].replace("%s", str(int(now)))
        return 0, time.strftime(fmt, time.gmtime(now)) + "\n", ""
    return 1, "", f"date: invalid date '{' '.join(args)}'\n"


def human_size(n: int) -> str:
    """util-linux size_to_human_string: 1 decimal, B/K/M/G/T/P/E suffixes."""
    exp = 0
    while exp < 60 and n >= 1 << (exp + 10):
        exp += 10
    dec, frac = (n >> exp, n % (1 << exp)) if exp else (n, 0)
    if frac:
        frac = (frac // (1 << (exp - 10)) + 50) // 100
        if frac == 10:
            dec, frac = dec + 1, 0
    suffix = "BKMGTPE"[exp // 10]
    return f"{dec}.{frac}{suffix}" if frac else f"{dec}{suffix}"


def lsblk(v: FilesView, args: list[str]) -> Out:
    """``lsblk`` / ``lsblk -J``: NAME MAJ:MIN RM SIZE RO TYPE MOUNTPOINTS."""
    if any(a not in ("-J", "--json") for a in args):
        return 1, "", f"lsblk: unsupported in the simulated guest: {' '.join(args)}\n"
    rows = [
        (d.name, f"{VIRTIO_BLK_MAJOR}:{16 * i}", human_size(d.size()))
        for i, d in enumerate(v.disks())
    ]
    if args:
        items = [
            "{\n"
            f'         "name": "{name}",\n'
            f'         "maj:min": "{majmin}",\n'
            '         "rm": false,\n'
            f'         "size": "{size}",\n'
            '         "ro": false,\n'
            '         "type": "disk",\n'
            '         "mountpoints": [\n'
            "             null\n"
            "         ]\n"
            "      }"
            for name, majmin, size in rows
        ]
        body = ("      " + ",".join(items) + "\n") if items else ""
        return 0, '{\n   "blockdevices": [\n' + body + "   ]\n}\n", ""
    w = max([4, *(len(r[0]) for r in rows)])
    lines = [f"{'NAME':<{w}} MAJ:MIN RM  SIZE RO TYPE MOUNTPOINTS"]
    lines += [f"{name:<{w}} {majmin:<7}  0 {size:>5}  0 disk " for name, majmin, size in rows]
    return 0, "\n".join(lines) + "\n", ""
