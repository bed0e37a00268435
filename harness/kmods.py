"""Kernel modules of an unpacked kernel package: load order through kmod, and bytes to load.

Debian's kernel package ships no modules.dep (depmod runs when it is installed), and newer
kernels ship modules compressed (``.ko.xz``; other distributions ``.ko.zst``), so the
dependencies come from kmod itself: ``depmod -b ROOT RELEASE`` writes the indexes into the
unpacked tree, then ``modprobe -d ROOT -S RELEASE --show-depends NAME`` lists what to load,
dependencies first. The guest's busybox ``insmod`` is handed plain ``.ko`` files, so
compressed modules are unpacked here (xz and gzip by Python, zstd by the ``zstd`` tool).
"""

from __future__ import annotations

import gzip
import lzma
import shutil
import subprocess
import tempfile
from collections.abc import Iterable
from pathlib import Path

from harness.errors import SetupError
from harness.tools import run_tool

# depmod and modprobe live in /sbin, which is not on every user's PATH.
_SBIN = "/usr/local/sbin:/usr/sbin:/sbin:/usr/bin:/bin"
COMPRESSED = (".ko.xz", ".ko.zst", ".ko.gz")


def _tool(name: str) -> str:
    found = shutil.which(name) or shutil.which(name, path=_SBIN)
    if found is None:
        raise SetupError(f"{name} not found: install kmod (make setup does)")
    return found


def _kmod(argv: list[str]) -> str:
    return run_tool(argv, timeout=300)


def releases(root: Path) -> list[str]:
    """Kernel releases in an unpacked package, whose modules are in ``lib/modules``.

    A package that installs under ``usr/lib/modules`` (merged /usr) gets a ``lib`` link
    to ``usr/lib`` in the unpacked tree, where depmod -b and modprobe -d look.
    """
    lib = root / "lib"
    if not (lib / "modules").is_dir() and (root / "usr/lib/modules").is_dir() and not lib.exists():
        lib.symlink_to("usr/lib")
    modules = lib / "modules"
    return sorted(p.name for p in modules.iterdir() if p.is_dir()) if modules.is_dir() else []


def module_load_order(root: Path, release: str, wanted: Iterable[str]) -> list[str]:
    """Paths (relative to ``root/lib/modules/RELEASE``) to load, dependencies first, once.

    ``root`` is the unpacked package (it holds ``lib/modules/RELEASE``). Built-in modules
    are left out; a module that is neither a module nor built in is an error naming it.
    """
    moddir = (root / "lib" / "modules" / release).resolve()
    if not moddir.is_dir():
        raise SetupError(f"{moddir} does not exist: not an unpacked kernel tree")
    _kmod([_tool("depmod"), "-b", str(root), release])
    order: list[str] = []
    # an empty configuration directory: the host's /etc/modprobe.d must not add options,
    # install commands or blacklists to the guest's modules
    with tempfile.TemporaryDirectory(prefix="hvlab-modprobe-") as config:
        for name in wanted:
            argv = [_tool("modprobe"), "-C", config, "-d", str(root), "-S", release]
            try:
                out = _kmod([*argv, "--show-depends", name])
            except SetupError as exc:
                raise SetupError(
                    f"kernel module {name} is neither a module nor built in ({exc})", exc.context
                ) from exc
            for line in out.splitlines():
                words = line.split()
                if not words or words[0] == "builtin":
                    continue
                if words[0] != "insmod" or len(words) < 2:
                    raise SetupError(f"modprobe --show-depends {name}: unexpected line {line!r}")
                rel = str(Path(words[1]).resolve().relative_to(moddir))
                if rel not in order:
                    order.append(rel)
    return order


def plain_name(rel: str) -> str:
    """The file name the guest loads: ``virtio_net.ko`` for ``.../virtio_net.ko.xz``."""
    name = Path(rel).name
    for suffix in COMPRESSED:
        if name.endswith(suffix):
            return name[: -len(suffix)] + ".ko"
    return name


def module_bytes(path: Path) -> bytes:
    """The module's ELF image, unpacked if the file is compressed."""
    data = path.read_bytes()
    try:
        if path.name.endswith(".ko.xz"):
            data = lzma.decompress(data)
        elif path.name.endswith(".ko.gz"):
            data = gzip.decompress(data)
        elif path.name.endswith(".ko.zst"):
            data = _unzstd(path)
    except (lzma.LZMAError, OSError, EOFError) as exc:
        raise SetupError(f"cannot unpack kernel module {path.name}: {exc}") from exc
    if data[:4] != b"\x7fELF":
        raise SetupError(f"kernel module {path.name} is not an ELF file once unpacked")
    return data


def _unzstd(path: Path) -> bytes:
    zstd = shutil.which("zstd")
    if zstd is None:
        raise SetupError("zstd not found: it unpacks .ko.zst modules (make setup installs it)")
    argv = [zstd, "-dc", "--", str(path)]
    done = subprocess.run(argv, capture_output=True, check=False, timeout=300)
    if done.returncode != 0:
        raise SetupError(
            f"{' '.join(argv)} failed (exit {done.returncode})",
            {"argv": argv, "stderr": done.stderr[-2000:].decode(errors="replace")},
        )
    return done.stdout
