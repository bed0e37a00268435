"""The client's and the source's checks of a migration call (libvirt 9.0 + QEMU).

The order follows the code path of each API (citations are to libvirt 9.0):
1. the client library, src/libvirt-domain.c (VIR_FROM_DOMAIN), per entry point;
2. the source QEMU driver: qemuDomainMigrateBegin3Params / Perform3Params in
   src/qemu/qemu_driver.c, qemuMigrationSrcBegin / qemuMigrationSrcBeginPhase /
   qemuMigrationSrcPerformJob in src/qemu/qemu_migration.c (VIR_FROM_QEMU);
   the typed tuning parameters are :mod:`simulator.libvirt.rules_params`.
The destination's Prepare is :mod:`simulator.libvirt.rules_dest`, the source's
Perform :mod:`simulator.libvirt.rules_perform`; :mod:`simulator.libvirt.driver` runs
them in each path's order. In peer-to-peer mode the source checks the domain's state
and storage safety, then connects to the destination daemon, and only then runs the
Begin phase: an unreachable destination hides the Begin-phase checks.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from simulator.libvirt.errors import ErrorDomain, ErrorNumber, Refusal, refuse
from simulator.libvirt.flags import KNOWN_MASK, MigrateFlag
from simulator.libvirt.request import Api, DomainFacts, MigrationCall

F = MigrateFlag
D = ErrorDomain
E = ErrorNumber

#: VIR_MIGRATE_PARAM_* names QEMU accepts (QEMU_MIGRATION_PARAMETERS, qemu_migration.h).
QEMU_PARAMS = frozenset(
    {
        "migrate_uri",
        "destination_name",
        "destination_xml",
        "persistent_xml",
        "bandwidth",
        "bandwidth.postcopy",
        "graphics_uri",
        "listen_address",
        "migrate_disks",
        "disks_port",
        "disks_uri",
        "compression",
        "compression.mt.level",
        "compression.mt.threads",
        "compression.mt.dthreads",
        "compression.xbzrle.cache",
        "auto_converge.initial",
        "auto_converge.increment",
        "parallel.connections",
        "tls.destination",
        "compression.zlib.level",
        "compression.zstd.level",
    }
)
#: Schemes qemuMigrationDstPrepareDirect accepts in VIR_MIGRATE_PARAM_URI.
MIG_SCHEMES = ("tcp", "rdma", "unix")


def _domain_err(code: ErrorNumber, msg: str) -> Refusal:
    return refuse(code, D.DOMAIN, msg)


def _qemu_err(code: ErrorNumber, msg: str) -> Refusal:
    return refuse(code, D.QEMU, msg)


def _exclusive_disk(flags: int) -> Refusal | None:
    if flags & F.NON_SHARED_DISK and flags & F.NON_SHARED_INC:
        return _domain_err(
            E.INVALID_ARG,
            "Flags 'VIR_MIGRATE_NON_SHARED_DISK' and 'VIR_MIGRATE_NON_SHARED_INC' are "
            "mutually exclusive",
        )
    return None


def _exclusive_parallel(flags: int) -> Refusal | None:
    if flags & F.TUNNELLED and flags & F.PARALLEL:
        return _domain_err(
            E.INVALID_ARG,
            "Flags 'VIR_MIGRATE_TUNNELLED' and 'VIR_MIGRATE_PARALLEL' are mutually exclusive",
        )
    return None


def _require_storage(flags: int) -> Refusal | None:
    if flags & F.NON_SHARED_SYNCHRONOUS_WRITES and not flags & (
        F.NON_SHARED_DISK | F.NON_SHARED_INC
    ):
        return _domain_err(
            E.INVALID_ARG,
            "Flag 'VIR_MIGRATE_NON_SHARED_DISK | VIR_MIGRATE_NON_SHARED_INC' is required "
            "by flag 'VIR_MIGRATE_NON_SHARED_SYNCHRONOUS_WRITES'",
        )
    return None


def check_client(call: MigrationCall) -> Refusal | None:
    """src/libvirt-domain.c: virDomainMigrate{,2,3}, virDomainMigrateToURI{,2,3}.

    Each entry point has its own order. virReportInvalidArg (VIR_EXCLUSIVE_FLAGS_*,
    VIR_REQUIRE_FLAG_*, the migrate3 refusals, virDomainMigrateCheckNotLocal) formats
    the message itself: no "invalid argument: " prefix.
    """
    flags, api = call.flags, call.api
    if api is Api.MIGRATE3:
        refusal = _exclusive_disk(flags) or _require_storage(flags)
        if refusal:
            return refusal
        if flags & F.PEER2PEER:
            return _domain_err(
                E.INVALID_ARG, "use virDomainMigrateToURI3 for peer-to-peer migration"
            )
        if flags & F.TUNNELLED:
            return _domain_err(
                E.INVALID_ARG, "cannot perform tunnelled migration without using peer2peer flag"
            )
        return None
    if api.managed:
        # virDomainMigrate / virDomainMigrate2: CHANGE_PROTECTION is masked out for
        # non-p2p, then TUNNELLED without PEER2PEER is VIR_ERR_OPERATION_INVALID.
        refusal = _exclusive_disk(flags) or _exclusive_parallel(flags) or _require_storage(flags)
        if refusal:
            return refusal
        if not flags & F.PEER2PEER and flags & F.TUNNELLED:
            return _domain_err(
                E.OPERATION_INVALID,
                "Requested operation is not valid: cannot perform tunnelled migration "
                "without using peer2peer flag",
            )
        if flags & F.PEER2PEER:
            return _check_not_local(call.dconnuri)
        return None
    # virDomainMigrateToURI{,2,3}: TUNNELLED|PARALLEL, then
    # virDomainMigrateUnmanagedCheckCompat: the QEMU driver has no "direct"
    # (hypervisor-native, daemon-less) migration feature.
    refusal = _exclusive_parallel(flags) or _exclusive_disk(flags) or _require_storage(flags)
    if refusal:
        return refusal
    if not flags & F.PEER2PEER:
        return _domain_err(
            E.ARGUMENT_UNSUPPORTED,
            "argument unsupported: direct migration is not supported by the source host",
        )
    return _check_not_local(call.dconnuri)


def _check_not_local(dconnuri: str | None) -> Refusal | None:
    """virDomainMigrateCheckNotLocal: a server not starting "localhost", or a socket.

    libvirt 9.0 lets an explicit unix socket (``?socket=``) through
    (virURICheckUnixSocket), since such a caller knows what it does.
    """
    parts = urlsplit(dconnuri or "")
    server = parts.hostname
    if (server and server.startswith("localhost")) or (not server and "socket=" not in parts.query):
        return _domain_err(E.INVALID_ARG, "Attempt to migrate guest to the same host")
    return None


def check_driver_entry(call: MigrationCall, function: str) -> Refusal | None:
    """virCheckFlags(QEMU_MIGRATION_FLAGS) + virTypedParamsValidate (qemu_driver.c)."""
    unknown = call.flags & ~KNOWN_MASK
    if unknown:
        return _qemu_err(
            E.INVALID_ARG,
            f"unsupported flags ({unknown:#x}) in function {function}",
        )
    for name in call.params:
        if name not in QEMU_PARAMS:
            # virTypedParamsValidate (src/util/virtypedparam.c): VIR_FROM_NONE.
            return refuse(
                E.ARGUMENT_UNSUPPORTED,
                D.NONE,
                f"argument unsupported: parameter '{name}' not supported",
            )
    return None


def check_resume(call: MigrationCall, dom: DomainFacts) -> Refusal | None:
    """VIR_MIGRATE_POSTCOPY_RESUME: qemuMigrationSrcBegin / qemuMigrationSrcPerformJob
    branch to qemuMigrationAnyCanResume before starting a job or checking the domain.

    1. without VIR_MIGRATE_POSTCOPY: VIR_ERR_ARGUMENT_UNSUPPORTED;
    2. no migration job (qemuMigrationJobIsActive): "domain '%s' is not being migrated";
    3. a job that never reached post-copy (virDomainObjIsPostcopy): "not in post-copy
       phase". The model never has a failed post-copy job, so resuming always fails.
    """
    flags = call.flags
    if not flags & F.POSTCOPY_RESUME:
        return None
    if not flags & F.POSTCOPY:
        return _qemu_err(
            E.ARGUMENT_UNSUPPORTED,
            "argument unsupported: resuming failed post-copy migration requires post-copy "
            "to be enabled",
        )
    if dom.migration_job:
        return _qemu_err(
            E.OPERATION_INVALID,
            f"Requested operation is not valid: migration of domain {dom.name} is not in "
            "post-copy phase",
        )
    return _qemu_err(
        E.OPERATION_INVALID,
        f"Requested operation is not valid: domain '{dom.name}' is not being migrated",
    )


def check_job(dom: DomainFacts) -> Refusal | None:
    """qemuMigrationJobStart -> qemuMigrationJobIsAllowed (qemu_migration.c): one
    migration job per domain. Reached by Begin (CHANGE_PROTECTION, which the client
    library always adds for v3 migration) and by qemuMigrationSrcPerformJob (p2p).
    """
    if dom.migration_job:
        return _qemu_err(
            E.OPERATION_INVALID,
            "Requested operation is not valid: another migration job is already running "
            f"for domain '{dom.name}'",
        )
    return None


def check_active(dom: DomainFacts, flags: int) -> Refusal | None:
    """virDomainObjCheckActive unless OFFLINE (qemuMigrationSrcBegin / PerformJob).

    virDomainObjCheckActive lives in src/conf/domain_conf.c, so the error domain is
    VIR_FROM_DOMAIN even though the QEMU driver calls it.
    """
    if not flags & F.OFFLINE and not dom.active:
        return _domain_err(
            E.OPERATION_INVALID, "Requested operation is not valid: domain is not running"
        )
    return None


def migrate_disks(call: MigrationCall | None) -> list[str] | None:
    """VIR_MIGRATE_PARAM_MIGRATE_DISKS of a call (a string list), or None."""
    chosen = call.params.get("migrate_disks") if call is not None else None
    if chosen is None:
        return None
    return [chosen] if isinstance(chosen, str) else [str(n) for n in chosen]  # type: ignore[attr-defined]


def copied(call: MigrationCall | None, target: str) -> bool:
    """qemuMigrationAnyCopyDisk: every writable disk, or those migrate_disks names."""
    chosen = migrate_disks(call)
    return chosen is None or target in chosen


def check_safe(dom: DomainFacts, flags: int, call: MigrationCall | None = None) -> Refusal | None:
    """qemuMigrationSrcIsSafe: a writable disk on local storage (not a shared or
    cluster FS) is unsafe whatever its cache mode unless it is copied; on shared
    storage only cache none/directsync is safe. Every simulated disk is local.
    """
    if flags & (F.UNSAFE | F.OFFLINE):
        return None
    copying = bool(flags & (F.NON_SHARED_DISK | F.NON_SHARED_INC))
    for disk in dom.disks:
        if disk.readonly or (copying and copied(call, disk.target)):
            continue
        return _qemu_err(
            E.MIGRATE_UNSAFE,
            "Unsafe migration: Migration without shared storage is unsafe",
        )
    return None


def check_begin_phase(
    dom: DomainFacts, flags: int, call: MigrationCall | None = None
) -> Refusal | None:
    """qemuMigrationSrcBeginPhase (qemu_migration.c), in source order."""
    refusal = check_safe(dom, flags, call)
    if refusal:
        return refusal
    if flags & F.POSTCOPY and (not flags & F.LIVE or flags & F.PAUSED):
        return _qemu_err(
            E.ARGUMENT_UNSUPPORTED,
            "argument unsupported: post-copy migration is not supported with non-live "
            "or paused migration",
        )
    if flags & F.POSTCOPY and flags & F.TUNNELLED:
        return _qemu_err(
            E.ARGUMENT_UNSUPPORTED,
            "argument unsupported: post-copy is not supported with tunnelled migration",
        )
    if flags & F.OFFLINE:
        if flags & (F.NON_SHARED_DISK | F.NON_SHARED_INC):
            return _qemu_err(
                E.OPERATION_INVALID,
                "Requested operation is not valid: offline migration cannot handle "
                "non-shared storage",
            )
        if not flags & F.PERSIST_DEST:
            return _qemu_err(
                E.OPERATION_INVALID,
                "Requested operation is not valid: offline migration must be specified "
                "with the persistent flag set",
            )
        if flags & F.TUNNELLED:
            return _qemu_err(
                E.OPERATION_INVALID,
                "Requested operation is not valid: tunnelled offline migration does not make sense",
            )
    if flags & F.ZEROCOPY and not flags & F.PARALLEL:
        return _qemu_err(
            E.OPERATION_INVALID,
            "Requested operation is not valid: zero-copy is only available for parallel migration",
        )
    if flags & (F.NON_SHARED_DISK | F.NON_SHARED_INC):
        known = {d.target for d in dom.disks}
        for name in migrate_disks(call) or []:
            if name not in known:
                return _qemu_err(E.INVALID_ARG, f"invalid argument: disk target {name} not found")
    # Later libvirt releases refuse NON_SHARED_* with TUNNELLED here
    # (VIR_ERR_OPERATION_UNSUPPORTED "... with tunnelled migration and this QEMU");
    # 9.0 does not: it fails later, in check_perform_run (measured).
    return None
