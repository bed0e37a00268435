"""Migration features: what each libvirt flag of seed 000 means, shown on the hypervisor.

Seed 000 (libvirt virDomainMigrateFlags) documents what AUTO_CONVERGE, COMPRESSED,
PARALLEL and POSTCOPY do; libvirt 9.0 turns them into QEMU capabilities and parameters
(src/qemu/qemu_migration_params.c: auto-converge, xbzrle, multifd, postcopy-ram), and
libvirt-python's migrate(bandwidth) (seed 002) into max-bandwidth. These claims check
on QEMU (and its simulator profile) that each mechanism does what the flag's text says;
FEAT-LIBVIRT-* check that the flags reach QEMU through real libvirt and show in the
domain's job info. StratoVirt has none of these knobs (no migrate-set-capabilities):
n/a there.
"""

from __future__ import annotations

from suites.claim import NA, Claim, H, KnownCrash, Subject, holds_but_crashes

S000 = "000_cff21d61be0162e8.txt (libvirt virDomainMigrateFlags)"
S002 = "002_38985db126fd63c3.txt (libvirt-python virDomain.migrate)"
_NO_KNOBS = NA("StratoVirt has no migration capabilities or parameters (S003 Migration)")
_STRATO = {"stratovirt-doc": _NO_KNOBS, "stratovirt-2.4": _NO_KNOBS, "stratovirt-2.5": _NO_KNOBS}


#: how Linux ends every Oops and BUG report it prints (lib/bug.c, arch traps: "---[ end
#: trace <id> ]---")
KERNEL_CRASH = "---[ end trace"
TCG_LOST_WRITES = KnownCrash(
    KERNEL_CRASH,
    "QEMU 7.2 under TCG loses guest writes made during precopy: the fast path of "
    "cpu_physical_memory_sync_dirty_bitmap (include/exec/ram_addr.h) clears the migration "
    "dirty bits without resetting the vCPUs' TLB dirty state (tlb_reset_dirty_range_all), "
    "so a store through a TLB entry made before the sync does not dirty the page again "
    "and it is never resent (fixed in QEMU 9.0: 'physmem: Fix migration dirty bitmap "
    "coherency with TCG memory access'). Here, with a writer at 48 MiB/s and a 16 MiB/s "
    "link, the destination's guest kernel died at once (invalid opcode in list_del "
    "corruption on x86_64; an instruction abort on a kernel text page read as zeros on "
    "aarch64): auto-converge x86_64 5 of 5 tries, aarch64 4 of 14; xbzrle x86_64 3 of "
    "3, aarch64 0 of 6; a fast migration (1 GiB/s) of the same writer 0 of 1. Not "
    "under KVM",
)


def _feature(
    claim_id: str, source: str, section: str, text: str, crash: KnownCrash | None = None
) -> Claim:
    """A feature claim on QEMU; ``crash``: a QEMU bug that may kill the guest there."""
    qemu = holds_but_crashes(crash) if crash else H()
    return Claim(claim_id, source, section, text, expect={"qemu": qemu, **_STRATO})


def _libvirt(claim_id: str, section: str, text: str) -> Claim:
    return Claim(
        claim_id,
        S000,
        section,
        text,
        expect={
            "libvirt-9.0": H(),
            "libvirt-model": NA("the libvirt model has no QEMU job to report (simulator/libvirt)"),
        },
        subject=Subject.LIBVIRT,
    )


FEATURE_CLAIMS = [
    _feature(
        "FEAT-AUTO-CONVERGE",
        S000,
        "VIR_MIGRATE_AUTO_CONVERGE (8192)",
        "Auto-converge slows the domain so that it does not dirty memory faster than it is "
        "sent: under a workload that does not converge, cpu-throttle-percentage rises from "
        "cpu-throttle-initial by cpu-throttle-increment and the migration completes",
        crash=TCG_LOST_WRITES,
    ),
    _feature(
        "FEAT-XBZRLE",
        S000,
        "VIR_MIGRATE_COMPRESSED (2048)",
        "Compression (QEMU's default method: xbzrle) compresses the migration data: cache "
        "hits are counted and the pages sent as deltas take fewer bytes than whole pages",
        crash=TCG_LOST_WRITES,
    ),
    _feature(
        "FEAT-MULTIFD",
        S000,
        "VIR_MIGRATE_PARALLEL (131072)",
        "Parallel migration sends memory pages over several connections: with multifd the "
        "pages travel in the multifd channels (ram.multifd-bytes) and the guest arrives intact",
    ),
    _feature(
        "FEAT-MULTIFD-CHANNELS",
        S000,
        "VIR_MIGRATE_PARALLEL (131072)",
        "The configured number of channels (multifd-channels) are connections of their own, "
        "beside the main stream",
    ),
    _feature(
        "FEAT-POSTCOPY",
        S000,
        "VIR_MIGRATE_POSTCOPY (32768)",
        "A post-copy migration starts as pre-copy; migrate-start-postcopy moves it to "
        "postcopy-active and it completes",
    ),
    _feature(
        "FEAT-POSTCOPY-REQUESTS",
        S000,
        "VIR_MIGRATE_POSTCOPY (32768)",
        "After the switch the destination runs the guest and asks the source for pages it "
        "touches before they arrive: postcopy-requests are counted",
    ),
    _feature(
        "FEAT-POSTCOPY-INTEGRITY",
        S000,
        "VIR_MIGRATE_POSTCOPY (32768)",
        "After a post-copy migration the guest's memory on the destination is intact",
    ),
    _feature(
        "FEAT-BANDWIDTH",
        S002,
        "bandwidth",
        "The transfer honours the bandwidth limit (max-bandwidth): pre-copy bytes over the "
        "pre-copy time stay within the limit, give or take one 100 ms window",
    ),
    _feature(
        "FEAT-DOWNTIME-LIMIT",
        S000,
        "VIR_MIGRATE_LIVE (1)",
        "The switch-over honours downtime-limit: the reported downtime is within it",
    ),
    _libvirt(
        "FEAT-LIBVIRT-AUTO-CONVERGE",
        "VIR_MIGRATE_AUTO_CONVERGE (8192)",
        "With VIR_MIGRATE_AUTO_CONVERGE and its initial/increment parameters, real libvirt "
        "9.0 throttles the domain and the job info shows auto_converge_throttle",
    ),
    _libvirt(
        "FEAT-LIBVIRT-COMPRESSED",
        "VIR_MIGRATE_COMPRESSED (2048)",
        "With VIR_MIGRATE_COMPRESSED (xbzrle) the job info shows the compression cache, "
        "pages and cache misses",
    ),
    _libvirt(
        "FEAT-LIBVIRT-POSTCOPY",
        "VIR_MIGRATE_POSTCOPY (32768)",
        "With VIR_MIGRATE_POSTCOPY, virDomainMigrateStartPostCopy switches the job to "
        "post-copy; the job info shows post-copy page requests and the domain runs on the "
        "destination",
    ),
    _libvirt(
        "FEAT-LIBVIRT-PARALLEL",
        "VIR_MIGRATE_PARALLEL (131072)",
        "With VIR_MIGRATE_PARALLEL and PARALLEL_CONNECTIONS the source QEMU migrates over "
        "that many multifd channels",
    ),
]
