"""The destination's Prepare phase of libvirt 9.0, in its order (VIR_FROM_QEMU unless said).

1. qemuDomainMigratePrepare3Params (src/qemu/qemu_driver.c): the destination's
   typed parameters (qemuMigrationParamsFromFlags(DESTINATION)), then the NBD and
   listen-address combinations with a unix migration URI;
2. qemuMigrationDstPrepareDirect (src/qemu/qemu_migration.c): the migration URI's
   scheme and host (tunnelled migration has none);
3. qemuMigrationDstPrepareAny: the offline and post-copy checks again, on the flags
   the destination gets, and the destination's migrate_tls_force;
4. qemuMigrationDstPrepareFresh: the cookie (same host UUID), then
   virDomainObjListAdd (src/conf/virdomainobjlist.c: UUID and name conflicts);
5. qemuMigrationDstPrepareActive: RDMA without a hard limit, storage pre-creation
   (qemuMigrationDstPrecreateStorage), QEMU start (a missing disk image), the TLS
   credentials object, the NBD server.
"""

from __future__ import annotations

import ipaddress
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from simulator.libvirt import rules, rules_params
from simulator.libvirt.errors import ErrorDomain, ErrorNumber, Refusal, refuse
from simulator.libvirt.flags import MigrateFlag as F
from simulator.libvirt.request import MigrationCall

if TYPE_CHECKING:
    from simulator.libvirt.hosts import DomainRecord, SimHost

E, D = ErrorNumber, ErrorDomain
STORAGE = D.STORAGE


def _qemu(code: ErrorNumber, message: str) -> Refusal:
    return refuse(code, D.QEMU, message)


def _uri(call: MigrationCall) -> str | None:
    value = call.params.get("migrate_uri")
    return str(value) if value is not None else None


def copies_storage(call: MigrationCall, dom: DomainRecord) -> bool:
    """Whether the migration copies a disk (NON_SHARED_* and a disk to copy)."""
    if not call.flags & (F.NON_SHARED_DISK | F.NON_SHARED_INC):
        return False
    return any(rules.copied(call, d.target) for d in dom.facts.disks if not d.readonly)


def check_param_values(call: MigrationCall, source: bool) -> Refusal | None:
    """qemuDomainMigratePrepare3Params / Perform3Params: NBD and listen address."""
    uri = _uri(call) or ""
    unix = uri.startswith("unix:")
    disks_uri = call.params.get("disks_uri")
    disks_port = call.params.get("disks_port")
    migrate_disks = call.params.get("migrate_disks")

    def nbd_unix() -> Refusal | None:
        storage = call.flags & (F.NON_SHARED_DISK | F.NON_SHARED_INC) or migrate_disks
        if storage and unix and disks_uri is None:
            return _qemu(
                E.INVALID_ARG,
                "invalid argument: NBD URI must be supplied when migration URI uses UNIX "
                "transport method",
            )
        return None

    def both() -> Refusal | None:
        if disks_uri is not None and disks_port:
            return _qemu(
                E.INVALID_ARG,
                "invalid argument: Both port and URI requested for disk migration while "
                "being mutually exclusive",
            )
        return None

    def listen() -> Refusal | None:
        if call.params.get("listen_address") is not None and unix:
            return _qemu(
                E.INVALID_ARG,
                "invalid argument: Usage of listen-address is forbidden when migration URI "
                "uses UNIX transport method",
            )
        return None

    order = (both, listen, nbd_unix) if source else (nbd_unix, both, listen)
    for check in order:
        refusal = check()
        if refusal:
            return refusal
    return None


def check_direct_uri(call: MigrationCall) -> Refusal | None:
    """qemuMigrationDstPrepareDirect: scheme tcp, rdma or unix; a host unless unix."""
    uri = _uri(call)
    if uri is None or call.flags & F.TUNNELLED:
        return None
    text = "tcp://" + uri[4:] if uri.startswith("tcp:") and not uri.startswith("tcp://") else uri
    parts = urlsplit(text)
    if not parts.scheme:
        return _qemu(E.INVALID_ARG, f"invalid argument: missing scheme in migration URI: {uri}")
    if parts.scheme not in rules.MIG_SCHEMES:
        return _qemu(
            E.ARGUMENT_UNSUPPORTED,
            f"argument unsupported: unsupported scheme {parts.scheme} in migration URI {uri}",
        )
    if parts.scheme != "unix" and not parts.hostname:
        return _qemu(E.INVALID_ARG, f"invalid argument: missing host in migration URI: {uri}")
    return None


def check_prepare_any(flags: int, target: SimHost) -> Refusal | None:
    """qemuMigrationDstPrepareAny: the destination's flag checks and migrate_tls_force.

    The flags include the VIR_MIGRATE_PAUSED the source side adds for a paused
    domain after Begin, so LIVE|POSTCOPY on a paused domain fails here.
    """
    if flags & F.POSTCOPY and (not flags & F.LIVE or flags & F.PAUSED):
        return _qemu(
            E.ARGUMENT_UNSUPPORTED,
            "argument unsupported: post-copy migration is not supported with non-live "
            "or paused migration",
        )
    if target.profile.tls_force and not flags & (F.TUNNELLED | F.TLS):
        return _qemu(
            E.OPERATION_INVALID,
            "Requested operation is not valid: this libvirtd instance allows migration only "
            "with VIR_MIGRATE_TLS flag",
        )
    return None


