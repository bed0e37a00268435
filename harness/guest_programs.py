"""hvlab's own guest programs, built from source with Debian's compilers.

``hvlab-stress`` (harness/guest_src/hvlab-stress.c) is compiled static for the guest's
architecture with Debian's ``<triplet>-gcc`` (``gcc`` on amd64 provides
``x86_64-linux-gnu-gcc``; ``gcc-aarch64-linux-gnu`` with ``libc6-dev-arm64-cross`` the
aarch64 one; both are in setup/debian-packages.txt) and goes into the initramfs as
``/usr/bin/hvlab-stress``.
"""

from __future__ import annotations

import hashlib
import subprocess
from pathlib import Path

from harness.errors import SetupError
from harness.spec import Arch

SOURCE_DIR = Path(__file__).with_name("guest_src")
#: program name in the guest -> its C source
PROGRAMS = {"hvlab-stress": SOURCE_DIR / "hvlab-stress.c"}
CFLAGS = ("-static", "-O2", "-s", "-Wall", "-Wextra", "-Werror")
_PACKAGES = {
    Arch.X86_64: "gcc libc6-dev",
    Arch.AARCH64: "gcc-aarch64-linux-gnu libc6-dev-arm64-cross",
}


def compiler(arch: Arch) -> str:
    """Debian's cross (or native) C compiler for ``arch``."""
    return {Arch.X86_64: "x86_64-linux-gnu-gcc", Arch.AARCH64: "aarch64-linux-gnu-gcc"}[arch]


def sources_key() -> str:
    """What the programs are built from, for the image cache key."""
    h = hashlib.sha256(" ".join(CFLAGS).encode())
    for name, src in sorted(PROGRAMS.items()):
        h.update(name.encode() + b"\0" + src.read_bytes() + b"\0")
    return h.hexdigest()[:16]


def build(arch: Arch, out_dir: Path) -> dict[str, Path]:
    """Compile every program for ``arch`` into ``out_dir``; name -> binary."""
    cc = compiler(arch)
    built: dict[str, Path] = {}
    for name, src in PROGRAMS.items():
        out = out_dir / name
        argv = [cc, *CFLAGS, "-o", str(out), str(src)]
        try:
            done = subprocess.run(argv, capture_output=True, text=True, check=False)
        except FileNotFoundError as exc:
            raise SetupError(
                f"{cc} not found: apt-get install {_PACKAGES[arch]} (make setup does)"
            ) from exc
        if done.returncode != 0:
            last = (done.stderr.strip().splitlines() or ["(no output)"])[-1]
            raise SetupError(
                f"building {name} for {arch.value} failed: {last}",
                {"argv": argv, "stderr": done.stderr[-2000:]},
            )
        built[name] = out
    return built
