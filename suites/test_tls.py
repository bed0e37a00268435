"""TLS migration: credentials made for the test, good ones work, bad ones are refused.

QEMU: ``-object tls-creds-x509`` / ``tls-creds-psk`` on both sides, the ``tls-creds``
migration parameter on both, ``tls-hostname`` on the source (qapi/migration.json;
crypto/tlscredsx509.c, crypto/tlssession.c). A refused handshake fails the migration;
the source runs on with its memory intact and can migrate again.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path

import pytest

from harness import migration
from harness.errors import LaunchError
from harness.fixtures import VMFactory, destination
from harness.machine import Machine
from harness.migration import Transport
from harness.spec import TlsCreds, VMSpec
from harness.tls import Flaw, X509Set, psk_set, x509_set
from harness.workload import read_pattern, write_pattern
from suites.catalog import Expect
from suites.vmpair import survived


def _tls_pair(
    vms: VMFactory, spec: VMSpec, server: TlsCreds, client: TlsCreds
) -> tuple[Machine, Machine]:
    src = vms.launch(dataclasses.replace(spec, tls=client), "src")
    dst = destination(vms, dataclasses.replace(spec, tls=server), Transport.TCP)
    dst.qmp.execute("migrate-set-parameters", {"tls-creds": server.id})
    return src, dst


def _migrate(src: Machine, dst: Machine, hostname: str | None) -> migration.MigrationResult:
    params: dict[str, object] = {"tls-creds": "tls0"}
    if hostname is not None:
        params["tls-hostname"] = hostname
    watch = migration.start(src, migration.destination_uri(dst, Transport.TCP), params)
    return migration.finish(watch, dst, timeout=120)


def _x509_pair(vms: VMFactory, spec: VMSpec, creds: X509Set) -> tuple[Machine, Machine]:
    """A source and a listening destination with the x509 set's client and server."""
    return _tls_pair(
        vms,
        spec,
        TlsCreds("x509", str(creds.server), "server"),
        TlsCreds("x509", str(creds.client), "client"),
    )


@pytest.mark.catalog("TLS-X509")
def test_x509_migration(vms: VMFactory, standard_spec: VMSpec, tmp_path: Path) -> None:
    """Certificates from one CA, the server's for the host name the source asks for.

    1. The migration completes over TLS; the destination runs.
    2. The guest's memory arrives intact.
    """
    creds = x509_set(tmp_path / "tls")
    src, dst = _x509_pair(vms, standard_spec, creds)
    digest = write_pattern(src, 16)
    result = _migrate(src, dst, creds.hostname)
    assert result.status == "completed" and result.dst_runstate == "running", result.final
    assert read_pattern(dst) == digest


@pytest.mark.parametrize("flaw", [Flaw.OTHER_CA, Flaw.WRONG_NAME], ids=lambda f: f.value)
@pytest.mark.catalog("TLS-REFUSED")
def test_x509_handshake_refused(
    vms: VMFactory,
    standard_spec: VMSpec,
    tmp_path: Path,
    flaw: Flaw,
    expect: Callable[[str], Expect],
) -> None:
    """A server certificate from another CA, or for another host name.

    1. The migration fails; query-migrate says why (the catalog's text per flaw).
    2. The source runs on, its memory intact, and a migration without TLS completes.
    """
    creds = x509_set(tmp_path / "tls", flaw)
    src, dst = _x509_pair(vms, standard_spec, creds)
    digest = write_pattern(src, 16)
    result = _migrate(src, dst, creds.hostname)
    assert result.status == "failed", result.final
    assert expect("TLS-REFUSED").value[flaw.value] in result.final.get("error-desc", "")
    src.qmp.execute("migrate-set-parameters", {"tls-creds": ""})
    survived(vms, src, standard_spec, digest)


@pytest.mark.catalog("TLS-EXPIRED")
def test_expired_certificate_is_refused(
    vms: VMFactory, standard_spec: VMSpec, tmp_path: Path, expect: Callable[[str], Expect]
) -> None:
    """The destination's certificate expired yesterday.

    1. The destination will not use it: it refuses to start, naming the expiry.
    2. The source runs on with its memory intact and migrates elsewhere.
    """
    creds = x509_set(tmp_path / "tls", Flaw.EXPIRED)
    src = vms.launch(standard_spec, "src")
    digest = write_pattern(src, 16)
    spec = dataclasses.replace(standard_spec, tls=TlsCreds("x509", str(creds.server), "server"))
    with pytest.raises(LaunchError, match=expect("TLS-EXPIRED").value):
        destination(vms, spec, Transport.TCP)
    survived(vms, src, standard_spec, digest)


@pytest.mark.parametrize("wrong", [False, True], ids=["same-key", "other-key"])
@pytest.mark.catalog("TLS-PSK")
def test_psk_migration(vms: VMFactory, standard_spec: VMSpec, tmp_path: Path, wrong: bool) -> None:
    """Pre-shared keys (tls-creds-psk): the same key on both sides works, another fails.

    1. With the same key the migration completes and the memory arrives intact.
    2. With another key it fails; the source runs on with its memory intact.
    """
    server, client = psk_set(tmp_path / "psk", wrong=wrong)
    src, dst = _tls_pair(
        vms,
        standard_spec,
        TlsCreds("psk", str(server), "server"),
        TlsCreds("psk", str(client), "client", username="hvlab"),
    )
    digest = write_pattern(src, 16)
    result = _migrate(src, dst, None)
    if not wrong:
        assert result.status == "completed", result.final
        assert read_pattern(dst) == digest
        return
    assert result.status == "failed", result.final
    src.qmp.execute("migrate-set-parameters", {"tls-creds": ""})
    survived(vms, src, standard_spec, digest)
