"""migrate-set-parameters as QEMU 7.2 takes it: the QAPI visitor, then the checks.

qapi/migration.json ``MigrateSetParameters`` gives each member's type, in the order the
generated visitor reads them (qapi/qobject-input-visitor.c): ``size``/``uint64`` take
any JSON integer (a negative one wraps, "for backward compatibility"), ``uint8`` and
``uint32`` are range-checked after that (qapi/qapi-visit-core.c visit_type_uintN);
members nobody visited are refused at the end ("is unexpected"). Then
migration/migration.c migrate_params_test_apply merges the values into the current
ones and migrate_params_check tests the merged set, in its order and words.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from simulator.model.units import PAGE_SIZE

U64 = 1 << 64

#: (member, QAPI type) in MigrateSetParameters' order
MEMBERS: tuple[tuple[str, str], ...] = (
    ("announce-initial", "size"),
    ("announce-max", "size"),
    ("announce-rounds", "size"),
    ("announce-step", "size"),
    ("compress-level", "uint8"),
    ("compress-threads", "uint8"),
    ("compress-wait-thread", "bool"),
    ("decompress-threads", "uint8"),
    ("throttle-trigger-threshold", "uint8"),
    ("cpu-throttle-initial", "uint8"),
    ("cpu-throttle-increment", "uint8"),
    ("cpu-throttle-tailslow", "bool"),
    ("tls-creds", "StrOrNull"),
    ("tls-hostname", "StrOrNull"),
    ("tls-authz", "StrOrNull"),
    ("max-bandwidth", "size"),
    ("downtime-limit", "uint64"),
    ("x-checkpoint-delay", "uint32"),
    ("block-incremental", "bool"),
    ("multifd-channels", "uint8"),
    ("xbzrle-cache-size", "size"),
    ("max-postcopy-bandwidth", "size"),
    ("max-cpu-throttle", "uint8"),
    ("multifd-compression", "MultiFDCompression"),
    ("multifd-zlib-level", "uint8"),
    ("multifd-zstd-level", "uint8"),
    ("block-bitmap-mapping", "list"),
)
_LIMITS = {"uint8": ((1 << 8) - 1, "uint8_t"), "uint32": ((1 << 32) - 1, "uint32_t")}
COMPRESSIONS = ("none", "zlib", "zstd")


def _visit(name: str, kind: str, value: Any) -> Any:
    """One member through the input visitor; ValueError with QEMU's text."""
    if kind in ("size", "uint64", "uint8", "uint32"):
        if isinstance(value, bool) or not isinstance(value, int) or not -(1 << 63) <= value < U64:
            raise ValueError(f"Parameter '{name}' expects uint64")
        value %= U64
        limit = _LIMITS.get(kind)
        if limit is not None and value > limit[0]:
            raise ValueError(f"Parameter '{name}' expects {limit[1]}")
        return value
    if kind == "bool":
        if not isinstance(value, bool):
            raise ValueError(f"Invalid parameter type for '{name}', expected: boolean")
        return value
    if kind == "StrOrNull":
        if value is not None and not isinstance(value, str):
            raise ValueError(f"Invalid parameter type for '{name}', expected: StrOrNull")
        return value or ""
    if kind == "MultiFDCompression":
        if not isinstance(value, str):
            raise ValueError(f"Invalid parameter type for '{name}', expected: string")
        if value not in COMPRESSIONS:
            raise ValueError(f"Parameter '{name}' does not accept value '{value}'")
        return value
    if not isinstance(value, list):
        raise ValueError(f"Invalid parameter type for '{name}', expected: array")
    return value


def visit(args: Mapping[str, Any]) -> dict[str, Any]:
    """The arguments as the visitor reads them (member -> value), or ValueError."""
    out: dict[str, Any] = {}
    for name, kind in MEMBERS:
        if name in args:
            out[name] = _visit(name, kind, args[name])
    for name in args:
        if name not in out:
            raise ValueError(f"Parameter '{name}' is unexpected")
    return out


def _range(name: str, what: str) -> ValueError:
    return ValueError(f"Parameter '{name}' expects {what}")


def check(p: Mapping[str, Any]) -> None:
    """migrate_params_check on the merged parameters (member -> value)."""
    if p["compress-level"] > 9:
        raise _range("compress_level", "a value between 0 and 9")
    if p["compress-threads"] < 1:
        raise _range("compress_threads", "a value between 1 and 255")
    if p["decompress-threads"] < 1:
        raise _range("decompress_threads", "a value between 1 and 255")
    if not 1 <= p["throttle-trigger-threshold"] <= 100:
        raise _range("throttle_trigger_threshold", "an integer in the range of 1 to 100")
    if not 1 <= p["cpu-throttle-initial"] <= 99:
        raise _range("cpu_throttle_initial", "an integer in the range of 1 to 99")
    if not 1 <= p["cpu-throttle-increment"] <= 99:
        raise _range("cpu_throttle_increment", "an integer in the range of 1 to 99")
    # max_bandwidth > SIZE_MAX cannot happen on a 64-bit host
    if p["downtime-limit"] > 2000 * 1000:
        raise _range("downtime_limit", "an integer in the range of 0 to (2000 * 1000) ms")
    if p["multifd-channels"] < 1:
        raise _range("multifd_channels", "a value between 1 and 255")
    if p["multifd-zlib-level"] > 9:
        raise _range("multifd_zlib_level", "a value between 0 and 9")
    if p["multifd-zstd-level"] > 20:
        raise _range("multifd_zstd_level", "a value between 0 and 20")
    size = p["xbzrle-cache-size"]
    if size < PAGE_SIZE or size & (size - 1):
        raise _range("xbzrle_cache_size", "a power of two no less than the target page size")
    if not p["cpu-throttle-initial"] <= p["max-cpu-throttle"] <= 99:
        raise _range("max_cpu_throttle", "an integer in the range of cpu_throttle_initial to 99")
    if p["announce-initial"] > 100000:
        raise _range("announce_initial", "a value between 0 and 100000")
    if p["announce-max"] > 100000:
        raise _range("announce_max", "a value between 0 and 100000")
    if p["announce-rounds"] > 1000:
        raise _range("announce_rounds", "a value between 0 and 1000")
    if not 1 <= p["announce-step"] <= 10000:
        raise _range("announce_step", "a value between 0 and 10000")
