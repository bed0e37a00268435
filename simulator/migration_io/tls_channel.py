"""TLS on the migration stream, with Python's ``ssl`` (QEMU 7.2 migration/tls.c over
io/channel-tls.c and crypto/tlssession.c, which use GnuTLS).

The source is the TLS client: ``server_hostname`` is tls-hostname, else the host of the
URI (migration_tls_client_create: "No hostname available for TLS" when there is none, as
for a unix socket); it trusts ``dir/ca-cert.pem`` and shows ``dir/client-cert.pem`` +
``client-key.pem`` if both exist. The destination is the server with
``dir/server-cert.pem`` + ``server-key.pem``; with verify-peer (on by default) it
requires the client's certificate and checks it against its CA file.

Failures are worded as QEMU words them: a certificate the source cannot accept is
crypto/tlssession.c qcrypto_tls_session_check_certificate's text (GnuTLS's reasons:
"The certificate hasn't got a known issuer", "Certificate does not match the hostname
H", ...), anything else in the handshake "TLS handshake failed: " and GnuTLS's
gnutls_strerror text.

One difference of timing is modelled: QEMU checks the peer's certificate *after* the
GnuTLS handshake (io/channel-tls.c qio_channel_tls_handshake_task, then
qcrypto_tls_session_check_credentials), so a source that refuses the destination's
certificate closes an established session, and the destination, already loading the
stream, fails it ("Cannot read from TLS channel", "load of migration failed") and exits
(seen with real QEMU 7.2). OpenSSL refuses inside the handshake, and asyncio drops the
connection without sending its alert, so the destination only sees the connection lost
in the handshake (:func:`session_lost`): it takes that for the broken session and fails
its incoming migration. Other handshake failures (the destination refusing the
source's certificate, a protocol error) leave it waiting for another connection, as
migration_tls_incoming_handshake does (it only reports the error). The approximation:
a source that drops the connection in the handshake for another reason (killed, or its
credentials missing) also ends the destination's incoming, where QEMU would wait on.

TLS-PSK: Python 3.11's ``ssl`` has none (``SSLContext.set_psk_client_callback`` and
``set_psk_server_callback`` came in Python 3.13), so a migration with tls-creds-psk
fails with :data:`PSK_UNAVAILABLE` instead of faking a handshake or sending cleartext.
"""

from __future__ import annotations

import asyncio
import ssl

from simulator.tls_creds import TlsCreds, TlsError

#: Why the simulator has no TLS-PSK (the catalog's n/a reason for TLS-PSK on it, too).
PSK_REASON = (
    "the simulator's TLS is Python 3.11's ssl module, which has no TLS-PSK "
    "(SSLContext.set_psk_client_callback and set_psk_server_callback came in Python 3.13)"
)
PSK_UNAVAILABLE = f"TLS-PSK is not available: {PSK_REASON}"
#: Wall seconds a handshake may take (QEMU has no limit; a stopped peer must not hang us).
HANDSHAKE_S = 60.0

# OpenSSL verify codes (include/openssl/x509_vfy.h) -> GnuTLS's reason as QEMU prints it
# (crypto/tlssession.c: GNUTLS_CERT_SIGNER_NOT_FOUND, _REVOKED, _INSECURE_ALGORITHM;
# anything else sets GNUTLS_CERT_INVALID: "The certificate is not trusted").
_UNKNOWN_ISSUER = frozenset({2, 18, 19, 20, 21})
_REVOKED = frozenset({23})
_INSECURE = frozenset({66, 67, 68})  # EE/CA key too small, CA digest too weak
_HOSTNAME_MISMATCH = frozenset({62, 64})  # X509_V_ERR_HOSTNAME_MISMATCH, _IP_ADDRESS_


def client_context(creds: TlsCreds) -> ssl.SSLContext:
    if creds.kind == "psk":
        raise TlsError(PSK_UNAVAILABLE)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    _load(ctx, creds, "client")
    if not creds.verify_peer:  # qcrypto_tls_session_check_credentials: "skip"
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    return ctx


