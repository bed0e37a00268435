"""Pieces of the guest builder that need no download: cpio format and module order."""

from __future__ import annotations

import stat
import struct
from pathlib import Path

import pytest

from harness.cpio import CpioWriter
from harness.errors import SetupError
from harness.guest import _modinfo_depends, module_load_order


def _parse_newc(blob: bytes) -> dict[str, tuple[int, bytes, tuple[int, int]]]:
    out = {}
    pos = 0
    while True:
        assert blob[pos : pos + 6] == b"070701"
        fields = [int(blob[pos + 6 + 8 * i : pos + 14 + 8 * i], 16) for i in range(13)]
        namesize, filesize = fields[11], fields[6]
        name_start = pos + 110
        name = blob[name_start : name_start + namesize - 1].decode()
        data_start = (name_start + namesize + 3) & ~3
        data = blob[data_start : data_start + filesize]
        pos = (data_start + filesize + 3) & ~3
        if name == "TRAILER!!!":
            return out
        out[name] = (fields[1], data, (fields[9], fields[10]))


def test_cpio_newc_roundtrip() -> None:
    """The cpio writer produces what the kernel's initramfs loader reads.

    1. Every entry is found with its name, after 4-byte alignment.
    2. File data and modes survive.
    3. A char device carries its major/minor; a symlink its target.
    """
    w = CpioWriter()
    w.directory("bin")
    w.file("bin/hello", b"hi there", 0o755)
    w.symlink("bin/sh", "busybox")
    w.char_device("dev/console", 5, 1)
    entries = _parse_newc(w.finish())
    assert set(entries) == {"bin", "bin/hello", "bin/sh", "dev/console"}
    mode, data, _ = entries["bin/hello"]
    assert data == b"hi there" and stat.S_ISREG(mode) and mode & 0o777 == 0o755
    assert stat.S_ISLNK(entries["bin/sh"][0]) and entries["bin/sh"][1] == b"busybox"
    assert stat.S_ISCHR(entries["dev/console"][0]) and entries["dev/console"][2] == (5, 1)


def _fake_ko(depends: str) -> bytes:
    """A minimal 64-bit LE ELF with a .modinfo section holding depends=."""
    modinfo = f"license=GPL\0depends={depends}\0".encode()
    shstr = b"\0.modinfo\0.shstrtab\0"
    data_off = 64
    shstr_off = data_off + len(modinfo)
    shoff = (shstr_off + len(shstr) + 7) & ~7
    header = bytearray(64)
    header[:6] = b"\x7fELF\x02\x01"
    struct.pack_into("<QHHHH", header, 0x28, shoff, 0, 0, 0, 0)
    struct.pack_into("<HHH", header, 0x3A, 64, 3, 2)
    body = bytes(header) + modinfo + shstr
    body += b"\0" * (shoff - len(body))

    def sh(name: int, off: int, size: int) -> bytes:
        return struct.pack("<IIQQQQIIQQ", name, 1, 0, 0, off, size, 0, 0, 1, 0)

    return body + bytes(64) + sh(1, data_off, len(modinfo)) + sh(10, shstr_off, len(shstr))


def test_module_order_puts_dependencies_first(tmp_path: Path) -> None:
    """Modules load after what they depend on, read from each module's .modinfo.

    1. depends= is read from the ELF section.
    2. The order lists dependencies before dependents, each once.
    3. A built-in dependency is skipped, an unknown one is an error naming it.
    """
    assert _modinfo_depends(_fake_ko("a,b")) == ["a", "b"]
    kdir = tmp_path / "kernel"
    kdir.mkdir()
    (kdir / "ring.ko").write_bytes(_fake_ko(""))
    (kdir / "core.ko").write_bytes(_fake_ko("ring,builtin_thing"))
    (kdir / "net.ko").write_bytes(_fake_ko("core,ring"))
    (kdir / "blk.ko").write_bytes(_fake_ko("core"))
    (tmp_path / "modules.builtin").write_text("kernel/builtin_thing.ko\n")
    order = module_load_order(tmp_path, ["net", "blk"])
    assert order == ["kernel/ring.ko", "kernel/core.ko", "kernel/net.ko", "kernel/blk.ko"]
    with pytest.raises(SetupError, match="nowhere"):
        module_load_order(tmp_path, ["nowhere"])
