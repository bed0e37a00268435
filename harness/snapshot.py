"""Snapshot (memory + device state) and restore, per hypervisor.

StratoVirt: ``migrate`` to ``file:DIR`` writes DIR/memory and DIR/state
(machine_manager/src/config/incoming.rs, migration/src/snapshot.rs); restore is
``-incoming file:DIR``. QEMU 7.2 has no ``file:`` transport (it came in 8.2): the
equivalent is a migration stream through ``exec:`` into one file, loaded back with
``-incoming exec:cat FILE`` (migration/exec.c).
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from pathlib import Path

from harness import migration
from harness.machine import Machine
from harness.migration import MigrationResult


@dataclass(frozen=True)
class Snapshot:
    path: Path  # the directory (StratoVirt) or the stream file (QEMU)
    kind: str  # "memory+state" or "stream"

    def files(self) -> dict[str, int]:
        """Name -> size of what the snapshot wrote."""
        if self.path.is_dir():
            return {p.name: p.stat().st_size for p in sorted(self.path.iterdir())}
        return {self.path.name: self.path.stat().st_size} if self.path.exists() else {}

    def incoming(self) -> str:
        if self.kind == "memory+state":
            return f"file:{self.path}"
        return f"exec:cat {shlex.quote(str(self.path))}"


def save(vm: Machine, where: Path, timeout: float = 120.0) -> tuple[Snapshot, MigrationResult]:
    """Snapshot a (paused) VM into ``where`` and wait for the migrate to finish."""
    where = where.resolve()  # the hypervisor's working directory is not ours to assume
    if "snapshot-file-dir" in vm.target.capabilities:
        where.mkdir(parents=True, exist_ok=True)
        snap = Snapshot(where, "memory+state")
        uri = f"file:{where}"
    else:
        where.mkdir(parents=True, exist_ok=True)
        snap = Snapshot(where / "vmstate", "stream")
        uri = f"exec:cat > {shlex.quote(str(snap.path))}"
    watch = migration.start(vm, uri)
    result = migration.finish(watch, None, timeout)
    return snap, result
