"""Self-tests of simulator.libvirt: flags, rule order, outcomes, seed 002 example."""

from __future__ import annotations

from collections.abc import Callable

import pytest

import simulator.libvirt as libvirt
from harness.libvirt.fuzz import fuzz
from simulator.libvirt.convergence import PrecopyEngine, RunOutcome
from simulator.libvirt.flags import KNOWN_MASK, VIRSH_OPTION, MigrateFlag, unknown_bits
from simulator.libvirt.masking import mask
from simulator.libvirt.request import Cache
from simulator.libvirt.scenario import DOMAIN_NAME, IMAGE, DomainSpec, RunState

XML = "<domain type='qemu'><name>instance_name</name></domain>"


@pytest.fixture
def two_hosts() -> tuple[libvirt.virConnect, libvirt.virConnect]:
    libvirt.reset()
    conns = libvirt.open("sim+qemu://server004/system"), libvirt.open("sim+qemu://server005/system")
    for conn in conns:
        conn.host.files.add(IMAGE)  # the scenario disk image exists on both hosts
    return conns


def test_flag_values_match_libvirt_header() -> None:
    """Verified:
    1. LIVE is 1 and ZEROCOPY is 1<<20, 21 flags in all, each one bit.
    2. Every flag has a virsh option.
    3. Bits above ZEROCOPY are reported as unknown.
    """
    assert MigrateFlag.LIVE == 1 and MigrateFlag.ZEROCOPY == 1 << 20
    assert len(MigrateFlag) == 21 and all(bin(f).count("1") == 1 for f in MigrateFlag)
    assert set(VIRSH_OPTION) == set(MigrateFlag)
    assert unknown_bits(1 << 21 | 1) == 1 << 21 and unknown_bits(KNOWN_MASK) == 0


def test_seed_002_example_runs_verbatim(two_hosts: tuple[libvirt.virConnect, ...]) -> None:
    """Verified:
    1. The seed 002 calls (lookupByName, migrate(conn, True, name, None, 0)) work.
    2. The domain runs on the destination and is shut off on the source.
    """
    conn_004, conn_005 = two_hosts
    conn_004.defineXML(XML).create()
    vm_domain = conn_004.lookupByName("instance_name")
    vm_domain.migrate(conn_005, True, "instance_name", None, 0)
    assert conn_005.lookupByName("instance_name").state()[0] == libvirt.VIR_DOMAIN_RUNNING
    assert vm_domain.state()[0] == libvirt.VIR_DOMAIN_SHUTOFF


@pytest.mark.parametrize(
    ("flags", "code", "domain"),
    [
        (MigrateFlag.TUNNELLED, libvirt.VIR_ERR_OPERATION_INVALID, libvirt.VIR_FROM_DOMAIN),
        (
            MigrateFlag.NON_SHARED_DISK | MigrateFlag.NON_SHARED_INC | MigrateFlag.TUNNELLED,
            libvirt.VIR_ERR_INVALID_ARG,
            libvirt.VIR_FROM_DOMAIN,
        ),
        (MigrateFlag.OFFLINE, libvirt.VIR_ERR_OPERATION_INVALID, libvirt.VIR_FROM_QEMU),
        (
            MigrateFlag.ZEROCOPY | MigrateFlag.OFFLINE,
            libvirt.VIR_ERR_OPERATION_INVALID,
            libvirt.VIR_FROM_QEMU,
        ),
        (1 << 21, libvirt.VIR_ERR_INVALID_ARG, libvirt.VIR_FROM_QEMU),
        (MigrateFlag.LIVE | MigrateFlag.TLS, libvirt.VIR_ERR_INTERNAL_ERROR, libvirt.VIR_FROM_QEMU),
    ],
)
def test_refusals_carry_libvirt_codes(
    two_hosts: tuple[libvirt.virConnect, ...], flags: int, code: int, domain: int
) -> None:
    """Verified:
    1. The call raises libvirtError.
    2. Its error code and domain are libvirt 9.0's for the first failing check.
    3. The domain stays running on the source.
    """
    src, dst = two_hosts
    src.defineXML(XML).create()
    dom = src.lookupByName("instance_name")
    with pytest.raises(libvirt.libvirtError) as info:
        dom.migrate(dst, int(flags), None, None, 0)
    assert (info.value.get_error_code(), info.value.get_error_domain()) == (code, domain)
    assert dom.isActive()


