"""TLS migration on the simulator's QEMU profile: credentials objects, the parameters, and
a stream that really goes through TLS (Python's ssl) between two simulator processes."""

from __future__ import annotations

import dataclasses
import socket
from pathlib import Path

import pytest

from harness import migration, workload
from harness.errors import LaunchError
from harness.fixtures import VMFactory, destination
from harness.machine import Machine
from harness.migration import Transport
from harness.spec import TlsCreds, VMSpec
from harness.targets.sim import SimTarget
from harness.tls import Flaw, psk_set, x509_set
from harness.waits import wait_for
from simulator import tls_creds
from simulator.cmdline import CmdlineError, parse
from simulator.migration_io.tls_channel import PSK_REASON, PSK_UNAVAILABLE
from simulator.model.migration.params import MigrationParameters

SPEC = VMSpec(memory_mib=256)
QMP = ["-qmp", "unix:/nonexistent/q.sock,server=on,wait=off"]


def _object(kind: str, folder: Path, endpoint: str) -> list[str]:
    return ["-object", f"tls-creds-{kind},id=tls0,dir={folder},endpoint={endpoint}"]


def test_credentials_load_at_start(tmp_path: Path) -> None:
    """-object tls-creds-x509/psk is loaded when the process starts (crypto/tlscredsx509.c).

    1. Good server and client folders load; their endpoint and verify-peer are read.
    2. An expired server certificate refuses the start, naming the file.
    3. A folder without the CA file: "Unable to access credentials ...".
    4. A PSK client whose username is not in keys.psk is refused; a PSK server loads.
    5. StratoVirt's command line has no TLS objects (the option is not read).
    """
    good = x509_set(tmp_path / "good")
    cfg = parse([*QMP, *_object("x509", good.server, "server"), "-m", "256"])
    (server,) = cfg.tls_creds
    assert (server.kind, server.endpoint, server.verify_peer) == ("x509", "server", True)
    off = parse([*QMP, "-object", f"tls-creds-x509,id=c,dir={good.client},verify-peer=off"])
    assert (off.tls_creds[0].endpoint, off.tls_creds[0].verify_peer) == ("client", False)
    expired = x509_set(tmp_path / "expired", Flaw.EXPIRED)
    with pytest.raises(CmdlineError) as exc:
        parse([*QMP, *_object("x509", expired.server, "server")])
    assert str(exc.value) == f"The server certificate {expired.server}/server-cert.pem has expired"
    missing = r"Unable to access credentials .*/ca-cert\.pem: No such file"
    with pytest.raises(CmdlineError, match=missing):
        parse([*QMP, *_object("x509", tmp_path, "client")])
    psk_server, psk_client = psk_set(tmp_path / "psk")
    with pytest.raises(CmdlineError, match="Username qemu not found in PSK file"):
        parse([*QMP, *_object("psk", psk_client, "client")])
    assert parse([*QMP, *_object("psk", psk_server, "server")]).tls_creds[0].kind == "psk"
    strato = parse(["--profile", "stratovirt-2.5", "-machine", "q35", "-initrd", "x", *QMP,
                    *_object("x509", expired.server, "server")])  # fmt: skip
    assert strato.tls_creds == ()


def test_tls_parameters() -> None:
    """tls-creds, tls-hostname, tls-authz in migrate-set-parameters (qapi/migration.json).

    1. They are "" by default and listed by query-migrate-parameters.
    2. A string sets one, null turns it off again ("").
    3. Another type is refused with the visitor's text for StrOrNull.
    """
    params = MigrationParameters()
    assert {k: params.to_qmp()[k] for k in ("tls-creds", "tls-hostname", "tls-authz")} == {
        "tls-creds": "",
        "tls-hostname": "",
        "tls-authz": "",
    }
    set_ = params.updated({"tls-creds": "tls0", "tls-hostname": "dst"})
    assert (set_.tls_creds, set_.tls_hostname) == ("tls0", "dst")
    assert set_.updated({"tls-creds": None}).tls_creds == ""
    with pytest.raises(ValueError, match="'tls-creds', expected: StrOrNull"):
        params.updated({"tls-creds": 1})


