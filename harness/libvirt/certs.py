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

from pathlib import Path

from harness.tls import x509_folder
from simulator.libvirt.scenario import CERT_NAMES

FILES = ("ca-cert.pem", "server-cert.pem", "server-key.pem", "client-cert.pem", "client-key.pem")


def write_credentials(folder: Path) -> None:
    """A CA plus server and client certificates in ``folder`` (files 0600)."""
    x509_folder(folder, CERT_NAMES)
