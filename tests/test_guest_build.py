"""Pieces of the guest builder that need no download: cpio format and module order.

The module tests build a small kernel module tree of hand-made ELF objects (exports in
``__ksymtab_strings``, imports as undefined symbols: what depmod reads), some compressed
as Debian (xz) and others (zstd) ship them, and run the real kmod tools on it.
"""

from __future__ import annotations

import gzip
import lzma
import shutil
import stat
import struct
import subprocess
from pathlib import Path

import pytest

from harness.cpio import CpioWriter
from harness.errors import SetupError
from harness.guest import _build_initramfs
from harness.kmods import module_bytes, module_load_order, plain_name, releases


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


KMOD_MISSING = shutil.which("depmod", path="/usr/sbin:/sbin:/usr/bin:/bin") is None
needs_kmod = pytest.mark.skipif(KMOD_MISSING, reason="kmod is not installed (make setup does)")
needs_zstd = pytest.mark.skipif(shutil.which("zstd") is None, reason="zstd is not installed")
RELEASE = "6.99.0-hvlab"


def _fake_ko(name: str, exports: tuple[str, ...] = (), imports: tuple[str, ...] = ()) -> bytes:
    """A 64-bit LE x86-64 relocatable ELF with the sections depmod reads.

    ``.modinfo`` (name, license), ``__ksymtab_strings`` (exported symbol names), and a
    ``.symtab``/``.strtab`` with the imports as undefined and the exports as defined
    global symbols.
    """
    modinfo = f"license=GPL\0name={name}\0".encode()
    ksymtab = b"".join(e.encode() + b"\0" for e in exports)
    strtab = b"\0"
    symbols = [bytes(24)]
    for sym, shndx in [(i, 0) for i in imports] + [(e, 1) for e in exports]:
        info = 0x12 if shndx else 0x10  # GLOBAL FUNC / GLOBAL NOTYPE (undefined)
        symbols.append(struct.pack("<IBBHQQ", len(strtab), info, 0, shndx, 0, 0))
        strtab += sym.encode() + b"\0"
    names = [".modinfo", "__ksymtab_strings", ".symtab", ".strtab", ".shstrtab"]
    shstrtab = b"\0" + b"".join(n.encode() + b"\0" for n in names)
    datas = [modinfo, ksymtab, b"".join(symbols), strtab, shstrtab]
    body = bytearray(64)
    offsets = []
    for data in datas:
        body += bytes(-len(body) % 8)
        offsets.append(len(body))
        body += data
    body += bytes(-len(body) % 8)
    shoff = len(body)
    body[:16] = b"\x7fELF\x02\x01\x01" + bytes(9)
    struct.pack_into("<HHIQQQIHHHHHH", body, 16, 1, 62, 1, 0, 0, shoff, 0, 64, 0, 0, 64, 6, 5)
    body += bytes(64)  # section 0
    name_at = 1
    for i, (name, data) in enumerate(zip(names, datas, strict=True)):
        kind = {".symtab": 2, ".strtab": 3, ".shstrtab": 3}.get(name, 1)
        link, info, entsize = (4, 1, 24) if name == ".symtab" else (0, 0, 0)
        flags = 0 if kind == 3 else 2
        body += struct.pack(
            "<IIQQQQIIQQ", name_at, kind, flags, 0, offsets[i], len(data), link, info, 8, entsize
        )
        name_at += len(name) + 1
    return bytes(body)


