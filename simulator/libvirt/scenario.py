"""What one differential scenario is and what it observed (pure data, no backend).

A :class:`Scenario` is an entry point x flags x arguments x typed parameters x domain
config x destination and environment x live operations; a :class:`Verdict` is what a
backend (the model or real libvirt 9.0) did with it: accepted or refused (code, domain,
masked message), both hosts' view of the domain afterwards (state, reason,
persistence) and the result of every live operation made during the job.
:mod:`simulator.libvirt.session` runs scenarios on either backend.
"""

from __future__ import annotations

import enum
import socket
from dataclasses import asdict, dataclass
from typing import Any

from simulator.libvirt.masking import mask
from simulator.libvirt.request import Api, Cache

DOMAIN_NAME = "hvlab-fz"
RENAMED = "hvlab-fz-renamed"
IMAGE = "/var/lib/libvirt/images/hvlab-fz.raw"
#: Raw RAM content a busy guest is started with (QEMU's generic loader device), so a
#: migration at 1 MiB/s lasts long enough for live operations during its job.
BUSY_BLOB = "/var/lib/libvirt/images/hvlab-fz-ram.bin"
BUSY_MIB = 2
#: The UUID of the scenario domain (a destination's same-UUID definition reuses it).
DOMAIN_UUID = "6b1e3f0a-9c8d-4e2f-a1b0-0d15ea5e0001"
OTHER_UUID = "6b1e3f0a-9c8d-4e2f-a1b0-0d15ea5e0002"
METADATA_NS = "https://hvlab.invalid/libvirt-fz"
#: The names the migration TLS server certificate carries (harness.libvirt.certs
#: writes them; the model checks VIR_MIGRATE_PARAM_TLS_DESTINATION against them).
CERT_NAMES = (socket.gethostname(), "localhost", "127.0.0.1")


class RunState(enum.Enum):
    """How the source domain is prepared before the call."""

    RUNNING = "running"
    PAUSED = "paused"
    SHUTOFF = "shutoff"


@dataclass(frozen=True)
class DomainSpec:
    """Domain config dimension of a scenario."""

    persistent: bool = True
    state: RunState = RunState.RUNNING
    disk_cache: Cache | None = None
    hard_limit: bool = False
    busy: bool = False  # BUSY_MIB of non-zero RAM: migrations take seconds at 1 MiB/s

    def xml(self, name: str = DOMAIN_NAME, uuid: str = DOMAIN_UUID) -> str:
        """Domain XML of a tiny TCG guest: no kernel, SeaBIOS idles, 32 MiB."""
        disk = ""
        if self.disk_cache is not None:
            disk = (
                "<disk type='file' device='disk'>"
                f"<driver name='qemu' type='raw' cache='{self.disk_cache.value}'/>"
                f"<source file='{IMAGE}'/><target dev='vda' bus='virtio'/></disk>"
            )
        tune = (
            "<memtune><hard_limit unit='MiB'>512</hard_limit></memtune>" if self.hard_limit else ""
        )
        qemu_ns, cmdline, meta = "", "", ""
        if self.busy:
            # QEMU's generic loader copies the blob into guest RAM at reset.
            qemu_ns = " xmlns:qemu='http://libvirt.org/schemas/domain/qemu/1.0'"
            cmdline = (
                "<qemu:commandline><qemu:arg value='-device'/>"
                f"<qemu:arg value='loader,file={BUSY_BLOB},addr=0x400000,force-raw=on'/>"
                "</qemu:commandline>"
            )
            meta = (
                f"<metadata><fz:guest xmlns:fz='{METADATA_NS}' resident_mib='{BUSY_MIB}'/>"
                "</metadata>"
            )
        return (
            f"<domain type='qemu'{qemu_ns}><name>{name}</name><uuid>{uuid}</uuid>{meta}"
            f"<memory unit='MiB'>32</memory>{tune}"
            "<vcpu>1</vcpu><os><type arch='x86_64' machine='pc'>hvm</type></os>"
            "<devices><emulator>/usr/bin/qemu-system-x86_64</emulator>"
            f"{disk}<memballoon model='none'/></devices>{cmdline}</domain>"
        )


class DestDomain(enum.Enum):
    """What the destination already holds under the migrated domain's name."""

    NONE = "none"
    OTHER_UUID_DEFINED = "other-uuid-defined"  # same name, another UUID, inactive
    OTHER_UUID_RUNNING = "other-uuid-running"  # same name, another UUID, running
    SAME_UUID_DEFINED = "same-uuid-defined"  # an inactive definition of this very domain


class DestUri(enum.Enum):
    """Which libvirt URI a peer-to-peer call names as the destination daemon."""

    PEER = "peer"  # the destination daemon over TCP (qemu+tcp://127.0.0.1:PORT/system)
    UNIX = "unix"  # the destination's unix socket (no server part)
    LOCALHOST = "localhost"  # qemu+tcp://localhost:PORT/system
    NO_SERVER = "no-server"  # qemu:///system
    UNREACHABLE = "unreachable"  # nobody listens there
    SELF = "self"  # the source daemon itself