def test_outcomes_follow_flags(two_hosts: tuple[libvirt.virConnect, ...]) -> None:
    """Verified:
    1. PERSIST_DEST|PAUSED|UNDEFINE_SOURCE: destination persistent and paused.
    2. The source definition is gone.
    3. OFFLINE|PERSIST_DEST on a shut-off domain defines it on the destination only.
    """
    src, dst = two_hosts
    src.defineXML(XML).create()
    dom = src.lookupByName("instance_name")
    f = MigrateFlag
    new = dom.migrate(
        dst, int(f.LIVE | f.PERSIST_DEST | f.PAUSED | f.UNDEFINE_SOURCE), None, None, 0
    )
    assert new.isPersistent() and new.state()[0] == libvirt.VIR_DOMAIN_PAUSED
    with pytest.raises(libvirt.libvirtError):
        src.lookupByName("instance_name")
    new.destroy()
    new.migrate(src, int(f.OFFLINE | f.PERSIST_DEST), None, None, 0)
    moved = src.lookupByName("instance_name")
    assert moved.isPersistent() and not moved.isActive()


def test_dirty_guest_needs_auto_converge(two_hosts: tuple[libvirt.virConnect, ...]) -> None:
    """Verified:
    1. A guest dirtying faster than the bandwidth cap does not converge (aborted).
    2. With AUTO_CONVERGE the same migration completes.
    """
    src, dst = two_hosts
    src.defineXML(XML).create()
    dom = src.lookupByName("instance_name")
    dom.setDirtyRate(200.0, 256.0)
    with pytest.raises(libvirt.libvirtError) as info:
        dom.migrate(dst, int(MigrateFlag.LIVE), None, None, 100)
    assert info.value.get_error_code() == libvirt.VIR_ERR_OPERATION_ABORTED
    dom.migrate(dst, int(MigrateFlag.LIVE | MigrateFlag.AUTO_CONVERGE), None, None, 100)
    assert dst.lookupByName("instance_name").isActive()


def test_fuzz_model_small_budget() -> None:
    """Verified:
    1. fuzz() against the model with 50 examples returns 0.
    """
    assert fuzz(1, 50, "model") == 0


# --- regression cases from the seed-7 differential run against libvirt 9.0 ---------

F = MigrateFlag
DST_P2P = "sim+qemu://server005/system"


def _domain(
    src: libvirt.virConnect, state: RunState = RunState.RUNNING, disk: Cache | None = None
) -> libvirt.virDomain:
    spec = DomainSpec(persistent=True, state=state, disk_cache=disk)
    dom = src.defineXML(spec.xml())
    if state is not RunState.SHUTOFF:
        dom.create()
    if state is RunState.PAUSED:
        dom.suspend()
    return dom


def _refusal(call: Callable[[], object]) -> tuple[int, int, str]:
    with pytest.raises(libvirt.libvirtError) as info:
        call()
    err = info.value
    return err.get_error_code(), err.get_error_domain(), err.get_error_message()


