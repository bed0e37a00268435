"""The source's Perform phase of libvirt 9.0 (after the destination's Prepare).

qemuMigrationSrcPerformPeer2Peer's tunnelled-parameter checks, then
qemuMigrationSrcPerformNative and qemuMigrationSrcRun (src/qemu/qemu_migration.c), in
their order: TLS over a unix socket, the source's TLS credentials, the parameters
QEMU refuses (qemuMigrationParamsApply), RLIMIT_MEMLOCK for zero-copy, the storage
copy (qemuMigrationSrcNBDStorageCopy). An offline migration never runs QEMU's
migration (qemuMigrationSrcPerformOffline).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from simulator.libvirt.errors import ErrorDomain, ErrorNumber, Refusal, refuse
from simulator.libvirt.flags import MigrateFlag as F
from simulator.libvirt.request import MigrationCall
from simulator.libvirt.rules import compression_methods
from simulator.libvirt.rules_dest import copies_storage, tls_missing

if TYPE_CHECKING:
    from simulator.libvirt.hosts import DomainRecord, SimHost

E, D = ErrorNumber, ErrorDomain
#: qemuMigrationSrcNBDStorageCopy refuses a mirror speed above LLONG_MAX >> 20 MiB/s.
MIRROR_SPEED_MAX = ((1 << 63) - 1) >> 20


def _qemu(code: ErrorNumber, message: str) -> Refusal:
    return refuse(code, D.QEMU, message)


def check_tunnelled_params(call: MigrationCall) -> Refusal | None:
    """qemuMigrationSrcPerformPeer2Peer: what a tunnelled stream cannot honour."""
    if not call.flags & F.TUNNELLED:
        return None
    for name, what in (
        ("migrate_uri", "migration URI"),
        ("listen_address", "listen address"),
        ("disks_port", "disk port address"),
    ):
        if call.params.get(name):
            return _qemu(
                E.ARGUMENT_UNSUPPORTED,
                f"argument unsupported: {what} is not supported by tunnelled migration",
            )
    return None


def check_perform(
    call: MigrationCall, rec: DomainRecord, flags: int, src: SimHost, bandwidth: float
) -> Refusal | None:
    """qemuMigrationSrcPerformNative + qemuMigrationSrcRun, in source order."""
    if flags & F.OFFLINE:
        return None
    uri = str(call.params.get("migrate_uri") or "")
    tunnelled = bool(flags & F.TUNNELLED)
    if (
        not tunnelled
        and uri.startswith("unix:")
        and flags & F.TLS
        and not call.params.get("tls.destination")
    ):
        return _qemu(
            E.OPERATION_UNSUPPORTED,
            "Operation not supported: Explicit destination hostname is required for TLS "
            "migration over UNIX socket",
        )
    if flags & F.TLS and not src.profile.tls_configured:
        return tls_missing("/etc/pki/qemu")
    compressed = bool(flags & F.COMPRESSED) or bool(compression_methods(call))
    if flags & F.ZEROCOPY and compressed:
        return _qemu(
            E.INTERNAL_ERROR,
            "internal error: unable to execute QEMU command 'migrate-set-capabilities': "
            "Zero copy only available for non-compressed non-TLS multifd migration",
        )
    if flags & F.ZEROCOPY and not src.profile.memlock_permitted:
        # qemuMigrationSrcRun -> qemuDomainSetMaxMemLock -> virProcessSetMaxMemLock
        # (src/util/virprocess.c): the guest's RAM (32 MiB) in bytes; the pid is masked.
        return refuse(
            E.SYSTEM_ERROR,
            D.NONE,
            f"cannot limit locked memory of process 0 to {32 << 20}: Operation not permitted",
        )
    if copies_storage(call, rec):
        if bandwidth > MIRROR_SPEED_MAX:
            return refuse(
                E.OVERFLOW,
                D.QEMU,
                f"numerical overflow: bandwidth must be less than {MIRROR_SPEED_MAX}",
            )
        if tunnelled:
            # 9.0 builds the NBD blockdev without a host for a tunnelled stream
            # (src/util/virjson.c, VIR_FROM_NONE); later releases refuse it in Begin.
            return refuse(
                E.INTERNAL_ERROR,
                D.NONE,
                "internal error: argument key 'host' must not have null value",
            )
    return None
