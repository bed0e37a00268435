"""The fault claims: what a migration does when its destination or link fails.

S003 documents the statuses (Failed, Canceled) and migrate_cancel; QEMU documents its
own (qapi/migration.json MigrationStatus). The hypervisor never notices a destination
that stops reading: the connection stays up with data queued, the status stays
"active", and the documented way out is migrate_cancel.
"""

from __future__ import annotations

from suites.claim import Claim, H

S003 = "003_585c41c56a10f92f.txt (StratoVirt docs/migration.md)"

FAULT_CLAIMS = [
    Claim(
        "FAULT-DST-KILLED",
        S003,
        "Query migration state",
        "A destination killed mid-migration fails the migration (Failed); the source runs "
        "on with its memory intact and can migrate again",
        doc_value="failed",
    ),
    Claim(
        "FAULT-DST-STOPPED",
        S003,
        "Cancel Migration",
        "A destination that stops (SIGSTOP) is not noticed: the status stays active with "
        "no progress; migrate_cancel ends it and the source runs on",
        doc_value="active",
    ),
    Claim(
        "FAULT-LINK-CUT",
        S003,
        "Query migration state",
        "A link broken under the stream fails the migration; the source runs on with its "
        "memory intact and can migrate again",
        doc_value="failed",
    ),
    Claim(
        "FAULT-CORRUPT",
        S003,
        "Query migration state",
        "A corrupted stream is refused by the destination; the migration fails and the "
        "source runs on",
        doc_value="failed",
        expect={"qemu": H("failed")},
    ),
]
