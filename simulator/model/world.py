"""The world: hosts, VMs, migration links, snapshots and the virtual clock.

``World.advance(dt)`` moves time, runs every migration engine and applies their effects
to source and destination VMs in time order. ``copies(guest_id)`` lets tests check that
after any outcome exactly one VM holds (and at most one runs) each guest.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from simulator.model.clock import VirtualClock
from simulator.model.devices import Device
from simulator.model.host import Host, default_host
from simulator.model.memory import MemoryImage, MemoryLayout
from simulator.model.migration.effects import Effect
from simulator.model.migration.status import MigrationStatus as S
from simulator.model.migration.uri import UriError, UriMode, parse_uri
from simulator.model.profiles import PROFILES, Profile
from simulator.model.spec import VMSpec
from simulator.model.vm import VM, RunState


@dataclass(frozen=True)
class Snapshot:
    """A StratoVirt memory snapshot directory (``memory`` + ``state`` files)."""

    spec: VMSpec
    memory: MemoryImage
    profile: str
    devices: tuple[Device, ...]


def _snapshot_path(prof: Profile, incoming: str) -> str | None:
    """The snapshot directory of an ``-incoming file:DIR`` (None: a stream comes in)."""
    try:
        uri = parse_uri(prof.uri_rules, incoming)
    except UriError:
        return None
    return uri.target if uri.mode is UriMode.FILE else None


@dataclass
class Link:
    """One migration between two VMs, with the engine driving it."""

    src: VM
    dst: VM
    engine: Any
    applied: int = 0
    events_applied: int = 0


#: Samples and throttle steps a live link keeps (a long migration in a long-lived
#: process must not grow without bound; the newest half is kept when it is reached).
TIMELINE_LIMIT = 2048


def _trim(lk: Link) -> None:
    """Drop what the world has applied already, and old samples past the limit."""
    tl = lk.engine.tl
    del tl.effects[: lk.applied]
    del tl.events[: lk.events_applied]
    lk.applied = lk.events_applied = 0
    for series in (tl.samples, tl.throttle_steps):
        if len(series) > TIMELINE_LIMIT:
            del series[: len(series) - TIMELINE_LIMIT // 2]


@dataclass
class World:
    """Everything the simulator knows; pure and deterministic for a given seed."""

    clock: VirtualClock = field(default_factory=VirtualClock)
    seed: int = 0
    vms: dict[str, VM] = field(default_factory=dict)
    listeners: dict[str, VM] = field(default_factory=dict)
    snapshots: dict[str, Snapshot] = field(default_factory=dict)
    links: list[Link] = field(default_factory=list)
    dirs: set[str] = field(default_factory=lambda: {"/", "/tmp", "/var/tmp"})
    #: the host's files as a process sees them: the first bytes of a file, None when it
    #: cannot be opened (None here: the pure model opens every file, all zeros)
    host_file: Callable[[str], bytes | None] | None = None
    _timers: list[tuple[float, int, Callable[[], None]]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)

    # ------------------------------------------------------------ VMs
    def create_vm(
        self,
        name: str,
        spec: VMSpec,
        profile: Profile | str,
        host: Host | None = None,
        incoming: str | None = None,
    ) -> VM:
        """Launch a VM; with ``incoming`` it waits for a migration or restores a snapshot."""
        prof = PROFILES[profile] if isinstance(profile, str) else profile
        vm = VM(self, name, spec, prof, host or default_host(spec.arch))
        self.vms[name] = vm
        if incoming is None:
            return vm
        snapshot = _snapshot_path(prof, incoming)
        if snapshot is not None:
            snap = self.snapshots.get(snapshot)
            if snap is None:
                vm.exit(1)  # "Invalid snapshot path for restoring snapshot"
                return vm
            vm.memory = snap.memory
            vm.migration_status = S.COMPLETED
            vm.runstate = RunState.RUNNING  # -S is ignored with -incoming
            return vm
        vm.runstate = RunState.INMIGRATE
        vm.owns_guest = False
        self.listeners[incoming] = vm
        return vm

    def memory_layout(self, vm: VM) -> MemoryLayout:
        """The VM's RAM plus its firmware's ROM blocks (what a migration sends)."""
        fw = vm.profile.firmware.get(vm.spec.machine)
        if fw is None:
            return vm.spec.layout()
        return vm.spec.layout(rom=fw.rom, rom_nonzero=fw.rom_nonzero)

    def dir_parent_exists(self, path: str) -> bool:
        parent = path.rstrip("/").rsplit("/", 1)[0] or "/"
        return parent in self.dirs

    def copies(self, guest_id: str) -> list[VM]:
        """Live VMs holding the authoritative copy of ``guest_id``."""
        return [
            v for v in self.vms.values() if v.alive and v.owns_guest and v.spec.guest_id == guest_id
        ]

    def running_copies(self, guest_id: str) -> list[VM]:
        return [v for v in self.copies(guest_id) if v.running] + [
            v
            for v in self.vms.values()
            if v.alive and not v.owns_guest and v.running and v.spec.guest_id == guest_id
        ]

    # ------------------------------------------------------------ time
    def attach(self, src: VM, dst: VM, engine: Any) -> None:
        self.links.append(Link(src, dst, engine))

    def schedule(self, t: float, fn: Callable[[], None]) -> None:
        self._timers.append((t, len(self._timers), fn))
        self._timers.sort()

    def advance(self, dt: float) -> None:
        """Move virtual time forward by ``dt`` seconds and settle all migrations."""
        self.clock.advance(dt)
        self.sync()

    def run_until_settled(self, limit: float = 3600.0, step: float = 1.0) -> None:
        """Advance until no migration is in progress (or ``limit`` seconds pass)."""
        end = self.clock.now + limit
        while self.clock.now < end and any(
            lk.engine.end is None or lk.applied < len(lk.engine.tl.effects) for lk in self.links
        ):
            self.advance(min(step, end - self.clock.now))

    def sync(self) -> None:
        """Run engines and timers up to now and apply due effects."""
        now = self.clock.now
        while self._timers and self._timers[0][0] <= now:
            _, _, fn = self._timers.pop(0)
            fn()
        for lk in self.links:
            lk.engine.run_until(now)
            tl = lk.engine.tl
            effects, evs = tl.effects, tl.events
            while True:  # effects and events of one time in the order the engine made them
                due_eff = lk.applied < len(effects) and effects[lk.applied][0] <= now
                due_ev = lk.events_applied < len(evs) and evs[lk.events_applied][0] <= now
                if due_eff and (
                    not due_ev
                    or (effects[lk.applied][0], tl.stamp("effects", lk.applied))
                    < (evs[lk.events_applied][0], tl.stamp("events", lk.events_applied))
                ):
                    self._apply(lk, effects[lk.applied][1])
                    lk.applied += 1
                elif due_ev:
                    _, name, data = evs[lk.events_applied]
                    lk.src.pending.append((name, data))
                    lk.events_applied += 1
                else:
                    break
            st = lk.engine.status
            current = lk.src.engine is lk.engine  # a later migrate replaced this one
            if current and lk.src.alive and (lk.engine.end is not None or st is not S.SETUP):
                lk.src.migration_status = st
            _trim(lk)
        # a migration that ended and whose effects and events all applied is done with
        self.links = [lk for lk in self.links if lk.engine.end is None or lk.engine.end > now]

    def _apply(self, lk: Link, eff: Effect) -> None:
        src, dst = lk.src, lk.dst
        if eff is Effect.SOURCE_STOPPED:
            # QEMU 7.2 softmmu/cpus.c vm_stop_force_state: a running VM stops (STOP); one
            # already stopped only changes its runstate, no event
            src.pending += src.set_runstate(
                RunState.FINISH_MIGRATE if src.profile.tuning_knobs else RunState.PAUSED,
                "STOP" if src.running or not src.profile.qemu_runstate_rules else None,
            )
        elif eff is Effect.SWITCHOVER:
            image = MemoryImage(
                src.memory.size, src.memory.nonzero, src.memory.generation + lk.engine.generation
            )
            src.memory = dst.memory = image
            src.owns_guest, dst.owns_guest = False, True
            src.runstate = RunState.POSTMIGRATE
            src.table.inactive = set(src.table.blockdevs)
            dst.runstate = RunState.RUNNING
            dst.migration_status = S.COMPLETED
            dst.pending.append(("RESUME", {}))
        elif eff is Effect.POSTCOPY_SWITCHOVER:
            src.owns_guest, dst.owns_guest = False, True
            dst.runstate = RunState.RUNNING
            dst.pending.append(("RESUME", {}))
        elif eff is Effect.POSTCOPY_DONE:
            src.memory = dst.memory = MemoryImage(
                src.memory.size, src.memory.nonzero, src.memory.generation + lk.engine.generation
            )
            src.runstate = RunState.POSTMIGRATE
            src.table.inactive = set(src.table.blockdevs)
            dst.migration_status = S.COMPLETED
        elif eff is Effect.SOURCE_EXIT:
            src.exit(0)
        elif eff is Effect.DESTINATION_FAILED:
            if not dst.owns_guest:
                dst.exit(1)
            if src.owns_guest and src.runstate is RunState.FINISH_MIGRATE:
                src.pending += src.set_runstate(RunState.RUNNING, "RESUME")
        elif eff is Effect.SOURCE_RESUMED:
            src.pending += src.set_runstate(RunState.RUNNING, "RESUME")
        elif eff is Effect.GUEST_PAUSED:
            dst.runstate = RunState.PAUSED

    def fail_link(self, src: VM, desc: str = "Unable to write to socket: Broken pipe") -> None:
        """Cut the migration stream of ``src`` now (link cut or destination died)."""
        for lk in self.links:
            if lk.src is src and lk.engine.end is None:
                lk.engine.fail(self.clock.now, desc)
        self.sync()

    def kill(self, vm: VM) -> None:
        """SIGKILL a VM process; an outgoing or incoming migration through it breaks."""
        for lk in self.links:
            if (lk.dst is vm or lk.src is vm) and lk.engine.end is None:
                lk.engine.fail(
                    self.clock.now, "Unable to write to socket: Connection reset by peer"
                )
        vm.exit(137)
        self.sync()
