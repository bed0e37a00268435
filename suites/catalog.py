"""The behaviour catalog: every testable documented claim, its source, per-target verdicts.

Sources are the seed documents in ../shared/seeds (S003: StratoVirt docs/migration.md;
S004: openEuler's StratoVirt guide, "管理虚拟机") and QEMU's own documentation for its
equivalents (qapi/migration.json, qapi/run-state.json, docs/interop/qmp-spec.rst).

Per target family an expectation is one of:
- HOLDS: the test asserts the documented behaviour (``value`` is the family's documented
  equivalent where it differs, e.g. QEMU's "cancelled" for StratoVirt's "canceled");
- DIVERGES: the real code is known to differ from the docs (``evidence`` names the
  upstream source). The test still asserts the docs; its failure is reported as
  "diverged", and an unexpected pass fails the run (the catalog is then out of date);
- NA: the claim does not apply to that family (the reason is the skip reason).

Families: ``qemu`` (qemu-x86_64 and sim:qemu-7.2, qemu-aarch64 and sim:aarch64:qemu-7.2;
``qemu-aarch64`` may refine), ``stratovirt-doc`` (sim:stratovirt-doc and
sim:aarch64:stratovirt-doc: exactly what the documents say), ``stratovirt-2.4`` and
``stratovirt-2.5`` (real StratoVirt and its simulator profiles on either architecture;
2.4 falls back to 2.5),
``libvirt`` (the libvirt targets of suites/test_flags.py: libvirt-model, the model in
simulator/libvirt, and libvirt-9.0, real daemons; each may refine).

A claim is about hypervisors (QMP, the guest) or about libvirt's migrate API: it is n/a
on the targets of the other kind.
"""

from __future__ import annotations

from suites.claim import (
    FAILED,
    Claim,
    ErrorReply,
    Expect,
    H,
    SlotLimit,
    Subject,
    Verdict,
    family_of,
)
from suites.claims_cpu import CPU_CLAIMS
from suites.claims_faults import FAULT_CLAIMS, PHASE_CLAIMS, TLS_CLAIMS
from suites.claims_features import FEATURE_CLAIMS
from suites.claims_hypervisor import HYPERVISOR_CLAIMS
from suites.claims_network import NETWORK_CLAIMS

__all__ = [
    "CATALOG",
    "FAILED",
    "Claim",
    "ErrorReply",
    "Expect",
    "SlotLimit",
    "Subject",
    "Verdict",
    "expectation",
    "family_of",
]

S000 = "000_cff21d61be0162e8.txt (libvirt virDomainMigrateFlags)"
S001 = "001_be3e312aba6ae222.txt (libvirt flag documentation patch)"
S002 = "002_38985db126fd63c3.txt (libvirt-python virDomain.migrate)"


def _flag(claim_id: str, source: str, section: str, text: str) -> Claim:
    """A libvirt flag rule: it holds on the model and on real libvirt 9.0."""
    return Claim(claim_id, source, section, text, expect={"libvirt": H()}, subject=Subject.LIBVIRT)


# libvirt migrate flags (seeds 000-002); the targets are libvirt-model and libvirt-9.0,
# driven by suites/test_flags.py through one Session.
_CLAIMS = [
    *HYPERVISOR_CLAIMS,
    *CPU_CLAIMS,
    *NETWORK_CLAIMS,
    *FEATURE_CLAIMS,
    *FAULT_CLAIMS,
    *TLS_CLAIMS,
    *PHASE_CLAIMS,
    _flag(
        "FLAG-TUNNELLED-P2P",
        S002,
        "flags",
        "VIR_MIGRATE_TUNNELLED requires VIR_MIGRATE_PEER2PEER: without it the call is refused",
    ),
    _flag(
        "FLAG-OFFLINE-PERSIST",
        S000,
        "VIR_MIGRATE_OFFLINE (1024)",
        "Offline migration requires VIR_MIGRATE_PERSIST_DEST",
    ),
    _flag(
        "FLAG-P2P-URI",
        S002,
        "uri",
        "With PEER2PEER the uri names the destination "
        "libvirtd; migrate3 with PEER2PEER is refused (use migrateToURI3)",
    ),
    _flag(
        "FLAG-DIRECT",
        S001,
        "VIR_MIGRATE_PEER2PEER",
        "Without PEER2PEER, migrateToURI "
        "asks for direct migration, which the QEMU driver does not support",
    ),
    _flag("FLAG-UNKNOWN", S000, "flags", "A flag bit libvirt does not define is refused"),
]

CATALOG: dict[str, Claim] = {c.id: c for c in _CLAIMS}


def expectation(claim_id: str, target_name: str) -> Expect:
    return CATALOG[claim_id].for_family(family_of(target_name))
