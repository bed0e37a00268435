"""QEMU migration parameters and capabilities (qapi/migration.json, 7.2 defaults)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from enum import Enum
from typing import Any

from simulator.model.units import DEFAULT_DOWNTIME_LIMIT_MS, MAX_THROTTLE, MiB


class Capability(Enum):
    """MigrationCapability names accepted by migrate-set-capabilities."""

    XBZRLE = "xbzrle"
    RDMA_PIN_ALL = "rdma-pin-all"
    AUTO_CONVERGE = "auto-converge"
    ZERO_BLOCKS = "zero-blocks"
    COMPRESS = "compress"
    EVENTS = "events"
    POSTCOPY_RAM = "postcopy-ram"
    X_COLO = "x-colo"
    RELEASE_RAM = "release-ram"
    BLOCK = "block"
    RETURN_PATH = "return-path"
    PAUSE_BEFORE_SWITCHOVER = "pause-before-switchover"
    MULTIFD = "multifd"
    DIRTY_BITMAPS = "dirty-bitmaps"
    POSTCOPY_BLOCKTIME = "postcopy-blocktime"
    LATE_BLOCK_ACTIVATE = "late-block-activate"
    X_IGNORE_SHARED = "x-ignore-shared"
    VALIDATE_UUID = "validate-uuid"
    BACKGROUND_SNAPSHOT = "background-snapshot"
    ZERO_COPY_SEND = "zero-copy-send"
    POSTCOPY_PREEMPT = "postcopy-preempt"


#: The parameters whose type is StrOrNull in MigrateSetParameters (qapi/migration.json).
_STR_OR_NULL = frozenset({"tls-creds", "tls-hostname", "tls-authz"})


class MultiFDCompression(Enum):
    NONE = "none"
    ZLIB = "zlib"
    ZSTD = "zstd"


@dataclass(frozen=True)
class MigrationParameters:
    """The parameters the engine uses; field names are the QMP names with ``_``."""

    max_bandwidth: int = MAX_THROTTLE
    downtime_limit: int = DEFAULT_DOWNTIME_LIMIT_MS
    throttle_trigger_threshold: int = 50
    cpu_throttle_initial: int = 20
    cpu_throttle_increment: int = 10
    cpu_throttle_tailslow: bool = False
    max_cpu_throttle: int = 99
    xbzrle_cache_size: int = 64 * MiB
    multifd_channels: int = 2
    multifd_compression: MultiFDCompression = MultiFDCompression.NONE
    max_postcopy_bandwidth: int = 0
    compress_level: int = 1
    compress_threads: int = 8
    decompress_threads: int = 2
    announce_initial: int = 50
    announce_max: int = 550
    announce_rounds: int = 5
    announce_step: int = 100
    # StrOrNull in MigrateSetParameters (null or "" turns TLS off); migration/tls.c
    # resolves tls-creds when a stream starts, not when it is set
    tls_creds: str = ""
    tls_hostname: str = ""
    tls_authz: str = ""

    def to_qmp(self) -> dict[str, Any]:
        """query-migrate-parameters ``return`` value."""
        out: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            out[f.name.replace("_", "-")] = v.value if isinstance(v, Enum) else v
        return out

    def updated(self, args: dict[str, Any]) -> MigrationParameters:
        """Apply migrate-set-parameters arguments; ValueError with QEMU's text if invalid."""
        known = {f.name.replace("_", "-"): f for f in dataclasses.fields(self)}
        changes: dict[str, Any] = {}
        for key, value in args.items():
            f = known.get(key)
            if f is None:
                raise ValueError(f"Parameter '{key}' is unexpected")
            if key == "multifd-compression":
                changes[f.name] = MultiFDCompression(value)
            elif key in _STR_OR_NULL:
                # qmp_migrate_set_parameters: "TODO Rewrite "" to null instead"
                if value is not None and not isinstance(value, str):
                    raise ValueError(f"Invalid parameter type for '{key}', expected: StrOrNull")
                changes[f.name] = value or ""
            elif isinstance(getattr(self, f.name), bool):
                if not isinstance(value, bool):
                    raise ValueError(f"Invalid parameter type for '{key}', expected: boolean")
                changes[f.name] = value
            else:
                if not isinstance(value, int) or isinstance(value, bool):
                    raise ValueError(f"Invalid parameter type for '{key}', expected: integer")
                changes[f.name] = value
        new = dataclasses.replace(self, **changes)
        new.check()
        return new

    def check(self) -> None:
        """migration.c ``migrate_params_check`` (the subset the model uses)."""
        if not 1 <= self.cpu_throttle_initial <= 99:
            raise ValueError(
                "Parameter 'cpu_throttle_initial' expects an integer in the range of 1 to 99"
            )
        if not 1 <= self.cpu_throttle_increment <= 99:
            raise ValueError(
                "Parameter 'cpu_throttle_increment' expects an integer in the range of 1 to 99"
            )
        if not 1 <= self.max_cpu_throttle <= 99:
            raise ValueError(
                "Parameter 'max_cpu_throttle' expects an integer in the range of 1 to 99"
            )
        if not 1 <= self.throttle_trigger_threshold <= 100:
            raise ValueError(
                "Parameter 'throttle_trigger_threshold' expects an integer in the range of 1 to 100"
            )
        if self.downtime_limit < 0 or self.downtime_limit > 2_000_000:
            raise ValueError(
                "Parameter 'downtime_limit' expects an integer in the range of 0 to 2000000 ms"
            )
        if self.max_bandwidth < 0 or self.max_bandwidth > (1 << 53):
            raise ValueError(
                "Parameter 'max_bandwidth' expects an integer in the range of 0 to 8 PiB"
            )
        if not 1 <= self.multifd_channels <= 255:
            raise ValueError("Parameter 'multifd-channels' expects a value between 1 and 255")
        size = self.xbzrle_cache_size
        if size < 4096 or size & (size - 1):
            raise ValueError(
                "Parameter 'xbzrle_cache_size' expects a power of two "
                "no less than the target page size"
            )