def test_migration_refuses_unknown_or_wrong_credentials(tmp_path: Path) -> None:
    """migration/tls.c migration_tls_get_creds, when the stream starts.

    1. tls-creds naming no object: the migration fails with "No TLS credentials with id".
    2. Client credentials on the destination's side are not used: the source's server
       endpoint is refused ("Expected TLS credentials for a client endpoint").
    """
    creds = x509_set(tmp_path / "tls")
    vms = VMFactory(SimTarget("qemu-7.2"), tmp_path / "logs")
    try:
        src = vms.launch(dataclasses.replace(SPEC, tls=_server(creds.server)), "src")
        for creds_id, text in (
            ("nope", "No TLS credentials with id 'nope'"),
            ("tls0", "Expected TLS credentials for a client endpoint"),
        ):
            # a fresh destination each time: the connection the source drops ends its load
            dst = destination(vms, SPEC, Transport.TCP, name=f"dst-{creds_id}")
            uri = migration.destination_uri(dst, Transport.TCP)
            failed = migration.finish(migration.start(src, uri, {"tls-creds": creds_id}), None, 30)
            assert (failed.status, failed.final.get("error-desc")) == ("failed", text)
    finally:
        vms.close()


def _server(folder: Path) -> TlsCreds:
    return TlsCreds("x509", str(folder), "server")


def _pair(vms: VMFactory, server: TlsCreds, client: TlsCreds) -> tuple[Machine, Machine]:
    src = vms.launch(dataclasses.replace(SPEC, tls=client), "src")
    dst = destination(vms, dataclasses.replace(SPEC, tls=server), Transport.TCP)
    dst.qmp.execute("migrate-set-parameters", {"tls-creds": server.id})
    return src, dst


def _migrate(src: Machine, dst: Machine, hostname: str) -> migration.MigrationResult:
    params = {"tls-creds": "tls0", "tls-hostname": hostname}
    watch = migration.start(src, migration.destination_uri(dst, Transport.TCP), params)
    return migration.finish(watch, dst, timeout=60)


def test_x509_migration_and_refusals(tmp_path: Path) -> None:
    """Two simulator processes migrate over TLS.

    1. With one CA and the right host name the migration completes and the memory the
       destination received is the source's.
    2. A server certificate from another CA: the source's migration fails with GnuTLS's
       "The certificate hasn't got a known issuer"; the destination's incoming fails
       and it exits 1 (as QEMU's load does once its session broke).
    3. A certificate for another name: "Certificate does not match the hostname hvlab-dst".
    """
    vms = VMFactory(SimTarget("qemu-7.2"), tmp_path / "logs")
    try:
        good = x509_set(tmp_path / "good")
        src, dst = _pair(vms, _server(good.server), TlsCreds("x509", str(good.client), "client"))
        digest = workload.write_pattern(src, 16)
        done = _migrate(src, dst, good.hostname)
        assert done.status == "completed" and done.dst_runstate == "running", done.final
        assert workload.read_pattern(dst) == digest
        for flaw, text in (
            (Flaw.OTHER_CA, "The certificate hasn't got a known issuer"),
            (Flaw.WRONG_NAME, "Certificate does not match the hostname hvlab-dst"),
        ):
            bad = x509_set(tmp_path / flaw.value, flaw)
            src, dst = _pair(vms, _server(bad.server), TlsCreds("x509", str(bad.client), "client"))
            result = _migrate(src, dst, bad.hostname)
            assert (result.status, result.final.get("error-desc")) == ("failed", text)
            assert dst.wait_exit(20) == 1
    finally:
        vms.close()


