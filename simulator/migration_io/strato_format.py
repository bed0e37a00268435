"""StratoVirt's migration header and device-state layout, byte for byte.

migration/src/general.rs ``save_header``: a 4096-byte block; bytes 0-8 hold the
little-endian length of the serde_json text of ``MigrationHeader``
(migration/src/protocol.rs), then that text, then zeros. The header opens both snapshot
files and the State part of a live migration stream (``send_vmstate`` ->
``save_vmstate``), where ``desc_len`` bytes of ``DeviceStateDesc`` JSON follow and then,
per device, an ``Instance {name: u64, object: u64, size: u64}`` and ``size`` state bytes
(migration/src/manager.rs).

The simulator's guest state is one instance: a JSON object under the name
``hvlab-guest``.
"""

from __future__ import annotations

import hashlib
import json
import struct
from typing import Any

from simulator.model.host import Arch, Host

HEADER_LENGTH = 4096
#: protocol.rs MAGIC_NUMBER: "STRATOVIRT" and six NULs.
MAGIC = list(b"STRATOVIRT" + bytes(6))
#: protocol.rs CURRENT_VERSION = (MAJOR_VERSION 2 << 12) | MINOR_VERSION 2.
CURRENT_VERSION = (2 << 12) | 2
_ARCH = {Arch.X86_64: list(b"x86_6400"), Arch.AARCH64: list(b"aarch640")}
_OS_TYPE = list(b"linux000")
#: general.rs desc_len of a MemoryFull header: two host pages minus the header.
MEMORY_DESC_LEN = 2 * 4096 - HEADER_LENGTH
_INSTANCE = struct.Struct("<QQQ")
INSTANCE_LEN = _INSTANCE.size
_STATE_NAME = "hvlab-guest"


class HeaderError(ValueError):
    """A header this build refuses; ``str()`` is StratoVirt's text."""


def _cpu_model(vendor: str) -> list[int]:
    """protocol.rs cpu_model: the 12-byte CPUID vendor string, zero-padded to 16."""
    return list(vendor.encode()[:12].ljust(16, b"\0"))


def header(host: Host, fmt: str, desc_len: int) -> bytes:
    """The 4096-byte header block of a ``fmt`` ("Device" | "MemoryFull") file or stream."""
    fields: dict[str, Any] = {
        "magic_num": MAGIC,
        "compat_version": CURRENT_VERSION,
        "arch": _ARCH[host.arch],
        "byte_order": "Little",
        "hypervisor_version": host.kvm_api_version,
    }
    if host.arch is Arch.X86_64:  # #[cfg(target_arch = "x86_64")] cpu_model
        fields["cpu_model"] = _cpu_model(host.cpu_vendor)
    fields.update({"os_type": _OS_TYPE, "format": fmt, "desc_len": desc_len})
    text = json.dumps(fields, separators=(",", ":")).encode()
    return (struct.pack("<Q", len(text)) + text).ljust(HEADER_LENGTH, b"\0")


def parse_header(block: bytes) -> dict[str, Any]:
    """general.rs restore_header: the header's fields from its 4096-byte block."""
    if len(block) < HEADER_LENGTH:
        raise HeaderError("Can't restore structure from raw slice: migration header too short")
    (n,) = struct.unpack("<Q", block[:8])
    if n > HEADER_LENGTH - 8:
        raise HeaderError(
            "Can't restore structure from raw slice: migration header length too large"
        )
    try:
        fields = json.loads(block[8 : 8 + n])
    except ValueError:
        fields = None
    if not isinstance(fields, dict):
        raise HeaderError("Can't restore structure from raw slice: Invalid migration header")
    return fields


def check_header(fields: dict[str, Any], host: Host) -> None:
    """protocol.rs MigrationHeader::check_header against this host and build."""

    def not_fit(item: str) -> HeaderError:
        return HeaderError(f"{item} for snapshot file / migration stream is not fit")

    if fields.get("magic_num") != MAGIC:
        raise not_fit("Magic_number")
    version = int(fields.get("compat_version", 0))
    if version > CURRENT_VERSION:
        raise HeaderError(
            f"Migration compat_version {version} higher than current version {CURRENT_VERSION}"
        )
    if fields.get("arch") != _ARCH[host.arch]:
        raise not_fit("Arch")
    if fields.get("byte_order") != "Little":
        raise not_fit("Byte order")
    if host.arch is Arch.X86_64 and fields.get("cpu_model") != _cpu_model(host.cpu_vendor):
        raise not_fit("Cpu model")
    if fields.get("os_type") != _OS_TYPE:
        raise not_fit("Os type")
    if host.kvm_api_version < int(fields.get("hypervisor_version", 0)):
        raise not_fit("Hypervisor version")
    if int(fields.get("desc_len", 0)) > 1 << 20:
        raise not_fit("Desc length")


def _instance_name(name: str) -> int:
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "little")


def vmstate(host: Host, state: dict[str, Any]) -> bytes:
    """snapshot.rs save_vmstate: Device header, the descriptor, one instance of state."""
    body = json.dumps(state, separators=(",", ":")).encode()
    desc = json.dumps(
        {
            "name": _STATE_NAME,
            "alias": 0,
            "size": len(body),
            "current_version": 1,
            "compat_version": 1,
            "fields": [],
        },
        separators=(",", ":"),
    ).encode()
    instance = _INSTANCE.pack(_instance_name(_STATE_NAME), 0, len(body))
    return header(host, "Device", len(desc)) + desc + instance + body


def instance_size(head: bytes) -> int:
    """The state size an ``Instance`` header (:data:`INSTANCE_LEN` bytes) announces."""
    _, _, size = _INSTANCE.unpack(head)
    return int(size)


def split_vmstate(data: bytes, host: Host) -> dict[str, Any]:
    """The state object of a :func:`vmstate` blob, checked as restore_header/check_header do."""
    fields = parse_header(data[:HEADER_LENGTH])
    check_header(fields, host)
    if fields.get("format") != "Device":
        raise HeaderError("Invalid device state snapshot file")
    at = HEADER_LENGTH + int(fields["desc_len"])
    size = instance_size(data[at : at + INSTANCE_LEN])
    body = data[at + INSTANCE_LEN : at + INSTANCE_LEN + size]
    state = json.loads(body)
    if not isinstance(state, dict):
        raise HeaderError("Invalid device state snapshot file")
    return state
