"""The source's Perform phase of libvirt 9.0 (after the destination's Prepare).

qemuMigrationSrcPerformPeer2Peer's tunnelled-parameter checks, then
qemuMigrationSrcPerformNative and qemuMigrationSrcRun (src/qemu/qemu_migration.c), in
their order: TLS over a unix socket, the source's TLS credentials, the parameters
QEMU refuses (qemuMigrationParamsApply), RLIMIT_MEMLOCK for zero-copy, the storage
copy (qemuMigrationSrcNBDStorageCopy). An offline migration never runs QEMU's
migration (qemuMigrationSrcPerformOffline).
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

from simulator.libvirt.errors import ErrorDomain, ErrorNumber, Refusal, refuse
from simulator.libvirt.flags import MigrateFlag as F
from simulator.libvirt.request import MigrationCall
from simulator.libvirt.rules_dest import copies_storage, tls_missing
from simulator.libvirt.rules_params import compression_methods

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
    call: MigrationCall,
    rec: DomainRecord,
    flags: int,
    hosts: tuple[SimHost, SimHost],
    bandwidth: float,
) -> Refusal | None:
    """qemuMigrationSrcPerformNative + qemuMigrationSrcRun, in source order."""
    if flags & F.OFFLINE:
        return None
    src, target = hosts
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
    if flags & F.TLS and tunnelled:
        return tls_tunnelled()
    compressed = bool(flags & F.COMPRESSED) or bool(compression_methods(call))
    if flags & F.ZEROCOPY and (compressed or flags & F.TLS):
        # qemuMigrationParamsApply sets the capabilities first (a compression
        # capability fails there), then the parameters (tls-creds fails there).
        command = "migrate-set-capabilities" if compressed else "migrate-set-parameters"
        return _qemu(
            E.INTERNAL_ERROR,
            f"internal error: unable to execute QEMU command '{command}': "
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
    refusal = _check_storage_copy(call, rec, tunnelled, bandwidth)
    if refusal:
        return refusal
    return check_tls_peer(call, flags, target)


#: Why TLS over a tunnelled stream has two outcomes.
TLS_TUNNELLED_RACE = (
    "libvirt 9.0 reads the destination host name of a tunnelled stream from an "
    "uninitialized union (src/qemu/qemu_migration.c qemuMigrationSrcPerformTunnel "
    "leaves its qemuMigrationSpec uninitialized and sets only dest.fd; "
    "qemuMigrationSrcRun passes spec->dest.host.name to qemuMigrationParamsEnableTLS "
    "for MIGRATION_DEST_FD): whatever bytes were there become tls-hostname. Mostly "
    "they are not UTF-8 and the JSON writer refuses them (src/util/virjson.c); when "
    "they are, QEMU starts the migration and the TLS handshake over the tunnel fails. "
    "Seen both ways with libvirt 9.0 here"
)


def tls_tunnelled() -> Refusal:
    """TLS with VIR_MIGRATE_TUNNELLED: the garbage tls-hostname (TLS_TUNNELLED_RACE)."""
    usual = refuse(
        E.INTERNAL_ERROR, D.NONE, "internal error: failed to convert virJSONValue to yajl data"
    )
    other = _qemu(
        E.OPERATION_FAILED,
        "operation failed: job 'migration out' failed: TLS handshake failed: "
        "Error in the pull function.",
    )
    return dataclasses.replace(usual, raced=other, race=TLS_TUNNELLED_RACE)


#: Why a certificate that does not name the host has two outcomes.
TLS_PEER_RACE = (
    "both QEMUs fail at once: the source's post-handshake hostname check "
    "(crypto/tlssession.c qcrypto_tls_session_check_certificate, migration/tls.c) and "
    "the destination's read of the stream it never gets (migration/savevm.c 'Not a "
    "migration stream'); libvirt reports the source job's error or, once the "
    "destination's QEMU has exited, the destination's (Finish). Seen both ways with "
    "libvirt 9.0 on a loaded 2-core host, for migrate3 and peer-to-peer migrateToURI3"
)


def check_tls_peer(call: MigrationCall, flags: int, target: SimHost) -> Refusal | None:
    """QEMU's TLS handshake: the server certificate must name the host the source
    connects to (VIR_MIGRATE_PARAM_TLS_DESTINATION, else the migration URI's host,
    which is the destination's own name). The source's job fails, and so does the
    destination's QEMU. The usual error: in a peer-to-peer migration the destination's
    Finish reports its QEMU's failure (qemuMigrationSrcPerformPeer2Peer3 keeps the
    destination's error), otherwise the source's job error; the other is the race's."""
    wanted = call.params.get("tls.destination")
    if not flags & F.TLS or wanted is None or str(wanted) in target.profile.tls_names:
        return None
    stamp = "2000-01-01T00:00:00.000000Z qemu-system-x86_64: "
    lines = [f"{stamp}Cannot read from TLS channel: Input/output error"] * 3 + [
        f"{stamp}Not a migration stream",
        f"{stamp}load of migration failed: Invalid argument",
    ]
    destination = _qemu(
        E.INTERNAL_ERROR,
        "internal error: qemu unexpectedly closed the monitor: " + "\n".join(lines),
    )
    source = _qemu(
        E.OPERATION_FAILED,
        f"operation failed: job 'migration out' failed: Certificate does not match the "
        f"hostname {wanted}",
    )
    first, other = (destination, source) if flags & F.PEER2PEER else (source, destination)
    return dataclasses.replace(first, raced=other, race=TLS_PEER_RACE)


def _check_storage_copy(
    call: MigrationCall, rec: DomainRecord, tunnelled: bool, bandwidth: float
) -> Refusal | None:
    """qemuMigrationSrcNBDStorageCopy: the mirror speed, the tunnelled NBD target."""
    if copies_storage(call, rec):
        if tunnelled:
            # 9.0 builds the NBD blockdev without a host for a tunnelled stream
            # (src/util/virjson.c, VIR_FROM_NONE), before the mirror speed is checked;
            # later releases refuse it in Begin.
            return refuse(
                E.INTERNAL_ERROR,
                D.NONE,
                "internal error: argument key 'host' must not have null value",
            )
        if bandwidth > MIRROR_SPEED_MAX:
            return refuse(
                E.OVERFLOW,
                D.QEMU,
                f"numerical overflow: bandwidth must be less than {MIRROR_SPEED_MAX}",
            )
    return None
