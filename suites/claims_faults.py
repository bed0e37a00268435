"""The fault claims: what a migration does when its destination or link fails.

S003 documents the statuses (Failed, Canceled) and migrate_cancel; QEMU documents its
own (qapi/migration.json MigrationStatus). The hypervisor never notices a destination
that stops reading: the connection stays up with data queued, the status stays
"active", and the documented way out is migrate_cancel.
"""

from __future__ import annotations

from suites.claim import NA, Claim, H

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