def check_identity(
    src: SimHost, target: SimHost, dom: DomainRecord, dest_name: str
) -> Refusal | None:
    """The cookie's host UUID (qemu_migration_cookie.c), then virDomainObjListAdd."""
    if src.profile.host_uuid == target.profile.host_uuid:
        return _qemu(
            E.INTERNAL_ERROR,
            f"internal error: Attempt to migrate guest to the same host {target.profile.host_uuid}",
        )
    same = target.by_uuid(dom.uuid)
    if same is not None:
        if same.facts.name != dest_name:
            return refuse(
                E.OPERATION_FAILED,
                D.DOMAIN,
                f"operation failed: domain '{same.facts.name}' is already defined with uuid "
                f"{dom.uuid}",
            )
        if same.facts.active:
            return refuse(
                E.OPERATION_INVALID,
                D.DOMAIN,
                f"Requested operation is not valid: domain '{dest_name}' is already active",
            )
        return None
    other = target.domains.get(dest_name)
    if other is not None:
        return refuse(
            E.OPERATION_FAILED,
            D.DOMAIN,
            f"operation failed: domain '{dest_name}' already exists with uuid {other.uuid}",
        )
    return None


def check_prepare_active(
    call: MigrationCall, flags: int, dom: DomainRecord, target: SimHost
) -> tuple[Refusal | None, bool]:
    """qemuMigrationDstPrepareActive: (refusal, whether QEMU had been started)."""
    uri = _uri(call) or ""
    if uri.startswith("rdma:") and not call.flags & F.TUNNELLED and not dom.facts.hard_limit:
        return _qemu(
            E.OPERATION_INVALID,
            "Requested operation is not valid: cannot start RDMA migration with no memory "
            "hard limit set",
        ), False
    copying = copies_storage(call, dom)
    for disk in dom.facts.disks:
        if disk.source in target.files or disk.readonly:
            continue
        if copying and rules.copied(call, disk.target):
            if flags & F.NON_SHARED_INC:
                return _qemu(
                    E.OPERATION_UNSUPPORTED,
                    "Operation not supported: pre-creation of storage targets for incremental "
                    "storage migration is not supported",
                ), False
            folder = disk.source.rsplit("/", 1)[0]
            return refuse(
                E.NO_STORAGE_POOL,
                STORAGE,
                f"Storage pool not found: no storage pool with matching target path '{folder}'",
            ), False
    for disk in dom.facts.disks:
        if disk.source not in target.files:
            return refuse(
                E.SYSTEM_ERROR,
                STORAGE,
                f"Cannot access storage file '{disk.source}': No such file or directory",
            ), True
    if flags & F.TLS and not target.profile.tls_configured:
        return tls_missing("/etc/pki/qemu"), True
    if flags & F.PARALLEL and "mt" in rules_params.compression_methods(call):
        # qemuMigrationParamsApply on the destination: QEMU 7.2's migrate_caps_check
        # refuses the multifd capability with "compress" (multithread compression).
        return _qemu(
            E.INTERNAL_ERROR,
            "internal error: unable to execute QEMU command 'migrate-set-capabilities': "
            "Multifd is not compatible with compress",
        ), True
    if copying:
        refusal = check_nbd_server(call)
        if refusal:
            return refusal, True
    return check_incoming(call), True


def check_incoming(call: MigrationCall) -> Refusal | None:
    """qemuMigrationDstRun: QEMU's migrate-incoming resolves the listen address (the
    daemons' network namespace has no name service: only literal addresses and
    ``localhost`` resolve)."""
    listen = call.params.get("listen_address")
    if listen is None or call.flags & F.TUNNELLED:
        return None
    try:
        ipaddress.ip_address(str(listen))
    except ValueError:
        if str(listen) != "localhost":
            return _qemu(
                E.INTERNAL_ERROR,
                "internal error: unable to execute QEMU command 'migrate-incoming': address "
                f"resolution failed for {listen}:49152: Temporary failure in name resolution",
            )
    return None


def check_nbd_server(call: MigrationCall) -> Refusal | None:
    """qemuMigrationDstStartNBDServer: the disks URI (tcp with a host, unix with a
    path), else the disks port's range."""
    disks_uri = call.params.get("disks_uri")
    if disks_uri is not None:
        parts = urlsplit(str(disks_uri))
        if not parts.scheme:
            return _qemu(E.INVALID_ARG, f"invalid argument: No URI scheme specified: {disks_uri}")
        if parts.scheme == "tcp" and not parts.hostname:
            return _qemu(
                E.INVALID_ARG,
                f"invalid argument: URI with tcp scheme did not provide a server part: {disks_uri}",
            )
        if parts.scheme == "unix" and not parts.path:
            return _qemu(E.INVALID_ARG, "invalid argument: UNIX disks URI does not include path")
        if parts.scheme not in ("tcp", "unix"):
            return _qemu(
                E.INVALID_ARG, f"invalid argument: Unsupported scheme in disks URI: {parts.scheme}"
            )
        return None
    port = int(call.params.get("disks_port", 0) or 0)  # type: ignore[call-overload]
    if not 0 <= port <= 0xFFFF:
        return _qemu(E.INVALID_ARG, "invalid argument: nbd port must be in range 0-65535")
    uri = _uri(call) or ""
    if uri.startswith("unix:"):
        # qemuMigrationDstPrepareDirect made the unix socket's path the listen address;
        # the NBD server listens on TCP there (qemuDomainMigratePrepare3 has no check
        # for it, only the Params variant does).
        path = urlsplit(uri).path
        return _qemu(
            E.INTERNAL_ERROR,
            "internal error: unable to execute QEMU command 'nbd-server-start': address "
            f"resolution failed for {path}:49153: Name or service not known",
        )
    return None


def tls_missing(folder: str) -> Refusal:
    """QEMU's tls-creds-x509 object-add without the CA certificate."""
    return _qemu(
        E.INTERNAL_ERROR,
        "internal error: unable to execute QEMU command 'object-add': Unable to access "
        f"credentials {folder}/ca-cert.pem: No such file or directory",
    )
