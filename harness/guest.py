"""The test guest: Debian's kernel plus a busybox initramfs, per architecture, cached.

The kernel comes from Debian's ``linux-image-<arch>`` package and busybox from
``busybox-static`` of the same architecture (``apt-get download``, no root needed once
the architecture is configured). Debian builds the virtio drivers as modules, so the
ones the suites need go into the initramfs, unpacked if the package compresses them, with
their dependencies (kmod's depmod and modprobe on the unpacked tree, see
:mod:`harness.kmods`), and ``/init`` loads them before the console shell starts.

Images are keyed by the package files and the builder's inputs, kept under the cache
directory (``$HVLAB_CACHE`` or ``~/.cache/hvlab``), outside git. A second call is a
cache hit and downloads nothing.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import shutil
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from harness.cpio import CpioWriter
from harness.errors import SetupError
from harness.guest_programs import build as build_programs
from harness.guest_programs import sources_key
from harness.kmods import module_bytes, module_load_order, plain_name, releases
from harness.spec import Arch
from harness.tools import run_tool
from simulator import guest_shell as _shell

BUILDER_VERSION = "5"  # 5: hvlab-stress built from source (harness/guest_programs.py)

#: Drivers loaded at boot: PCI and MMIO transports, disks, NICs, balloon, console.
GUEST_MODULES = (
    "virtio_pci",
    "virtio_mmio",
    "virtio_blk",
    "virtio_net",
    "virtio_balloon",
    "virtio_console",
)

# The guest's contract with the console driver, shared with the simulated guest
# (the simulator must not import the harness, so the simulator owns the two marks).
READY_MARK = _shell.READY_MARK
PROMPT = _shell.PROMPT

_INIT = r"""#!/bin/busybox sh
/bin/busybox --install -s /bin
export PATH=/bin:/sbin:/usr/bin:/usr/sbin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mkdir -p /dev/pts /dev/shm /tmp /run
mount -t tmpfs tmpfs /dev/shm
mount -t tmpfs tmpfs /tmp
echo 1 > /proc/sys/kernel/printk
while read -r m; do
  insmod "/lib/modules/$m" || echo "hvlab: insmod $m failed"
done < /etc/hvlab/modules
hostname hvlab-guest
ip link set lo up
# hvlab.stress=W,R[,PATTERN] on the kernel command line starts hvlab-stress at boot
# (for guests nobody types into, e.g. libvirt domains)
for arg in $(cat /proc/cmdline); do
  case "$arg" in hvlab.stress=*)
    set -- $(echo "${arg#hvlab.stress=}" | tr ',' ' ')
    hvlab-stress -w "$1" -r "$2" -p "${3:-cyclic}" -o /tmp/hvlab-stress.log &;;
  esac
done
echo "hvlab-guest ready: $(uname -r) $(uname -m)"
while true; do
  setsid cttyhack sh -l
done
"""

_PROFILE = f"""export PATH=/bin:/sbin:/usr/bin:/usr/sbin
export PS1='{PROMPT}'
stty -echo 2>/dev/null
"""

# Guest-side helpers the suites call through the console.
_HELPERS = {
    # hvlab-pattern write|check MIB SEED: fill RAM (tmpfs) with a known pattern, or verify it.
    "hvlab-pattern": r"""#!/bin/sh
set -e
mode=$1; mib=$2; seed=$3
f=/dev/shm/hvlab-pattern
case "$mode" in
  write) # "hvlab-SEED" lines: one MiB made through a pipe, then copied MIB times (a
         # pipe's small writes are what costs under TCG)
         yes "hvlab-$seed" | head -c 1048576 > "$f.mib"
         i=0; while [ "$i" -lt "$mib" ]; do cat "$f.mib"; i=$((i + 1)); done > "$f"
         rm -f "$f.mib"; md5sum < "$f" | cut -d' ' -f1;;
  check) md5sum < "$f" | cut -d' ' -f1;;
  *) echo "usage: hvlab-pattern write|check MIB SEED" >&2; exit 2;;
