"""One code path that runs a migration scenario against any libvirt-shaped module.

``lib`` is either the real ``libvirt`` module (libvirt-python) or
``simulator.libvirt``; nothing here knows which. What differs between the backends
-- how host configuration and files are changed -- comes through a
:class:`HostControl`. A :class:`Session` keeps both connections and reuses the
source domain between scenarios that left it untouched, so a real run pays for a
guest start only after a scenario that moved or changed it.

Live operations run as a libvirt user makes them: the migrate call blocks in a
worker thread while this thread waits for the job's memory transfer to start, then
makes the operations on the source domain and joins the call.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from simulator.libvirt.request import Api
from simulator.libvirt.scenario import (
    DOMAIN_NAME,
    DOMAIN_UUID,
    OTHER_UUID,
    DestDomain,
    DestUri,
    DomainSpec,
    Env,
    LiveOp,
    OpName,
    OpResult,
    RunState,
    Scenario,
    Side,
    Verdict,
)

#: How long a live-operation scenario waits for the job to reach its memory transfer.
JOB_START_TIMEOUT = 60.0
#: How long a migrate call may take before the scenario gives up on it.
CALL_TIMEOUT = 300.0
#: How often the job's statistics are polled while waiting for its memory transfer.
POLL_S = 0.02


@dataclass(frozen=True)
class Uris:
    """Every libvirt URI a scenario may name."""

    src: str  # the test process -> the source daemon
    dst: str  # the test process -> the destination daemon (no server part)
    dst_p2p: str  # the source daemon -> the destination daemon
    src_p2p: str  # ... -> itself
    localhost: str
    no_server: str
    unreachable: str

    def p2p(self, which: DestUri) -> str:
        return {
            DestUri.PEER: self.dst_p2p,
            DestUri.UNIX: self.dst,
            DestUri.LOCALHOST: self.localhost,
            DestUri.NO_SERVER: self.no_server,
            DestUri.UNREACHABLE: self.unreachable,
            DestUri.SELF: self.src_p2p,
        }[which]


class HostControl(Protocol):
    """What differs between backends: host configuration and files."""

    uris: Uris

    def apply_env(self, env: Env) -> bool:
        """Configure both hosts as ``env`` says; True if connections must be reopened."""
        ...

    def set_dest_image(self, present: bool) -> None:
        """Create or remove the scenario disk image on the destination host."""
        ...

    def hold_jobs(self, on: bool) -> None:
        """While on, migration jobs last until their Finish/Confirm phase ends (real
        libvirt: always; the model: until turned off again)."""
        ...


@dataclass
class Session:
    """Connections to a source and destination plus the reusable source domain."""

    lib: Any
    control: HostControl
    src: Any = None
    dst: Any = None
    _ready: tuple[DomainSpec, Env] | None = field(default=None, repr=False)
    _env: Env | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        self._open()

    def _open(self) -> None:
        self.src = self.lib.open(self.control.uris.src)
        self.dst = self.lib.open(self.control.uris.dst)

    def close(self) -> None:
        self.cleanup()
        for conn in (self.src, self.dst):
            with contextlib.suppress(Exception):
                conn.close()

    def _clear(self, conn: Any) -> None:
        """Destroy and undefine every domain ``conn`` knows (scenarios own the hosts)."""
        for dom in conn.listAllDomains(0):
            with contextlib.suppress(self.lib.libvirtError):
                if dom.isActive():
                    dom.destroy()
            with contextlib.suppress(self.lib.libvirtError):
                dom.undefine()

    def cleanup(self) -> None:
        """Destroy and undefine the scenario domains on both hosts."""
        for conn in (self.src, self.dst):
            self._clear(conn)
        self._ready = None

    def _set_env(self, env: Env) -> None:
        if self._env == env:
            return
        self.cleanup()
        if self.control.apply_env(env):
            for conn in (self.src, self.dst):
                with contextlib.suppress(Exception):
                    conn.close()
            self._open()
        self._env = env

    def prepare(self, sc: Scenario) -> Any:
        """Both hosts as ``sc`` asks; the source domain is reused if unchanged."""
        self._set_env(sc.env)
        spec = sc.domain
        if self._ready == (spec, sc.env):
            dom = self.src.lookupByName(DOMAIN_NAME)
        else:
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
            self._ready = (spec, sc.env)
        self._clear(self.dst)
        self.control.set_dest_image(sc.dest_image)
        if sc.dest_domain is not DestDomain.NONE and not sc.to_self:
            uuid = DOMAIN_UUID if sc.dest_domain is DestDomain.SAME_UUID_DEFINED else OTHER_UUID
            other = DomainSpec().xml(sc.dest_name or DOMAIN_NAME, uuid)
            if sc.dest_domain is DestDomain.OTHER_UUID_RUNNING:
                self.dst.createXML(other, 0)
            else:
                self.dst.defineXML(other)
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
        """The migrate call of ``sc`` with libvirt-python's signature for its API."""
        dconnuri = self.control.uris.p2p(DestUri.SELF if sc.to_self else sc.dest_uri)
        dconn = self.src if sc.to_self else self.dst
        api, flags, p2p = sc.api, sc.flags, bool(sc.flags & 2)
        if api is Api.MIGRATE:
            # virDomainMigrate: with PEER2PEER ``uri`` names the destination daemon.
            uri = (dconnuri if sc.dest_uri is not DestUri.PEER else None) if p2p else sc.miguri
            dom.migrate(dconn, flags, sc.dname, uri, sc.bandwidth)
        elif api is Api.MIGRATE2:
            dom.migrate2(dconn, None, flags, sc.dname, sc.miguri, sc.bandwidth)
        elif api is Api.MIGRATE3:
            dom.migrate3(dconn, self.params(sc), flags)
        elif api is Api.MIGRATE_TO_URI:
            duri = dconnuri if p2p else (sc.miguri or "tcp://127.0.0.1")
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
        try:
            state, reason = dom.state()
            return Side(True, bool(dom.isActive()), bool(dom.isPersistent()), state, reason)
        except self.lib.libvirtError:  # gone between lookup and state
            return Side(False)

    def _error(self, err: Any) -> tuple[int, int, str]:
        return err.get_error_code(), err.get_error_domain(), err.get_error_message() or ""

    def _op(self, dom: Any, op: LiveOp) -> OpResult:
        calls: dict[OpName, Callable[[], Any]] = {
            OpName.START_POSTCOPY: lambda: dom.migrateStartPostCopy(0),
            OpName.SET_MAX_DOWNTIME: lambda: dom.migrateSetMaxDowntime(op.value, 0),
            OpName.SET_MAX_SPEED: lambda: dom.migrateSetMaxSpeed(op.value, 0),
            OpName.ABORT: lambda: dom.abortJob(),
        }
        try:
            calls[op.name]()
        except self.lib.libvirtError as err:
            return OpResult(False, *self._error(err))
        return OpResult(True)

    def _call_with_ops(self, dom: Any, sc: Scenario) -> tuple[Any, tuple[OpResult, ...]]:
        """Run the call in a worker; make the live operations once its job transfers."""
        outcome: dict[str, Any] = {}
        done = threading.Event()

        def work() -> None:
            try:
                self.call(dom, sc)
            except self.lib.libvirtError as err:
                outcome["error"] = err
            finally:
                done.set()

        worker = threading.Thread(target=work, name="hvlab-migrate", daemon=True)
        self.control.hold_jobs(True)
        worker.start()
        # Poll the job's statistics (libvirt has no event for "memory transfer
        # started"); the call ending first means there is no job to act on.
        deadline = time.monotonic() + JOB_START_TIMEOUT
        while not done.wait(POLL_S) and time.monotonic() < deadline:
            with contextlib.suppress(self.lib.libvirtError):
                if dom.jobStats(0).get("memory_total", 0):
                    break
        try:
            results = tuple(self._op(dom, op) for op in sc.ops)
        finally:
            self.control.hold_jobs(False)
        done.wait(CALL_TIMEOUT)
        return outcome.get("error"), results

    def run(self, sc: Scenario) -> Verdict:
        """Prepare the hosts, make the call (and live operations), observe both hosts."""
        try:
            dom = self.prepare(sc)
        except self.lib.libvirtError:
            # A leftover of the previous scenario (a domain still shutting down, a
            # job not yet ended) can make one preparation fail: start over once.
            self.cleanup()
            dom = self.prepare(sc)
        ops: tuple[OpResult, ...] = ()
        error: Any = None
        if sc.ops:
            error, ops = self._call_with_ops(dom, sc)
        else:
            try:
                self.call(dom, sc)
            except self.lib.libvirtError as err:
                error = err
        dconn = self.src if sc.to_self else self.dst
        source = self.side(self.src, DOMAIN_NAME)
        dest = (
            source if sc.to_self and sc.dest_name == DOMAIN_NAME else self.side(dconn, sc.dest_name)
        )
        if error is None or sc.ops:
            # Live operations change the domain's migration settings (migMaxBandwidth).
            self._ready = None
        if error is None:
            return Verdict(True, source=source, dest=dest, ops=ops)
        if source != self._expected_src(sc.domain) or sc.to_self:
            self._ready = None  # the refusal changed something: rebuild next time
        refusal = getattr(error, "refusal", None)  # the model's errors carry their race
        raced = getattr(refusal, "raced", None)
        return Verdict(
            False,
            *self._error(error),
            source=source,
            dest=dest,
            ops=ops,
            raced=(int(raced.code), int(raced.domain), raced.message) if raced else None,
            race=str(getattr(refusal, "race", "")) if raced else "",
        )

    def _expected_src(self, spec: DomainSpec) -> Side:
        state, reason = {
            RunState.RUNNING: (1, 1),  # VIR_DOMAIN_RUNNING_BOOTED
            RunState.PAUSED: (3, 1),  # VIR_DOMAIN_PAUSED_USER
            RunState.SHUTOFF: (5, 0),  # VIR_DOMAIN_SHUTOFF_UNKNOWN (never started)
        }[spec.state]
        return Side(True, spec.state is not RunState.SHUTOFF, spec.persistent, state, reason)
