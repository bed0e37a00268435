"""Credentials for TLS migration, generated for a test (``cryptography``).

QEMU's ``tls-creds-x509`` object reads a folder (crypto/tlscredsx509.c): ``ca-cert.pem``
always, ``server-cert.pem`` + ``server-key.pem`` on the listening side,
``client-cert.pem`` + ``client-key.pem`` on the connecting side. ``tls-creds-psk``
reads ``keys.psk`` (``username:hexkey`` lines, crypto/tlscredspsk.c). Kinds of bad
credentials the tests use: a server certificate from another CA, an expired one, and
one for another host name. Key files are 0600 in 0700 folders.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
import secrets
from dataclasses import dataclass
from enum import Enum
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


class Flaw(Enum):
    NONE = "none"
    OTHER_CA = "other-ca"  # the server's certificate is signed by a CA the client does not trust
    EXPIRED = "expired"  # the server's certificate expired yesterday
    WRONG_NAME = "wrong-name"  # issued for another host name than tls-hostname


@dataclass(frozen=True)
class X509Set:
    server: Path  # folder for the destination (endpoint=server)
    client: Path  # folder for the source (endpoint=client)
    hostname: str  # what the source must ask for (tls-hostname)


def _write(path: Path, data: bytes, mode: int = 0o600) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "wb") as out:
        out.write(data)


def _key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _pem_key(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )


def _cert(
    subject: str,
    key: ec.EllipticCurvePrivateKey,
    issuer: tuple[str, ec.EllipticCurvePrivateKey] | None,
    ca: bool = False,
    names: tuple[str, ...] = (),
    expired: bool = False,
    client: bool = False,
) -> x509.Certificate:
    now = datetime.datetime.now(datetime.UTC)
    start, end = (
        (now - datetime.timedelta(days=30), now - datetime.timedelta(days=1))
        if expired
        else (
            now - datetime.timedelta(hours=1),
            now + datetime.timedelta(days=2),
        )
    )
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)])
    issuer_name = (
        x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer[0])]) if issuer else name
    )
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(issuer_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if ca:
        builder = builder.add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False),
            critical=True,
        )
    else:
        usage = (
            x509.oid.ExtendedKeyUsageOID.CLIENT_AUTH
            if client
            else x509.oid.ExtendedKeyUsageOID.SERVER_AUTH
        )
        builder = builder.add_extension(
            x509.KeyUsage(True, False, True, False, False, False, False, False, False),
            critical=True,
        ).add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        if names:
            builder = builder.add_extension(
                x509.SubjectAlternativeName([_san(n) for n in names]), critical=False
            )
    return builder.sign(issuer[1] if issuer else key, hashes.SHA256())


def _san(name: str) -> x509.GeneralName:
    """An IP address or a DNS name, as the peer will be asked for it."""
    try:
        return x509.IPAddress(ipaddress.ip_address(name))
    except ValueError:
        return x509.DNSName(name)


def _name(common: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common)])


def _pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def x509_set(folder: Path, flaw: Flaw = Flaw.NONE, hostname: str = "hvlab-dst") -> X509Set:
    """Server and client folders for one migration; ``flaw`` spoils the server's side."""
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    server, client = folder / "server", folder / "client"
    for f in (server, client):
        f.mkdir(mode=0o700, exist_ok=True)
    ca_key, other_key = _key(), _key()
    ca = _cert("hvlab test CA", ca_key, None, ca=True)
    other = _cert("hvlab other CA", other_key, None, ca=True)
    signer = ("hvlab other CA", other_key) if flaw is Flaw.OTHER_CA else ("hvlab test CA", ca_key)
    server_key, client_key = _key(), _key()
    name = "somebody-else" if flaw is Flaw.WRONG_NAME else hostname
    server_cert = _cert(name, server_key, signer, names=(name,), expired=flaw is Flaw.EXPIRED)
    client_cert = _cert("hvlab-src", client_key, ("hvlab test CA", ca_key), client=True)
    # the server trusts the test CA (it verifies the client); the client trusts it too,
    # so only what is wrong with the server's certificate decides
    for f in (server, client):
        _write(f / "ca-cert.pem", _pem(ca) + (_pem(other) if f is server else b""), 0o644)
    _write(server / "server-cert.pem", _pem(server_cert), 0o644)
    _write(server / "server-key.pem", _pem_key(server_key))
    _write(client / "client-cert.pem", _pem(client_cert), 0o644)
    _write(client / "client-key.pem", _pem_key(client_key))
    return X509Set(server, client, hostname)


def psk_set(folder: Path, username: str = "hvlab", wrong: bool = False) -> tuple[Path, Path]:
    """(server folder, client folder) with keys.psk; ``wrong``: the client's key differs."""
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    server, client = folder / "psk-server", folder / "psk-client"
    key = secrets.token_hex(32)
    for f, k in ((server, key), (client, secrets.token_hex(32) if wrong else key)):
        f.mkdir(mode=0o700, exist_ok=True)
        _write(f / "keys.psk", f"{username}:{k}\n".encode())
    return server, client


def x509_folder(folder: Path, names: tuple[str, ...]) -> None:
    """CA, server and client credentials all in one folder (what libvirt's
    ``migrate_tls_x509_cert_dir`` holds for both roles); the certificates name ``names``
    (DNS names or IP addresses), the first one as their subject."""
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    ca_key = _key()
    ca = _cert("hvlab test CA", ca_key, None, ca=True)
    _write(folder / "ca-cert.pem", _pem(ca), 0o600)
    for role in ("server", "client"):
        key = _key()
        cert = _cert(names[0], key, ("hvlab test CA", ca_key), names=names, client=role == "client")
        _write(folder / f"{role}-cert.pem", _pem(cert), 0o600)
        _write(folder / f"{role}-key.pem", _pem_key(key))