esac
""",
    # hvlab-counter start|read: a counter the guest advances while it runs.
    "hvlab-counter": r"""#!/bin/sh
case "$1" in
  start) (i=0; while true; do i=$((i + 1)); echo $i > /tmp/hvlab-counter.new
          mv /tmp/hvlab-counter.new /tmp/hvlab-counter; sleep 0.1; done) \
           </dev/null >/dev/null 2>&1 &
         echo started;;
  read) cat /tmp/hvlab-counter;;
  *) echo "usage: hvlab-counter start|read" >&2; exit 2;;
esac
""",
}

Progress = Callable[[str], None]


def default_progress(arch: Arch) -> Progress:
    def show(step: str) -> None:
        print(f"[guest {arch.value}] {step}", file=sys.stderr, flush=True)

    return show


def cache_root() -> Path:
    env = os.environ.get("HVLAB_CACHE")
    if env:
        return Path(env)
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "hvlab"


@dataclass(frozen=True)
class GuestImage:
    arch: Arch
    kernel: Path
    initrd: Path
    kernel_release: str

    def append(self, extra: str = "") -> str:
        """The kernel command line: serial console, no reboot loop on panic."""
        base = f"console={self.arch.console_tty} panic=-1 quiet loglevel=3"
        return f"{base} {extra}".strip()


def _run(argv: list[str], cwd: Path | None = None) -> str:
    return run_tool(argv, cwd)


def resolve_kernel_package(arch: Arch) -> str:
    """linux-image-<arch> is a metapackage; return the versioned image it depends on."""
    meta = f"linux-image-{arch.deb_arch}:{arch.deb_arch}"
    try:
        out = _run(["apt-cache", "depends", meta])
    except SetupError as exc:
        raise SetupError(
            f"cannot resolve {meta}: run 'dpkg --add-architecture {arch.deb_arch} && "
            f"apt-get update' (make setup does this)",
            exc.context,
        ) from exc
    for line in out.splitlines():
        line = line.strip()
        if line.startswith("Depends:") and "linux-image-" in line:
            return line.split(":", 1)[1].strip().split(":")[0]
    raise SetupError(f"apt-cache depends {meta} names no linux-image package")


def _download(package: str, arch: Arch, into: Path, progress: Progress) -> Path:
    """apt-get download into ``into``, reusing an earlier download."""
    into.mkdir(parents=True, exist_ok=True)
    have = sorted(into.glob(f"{package}_*_{arch.deb_arch}.deb"))
    if have:
        return have[-1]
    progress(f"downloading {package} ({arch.deb_arch})")
    with tempfile.TemporaryDirectory(dir=into) as tmp:
        _run(["apt-get", "download", f"{package}:{arch.deb_arch}"], cwd=Path(tmp))
        debs = list(Path(tmp).glob("*.deb"))
        if len(debs) != 1:
            raise SetupError(f"apt-get download {package} produced {len(debs)} files")
        final = into / debs[0].name.replace("%3a", "_")
        debs[0].replace(final)
    return final


def _extract(deb: Path, into: Path) -> None:
    into.mkdir(parents=True, exist_ok=True)
    _run(["dpkg-deb", "-x", str(deb), str(into)])


def _build_initramfs(
    busybox: Path, moddir: Path, modules: list[str], programs: dict[str, Path], out: Path
) -> None:
    cpio = CpioWriter()
    for d in (
        "bin",
        "sbin",
        "usr",
        "usr/bin",
        "usr/sbin",
        "etc",
        "etc/hvlab",
        "proc",
        "sys",
        "dev",
        "tmp",
        "run",
        "lib",
        "lib/modules",
        "root",
    ):
        cpio.directory(d)
    cpio.char_device("dev/console", 5, 1, 0o600)
    cpio.file("bin/busybox", busybox.read_bytes(), 0o755)
    cpio.symlink("bin/sh", "busybox")
    cpio.file("init", _INIT.encode(), 0o755)
    cpio.file("etc/profile", _PROFILE.encode(), 0o644)
    cpio.file("etc/passwd", b"root:x:0:0:root:/root:/bin/sh\n", 0o644)
    for name, text in _HELPERS.items():
        cpio.file(f"usr/bin/{name}", text.encode(), 0o755)
    for name, binary in programs.items():
        cpio.file(f"usr/bin/{name}", binary.read_bytes(), 0o755)
    listing = []
    for rel in modules:
        flat = plain_name(rel)
        cpio.file(f"lib/modules/{flat}", module_bytes(moddir / rel), 0o644)
        listing.append(flat)
    cpio.file("etc/hvlab/modules", ("\n".join(listing) + "\n").encode(), 0o644)
    buf = io.BytesIO()
    with gzip.GzipFile(fileobj=buf, mode="wb", compresslevel=6, mtime=0) as gz:
        gz.write(cpio.finish())
    tmp = out.with_suffix(".tmp")
    tmp.write_bytes(buf.getvalue())
    tmp.replace(out)


def _inputs_key(kernel_deb: Path, busybox_deb: Path) -> str:
    h = hashlib.sha256()
    for part in (
        BUILDER_VERSION,
        sources_key(),
        kernel_deb.name,
        busybox_deb.name,
        _INIT,
        _PROFILE,
        json.dumps(_HELPERS, sort_keys=True),
        ",".join(GUEST_MODULES),
    ):
        h.update(part.encode())
        h.update(b"\0")
    return h.hexdigest()[:16]


def guest_image(arch: Arch, progress: Progress | None = None) -> GuestImage:
    """Build (or reuse) the guest for ``arch`` and return its kernel and initramfs."""
    show = progress or default_progress(arch)
    root = cache_root()
    downloads = root / "debs"
    kernel_pkg = resolve_kernel_package(arch)
    kernel_deb = _download(kernel_pkg, arch, downloads, show)
    busybox_deb = _download("busybox-static", arch, downloads, show)
    key = _inputs_key(kernel_deb, busybox_deb)
    final = root / "guest" / f"{arch.value}-{key}"
    manifest = final / "manifest.json"
    if manifest.exists():
        data = json.loads(manifest.read_text())
        return GuestImage(arch, final / "vmlinuz", final / "initrd.gz", data["kernel_release"])
    show(f"building guest image {final.name}")
    final.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=final.parent) as tmp:
        work = Path(tmp)
        show(f"1/3 extracting {kernel_deb.name}")
        _extract(kernel_deb, work / "kernel")
        _extract(busybox_deb, work / "busybox")
        found = releases(work / "kernel")
        if len(found) != 1:
            raise SetupError(f"{kernel_deb.name} holds {len(found)} module trees, expected 1")
        moddir = work / "kernel/lib/modules" / found[0]
        order = module_load_order(work / "kernel", found[0], GUEST_MODULES)
        programs = build_programs(arch, work)
        show(f"2/3 packing initramfs: busybox + {len(order)} modules + {', '.join(programs)}")
        stage = work / "out"
        stage.mkdir()
        vmlinuz = next((work / "kernel/boot").glob("vmlinuz-*"))
        shutil.copyfile(vmlinuz, stage / "vmlinuz")
        _build_initramfs(work / "busybox/bin/busybox", moddir, order, programs, stage / "initrd.gz")
        (stage / "manifest.json").write_text(
            json.dumps(
                {
                    "kernel_release": moddir.name,
                    "kernel_deb": kernel_deb.name,
                    "busybox_deb": busybox_deb.name,
                    "modules": order,
                },
                indent=2,
            )
        )
        try:
            stage.rename(final)
        except OSError:
            if not manifest.exists():  # not a concurrent builder that won the race
                raise
    size = (final / "initrd.gz").stat().st_size
    show(f"3/3 ready: kernel {moddir.name}, initramfs {size / 1e6:.1f} MB")
    return GuestImage(arch, final / "vmlinuz", final / "initrd.gz", moddir.name)
