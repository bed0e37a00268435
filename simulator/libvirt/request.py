"""Typed inputs of one migration call: which API, its arguments, the domain, hosts."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field


class Api(enum.Enum):
    """The libvirt-python migration entry points (virDomain methods)."""

    MIGRATE = "migrate"
    MIGRATE2 = "migrate2"
    MIGRATE3 = "migrate3"
    MIGRATE_TO_URI = "migrateToURI"
    MIGRATE_TO_URI2 = "migrateToURI2"
    MIGRATE_TO_URI3 = "migrateToURI3"

    @property
    def managed(self) -> bool:
        """True for the APIs given a destination connection (migrate, 2, 3)."""
        return self in (Api.MIGRATE, Api.MIGRATE2, Api.MIGRATE3)

    @property
    def typed_params(self) -> bool:
        return self in (Api.MIGRATE3, Api.MIGRATE_TO_URI3)


class Cache(enum.Enum):
    """Disk cache modes (domain XML <driver cache=...>)."""

    NONE = "none"
    WRITETHROUGH = "writethrough"
    WRITEBACK = "writeback"
    DIRECTSYNC = "directsync"
    UNSAFE = "unsafe"


@dataclass(frozen=True)
class Disk:
    """One writable file-backed disk on local (non-shared) storage."""

    target: str = "vda"
    cache: Cache = Cache.NONE
    readonly: bool = False
    source: str = ""


@dataclass(frozen=True)
class DomainFacts:
    """What the rules need to know about the domain being migrated."""

    name: str
    active: bool
    paused: bool
    persistent: bool
    disks: tuple[Disk, ...] = ()
    hard_limit: bool = False
    dirty_rate: float = 0.0  # MiB/s written by the guest
    working_set: float = 8.0  # MiB the guest keeps re-dirtying
    # An async MIGRATION_OUT job is active on the source (e.g. one a failed
    # migration left behind, see driver.decide): no new migration can start.
    migration_job: bool = False
    resident_mib: float = 0.0  # non-zero RAM a migration must send (a busy guest)


@dataclass(frozen=True)
class MigrationCall:
    """Arguments of one migration API call, normalised across the six APIs.

    ``dconnuri`` is the libvirt URI of the destination daemon (peer-to-peer);
    ``params`` holds VIR_MIGRATE_PARAM_* typed parameters (the fixed-argument
    APIs are converted as libvirt does in virDomainMigrateUnmanaged).
    """

    api: Api
    flags: int
    params: Mapping[str, object] = field(default_factory=dict)
    dconnuri: str | None = None
    dest_conn_uri: str | None = None  # dconn.getURI() for the managed APIs
    dest_reachable: bool = True
    dest_same_host: bool = False


@dataclass(frozen=True)
class HostProfile:
    """Environment facts of a host that decide Prepare- and Perform-phase errors."""

    host_uuid: str = ""
    tls_configured: bool = False  # migration TLS credentials in migrate_tls_x509_cert_dir
    tls_force: bool = False  # qemu.conf migrate_tls_force
    tls_names: frozenset[str] = frozenset()  # names the server certificate carries
    # Whether libvirtd may raise QEMU's RLIMIT_MEMLOCK (ZEROCOPY needs it:
    # qemuMigrationSrcRun -> qemuDomainSetMaxMemLock). Not permitted in this lab.
    memlock_permitted: bool = False
