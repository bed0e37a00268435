"""Migration TLS credentials for the private libvirtd pair (a throw-away CA).

QEMU's ``tls-creds-x509`` object reads ``ca-cert.pem``, ``server-cert.pem``,
``server-key.pem``, ``client-cert.pem`` and ``client-key.pem`` from libvirt's
``migrate_tls_x509_cert_dir``; the destination checks the client certificate and the
source checks that the server certificate names the host it connects to (the
migration URI's host, or VIR_MIGRATE_PARAM_TLS_DESTINATION). The server certificate
names :data:`simulator.libvirt.scenario.CERT_NAMES` (this machine, ``localhost``,
127.0.0.1).
"""

from __future__ import annotations

import datetime
import ipaddress
import os
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from simulator.libvirt.scenario import CERT_NAMES

FILES = ("ca-cert.pem", "server-cert.pem", "server-key.pem", "client-cert.pem", "client-key.pem")


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _san(name: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(name))
    except ValueError:
        return x509.DNSName(name)


def _pem_key(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def write_credentials(folder: Path) -> None:
    """A CA plus server and client certificates in ``folder`` (files 0600)."""
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (
        x509.CertificateBuilder()
        .subject_name(_name("hvlab test CA"))
        .issuer_name(_name("hvlab test CA"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False),
            critical=True,
        )
        .sign(ca_key, hashes.SHA256())
    )
    host = CERT_NAMES[0]
    out = {"ca-cert.pem": ca.public_bytes(serialization.Encoding.PEM)}
    for role, usage in (
        ("server", ExtendedKeyUsageOID.SERVER_AUTH),
        ("client", ExtendedKeyUsageOID.CLIENT_AUTH),
    ):
        key = ec.generate_private_key(ec.SECP256R1())
        cert = (
            x509.CertificateBuilder()
            .subject_name(_name(host))
            .issuer_name(ca.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=30))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(True, False, True, False, False, False, False, False, False),
                critical=True,
            )
            .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
            .add_extension(
                x509.SubjectAlternativeName([_san(name) for name in CERT_NAMES]),
                critical=False,
            )
            .sign(ca_key, hashes.SHA256())
        )
        out[f"{role}-cert.pem"] = cert.public_bytes(serialization.Encoding.PEM)
        out[f"{role}-key.pem"] = _pem_key(key)
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    for name, data in out.items():
        path = folder / name
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