@pytest.mark.parametrize(
    ("state", "api", "flags", "params", "code", "domain", "cites"),
    [
        # qemuMigrationSrcBegin: the POSTCOPY_RESUME branch (qemuMigrationAnyCanResume)
        # comes before virDomainObjCheckActive.
        (RunState.SHUTOFF, "migrate", F.POSTCOPY_RESUME | F.UNDEFINE_SOURCE | F.LIVE, {}, 74, 10,
         "qemuMigrationAnyCanResume"),
        (RunState.SHUTOFF, "migrate", F.POSTCOPY_RESUME | F.POSTCOPY | F.LIVE, {}, 55, 10,
         "qemuMigrationJobIsActive"),
        # qemuDomainMigrateBegin3: virCheckFlags before the domain is looked at.
        (RunState.SHUTOFF, "migrate", F.LIVE | 1 << 26, {}, 8, 10, "virCheckFlags"),
        # qemuDomainMigrateBegin3Params: virTypedParamsValidate (VIR_FROM_NONE).
        (RunState.SHUTOFF, "migrate3", F.LIVE, {"bogus.param": 1}, 74, 0,
         "virTypedParamsValidate"),
        # qemuMigrationSrcBeginPhase: post-copy checks precede the zero-copy one.
        (RunState.RUNNING, "migrate", F.POSTCOPY | F.ZEROCOPY | F.UNSAFE, {}, 74, 10,
         "qemuMigrationSrcBeginPhase"),
        # A paused domain adds VIR_MIGRATE_PAUSED only after Begin: the destination's
        # qemuMigrationDstPrepareAny refuses post-copy, after Begin's zero-copy check.
        (RunState.PAUSED, "migrate", F.LIVE | F.POSTCOPY | F.UNSAFE, {}, 74, 10,
         "qemuMigrationDstPrepareAny"),
        (RunState.PAUSED, "migrate", F.LIVE | F.POSTCOPY | F.ZEROCOPY | F.UNSAFE, {}, 55, 10,
         "qemuMigrationSrcBeginPhase"),
        # ... OFFLINE or not (virDomainMigrateVersion3Full adds PAUSED from GetInfo).
        (RunState.PAUSED, "migrate", F.LIVE | F.OFFLINE | F.PERSIST_DEST | F.POSTCOPY, {}, 74,
         10, "qemuMigrationDstPrepareAny"),
        # qemuDomainMigratePrepare3Params reads no auto_converge.* (SOURCE party in
        # qemuMigrationParamsTPMap): the destination's TLS setup fails first.
        (RunState.RUNNING, "migrate3", F.LIVE | F.TLS, {"auto_converge.initial": 30}, 1, 10,
         "qemuMigrationParamsEnableTLS"),
        # qemuDomainMigratePerform3Params parses parameters before the resume branch.
        (RunState.RUNNING, "migrateToURI3", F.PEER2PEER | F.POSTCOPY_RESUME | F.LIVE,
         {"parallel.connections": 2}, 8, 10, "qemuMigrationParamsFromFlags"),
        # qemuMigrationSrcRun: QEMU refuses zero-copy with compression before the
        # RLIMIT_MEMLOCK raise.
        (RunState.RUNNING, "migrate", F.LIVE | F.ZEROCOPY | F.PARALLEL | F.COMPRESSED | F.UNSAFE,
         {}, 1, 10, "qemuMigrationParamsApply"),
    ],
)  # fmt: skip
def test_check_order_of_libvirt_9(
    two_hosts: tuple[libvirt.virConnect, ...],
    state: RunState,
    api: str,
    flags: int,
    params: dict[str, object],
    code: int,
    domain: int,
    cites: str,
) -> None:
    """Verified (each case names the libvirt 9.0 function whose check fires first):
    1. The call is refused with that check's error code.
    2. And error domain.
    """
    src, dst = two_hosts
    dom = _domain(src, state)
    calls: dict[str, Callable[[], object]] = {
        "migrate": lambda: dom.migrate(dst, int(flags), None, None, 0),
        "migrate3": lambda: dom.migrate3(dst, params, int(flags)),
        "migrateToURI3": lambda: dom.migrateToURI3(DST_P2P, params, int(flags)),
    }
    got_code, got_domain, message = _refusal(calls[api])
    assert got_code == code, (cites, message)
    assert got_domain == domain, (cites, message)


def test_compression_parameter_needs_no_flag(two_hosts: tuple[libvirt.virConnect, ...]) -> None:
    """Verified:
    1. migrate3 with compression=xbzrle and no VIR_MIGRATE_COMPRESSED succeeds: the
       parameter turns compression on (qemuMigrationParamsSetCompression).
    2. An unknown method is VIR_ERR_INVALID_ARG from the QEMU driver.
    """
    src, dst = two_hosts
    dom = _domain(src)
    dom.migrate3(dst, {"compression": "xbzrle"}, int(F.LIVE))
    assert dst.lookupByName(DOMAIN_NAME).isActive()
    back = dst.lookupByName(DOMAIN_NAME)
    code, domain, _ = _refusal(lambda: back.migrate3(src, {"compression": "lz4"}, int(F.LIVE)))
    assert (code, domain) == (libvirt.VIR_ERR_INVALID_ARG, libvirt.VIR_FROM_QEMU)


