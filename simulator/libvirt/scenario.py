"""One code path that runs a migration scenario against any libvirt-shaped module.

``lib`` is either the real ``libvirt`` module (libvirt-python) or
``simulator.libvirt``; nothing here knows which. A :class:`Session` keeps both
connections and reuses the source domain between refused scenarios (a refused
call leaves it untouched), so a real run pays for a guest start only after a
scenario that moved or changed it.
"""

from __future__ import annotations

import contextlib
import enum
from dataclasses import asdict, dataclass, field
from typing import Any

from simulator.libvirt.request import Api, Cache

DOMAIN_NAME = "hvlab-fz"
RENAMED = "hvlab-fz-renamed"
IMAGE = "/var/lib/libvirt/images/hvlab-fz.raw"


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

    def xml(self, name: str = DOMAIN_NAME) -> str:
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
        return (
            f"<domain type='qemu'><name>{name}</name><memory unit='MiB'>32</memory>{tune}"
            "<vcpu>1</vcpu><os><type arch='x86_64' machine='pc'>hvm</type></os>"
            "<devices><emulator>/usr/bin/qemu-system-x86_64</emulator>"
            f"{disk}<memballoon model='none'/></devices></domain>"
        )


@dataclass(frozen=True)
class Scenario:
    """API x flags x arguments x domain config."""

    api: Api
    flags: int
    domain: DomainSpec = DomainSpec()
    dname: str | None = None
    miguri: str | None = None
    bandwidth: int = 0
    extra: tuple[tuple[str, Any], ...] = ()
    p2p_uri_ok: bool = True  # False: pass the dest *unix* URI (no server) as dconnuri

    def label(self) -> str:
        return (
            f"{self.api.value}(flags={self.flags:#x}, dname={self.dname}, uri={self.miguri}, "
            f"bw={self.bandwidth}, extra={dict(self.extra)}, dom={self.domain})"
        )


@dataclass(frozen=True)
class Side:
    """What one host shows for the migrated domain after the call."""

    exists: bool
    active: bool = False
    persistent: bool = False
    state: int = 0


@dataclass(frozen=True)
class Verdict:
    """Result of one scenario: refused (code, domain, message) or the outcome."""

    accepted: bool
    code: int = 0
    domain: int = 0
    message: str = ""
    source: Side | None = None
    dest: Side | None = None

    def key(self) -> tuple[Any, ...]:
        """What the differential comparison requires to be equal."""
        if not self.accepted:
            return (False, self.code, self.domain)
        return (True, self.source, self.dest)

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
        )


@dataclass
class Session:
    """Connections to a source and destination plus the reusable source domain."""

    lib: Any
    src_uri: str
    dst_uri: str
    dst_p2p_uri: str
    src: Any = None
    dst: Any = None
    _ready: DomainSpec | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        self.src = self.lib.open(self.src_uri)
        self.dst = self.lib.open(self.dst_uri)

    def close(self) -> None:
        self.cleanup()
        for conn in (self.src, self.dst):
            with contextlib.suppress(Exception):
                conn.close()

    def cleanup(self) -> None:
        """Destroy and undefine the scenario domains on both hosts."""
        for conn in (self.src, self.dst):
            for name in (DOMAIN_NAME, RENAMED):
                try:
                    dom = conn.lookupByName(name)
                except self.lib.libvirtError:
                    continue
                with contextlib.suppress(self.lib.libvirtError):
                    if dom.isActive():
                        dom.destroy()
                with contextlib.suppress(self.lib.libvirtError):
                    dom.undefine()
        self._ready = None

    def prepare(self, spec: DomainSpec) -> Any:
        """The source domain in the state ``spec`` asks for (reused if unchanged)."""
        if self._ready == spec:
            return self.src.lookupByName(DOMAIN_NAME)
        self.cleanup()
        xml = spec.xml()
        if spec.persistent:
            dom = self.src.defineXML(xml)
            if spec.state is not RunState.SHUTOFF:
                dom.create()
        else:
            dom = self.src.createXML(xml, 0)
        if spec.state is RunState.PAUSED:
            dom.suspend()
        self._ready = spec
        return dom

    def params(self, sc: Scenario) -> dict[str, Any]:
        p: dict[str, Any] = dict(sc.extra)
        if sc.dname is not None:
            p["destination_name"] = sc.dname
        if sc.miguri is not None:
            p["migrate_uri"] = sc.miguri
        if sc.bandwidth:
            p["bandwidth"] = sc.bandwidth
        return p

    def call(self, dom: Any, sc: Scenario) -> None:
        dconnuri = self.dst_p2p_uri if sc.p2p_uri_ok else self.dst_uri
        api, flags = sc.api, sc.flags
        if api is Api.MIGRATE:
            dom.migrate(
                self.dst, flags, sc.dname, sc.miguri if not flags & 2 else None, sc.bandwidth
            )
        elif api is Api.MIGRATE2:
            dom.migrate2(self.dst, None, flags, sc.dname, sc.miguri, sc.bandwidth)
        elif api is Api.MIGRATE3:
            dom.migrate3(self.dst, self.params(sc), flags)
        elif api is Api.MIGRATE_TO_URI:
            duri = dconnuri if flags & 2 else (sc.miguri or "tcp://127.0.0.1")
            dom.migrateToURI(duri, flags, sc.dname, sc.bandwidth)
        elif api is Api.MIGRATE_TO_URI2:
            dom.migrateToURI2(dconnuri, sc.miguri, None, flags, sc.dname, sc.bandwidth)
        else:
            dom.migrateToURI3(dconnuri, self.params(sc), flags)

    def side(self, conn: Any, name: str) -> Side:
        try:
            dom = conn.lookupByName(name)
        except self.lib.libvirtError:
            return Side(False)
        return Side(True, bool(dom.isActive()), bool(dom.isPersistent()), int(dom.state()[0]))

    def run(self, sc: Scenario) -> Verdict:
        """Prepare the domain, make the call, observe both hosts."""
        dom = self.prepare(sc.domain)
        try:
            self.call(dom, sc)
        except self.lib.libvirtError as err:
            verdict = Verdict(
                False, err.get_error_code(), err.get_error_domain(), err.get_error_message() or ""
            )
            if (
                self.side(self.src, DOMAIN_NAME) != self._expected_src(sc.domain)
                or self.side(self.dst, sc.dname or DOMAIN_NAME).exists
            ):
                self._ready = None  # the refusal changed something: rebuild next time
            return verdict
        self._ready = None
        return Verdict(
            True,
            source=self.side(self.src, DOMAIN_NAME),
            dest=self.side(self.dst, sc.dname or DOMAIN_NAME),
        )

    def _expected_src(self, spec: DomainSpec) -> Side:
        active = spec.state is not RunState.SHUTOFF
        state = {RunState.RUNNING: 1, RunState.PAUSED: 3, RunState.SHUTOFF: 5}[spec.state]
        return Side(True, active, spec.persistent, state)
