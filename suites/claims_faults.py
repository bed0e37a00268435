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

QAPI = "QEMU qapi/migration.json (MigrationParameters tls-creds, tls-hostname)"
NO_TLS = NA("StratoVirt has no TLS migration (its migration docs and code know no TLS)")

TLS_CLAIMS = [
    Claim(
        "TLS-X509",
        QAPI,
        "tls-creds",
        "With x509 credentials on both sides (tls-creds) and the server's host name "
        "(tls-hostname), the migration runs over TLS and completes",
        expect={"stratovirt-doc": NO_TLS, "stratovirt-2.4": NO_TLS, "stratovirt-2.5": NO_TLS},
    ),
    Claim(
        "TLS-REFUSED",
        QAPI,
        "tls-hostname",
        "A server certificate the client cannot verify (another CA, another host name) "
        "fails the migration with the reason; the source runs on",
        # crypto/tlssession.c qcrypto_tls_session_check_certificate (GnuTLS's texts)
        doc_value={
            "other-ca": "The certificate hasn't got a known issuer",
            "wrong-name": "Certificate does not match the hostname",
        },
        expect={"stratovirt-doc": NO_TLS, "stratovirt-2.4": NO_TLS, "stratovirt-2.5": NO_TLS},
    ),
    Claim(
        "TLS-EXPIRED",
        QAPI,
        "tls-creds",
        "An expired certificate is refused",
        # crypto/tlscredsx509.c qcrypto_tls_creds_check_cert_times: checked when the
        # object is created, so the destination does not start
        doc_value="has expired",
        expect={"stratovirt-doc": NO_TLS, "stratovirt-2.4": NO_TLS, "stratovirt-2.5": NO_TLS},
    ),
    Claim(
        "TLS-PSK",
        QAPI,
        "tls-creds",
        "With pre-shared keys (tls-creds-psk) the migration completes when both sides hold "
        "the same key and fails when they do not",
        expect={"stratovirt-doc": NO_TLS, "stratovirt-2.4": NO_TLS, "stratovirt-2.5": NO_TLS},
    ),
]

DEVEL = "QEMU docs/devel/migration.rst (Postcopy; postcopy recovery)"
NO_POSTCOPY = NA("StratoVirt has no post-copy migration (S003 lists only pre-copy)")
NO_PAUSE = NA("StratoVirt has no pause-before-switchover capability (no migration capabilities)")

PHASE_CLAIMS = [
    Claim(
        "CANCEL-SWITCHOVER",
        "QEMU qapi/migration.json (MigrationCapability pause-before-switchover)",
        "pause-before-switchover",
        "migrate_cancel in pre-switchover (the source VM stopped) cancels the migration and "
        "the source VM runs again",
        doc_value="cancelled",
        expect={"stratovirt-doc": NO_PAUSE, "stratovirt-2.4": NO_PAUSE, "stratovirt-2.5": NO_PAUSE},
    ),
    Claim(
        "CANCEL-POSTCOPY",
        DEVEL,
        "Postcopy",
        "In post-copy a failure (here a cancel) loses the guest: the source's VM stays "
        "stopped, the destination waits in postcopy-paused",
        # migration/migration.c: migrate_fd_cancel sets cancelling and shuts the stream
        # down; the migration thread may first see the broken stream and postcopy_pause()
        # sets postcopy-paused from whatever state it is in, so the source ends cancelled
        # or postcopy-paused (seen here: paused 3 times in 4). The source VM was stopped at
        # the switch to post-copy and is never resumed.
        doc_value={
            "src": ("cancelled", "postcopy-paused"),
            "src_runstate": ("postmigrate", "finish-migrate"),
            "dst": "postcopy-paused",
        },
        expect={
            "stratovirt-doc": NO_POSTCOPY,
            "stratovirt-2.4": NO_POSTCOPY,
            "stratovirt-2.5": NO_POSTCOPY,
        },
    ),
    Claim(
        "POSTCOPY-RECOVER",
        DEVEL,
        "Postcopy",
        "A link failure in post-copy pauses both sides (postcopy-paused); migrate-recover on "
        "the destination and migrate with resume on the source complete it, memory intact",
        doc_value="postcopy-paused",
        expect={
            "stratovirt-doc": NO_POSTCOPY,
            "stratovirt-2.4": NO_POSTCOPY,
            "stratovirt-2.5": NO_POSTCOPY,
        },
    ),
]
