"""``virDomainMigrateFlags`` with libvirt's exact names and values.

Source: include/libvirt/libvirt-domain.h (libvirt 9.0), enum virDomainMigrateFlags;
virsh options from tools/virsh-domain.c (opts_migrate / cmdMigrate). Seeds
000_cff21d61be0162e8.txt and 001_be3e312aba6ae222.txt document the same list.
"""

from __future__ import annotations

import enum


class MigrateFlag(enum.IntFlag):
    """VIR_MIGRATE_* flags; the member name is the libvirt name minus the prefix."""

    LIVE = 1 << 0
    PEER2PEER = 1 << 1
    TUNNELLED = 1 << 2
    PERSIST_DEST = 1 << 3
    UNDEFINE_SOURCE = 1 << 4
    PAUSED = 1 << 5
    NON_SHARED_DISK = 1 << 6
    NON_SHARED_INC = 1 << 7
    CHANGE_PROTECTION = 1 << 8
    UNSAFE = 1 << 9
    OFFLINE = 1 << 10
    COMPRESSED = 1 << 11
    ABORT_ON_ERROR = 1 << 12
    AUTO_CONVERGE = 1 << 13
    RDMA_PIN_ALL = 1 << 14
    POSTCOPY = 1 << 15
    TLS = 1 << 16
    PARALLEL = 1 << 17
    NON_SHARED_SYNCHRONOUS_WRITES = 1 << 18
    POSTCOPY_RESUME = 1 << 19
    ZEROCOPY = 1 << 20

    @property
    def libvirt_name(self) -> str:
        """The C name, e.g. ``VIR_MIGRATE_LIVE`` (single flags only)."""
        return f"VIR_MIGRATE_{self.name}"


#: Every flag libvirt 9.0 knows (QEMU_MIGRATION_FLAGS in src/qemu/qemu_migration.h
#: accepts exactly these). Any higher bit is "unknown": the client library passes it
#: through, and the QEMU driver's virCheckFlags refuses it with VIR_ERR_INVALID_ARG
#: "unsupported flags (0x...) in function ...".
KNOWN_MASK: int = (1 << 21) - 1

#: The virsh ``migrate`` option that sets each flag (tools/virsh-domain.c).
VIRSH_OPTION: dict[MigrateFlag, str] = {
    MigrateFlag.LIVE: "--live",
    MigrateFlag.PEER2PEER: "--p2p",
    MigrateFlag.TUNNELLED: "--tunnelled",
    MigrateFlag.PERSIST_DEST: "--persistent",
    MigrateFlag.UNDEFINE_SOURCE: "--undefinesource",
    MigrateFlag.PAUSED: "--suspend",
    MigrateFlag.NON_SHARED_DISK: "--copy-storage-all",
    MigrateFlag.NON_SHARED_INC: "--copy-storage-inc",
    MigrateFlag.CHANGE_PROTECTION: "--change-protection",
    MigrateFlag.UNSAFE: "--unsafe",
    MigrateFlag.OFFLINE: "--offline",
    MigrateFlag.COMPRESSED: "--compressed",
    MigrateFlag.ABORT_ON_ERROR: "--abort-on-error",
    MigrateFlag.AUTO_CONVERGE: "--auto-converge",
    MigrateFlag.RDMA_PIN_ALL: "--rdma-pin-all",
    MigrateFlag.POSTCOPY: "--postcopy",
    MigrateFlag.TLS: "--tls",
    MigrateFlag.PARALLEL: "--parallel",
    MigrateFlag.NON_SHARED_SYNCHRONOUS_WRITES: "--copy-storage-synchronous-writes",
    MigrateFlag.POSTCOPY_RESUME: "--postcopy-resume",
    MigrateFlag.ZEROCOPY: "--zerocopy",
}


def unknown_bits(flags: int) -> int:
    """The bits of ``flags`` that no VIR_MIGRATE_* flag names."""
    return flags & ~KNOWN_MASK


def flag_names(flags: int) -> list[str]:
    """libvirt names of the known bits in ``flags``, low bit first, then unknown hex."""
    names = [f.libvirt_name for f in MigrateFlag if flags & f]
    if unknown_bits(flags):
        names.append(hex(unknown_bits(flags)))
    return names


def virsh_argv(flags: int) -> list[str]:
    """virsh migrate options for ``flags`` (unknown bits have no option)."""
    return [VIRSH_OPTION[f] for f in MigrateFlag if flags & f]
