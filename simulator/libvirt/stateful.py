"""A Hypothesis state machine over define/start/suspend/migrate/abort/undefine on two hosts.

The machine takes its backends as a parameter (:func:`machine_for`): any number of
:class:`simulator.libvirt.session.Session` objects -- the model, real libvirt 9.0's
daemon pair, or both -- and makes every step on each of them through the public
libvirt-python API only. After each step it compares what the backends returned and
what both hosts show (every domain's state, reason and persistence): they must be
equal (zarr / fakeredis style). The invariants hold on every backend: a domain is never
lost unless undefined on purpose, never active on two hosts, and a completed
migration leaves persistence and pause state as the flags say.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any

from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from simulator.libvirt.flags import MigrateFlag as F
from simulator.libvirt.scenario import DomainSpec
from simulator.libvirt.session import Session

HOSTS = ("src", "dst")
NAMES = ("g0", "g1")
UUIDS = {n: f"6b1e3f0a-9c8d-4e2f-a1b0-0d15ea5e01{i:02d}" for i, n in enumerate(NAMES)}

#: Flag sets a user plausibly passes (every one can complete on a disk-less guest).
FLAGS = st.builds(
    lambda base, extra: base | extra,
    st.sampled_from([int(F.LIVE), 0, int(F.LIVE | F.PEER2PEER), int(F.PEER2PEER)]),
    st.sets(
        st.sampled_from([F.PERSIST_DEST, F.UNDEFINE_SOURCE, F.PAUSED, F.OFFLINE, F.AUTO_CONVERGE])
    ).map(lambda fs: sum(int(f) for f in fs)),
)

Outcome = tuple[Any, ...]


def _conn(s: Session, host: str) -> Any:
    return s.src if host == "src" else s.dst


def view(s: Session) -> tuple[tuple[str, str, int, int, bool], ...]:
    """Every domain on both hosts: (host, name, state, reason, persistent)."""
    out = []
    for host in HOSTS:
        for dom in _conn(s, host).listAllDomains(0):
            state, reason = dom.state()
            out.append((host, dom.name(), state, reason, bool(dom.isPersistent())))
    return tuple(sorted(out))


class _Machine(RuleBasedStateMachine):
    """Base of the machines :func:`machine_for` builds; ``backends`` is set there."""

    backends: Callable[[], list[Session]]

    def __init__(self) -> None:
        super().__init__()
        self.sessions = type(self).backends()
        for s in self.sessions:
            s.cleanup()
        self.expected: set[str] = set()  # names that must exist somewhere

    # --- one step on every backend -------------------------------------------------
    def _each(self, step: Callable[[Session], Any]) -> list[Outcome]:
        results: list[Outcome] = []
        for s in self.sessions:
            try:
                value = step(s)
                results.append(("ok", value))
            except s.lib.libvirtError as err:
                results.append(("error", err.get_error_code(), err.get_error_domain()))
        views = [view(s) for s in self.sessions]
        assert all(r == results[0] for r in results), f"backends differ: {results}"
        assert all(v == views[0] for v in views), f"hosts differ: {views}"
        return results

    def _on(self, host: str, name: str, method: str, *args: Any) -> list[Outcome]:
        """Call ``method`` on the domain ``name`` of ``host`` on every backend."""

        def step(s: Session) -> Any:
            return getattr(_conn(s, host).lookupByName(name), method)(*args)

        return self._each(step)

    def _where(self, s: Session, name: str, active: bool | None = None) -> list[str]:
        found = []
        for host, n, state, _, _ in view(s):
            if n == name and (active is None or (state != 5) == active):
                found.append(host)
        return found

    # --- rules ---------------------------------------------------------------------
    @initialize(host=st.sampled_from(HOSTS), persistent=st.booleans())
    def first_guest(self, host: str, persistent: bool) -> None:
        """Every run starts with g0 running somewhere, so migrations happen early."""
        self.define(host, NAMES[0], persistent)
        self.start(NAMES[0])

    @rule(host=st.sampled_from(HOSTS), name=st.sampled_from(NAMES), persistent=st.booleans())
    def define(self, host: str, name: str, persistent: bool) -> None:
        if self._where(self.sessions[0], name):
            return
        xml = DomainSpec().xml(name, UUIDS[name])

        def step(s: Session) -> None:
            if persistent:
                _conn(s, host).defineXML(xml)
            else:
                _conn(s, host).createXML(xml, 0)

        self._each(step)
        self.expected.add(name)

    @rule(name=st.sampled_from(NAMES))
    def start(self, name: str) -> None:
        # After a migration without UNDEFINE_SOURCE the source keeps an inactive
        # definition; libvirt would start it while the copy runs (only a lock manager
        # refuses). The operator modelled here has one: it never starts a second copy.
        if self._where(self.sessions[0], name, active=True):
            return
        hosts = self._where(self.sessions[0], name)
        if hosts:
            self._each(lambda s: _conn(s, hosts[0]).lookupByName(name).create())

    @rule(name=st.sampled_from(NAMES), resume=st.booleans())
    def pause(self, name: str, resume: bool) -> None:
        verb = "resume" if resume else "suspend"
        for host in self._where(self.sessions[0], name, active=True):
            self._on(host, name, verb)

    @precondition(lambda self: all(hasattr(s.lib.virDomain, "setDirtyRate") for s in self.sessions))
    @rule(name=st.sampled_from(NAMES), rate=st.sampled_from([0.0, 50.0, 10_000.0]))
    def dirty(self, name: str, rate: float) -> None:
        """Model-only knob (a capability of the backend, not of real libvirt)."""
        for host in self._where(self.sessions[0], name):
            self._on(host, name, "setDirtyRate", rate, 512.0)

    @rule(name=st.sampled_from(NAMES))
    def abort(self, name: str) -> None:
        for host in self._where(self.sessions[0], name):
            self._on(host, name, "abortJob")

    @rule(name=st.sampled_from(NAMES))
    def undefine(self, name: str) -> None:
        def step(s: Session) -> None:
            for host in self._where(s, name):
                dom = _conn(s, host).lookupByName(name)
                with contextlib.suppress(s.lib.libvirtError):
                    if dom.isActive():
                        dom.destroy()
                if host in self._where(s, name):
                    dom.undefine()

        self._each(step)
        if not self._where(self.sessions[0], name):
            self.expected.discard(name)

    @rule(name=st.sampled_from(NAMES), flags=FLAGS, bandwidth=st.sampled_from([0, 100]))
    def migrate(self, name: str, flags: int, bandwidth: int) -> None:
        first = self.sessions[0]
        hosts = self._where(first, name, active=True) or self._where(first, name)
        if not hosts:
            return
        src = hosts[0]
        dst = HOSTS[1 - HOSTS.index(src)]
        before = {h: list(v) for h, n, *v in view(first) if n == name}

        def step(s: Session) -> None:
            dom = _conn(s, src).lookupByName(name)
            if flags & F.PEER2PEER:
                uri = s.control.uris.dst_p2p if dst == "dst" else s.control.uris.src_p2p
                dom.migrateToURI3(uri, {"bandwidth": bandwidth}, flags)
            else:
                dom.migrate(_conn(s, dst), flags, None, None, bandwidth)

        results = self._each(step)
        if results[0][0] == "ok":
            self._completed(name, src, dst, flags, before[src], dst in before)

    def _completed(
        self, name: str, src: str, dst: str, flags: int, was: list[Any], had_def: bool
    ) -> None:
        for s in self.sessions:
            new = _conn(s, dst).lookupByName(name)
            if flags & F.OFFLINE:
                assert new.isPersistent() and not new.isActive()
                continue
            assert new.isActive(), "a completed live migration leaves the domain running"
            # An inactive definition already there keeps the domain persistent
            # (virDomainObjListAdd assigns the incoming live config to it).
            persistent = bool(flags & F.PERSIST_DEST) or had_def
            assert bool(new.isPersistent()) == persistent
            assert (new.state()[0] == 3) == bool(flags & F.PAUSED or was[0] == 3)
            if src in self._where(s, name):
                old = _conn(s, src).lookupByName(name)
                assert not old.isActive()
                assert was[2] and not flags & F.UNDEFINE_SOURCE

    # --- invariants on every backend ----------------------------------------------
    @invariant()
    def never_lost(self) -> None:
        for s in self.sessions:
            for name in self.expected:
                assert self._where(s, name), f"{name} vanished from every host"

    @invariant()
    def never_running_twice(self) -> None:
        for s in self.sessions:
            for name in NAMES:
                active = self._where(s, name, active=True)
                assert len(active) <= 1, f"{name} active on {active}"


def machine_for(backends: Callable[[], list[Session]]) -> type[RuleBasedStateMachine]:
    """A state machine class over the sessions ``backends()`` returns (once per run)."""
    return type("MigrationMachine", (_Machine,), {"backends": staticmethod(backends)})


def model_session() -> Session:
    """A fresh session on the model (simulated hosts ``src`` and ``dst``)."""
    import simulator.libvirt as sim
    from simulator.libvirt.control import ModelControl

    sim.reset()
    return Session(sim, ModelControl())
