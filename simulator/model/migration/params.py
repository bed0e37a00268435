"""QEMU migration parameters and capabilities (qapi/migration.json, 7.2 defaults)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from enum import Enum
from typing import Any

from simulator.model import qemu_params
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
    # members query-migrate-parameters shows that the engine does not use
    compress_wait_thread: bool = True
    tls_creds: str = ""
    tls_hostname: str = ""
    tls_authz: str = ""
    x_checkpoint_delay: int = 20000
    block_incremental: bool = False
    multifd_zlib_level: int = 1
    multifd_zstd_level: int = 1

    def to_qmp(self) -> dict[str, Any]:
        """query-migrate-parameters ``return`` value."""
        out: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            out[f.name.replace("_", "-")] = v.value if isinstance(v, Enum) else v
        return out

    def updated(self, args: dict[str, Any]) -> MigrationParameters:
        """Apply migrate-set-parameters arguments as QEMU 7.2 does (qemu_params.py: the
        QAPI visitor, then migrate_params_check on the merged values); ValueError with
        QEMU's text if refused."""
        values = qemu_params.visit(args)
        merged = {**self.to_qmp(), **values}
        qemu_params.check(merged)
        changes: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            key = f.name.replace("_", "-")
            if key in values:
                v = values[key]
                changes[f.name] = MultiFDCompression(v) if key == "multifd-compression" else v
        return dataclasses.replace(self, **changes)