def test_perform_param_error_leaks_the_migration_job(
    two_hosts: tuple[libvirt.virConnect, ...],
) -> None:
    """Verified (virDomainMigrateVersion3Full skips Confirm when Perform fails, and
    qemuDomainMigratePerform3Params fails in qemuMigrationParamsFromFlags before it
    touches the job qemuMigrationSrcBegin started under CHANGE_PROTECTION):
    1. migrate3 with auto_converge.initial but no AUTO_CONVERGE: INVALID_ARG/QEMU.
    2. The next migration: OPERATION_INVALID "another migration job is already
       running" (qemuMigrationJobIsAllowed).
    3. POSTCOPY_RESUME now finds a job that is not in post-copy (qemuMigrationAnyCanResume).
    4. Destroy ends the job (qemuProcessCleanupMigrationJob); after a restart the
       migration succeeds.
    """
    src, dst = two_hosts
    dom = _domain(src)
    code, domain, _ = _refusal(
        lambda: dom.migrate3(dst, {"auto_converge.initial": 30}, int(F.LIVE))
    )
    assert (code, domain) == (libvirt.VIR_ERR_INVALID_ARG, libvirt.VIR_FROM_QEMU)
    code, _, message = _refusal(lambda: dom.migrate(dst, int(F.LIVE), None, None, 0))
    assert code == libvirt.VIR_ERR_OPERATION_INVALID and "another migration job" in message
    resume = int(F.LIVE | F.POSTCOPY | F.POSTCOPY_RESUME)
    code, _, message = _refusal(lambda: dom.migrate(dst, resume, None, None, 0))
    assert code == libvirt.VIR_ERR_OPERATION_INVALID and "post-copy phase" in message
    dom.destroy()
    dom.create()
    dom.migrate(dst, int(F.LIVE), None, None, 0)
    assert dst.lookupByName(DOMAIN_NAME).isActive()


def test_tunnelled_storage_copy_and_offline_zerocopy(
    two_hosts: tuple[libvirt.virConnect, ...],
) -> None:
    """Verified:
    1. 9.0 has no Begin-phase refusal of TUNNELLED with NON_SHARED_DISK: a domain with
       a writable disk fails in qemuMigrationSrcNBDStorageCopy (INTERNAL_ERROR,
       VIR_FROM_NONE: no host for the NBD connection).
    2. Without a disk the same call succeeds.
    3. OFFLINE with ZEROCOPY|PARALLEL|COMPRESSED runs no QEMU migration
       (qemuMigrationSrcPerformOffline) and succeeds.
    """
    src, dst = two_hosts
    flags = int(F.LIVE | F.PEER2PEER | F.TUNNELLED | F.NON_SHARED_DISK)
    with_disk = _domain(src, disk=Cache.NONE)
    code, domain, _ = _refusal(lambda: with_disk.migrate(dst, flags, None, None, 0))
    assert (code, domain) == (libvirt.VIR_ERR_INTERNAL_ERROR, libvirt.VIR_FROM_NONE)
    with_disk.destroy()
    with_disk.undefine()
    _domain(src).migrate(dst, flags, None, None, 0)
    assert dst.lookupByName(DOMAIN_NAME).isActive()
    offline = int(F.OFFLINE | F.PERSIST_DEST | F.ZEROCOPY | F.PARALLEL | F.COMPRESSED)
    dst.lookupByName(DOMAIN_NAME).migrate(src, offline, None, None, 0)
    assert src.lookupByName(DOMAIN_NAME).isPersistent()


def test_masking_keeps_wording_and_flags() -> None:
    """Verified:
    1. Pids, byte counts, paths, URIs and UUIDs become placeholders.
    2. Hex flag values and the wording stay, so a different text still differs.
    """
    real = "cannot limit locked memory of process 24944 to 33554432: Operation not permitted"
    assert mask(real) == "cannot limit locked memory of process <n> to <n>: Operation not permitted"
    assert mask("Unable to access credentials /tmp/x-1/pki/ca-cert.pem") == mask(
        "Unable to access credentials /etc/pki/qemu/ca-cert.pem"
    )
    assert mask("uuid 6b1e3f0a-9c8d-4e2f-a1b0-0d15ea5e0002 at qemu+tcp://h:1/system") == (
        "uuid <uuid> at <uri>"
    )
    assert mask("unsupported flags (0x40000000) in f") != mask("unsupported flags (0x800000) in f")
    assert mask("domain is not running") != mask("domain is already running")


class _NeverConverges:
    """A convergence engine double: no migration ever converges."""

    def __init__(self) -> None:
        self.calls: list[tuple[float, ...]] = []

    def converges(self, *args: float) -> RunOutcome:
        self.calls.append(args)
        return RunOutcome.NEVER_CONVERGES


