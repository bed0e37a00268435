"""QEMU's TLS credentials objects: ``tls-creds-x509`` and ``tls-creds-psk``.

Created from ``-object TYPE,id=ID,dir=DIR,endpoint=server|client[,verify-peer=on|off]
[,username=NAME]`` or QMP ``object-add``, and loaded at once, as QEMU's ``complete``
hooks do (QEMU 7.2):

- crypto/tlscreds.c ``qcrypto_tls_creds_get_path``: a required file that cannot be
  stat'ed is "Unable to access credentials PATH: STRERROR".
- crypto/tlscredsx509.c ``qcrypto_tls_creds_x509_load``: ``ca-cert.pem`` always; on a
  server ``server-cert.pem`` + ``server-key.pem`` (required), on a client
  ``client-cert.pem`` + ``client-key.pem`` (optional). Its sanity check
  (``qcrypto_tls_creds_x509_sanity_check``) checks the times of the certificate and of the
  CA certificates (``qcrypto_tls_creds_check_cert_times``: "The server certificate PATH
  has expired", ...) and that the certificate was issued by one of the CAs
  (``qcrypto_tls_creds_check_cert_pair``). Basic constraints, key usage and key purpose
  are not checked here.
- crypto/tlscredspsk.c ``qcrypto_tls_creds_psk_load``: ``keys.psk`` (required); a server
  takes no username; a client looks its username (default "qemu") up in the file.

Failing to load is an error in QEMU's words (:class:`TlsError`): on the command line
the process does not start, over QMP ``object-add`` answers it.
"""

from __future__ import annotations

import datetime
import os
from collections.abc import Container, Mapping
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature

#: The QOM types and the kind of credentials each one is.
TYPES = {"tls-creds-x509": "x509", "tls-creds-psk": "psk"}
ENDPOINTS = ("client", "server")
#: Properties each type takes (crypto/tlscreds.c, tlscredsx509.c, tlscredspsk.c).
_PROPS = {
    "x509": frozenset({"dir", "endpoint", "verify-peer", "priority", "sanity-check", "passwordid"}),
    "psk": frozenset({"dir", "endpoint", "verify-peer", "priority", "username"}),
}
_BOOLS = {"on": True, "yes": True, "true": True, "off": False, "no": False, "false": False}


class TlsError(Exception):
    """Credentials QEMU refuses, in its words."""


@dataclass(frozen=True)
class TlsCreds:
    """One loaded credentials object."""

    id: str
    kind: str  # "x509" | "psk"
    dir: str
    endpoint: str  # "client" | "server"
    verify_peer: bool = True  # crypto/tlscreds.c instance_init: on unless told otherwise
    username: str | None = None  # psk client: the key's name in keys.psk

    def path(self, name: str) -> str:
        return f"{self.dir}/{name}"

    def has(self, name: str) -> bool:
        return os.path.exists(self.path(name))


def split_object(text: str) -> tuple[str, dict[str, str]]:
    """``TYPE,key=value,...`` as QEMU's keyval parser reads it (a doubled comma is a comma
    inside a value, util/qemu-option.c get_opt_value)."""
    parts: list[str] = []
    cur, i = "", 0
    while i < len(text):
        if text[i] == ",":
            if text[i + 1 : i + 2] == ",":
                cur, i = cur + ",", i + 2
                continue
            parts.append(cur)
            cur = ""
        else:
            cur += text[i]
        i += 1
    parts.append(cur)
    qom_type, props = parts[0], {}
    for part in parts[1:]:
        key, eq, value = part.partition("=")
        props[key] = value if eq else "on"
    if "qom-type" in props:
        qom_type = props.pop("qom-type")
    return qom_type, props


def create(
    qom_type: str, props: Mapping[str, object], cmdline: bool, taken: Container[str] = ()
) -> TlsCreds:
    """A credentials object from its properties (strings on the command line, JSON values
    over QMP), loaded; :class:`TlsError` with QEMU's text when refused. ``taken``: the
    ids of objects that exist already (qom/object_interfaces.c user_creatable_add_type
    adds the object under /objects before it completes, i.e. loads, it)."""
    kind = TYPES[qom_type]
    oid = props.get("id")
    if not isinstance(oid, str) or not oid:
        raise TlsError("Parameter 'id' is missing")
    for key in props:  # the QAPI visitor of ObjectOptions (qapi/qom.json), both ways
        if key != "id" and key not in _PROPS[kind]:
            raise TlsError(f"Parameter '{key}' is unexpected")
    endpoint = _string(props, "endpoint", "client")
    if endpoint not in ENDPOINTS:
        raise TlsError(f"Parameter 'endpoint' does not accept value '{endpoint}'")
    verify = props.get("verify-peer", True)
    if cmdline and isinstance(verify, str):  # qapi/qobject-input-visitor.c, keyval bools
        if verify not in _BOOLS:
            raise TlsError("Parameter 'verify-peer' expects 'on' or 'off'")
        verify = _BOOLS[verify]
    if not isinstance(verify, bool):
        raise TlsError("Invalid parameter type for 'verify-peer', expected: boolean")
    username = props.get("username")
    creds = TlsCreds(
        oid,
        kind,
        _string(props, "dir", ""),
        endpoint,
        verify,
        username if isinstance(username, str) else None,
    )
    if creds.id in taken:
        raise TlsError(duplicate(creds.id))
    (_load_x509 if kind == "x509" else _load_psk)(creds)
    return creds


