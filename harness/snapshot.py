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
from typing import assert_never

from harness import migration
from harness.machine import Machine
from harness.migration import MigrationResult
from harness.targets.traits import SnapshotMethod


@dataclass(frozen=True)
class Snapshot:
    path: Path  # the directory (FILE_DIR) or the stream file (EXEC_STREAM)
    method: SnapshotMethod

    def files(self) -> dict[str, int]:
        """Name -> size of what the snapshot wrote."""
        if self.path.is_dir():
            return {p.name: p.stat().st_size for p in sorted(self.path.iterdir())}
        return {self.path.name: self.path.stat().st_size} if self.path.exists() else {}

    def incoming(self) -> str:
        match self.method:
            case SnapshotMethod.FILE_DIR:
                return f"file:{self.path}"
            case SnapshotMethod.EXEC_STREAM:
                return f"exec:cat {shlex.quote(str(self.path))}"
            case other:
                assert_never(other)


def save(vm: Machine, where: Path, timeout: float = 120.0) -> tuple[Snapshot, MigrationResult]:
    """Snapshot a (paused) VM into ``where`` and wait for the migrate to finish."""
    snap, watch = start(vm, where)
    result = migration.finish(watch, None, timeout)
    return snap, result


def start(vm: Machine, where: Path) -> tuple[Snapshot, migration.Watch]:
    """Start a snapshot of ``vm`` into ``where``; the migration's watch to follow it."""
    where = where.resolve()  # the hypervisor's working directory is not ours to assume
    where.mkdir(parents=True, exist_ok=True)
    where.chmod(0o700)  # guest memory: private folder, and the stream file is 0600
    method = vm.target.traits.snapshot
    match method:
        case SnapshotMethod.FILE_DIR:
            snap = Snapshot(where, method)
            uri = f"file:{where}"
        case SnapshotMethod.EXEC_STREAM:
            snap = Snapshot(where / "vmstate", method)
            uri = f"exec:umask 077 && cat > {shlex.quote(str(snap.path))}"
        case other:
            assert_never(other)
    return snap, migration.start(vm, uri)