def _module_tree(root: Path, usr_merged: bool = False) -> dict[str, bytes]:
    """ring <- core (xz), ring <- util (zstd), core + util <- net; blk needs core.

    Returns each module's ELF image by path relative to lib/modules/RELEASE.
    """
    base = root / ("usr/lib" if usr_merged else "lib") / "modules" / RELEASE
    images = {
        "kernel/lib/ring.ko": _fake_ko("ring", exports=("ring_get",)),
        "kernel/core/core.ko.xz": _fake_ko("core", ("core_register",), ("ring_get",)),
        "kernel/lib/util.ko.zst": _fake_ko("util", ("util_copy",), ("ring_get",)),
        "kernel/net/net.ko": _fake_ko("net", (), ("core_register", "util_copy", "ring_get")),
        "kernel/block/blk.ko.xz": _fake_ko("blk", (), ("core_register",)),
    }
    for rel, image in images.items():
        path = base / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if rel.endswith(".xz"):
            path.write_bytes(lzma.compress(image, check=lzma.CHECK_CRC32))
        elif rel.endswith(".zst"):
            done = subprocess.run(
                ["zstd", "-q", "-c"], input=image, capture_output=True, check=True
            )
            path.write_bytes(done.stdout)
        else:
            path.write_bytes(image)
    (base / "modules.builtin").write_text("kernel/drivers/builtin_thing.ko\n")
    (base / "modules.order").write_text("".join(f"{rel}\n" for rel in images))
    return images


@needs_kmod
@needs_zstd
def test_module_order_from_kmod_with_compressed_modules(tmp_path: Path) -> None:
    """depmod + modprobe --show-depends order plain, xz and zstd modules.

    1. The order lists every dependency before its dependents, each module once,
       across several wanted modules (net, then blk, which shares core and ring).
    2. A built-in module adds nothing; a module that is neither is an error naming it.
    """
    _module_tree(tmp_path)
    order = module_load_order(tmp_path, RELEASE, ["net", "builtin_thing", "blk"])
    assert len(order) == len(set(order)) == 5
    assert order[0] == "kernel/lib/ring.ko"
    assert set(order[1:3]) == {"kernel/core/core.ko.xz", "kernel/lib/util.ko.zst"}
    assert order[3:] == ["kernel/net/net.ko", "kernel/block/blk.ko.xz"]
    with pytest.raises(SetupError, match="nowhere"):
        module_load_order(tmp_path, RELEASE, ["nowhere"])


@needs_kmod
@needs_zstd
def test_compressed_modules_reach_the_initramfs_unpacked(tmp_path: Path) -> None:
    """The initramfs holds each module as a plain .ko, in load order.

    1. module_bytes unpacks xz and zstd to the module's ELF image; plain_name drops the
       compression suffix; gzip is unpacked too.
    2. A tree under usr/lib/modules (merged /usr) is found and ordered the same way.
    3. The initramfs has lib/modules/<name>.ko with the ELF image for every module, and
       etc/hvlab/modules lists them in load order.
    """
    images = _module_tree(tmp_path, usr_merged=True)
    moddir = tmp_path / "lib/modules" / RELEASE
    assert releases(tmp_path) == [RELEASE]
    for rel, image in images.items():
        assert module_bytes(moddir / rel) == image
        assert plain_name(rel) == Path(rel).name.split(".ko")[0] + ".ko"
    gz = tmp_path / "x.ko.gz"
    gz.write_bytes(gzip.compress(images["kernel/lib/ring.ko"]))
    assert module_bytes(gz) == images["kernel/lib/ring.ko"]
    order = module_load_order(tmp_path, RELEASE, ["net"])
    busybox = tmp_path / "busybox"
    busybox.write_bytes(b"\x7fELF fake busybox")
    initrd = tmp_path / "initrd.gz"
    _build_initramfs(busybox, moddir, order, {}, initrd)
    entries = _parse_newc(gzip.decompress(initrd.read_bytes()))
    listing = entries["etc/hvlab/modules"][1].decode().split()
    assert listing == [plain_name(rel) for rel in order]
    assert listing[-1] == "net.ko" and all(name.endswith(".ko") for name in listing)
    for rel in order:
        assert entries[f"lib/modules/{plain_name(rel)}"][1] == images[rel]


def test_corrupt_compressed_module_is_one_clear_error(tmp_path: Path) -> None:
    """1. A .ko.xz that is not xz data fails with SetupError naming the file."""
    bad = tmp_path / "broken.ko.xz"
    bad.write_bytes(b"not xz at all")
    with pytest.raises(SetupError, match=r"broken\.ko\.xz"):
        module_bytes(bad)
