"""RuleBasedStateMachine over define/start/suspend/migrate/abort/undefine on two hosts.

Invariants after every step: a domain is never lost (defined or running on some
host unless undefined/destroyed on purpose), never active on two hosts, and a
completed migration leaves persistence and pause state as the flags say.
"""

from __future__ import annotations

import contextlib
from typing import Any

from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

import simulator.libvirt as lv
from simulator.libvirt import hosts as sim_hosts
from simulator.libvirt.flags import MigrateFlag as F
from simulator.libvirt.hosts import reset
from simulator.libvirt.strategies import flag_sets

HOSTS = ("a", "b")
NAMES = ("g0", "g1")


def _uri(host: str) -> str:
    return f"sim+qemu://{host}/system"


class MigrationMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        reset()
        self.conn = {h: lv.open(_uri(h)) for h in HOSTS}
        self.expected: set[str] = set()  # names that must exist somewhere

    def _where(self, name: str) -> list[str]:
        return [h for h in HOSTS if name in sim_hosts.HOSTS[h].domains]

    @rule(host=st.sampled_from(HOSTS), name=st.sampled_from(NAMES), persistent=st.booleans())
    def define(self, host: str, name: str, persistent: bool) -> None:
        if self._where(name):
            return
        xml = f"<domain type='qemu'><name>{name}</name></domain>"
        if persistent:
            self.conn[host].defineXML(xml)
        else:
            self.conn[host].createXML(xml, 0)
        self.expected.add(name)

    @rule(name=st.sampled_from(NAMES))
    def start(self, name: str) -> None:
        # After a migration without UNDEFINE_SOURCE the source keeps an inactive
        # persistent definition; libvirt would happily start it while the migrated copy
        # runs (only a lock manager such as virtlockd/sanlock refuses). The operator
        # modelled here has one, so it never starts a domain that runs elsewhere.
        if any(sim_hosts.HOSTS[h].domains[name].facts.active for h in self._where(name)):
            return
        for h in self._where(name):
            with contextlib.suppress(lv.libvirtError):
                self.conn[h].lookupByName(name).create()
                return  # one copy started; the others stay definitions

    @rule(name=st.sampled_from(NAMES))
    def suspend(self, name: str) -> None:
        for h in self._where(name):
            with contextlib.suppress(lv.libvirtError):
                self.conn[h].lookupByName(name).suspend()

    @rule(name=st.sampled_from(NAMES), rate=st.sampled_from([0.0, 50.0, 10_000.0]))
    def dirty(self, name: str, rate: float) -> None:
        for h in self._where(name):
            self.conn[h].lookupByName(name).setDirtyRate(rate, 512.0)

    @rule(name=st.sampled_from(NAMES))
    def abort(self, name: str) -> None:
        for h in self._where(name):
            with contextlib.suppress(lv.libvirtError):
                self.conn[h].lookupByName(name).abortJob()

    @rule(name=st.sampled_from(NAMES))
    def undefine(self, name: str) -> None:
        for h in self._where(name):
            dom = self.conn[h].lookupByName(name)
            with contextlib.suppress(lv.libvirtError):
                if dom.isActive():
                    dom.destroy()
                if h in self._where(name):
                    dom.undefine()
        if not self._where(name):
            self.expected.discard(name)

    @rule(
        name=st.sampled_from(NAMES),
        flags=flag_sets,
        p2p_api=st.booleans(),
        bandwidth=st.sampled_from([0, 100]),
    )
    def migrate(self, name: str, flags: int, p2p_api: bool, bandwidth: int) -> None:
        hosts = [
            h for h in self._where(name) if sim_hosts.HOSTS[h].domains[name].facts.active
        ] or self._where(name)
        if not hosts:
            return
        src = hosts[0]
        dst = HOSTS[1 - HOSTS.index(src)]
        dom = self.conn[src].lookupByName(name)
        before: dict[str, Any] = dict(
            active=dom.isActive(), paused=dom.state()[0] == 3, persistent=dom.isPersistent()
        )
        try:
            if p2p_api:
                dom.migrateToURI3(_uri(dst), {"bandwidth": bandwidth}, flags)
            else:
                dom.migrate(self.conn[dst], flags, None, None, bandwidth)
        except lv.libvirtError:
            return
        new = self.conn[dst].lookupByName(name)
        if flags & F.OFFLINE:
            assert new.isPersistent() and not new.isActive()
            return
        assert new.isActive(), "a completed live migration leaves the domain running"
        assert bool(new.isPersistent()) == bool(flags & F.PERSIST_DEST)
        assert (new.state()[0] == 3) == bool(flags & F.PAUSED or before["paused"])
        if src in self._where(name):
            old = self.conn[src].lookupByName(name)
            assert not old.isActive()
            assert before["persistent"] and not flags & F.UNDEFINE_SOURCE

    @invariant()
    def never_lost(self) -> None:
        for name in self.expected:
            assert self._where(name), f"{name} vanished from every host"

    @invariant()
    def never_running_twice(self) -> None:
        for name in NAMES:
            active = [h for h in self._where(name) if sim_hosts.HOSTS[h].domains[name].facts.active]
            assert len(active) <= 1, f"{name} active on {active}"
