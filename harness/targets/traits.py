"""What a target does, as typed data: the suites and helpers branch on these, never on names.

Every field is read somewhere (the harness or the suites); a trait that nothing reads does
not belong here. Branches over an enum end in ``assert_never`` so mypy --strict proves
every value is handled when one is added.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


class GuestKind(enum.Enum):
    """Where the guest comes from."""

    #: a real Linux guest booted from the hvlab image (harness/guest.py)
    IMAGE = "image"
    #: the simulator models its guest (simulator/guest_shell.py): no image to build
    SIMULATED = "simulated"


class SnapshotMethod(enum.Enum):
    """How a VM's memory and device state are saved to files and restored."""

    #: QEMU 7.2 has no file: migration (it came in 8.2): the stream goes through
    #: ``migrate "exec:cat > FILE"`` and comes back with ``-incoming "exec:cat FILE"``
    #: (migration/exec.c)
    EXEC_STREAM = "exec-stream"
    #: StratoVirt: ``migrate file:DIR`` writes DIR/memory and DIR/state, restored with
    #: ``-incoming file:DIR`` (migration/src/snapshot.rs)
    FILE_DIR = "file-dir"


class QmpDialect(enum.Enum):
    """Argument shapes of the hotplug backends."""

    #: blockdev-add with a driver, netdev_add type=user (qapi/block-core.json, net.json)
    QEMU = "qemu"
    #: blockdev-add without driver (file + cache), netdev_add with ifname (seed 004)
    STRATOVIRT = "stratovirt"


class SourceAfterMigration(enum.Enum):
    """What the source process does once a migration completed."""

    #: QEMU keeps the source in runstate postmigrate (migration/migration.c)
    POSTMIGRATE = "postmigrate"
    #: StratoVirt destroys the VM and exits 0 (migration/src/migration.rs clear_migration)
    EXITS = "exits"


class CpuHotplug(enum.Enum):
    """How ``device_add`` names the vCPU it plugs (x86_64 q35)."""

    #: StratoVirt: driver generic-x86-cpu and a cpu-id (docs/cpu_hotplug.md)
    CPU_ID = "cpu-id"
    #: QEMU: the slot's type from query-hotpluggable-cpus and its socket-id, core-id and
    #: thread-id (docs/system/cpu-hotplug.rst)
    TOPOLOGY = "topology"


class CpuQuery(enum.Enum):
    """The command that lists vCPUs."""

    QUERY_CPUS_FAST = "query-cpus-fast"  # QEMU (query-cpus was removed in 6.0)
    QUERY_CPUS = "query-cpus"  # StratoVirt


@dataclass(frozen=True)
class Traits:
    guest: GuestKind
    snapshot: SnapshotMethod
    dialect: QmpDialect
    source_after_migration: SourceAfterMigration
    cpu_query: CpuQuery
    cpu_hotplug: CpuHotplug
    #: QMP answers while an incoming migration is pending (QEMU); StratoVirt's main loop
    #: does not greet until the incoming migration is done (machine_manager)
    qmp_during_incoming: bool
    #: MIGRATION events once the ``events`` capability is on (QEMU)
    migration_events: bool
    #: migrate-set-parameters / migrate-set-capabilities exist (QEMU; StratoVirt has none)
    migration_tuning: bool
    #: a booted guest may be restored from a saved template (harness/templates.py)
    boot_templates: bool
    #: each migration channel is a socket of the hypervisor process, so multifd's
    #: channels can be counted from the host (the simulator carries its stream on one
    #: socket and models multifd in its counters)
    migration_channels: bool = True
    #: guest-physical RAM can be written to a file over QMP (QEMU's ``pmemsave``,
    #: softmmu/cpus.c), so a test can compare the source's memory with the
    #: destination's page by page (the simulator models no guest memory contents)
    ram_dump: bool = False
