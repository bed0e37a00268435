"""The fault claims: what a migration does when its destination or link fails.

S003 documents the statuses (Failed, Canceled) and migrate_cancel; QEMU documents its
own (qapi/migration.json MigrationStatus). The hypervisor never notices a destination
that stops reading: the connection stays up with data queued, the status stays
"active", and the documented way out is migrate_cancel.

StratoVirt's behaviour is read from its source (v2.4.0 and v2.5.0, migration/src):
lib.rs migration_tcp_mode/migration_unix_mode run send_migration in a thread on a
socket with 30 s read and write timeouts; any error there (a write to a dead
destination, a broken link, a timeout) ends in recover_from_migration (the VM resumes)
and set_status(Failed).
"""

from __future__ import annotations

from suites.claim import NA, Claim, Expect, H, Verdict

S003 = "003_585c41c56a10f92f.txt (StratoVirt docs/migration.md)"

SV_FAILED = Expect(
    Verdict.HOLDS,
    "failed",
    "migration/src/lib.rs: send_migration's error -> recover_from_migration, set_status(Failed)",
)
SV_STOPPED = Expect(
    Verdict.HOLDS,
    "active",
    "migration/src/lib.rs: the stream socket has 30 s read/write timeouts, so a stopped "
    "destination fails the migration after 30 s; until then it stays active",
)
SV_NO_MAGIC = NA(
    "StratoVirt's stream starts with Request{length: u64, status: u16} for Active and "
    "recv_migration reads only the status (migration/src/protocol.rs, migration.rs): the "
    "first 4 bytes are an unused length, there is no magic to corrupt (the header with "
    "STRATOVIRT comes with the device state, checked by check_header)"
)

FAULT_CLAIMS = [
    Claim(
        "FAULT-DST-KILLED",
        S003,
        "Query migration state",
        "A destination killed mid-migration fails the migration (Failed); the source runs "
        "on with its memory intact and can migrate again",
        doc_value="failed",
        expect={"stratovirt-2.5": SV_FAILED},
    ),
    Claim(
        "FAULT-DST-STOPPED",
        S003,
        "Cancel Migration",
        "A destination that stops (SIGSTOP) is not noticed: the status stays active with "
        "no progress; migrate_cancel ends it and the source runs on",
        doc_value="active",
        expect={"stratovirt-2.5": SV_STOPPED},
    ),
    Claim(
        "FAULT-LINK-CUT",
        S003,
        "Query migration state",
        "A link broken under the stream fails the migration; the source runs on with its "
        "memory intact and can migrate again",
        doc_value="failed",
        expect={"stratovirt-2.5": SV_FAILED},
    ),
    Claim(
        "FAULT-CORRUPT",
        S003,
        "Query migration state",
        "A corrupted stream is refused by the destination; the migration fails and the "
        "source runs on",
        doc_value="failed",
        expect={
            "qemu": H("failed"),
            "stratovirt-doc": NA("the StratoVirt documents say nothing of the stream's format"),
            "stratovirt-2.5": SV_NO_MAGIC,
        },
    ),
]