def _string(props: Mapping[str, object], key: str, default: str) -> str:
    value = props.get(key, default)
    if not isinstance(value, str):
        raise TlsError(f"Invalid parameter type for '{key}', expected: string")
    return value


def _get_path(creds: TlsCreds, name: str, required: bool) -> str | None:
    """crypto/tlscreds.c qcrypto_tls_creds_get_path."""
    if not creds.dir:
        if required:
            raise TlsError("Missing 'dir' property value")
        return None
    path = creds.path(name)
    try:
        os.stat(path)
    except OSError as exc:
        if isinstance(exc, FileNotFoundError) and not required:
            return None
        raise TlsError(f"Unable to access credentials {path}: {exc.strerror}") from None
    return path


def _load_x509(creds: TlsCreds) -> None:
    server = creds.endpoint == "server"
    cacert = _get_path(creds, "ca-cert.pem", True)
    if server:
        cert = _get_path(creds, "server-cert.pem", True)
        _get_path(creds, "server-key.pem", True)
    else:
        cert = _get_path(creds, "client-cert.pem", False)
        _get_path(creds, "client-key.pem", False)
    assert cacert is not None
    _sanity_check(server, cacert, cert)


def _read_certs(path: str, server: bool, ca: bool) -> list[x509.Certificate]:
    """crypto/tlscredsx509.c qcrypto_tls_creds_load_cert(_list)."""
    try:
        return x509.load_pem_x509_certificates(Path(path).read_bytes())
    except OSError as exc:
        raise TlsError(f"Cannot load CA cert list {path}: {exc.strerror}") from None
    except ValueError:
        what = "CA certificate list" if ca else f"{'server' if server else 'client'} certificate"
        raise TlsError(f"Unable to import {what} {path}") from None


def _sanity_check(server: bool, cacert: str, cert_path: str | None) -> None:
    """qcrypto_tls_creds_x509_sanity_check: times of the certificate and the CAs, then the
    certificate against the CAs."""
    certs = _read_certs(cert_path, server, False) if cert_path else []
    cas = _read_certs(cacert, server, True) if os.access(cacert, os.R_OK) else []
    for i, cert in enumerate(certs):
        _check_times(cert, str(cert_path), server, i != 0)
    for ca in cas:
        _check_times(ca, cacert, server, True)
    if certs and cas and not any(_issued_by(certs[0], ca) for ca in cas):
        raise TlsError(
            f"Our own certificate {cert_path} failed validation against {cacert}: "
            "The certificate hasn't got a known issuer"
        )


def _issued_by(cert: x509.Certificate, ca: x509.Certificate) -> bool:
    try:
        cert.verify_directly_issued_by(ca)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


def _check_times(cert: x509.Certificate, path: str, server: bool, ca: bool) -> None:
    """crypto/tlscredsx509.c qcrypto_tls_creds_check_cert_times."""
    who = "CA" if ca else ("server" if server else "client")
    now = datetime.datetime.now(datetime.UTC)
    if cert.not_valid_after_utc < now:
        raise TlsError(f"The {who} certificate {path} has expired")
    if cert.not_valid_before_utc > now:
        raise TlsError(f"The {who} certificate {path} is not yet active")


def _load_psk(creds: TlsCreds) -> None:
    if creds.endpoint == "server":
        if creds.username is not None:
            raise TlsError("username should not be set when endpoint=server")
        _get_path(creds, "keys.psk", True)
        return
    pskfile = _get_path(creds, "keys.psk", True)
    assert pskfile is not None
    psk_key(pskfile, creds.username or "qemu")


def psk_key(pskfile: str, username: str) -> str:
    """tlscredspsk.c lookup_key: the hex key of ``username`` in the PSK file."""
    try:
        content = Path(pskfile).read_text()
    except OSError as exc:
        raise TlsError(f"Cannot read PSK file {pskfile}: {exc.strerror}") from None
    for line in content.split("\n"):
        if line.startswith(f"{username}:"):
            return line[len(username) + 1 :]
    raise TlsError(f"Username {username} not found in PSK file {pskfile}")


def for_migration(objects: Mapping[str, TlsCreds], creds_id: str, endpoint: str) -> TlsCreds:
    """migration/tls.c migration_tls_get_creds: the object named by tls-creds, for this
    end of the stream (crypto/tlscreds.c qcrypto_tls_creds_check_endpoint)."""
    creds = objects.get(creds_id)
    if creds is None:
        raise TlsError(f"No TLS credentials with id '{creds_id}'")
    if creds.endpoint != endpoint:
        raise TlsError(f"Expected TLS credentials for a {endpoint} endpoint")
    return creds


def from_cmdline(texts: list[str]) -> tuple[TlsCreds, ...]:
    """The credentials among ``-object`` options (other types are not modelled)."""
    out: dict[str, TlsCreds] = {}
    for text in texts:
        qom_type, props = split_object(text)
        if qom_type not in TYPES:
            continue
        creds = create(qom_type, props, cmdline=True, taken=out)
        out[creds.id] = creds
    return tuple(out.values())


def duplicate(oid: str) -> str:
    """qom/object.c object_property_try_add under /objects."""
    return f"attempt to add duplicate property '{oid}' to object (type 'container')"


def object_add(objects: dict[str, TlsCreds], args: Mapping[str, object]) -> str | None:
    """QMP ``object-add`` of a credentials object: None when added, else the error text."""
    props = {k: v for k, v in args.items() if k != "qom-type"}
    try:
        creds = create(str(args["qom-type"]), props, cmdline=False, taken=objects)
    except TlsError as exc:
        return str(exc)
    objects[creds.id] = creds
    return None