def test_convergence_comes_from_the_pluggable_engine(
    two_hosts: tuple[libvirt.virConnect, ...],
) -> None:
    """Verified:
    1. The default engine is simulator.model's pre-copy engine.
    2. An engine plugged in with set_engine decides the run: an idle guest that always
       migrates now never converges and the call is aborted (OPERATION_ABORTED).
    3. The engine got the guest's dirty rate and the call's bandwidth.
    """
    from simulator.libvirt import migration

    assert isinstance(migration.ENGINE[0], PrecopyEngine)
    src, dst = two_hosts
    dom = _domain(src)
    double = _NeverConverges()
    libvirt.set_engine(double)
    try:
        code, _, _ = _refusal(lambda: dom.migrate(dst, int(F.LIVE), None, None, 50))
    finally:
        libvirt.set_engine(PrecopyEngine())
    assert code == libvirt.VIR_ERR_OPERATION_ABORTED
    assert double.calls and double.calls[0][0] == 0.0 and double.calls[0][2] == 50.0


def test_a_documented_race_accepts_either_error_and_nothing_else() -> None:
    """A certificate that does not name the host: both QEMUs fail at once.

    Verified:
    1. The model's verdict (migrate3, client-driven) is the source job's error and
       names the destination's as its race, with the reason.
    2. A real verdict with either error agrees; the one with the race's error is
       counted as raced, with its reason in the row.
    3. A real verdict with a third error, or another source state, disagrees.
    """
    import dataclasses

    from harness.libvirt.differential import compare, run_model
    from simulator.libvirt.flags import MigrateFlag as F
    from simulator.libvirt.request import Api
    from simulator.libvirt.scenario import Env, Scenario, Side

    sc = Scenario(
        Api.MIGRATE3,
        int(F.LIVE | F.TLS),
        extra=(("tls.destination", "wrong.example"),),
        env=Env(src_certs=True, dst_certs=True),
    )
    [model] = run_model([sc])
    assert not model.accepted and model.code == 9 and "Certificate does not match" in model.message
    assert (
        model.raced is not None
        and model.raced[0] == 1
        and "Not a migration stream" in (model.raced[2])
    )
    assert "qcrypto_tls_session_check_certificate" in model.race
    raced = model.raced_verdict()
    assert raced is not None
    report = compare([sc, sc], [model, model], [model, raced])
    assert report["disagreements"] == [] and report["raced"] == 1
    assert [bool(r["raced"]) for r in report["rows"]] == [False, True]
    third = dataclasses.replace(raced, code=38, message="operation failed: something else")
    moved = dataclasses.replace(raced, source=Side(True, True, True, 3, 2))
    report = compare([sc, sc], [model, model], [third, moved])
    assert len(report["disagreements"]) == 2 and report["raced"] == 0


def test_tls_over_a_tunnel_has_libvirt_90s_two_outcomes() -> None:
    """TLS with a tunnelled stream: libvirt 9.0 takes tls-hostname from uninitialized
    memory, so real runs end in one of two errors (both seen here).

    Verified:
    1. The usual verdict is the JSON writer's refusal (VIR_FROM_NONE), the source
       still running, nothing on the destination.
    2. The race's other error is the source job's failed TLS handshake (domain QEMU),
       with libvirt 9.0's exact text, and the reason names the uninitialized union.
    3. A real verdict with that error agrees and is counted as raced.
    """
    from harness.libvirt.differential import compare, run_model
    from simulator.libvirt.flags import MigrateFlag as F
    from simulator.libvirt.request import Api
    from simulator.libvirt.scenario import Env, Scenario

    sc = Scenario(
        Api.MIGRATE_TO_URI3,
        int(F.LIVE | F.PEER2PEER | F.TUNNELLED | F.TLS),
        env=Env(src_certs=True, dst_certs=True),
    )
    [model] = run_model([sc])
    assert (model.accepted, model.code, model.domain) == (False, 1, 0)
    assert model.message == "internal error: failed to convert virJSONValue to yajl data"
    assert model.source is not None and (model.source.state, model.source.reason) == (1, 1)
    assert model.raced == (
        9,
        10,
        "operation failed: job 'migration out' failed: TLS handshake failed: "
        "Error in the pull function.",
    )
    assert "qemuMigrationSrcPerformTunnel" in model.race
    raced = model.raced_verdict()
    assert raced is not None
    report = compare([sc], [model], [raced])
    assert report["disagreements"] == [] and report["raced"] == 1