def server_context(creds: TlsCreds) -> ssl.SSLContext:
    if creds.kind == "psk":
        raise TlsError(PSK_UNAVAILABLE)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    _load(ctx, creds, "server")
    # crypto/tlssession.c: a server with verify-peer asks for the client's certificate
    # (gnutls_certificate_server_set_request GNUTLS_CERT_REQUIRE)
    ctx.verify_mode = ssl.CERT_REQUIRED if creds.verify_peer else ssl.CERT_NONE
    return ctx


def _load(ctx: ssl.SSLContext, creds: TlsCreds, role: str) -> None:
    """The files as the object loaded them (the object checked they are there)."""
    try:
        ctx.load_verify_locations(creds.path("ca-cert.pem"))
        if creds.has(f"{role}-cert.pem") and creds.has(f"{role}-key.pem"):
            ctx.load_cert_chain(creds.path(f"{role}-cert.pem"), creds.path(f"{role}-key.pem"))
    except (OSError, ssl.SSLError) as exc:
        raise TlsError(f"Cannot load credentials from {creds.dir}: {exc}") from None


async def upgrade_client(writer: asyncio.StreamWriter, creds: TlsCreds, hostname: str) -> None:
    """The source's handshake on an open stream; :class:`TlsError` in QEMU's words."""
    ctx = client_context(creds)
    try:
        await writer.start_tls(ctx, server_hostname=hostname, ssl_handshake_timeout=HANDSHAKE_S)
    except ssl.SSLCertVerificationError as exc:
        raise TlsError(certificate_error(exc, hostname)) from None
    except (ssl.SSLError, OSError, EOFError, TimeoutError) as exc:
        raise TlsError(f"TLS handshake failed: {gnutls_text(exc)}") from None


async def upgrade_server(writer: asyncio.StreamWriter, creds: TlsCreds) -> None:
    """The destination's handshake on an accepted stream; :class:`TlsError` in QEMU's
    words, whose cause is the ssl exception (see :func:`peer_refused_certificate`)."""
    ctx = server_context(creds)
    try:
        await writer.start_tls(ctx, ssl_handshake_timeout=HANDSHAKE_S)
    except ssl.SSLCertVerificationError as exc:
        raise TlsError(certificate_error(exc, None)) from exc
    except (ssl.SSLError, OSError, EOFError, TimeoutError) as exc:
        raise TlsError(f"TLS handshake failed: {gnutls_text(exc)}") from exc


def certificate_error(exc: ssl.SSLCertVerificationError, hostname: str | None) -> str:
    """crypto/tlssession.c qcrypto_tls_session_check_certificate's text for a refused
    peer certificate."""
    code = exc.verify_code
    if code in _HOSTNAME_MISMATCH and hostname is not None:
        return f"Certificate does not match the hostname {hostname}"
    if code in _UNKNOWN_ISSUER:
        return "The certificate hasn't got a known issuer"
    if code in _REVOKED:
        return "The certificate has been revoked"
    if code in _INSECURE:
        return "The certificate uses an insecure algorithm"
    return "The certificate is not trusted"


def gnutls_text(exc: BaseException) -> str:
    """A failed handshake as gnutls_strerror words it."""
    if isinstance(exc, (ssl.SSLEOFError, ConnectionError, EOFError)):
        return "The TLS connection was non-properly terminated."
    reason = getattr(exc, "reason", None) or ""
    if "ALERT" in reason:
        return "A TLS fatal alert has been received."
    if isinstance(exc, TimeoutError):
        return "The operation timed out"
    return str(reason or exc)


def session_lost(exc: BaseException) -> bool:
    """The destination's handshake ended by the source: it dropped the connection (how
    a refusal of our certificate shows through asyncio) or sent a certificate alert."""
    cause = exc.__cause__
    if isinstance(cause, (ConnectionError, EOFError, ssl.SSLEOFError)):
        return True
    reason = str(getattr(cause, "reason", None) or "")
    return (
        isinstance(cause, ssl.SSLError)
        and "ALERT" in reason
        and ("CERTIFICATE" in reason or "UNKNOWN_CA" in reason)
    )


def client_hostname(tls_hostname: str, uri_host: str | None) -> str:
    """migration/tls.c migration_tls_client_create: tls-hostname, else the URI's host."""
    if tls_hostname:
        return tls_hostname
    if not uri_host:
        raise TlsError("No hostname available for TLS")
    return uri_host