def test_stream_is_tls_and_psk_is_refused(tmp_path: Path) -> None:
    """The bytes on the wire, and PSK credentials.

    1. With tls-creds set, the first bytes the source sends are a TLS handshake record
       (content type 22), not the simulator's cleartext frames.
    2. With tls-creds-psk the migration fails with the reason the simulator has no
       TLS-PSK, and sends nothing to the destination beyond the connect.
    3. object-add creates credentials on a running process; a duplicate id is refused.
    """
    creds = x509_set(tmp_path / "tls")
    vms = VMFactory(SimTarget("qemu-7.2"), tmp_path / "logs")
    try:
        src = vms.launch(SPEC, "src")
        with socket.create_server(("127.0.0.1", 0)) as listener:
            port = listener.getsockname()[1]
            add = {"qom-type": "tls-creds-x509", "id": "tls0", "dir": str(creds.client)}
            src.qmp.execute("object-add", {**add, "endpoint": "client"})
            with pytest.raises(Exception, match="attempt to add duplicate property 'tls0'"):
                src.qmp.execute("object-add", {**add, "endpoint": "client"})
            params = {"tls-creds": "tls0", "tls-hostname": "hvlab-dst"}
            migration.start(src, f"tcp:127.0.0.1:{port}", params)
            conn, _ = listener.accept()
            with conn:
                conn.settimeout(10)
                assert conn.recv(3)[:1] == b"\x16"
            wait_for(lambda: _status(src) == "failed", 30, "the cut handshake to fail")
            _, psk_client = psk_set(tmp_path / "psk")
            src.qmp.execute("object-del", {"id": "tls0"})
            src.qmp.execute(
                "object-add",
                {"qom-type": "tls-creds-psk", "id": "tls0", "dir": str(psk_client),
                 "endpoint": "client", "username": "hvlab"},
            )  # fmt: skip
            migration.start(src, f"tcp:127.0.0.1:{port}", params)
            conn, _ = listener.accept()
            with conn:
                conn.settimeout(10)
                assert conn.recv(64) == b""  # closed without a byte
        wait_for(lambda: _status(src) == "failed", 30, "the PSK migration to fail")
        assert src.qmp.execute("query-migrate")["error-desc"] == PSK_UNAVAILABLE
    finally:
        vms.close()


def _status(vm: Machine) -> str:
    return str(vm.qmp.execute("query-migrate").get("status"))


def test_expired_destination_does_not_start(tmp_path: Path) -> None:
    """The harness sees what the suite sees: LaunchError naming the expiry."""
    creds = x509_set(tmp_path / "tls", Flaw.EXPIRED)
    vms = VMFactory(SimTarget("qemu-7.2"), tmp_path / "logs")
    try:
        with pytest.raises(LaunchError, match="has expired"):
            destination(vms, dataclasses.replace(SPEC, tls=_server(creds.server)), Transport.TCP)
    finally:
        vms.close()


def test_object_props_split_like_keyval() -> None:
    """A doubled comma stays in the value (util/qemu-option.c); a bare key is "on"."""
    assert tls_creds.split_object("tls-creds-x509,id=a,dir=/x,,y,verify-peer") == (
        "tls-creds-x509",
        {"id": "a", "dir": "/x,y", "verify-peer": "on"},
    )


def test_psk_is_na_on_the_simulator_only() -> None:
    """The catalog's sim-qemu refinement.

    1. TLS-PSK is n/a on the simulator's QEMU profiles, with the simulator's reason.
    2. It holds on real QEMU (x86_64 and aarch64), and TLS-X509 holds on the simulator.
    """
    from suites.catalog import Verdict, expectation

    for sim in ("sim:qemu-7.2", "sim:aarch64:qemu-7.2"):
        psk = expectation("TLS-PSK", sim)
        assert (psk.verdict, psk.evidence) == (Verdict.NA, PSK_REASON)
        assert expectation("TLS-X509", sim).verdict is Verdict.HOLDS
    for real in ("qemu-x86_64", "qemu-aarch64"):
        assert expectation("TLS-PSK", real).verdict is Verdict.HOLDS
