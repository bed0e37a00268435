"""Guest RAM read from the host: QMP ``pmemsave`` dumps, and a page-by-page comparison.

``pmemsave`` (QEMU softmmu/cpus.c qmp_pmemsave) writes guest-physical memory to a file
the QEMU process opens with ``fopen(..., "wb")``: the file is made here first, mode
0600, so the dump of a guest's memory is never readable by others, and it is removed
as soon as it has been read.

The comparison is what "the guest's memory arrived intact" means for a live migration:
once a migration completed, the source is stopped in postmigrate and a destination
started with ``-S`` stays paused (migration/migration.c process_incoming_migration_bh
runs the guest only with autostart), so neither side writes its RAM and every page must
be equal.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from harness.errors import HarnessError
from harness.machine import Machine
from harness.runner import LOCAL
from harness.spec import Arch

PAGE = 4096
#: guest-physical base of RAM: q35 maps low RAM at 0, Arm virt at 1 GiB (hw/arm/virt.c)
RAM_BASE = {Arch.X86_64: 0, Arch.AARCH64: 0x4000_0000}
CHUNK_PAGES = 16384  # 64 MiB per read


def dump(vm: Machine, path: Path, timeout: float = 120.0) -> Path:
    """Write ``vm``'s guest RAM (``spec.memory_mib`` from the arch's RAM base) to ``path``
    (created 0600; the VM keeps its runstate)."""
    if vm.runner is not LOCAL:
        raise HarnessError(f"{vm.name}: guest RAM can be dumped only from a VM on this host")
    if not vm.target.traits.ram_dump:
        raise HarnessError(f"{vm.name}: {vm.target.name} cannot dump guest RAM (no pmemsave)")
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    path.unlink(missing_ok=True)
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    vm.qmp.execute(
        "pmemsave",
        {"val": RAM_BASE[vm.target.arch], "size": vm.spec.memory_mib << 20, "filename": str(path)},
        timeout=timeout,
    )
    return path


def differing_pages(a: Path, b: Path) -> list[int]:
    """Page numbers (4 KiB, from the dumps' start) whose contents differ between two dumps
    of the same size."""
    size = a.stat().st_size
    if b.stat().st_size != size:
        raise HarnessError(f"RAM dumps differ in size: {a} {size} B, {b} {b.stat().st_size} B")
    pages = size // PAGE
    found: list[int] = []
    with a.open("rb") as fa, b.open("rb") as fb:
        for first in range(0, pages, CHUNK_PAGES):
            n = min(CHUNK_PAGES, pages - first)
            wa = np.frombuffer(fa.read(n * PAGE), dtype="<u8").reshape(n, PAGE // 8)
            wb = np.frombuffer(fb.read(n * PAGE), dtype="<u8").reshape(n, PAGE // 8)
            found += (np.flatnonzero((wa != wb).any(axis=1)) + first).tolist()
    return found


@dataclass(frozen=True)
class RamDiff:
    """How two guests' RAM compares: pages compared, and the pages that differ
    (guest-physical addresses)."""

    pages: int
    differing: tuple[int, ...]

    @property
    def intact(self) -> bool:
        return not self.differing

    def describe(self) -> str:
        if self.intact:
            return f"all {self.pages} pages equal"
        head = ", ".join(f"{a:#x}" for a in self.differing[:4])
        more = ", ..." if len(self.differing) > 4 else ""
        return f"{len(self.differing)} of {self.pages} pages differ ({head}{more})"


def compare(src: Machine, dst: Machine, work: Path) -> RamDiff:
    """Dump both VMs' RAM into ``work`` and compare them page by page; the dumps are
    removed afterwards."""
    base = RAM_BASE[src.target.arch]
    a, b = work / f"{src.name}.ram", work / f"{dst.name}.ram"
    try:
        dump(src, a)
        dump(dst, b)
        pages = a.stat().st_size // PAGE
        diff = differing_pages(a, b)
    finally:
        a.unlink(missing_ok=True)
        b.unlink(missing_ok=True)
    return RamDiff(pages, tuple(base + p * PAGE for p in diff))
