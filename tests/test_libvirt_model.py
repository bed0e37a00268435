"""Self-tests of simulator.libvirt: flags, rule order, outcomes, seed 002 example."""

from __future__ import annotations

import pytest

import simulator.libvirt as libvirt
from simulator.libvirt.flags import KNOWN_MASK, VIRSH_OPTION, MigrateFlag, unknown_bits
from simulator.libvirt.fuzz import fuzz

XML = "<domain type='qemu'><name>instance_name</name></domain>"


@pytest.fixture
def two_hosts() -> tuple[libvirt.virConnect, libvirt.virConnect]:
    libvirt.reset()
    return libvirt.open("sim+qemu://server004/system"), libvirt.open("sim+qemu://server005/system")


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