@dataclass(frozen=True)
class Env:
    """Host configuration of the pair (TLS, identity): changing it restarts daemons."""

    src_certs: bool = False  # migration TLS certificates present on the source
    dst_certs: bool = False  # ... and on the destination
    dst_tls_force: bool = False  # destination qemu.conf migrate_tls_force = 1
    same_host_uuid: bool = False  # the destination reports the source's host UUID


class OpName(enum.Enum):
    """Live operations made on the source domain while its migration job runs."""

    START_POSTCOPY = "migrateStartPostCopy"
    SET_MAX_DOWNTIME = "migrateSetMaxDowntime"
    SET_MAX_SPEED = "migrateSetMaxSpeed"
    ABORT = "abortJob"


@dataclass(frozen=True)
class LiveOp:
    name: OpName
    value: int = 0  # ms for SET_MAX_DOWNTIME, MiB/s for SET_MAX_SPEED


@dataclass(frozen=True)
class Scenario:
    """One migration call and everything around it."""

    api: Api
    flags: int
    domain: DomainSpec = DomainSpec()
    dname: str | None = None
    miguri: str | None = None
    bandwidth: int = 0
    extra: tuple[tuple[str, Any], ...] = ()
    dest_uri: DestUri = DestUri.PEER
    to_self: bool = False  # managed APIs: dconn is the source connection
    dest_domain: DestDomain = DestDomain.NONE
    dest_image: bool = True  # the disk image exists on the destination
    env: Env = Env()
    ops: tuple[LiveOp, ...] = ()

    def label(self) -> str:
        parts = [
            f"{self.api.value}(flags={self.flags:#x}, dname={self.dname!r}, uri={self.miguri}, "
            f"bw={self.bandwidth}, extra={dict(self.extra)}, dom={self.domain}"
        ]
        if self.dest_uri is not DestUri.PEER or self.to_self:
            parts.append(f"dest_uri={self.dest_uri.value}, self={self.to_self}")
        if self.dest_domain is not DestDomain.NONE or not self.dest_image:
            parts.append(f"dest_domain={self.dest_domain.value}, dest_image={self.dest_image}")
        if self.env != Env():
            parts.append(f"env={self.env}")
        if self.ops:
            parts.append("ops=" + ",".join(f"{o.name.value}:{o.value}" for o in self.ops))
        return ", ".join(parts) + ")"

    @property
    def dest_name(self) -> str:
        return DOMAIN_NAME if self.dname is None else self.dname


@dataclass(frozen=True)
class Side:
    """What one host shows for a domain after the call."""

    exists: bool
    active: bool = False
    persistent: bool = False
    state: int = 0
    reason: int = 0


@dataclass(frozen=True)
class OpResult:
    """The result of one live operation: 0, or the error it raised."""

    ok: bool
    code: int = 0
    domain: int = 0
    message: str = ""

    def key(self) -> tuple[Any, ...]:
        return (self.ok, self.code, self.domain)


@dataclass(frozen=True)
class Verdict:
    """Result of one scenario: refused (code, domain, message) or the outcome."""

    accepted: bool
    code: int = 0
    domain: int = 0
    message: str = ""
    source: Side | None = None
    dest: Side | None = None
    ops: tuple[OpResult, ...] = ()
    # The model's documented race (errors.Refusal.raced): the other error libvirt may
    # report, as (code, domain, message), and why.
    raced: tuple[int, int, str] | None = None
    race: str = ""

    def raced_verdict(self) -> Verdict | None:
        """This verdict with the race's other error, or None without a race."""
        if self.raced is None:
            return None
        code, domain, message = self.raced
        return Verdict(False, code, domain, message, self.source, self.dest, self.ops)

    def matched_by(self, real: Verdict) -> Verdict | None:
        """The model verdict ``real`` agrees with: this one, else the race's other error
        (:meth:`raced_verdict`), else None."""
        if real.key() == self.key():
            return self
        other = self.raced_verdict()
        return other if other is not None and other.key() == real.key() else None

    def key(self) -> tuple[Any, ...]:
        """What the differential requires to be equal (messages are compared apart)."""
        ops = tuple(o.key() for o in self.ops)
        if not self.accepted:
            return (False, self.code, self.domain, self.source, self.dest, ops)
        return (True, self.source, self.dest, ops)

    def masked(self) -> tuple[str, ...]:
        """Error texts of the call and the live operations, variable parts masked."""
        return (mask(self.message), *(mask(o.message) for o in self.ops))

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Verdict:
        """Inverse of :meth:`to_json` (a saved report's row)."""
        sides = {k: Side(**data[k]) if data.get(k) else None for k in ("source", "dest")}
        return cls(
            bool(data["accepted"]),
            int(data.get("code", 0)),
            int(data.get("domain", 0)),
            str(data.get("message", "")),
            sides["source"],
            sides["dest"],
            tuple(OpResult(**o) for o in data.get("ops", ())),
            tuple(data["raced"]) if data.get("raced") else None,
            str(data.get("race", "")),
        )
