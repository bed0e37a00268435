"""Live migration over QMP: start, watch, cancel; typed results with a time series.

A migration is done only when the terminal status arrived *and* both runstates are
right (source postmigrate, destination running): ``MigrationResult`` carries all three,
and ``finish`` waits for the destination's runstate, not just the source's status.
Statuses and runstates are read into the enums with QAPI's names that the simulator's
model speaks too (``MigrationStatus``: qapi/migration.json, plus StratoVirt's "canceled"
with one "l" from migration/src/protocol.rs; ``RunState``: qapi/run-state.json); a name
outside them is an error naming the VM, never a silent string.
"""

from __future__ import annotations

import enum
import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from harness.errors import HarnessError, QMPTimeout, WaitTimeout
from harness.machine import Machine
from harness.runner import LOCAL, Runner
from harness.targets.traits import SourceAfterMigration, Traits
from harness.waits import scaled, wait_for
from simulator.model.migration.status import MigrationStatus as MigrationStatus
from simulator.model.vm import RunState as RunState

TERMINAL = frozenset(s for s in MigrationStatus if s.terminal)
#: the statuses in which the stream is expected to move (the stall watch)
MOVING = frozenset({MigrationStatus.ACTIVE, MigrationStatus.POSTCOPY_ACTIVE})
T = TypeVar("T")


E = TypeVar("E", MigrationStatus, RunState)


def _named(kind: type[E], value: Any, who: str, what: str) -> E:
    """``value`` as a member of ``kind``; a name outside it is one error naming ``who``."""
    try:
        return kind(value)
    except ValueError:
        raise HarnessError(f"{who}: {what} {value!r}") from None


def status_of(info: dict[str, Any], who: str) -> MigrationStatus:
    """The status of a query-migrate answer (none when absent, as QEMU before a migrate)."""
    value = info.get("status", "none")
    return _named(MigrationStatus, value, who, "query-migrate reports unknown status")


def runstate_of(reply: dict[str, Any], who: str) -> RunState:
    """The runstate of a query-status answer."""
    return _named(RunState, reply.get("status"), who, "query-status reports unknown runstate")


class Transport(enum.Enum):
    TCP = "tcp"
    UNIX = "unix"


def incoming_uri(transport: Transport, traits: Traits, runner: Runner = LOCAL) -> str:
    """The -incoming argument for a destination.

    tcp: port 0 (kernel-chosen, read back with query-migrate) where QMP answers during an
    incoming migration (QEMU); else a free port picked here (StratoVirt). unix: a socket in
    a fresh private directory.
    """
    if transport is Transport.TCP:
        port = 0 if traits.qmp_during_incoming else runner.free_port()
        host = f"[{runner.address}]" if ":" in runner.address else runner.address
        return f"tcp:{host}:{port}"
    return "unix:{dir}/migrate.sock"  # Machine puts it in the VM's private run dir


def destination_uri(dst: Machine, transport: Transport) -> str:
    """Where the source must connect: the real port of a tcp:...:0 listener, or the socket."""
    incoming = dst.spec.incoming
    assert incoming is not None, f"{dst.name} was not started with -incoming"
    if transport is Transport.UNIX or not incoming.endswith(":0"):
        return incoming
    info = dst.qmp.execute("query-migrate")
    for addr in info.get("socket-address", []):
        if addr.get("type") == "inet":
            return f"tcp:{addr['host']}:{addr['port']}"
    raise HarnessError(f"{dst.name}: query-migrate shows no listening address: {info}")


@dataclass
class Sample:
    t: float
    status: MigrationStatus
    remaining: int | None = None
    transferred: int | None = None
    dirty_pages_rate: int | None = None
    throttle: int | None = None

    @classmethod
    def from_info(cls, t: float, info: dict[str, Any], who: str = "query-migrate") -> Sample:
        ram = info.get("ram", {})
        return cls(
            t=round(t, 3),
            status=status_of(info, who),
            remaining=ram.get("remaining"),
            transferred=ram.get("transferred"),
            dirty_pages_rate=ram.get("dirty-pages-rate"),
            throttle=info.get("cpu-throttle-percentage"),
        )


@dataclass
class MigrationResult:
    """A migration's end: ``src_runstate`` is None when the source process exited
    (StratoVirt's does once it completed), ``dst_runstate`` None when no destination
    was asked (the migration did not complete, or there was none)."""

    status: MigrationStatus
    history: list[MigrationStatus] = field(default_factory=list)
    samples: list[Sample] = field(default_factory=list)
    final: dict[str, Any] = field(default_factory=dict)
    events: list[MigrationStatus] = field(default_factory=list)
    seconds: float = 0.0
    src_runstate: RunState | None = None
    dst_runstate: RunState | None = None

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["samples"] = [
            {
                "t": s.t,
                "status": s.status,
                "remaining": s.remaining,
                "transferred": s.transferred,
                "dirty-pages-rate": s.dirty_pages_rate,
                "cpu-throttle-percentage": s.throttle,
            }
            for s in self.samples
        ]
        data["status_history"] = self.history
        return data

    def save(self, path: Path) -> None:
        """Write migration.json next to the VM's logs (the report plots it)."""
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.to_json(), indent=1, default=str))


class MigrationStall(HarnessError):
    """A migration that is still "running" but has moved no byte for a while.

    QEMU itself never notices a destination that stopped reading (SIGSTOP, a dead link
    with TCP still retrying): the stream's socket stays up with data queued and the
    status stays active. The watcher does: the documented way out is migrate_cancel.
    """


class Watch:
    """Polls query-migrate on the source and collects status history and samples."""

    def __init__(self, src: Machine) -> None:
        self.src = src
        self.start = time.monotonic()
        self.history: list[MigrationStatus] = []
        self.samples: list[Sample] = []
        self.event_mark = src.qmp.events.mark()
        self._moved = (time.monotonic(), -1)  # (when, transferred) at the last progress

    def poll(self) -> dict[str, Any]:
        info: dict[str, Any] = self._query()
        sample = Sample.from_info(time.monotonic() - self.start, info, self.src.name)
        self.samples.append(sample)
        if not self.history or self.history[-1] != sample.status:
            self.history.append(sample.status)
        moved = sample.transferred if sample.transferred is not None else -1
        if moved != self._moved[1] or sample.status not in MOVING:
            self._moved = (time.monotonic(), moved)
        return info

    def stalled_for(self) -> float:
        """Seconds since the stream last moved a byte while active (0 if it moves)."""
        return time.monotonic() - self._moved[0]

    def _query(self) -> dict[str, Any]:
        """query-migrate; a source that exits 0 by itself has completed.

        StratoVirt's source destroys its VM and exits (code 0, no event) right after
        setting "completed" (migration/src/migration.rs clear_migration), usually before
        a poll sees the status: there, the exit is the completion.
        """
        try:
            return dict(self.src.qmp.execute("query-migrate"))
        except HarnessError:
            if self.src.target.traits.source_after_migration is not SourceAfterMigration.EXITS:
                raise
            if self.src.wait_exit(timeout=10) != 0:
                raise
            return {"status": "completed"}

    def until(
        self,
        statuses: frozenset[MigrationStatus] | set[MigrationStatus],
        timeout: float,
        stall: float | None = None,
    ) -> dict[str, Any]:
        """Poll until the status is one of ``statuses``; return that query-migrate answer.

        ``stall``: raise MigrationStall (with the phase) once nothing moved for that many
        seconds (scaled), instead of waiting out the whole timeout."""
        limit = scaled(stall) if stall is not None else None

        def probe() -> dict[str, Any] | None:
            info = self.poll()
            status = self.samples[-1].status
            if status in statuses:
                return info
            if limit is not None and self.stalled_for() >= limit:
                moved = (info.get("ram") or {}).get("transferred")
                raise MigrationStall(
                    f"{self.src.name}: migration {status} made no progress for "
                    f"{self.stalled_for():.0f}s (transferred {moved} bytes)",
                    {"phase": status, "transferred": moved, "history": list(self.history)},
                )
            return None

        return wait_for(
            probe, timeout, f"{self.src.name} migration status in {sorted(statuses)}", interval=0.1
        )

    def until_value(
        self, probe: Callable[[dict[str, Any]], T | None], timeout: float, what: str
    ) -> T:
        """Poll until ``probe`` (given each query-migrate answer) returns a value; a
        migration that ends first is an error naming ``what``."""

        def check() -> T | None:
            info = self.poll()
            value = probe(info)
            if value is None and self.samples[-1].status in TERMINAL:
                raise HarnessError(
                    f"{self.src.name}: migration ended {info.get('status')} before {what}",
                    {"migration": info},
                )
            return value

        return wait_for(check, timeout, f"{self.src.name}: {what}", interval=0.05)

    def event_statuses(self) -> list[MigrationStatus]:
        """Statuses announced by QEMU's MIGRATION events (StratoVirt has none)."""
        return [
            status_of(e.get("data", {}), f"{self.src.name}'s MIGRATION event")
            for e in self.src.qmp.events.snapshot()[self.event_mark :]
            if e.get("event") == "MIGRATION"
        ]

    def result(self, final: dict[str, Any]) -> MigrationResult:
        return MigrationResult(
            status=status_of(final, self.src.name),
            history=list(self.history),
            samples=list(self.samples),
            final=final,
            events=self.event_statuses(),
            seconds=round(time.monotonic() - self.start, 3),
        )


def start(
    src: Machine,
    uri: str,
    parameters: dict[str, Any] | None = None,
    capabilities: dict[str, bool] | None = None,
    timeout: float = 30.0,
) -> Watch:
    """Apply parameters/capabilities (QEMU) and issue ``migrate``; return a watch.

    ``timeout`` bounds the ``migrate`` reply (StratoVirt connects inside the handler).
    """
    if capabilities:
        caps = [{"capability": k, "state": v} for k, v in capabilities.items()]
        src.qmp.execute("migrate-set-capabilities", {"capabilities": caps})
    if parameters:
        src.qmp.execute("migrate-set-parameters", parameters)
    watch = Watch(src)
    src.qmp.execute("migrate", {"uri": uri}, timeout=timeout)
    watch.poll()
    return watch


def runstate(vm: Machine) -> RunState:
    return runstate_of(vm.qmp.execute("query-status"), vm.name)


def wait_runstate(vm: Machine, states: set[RunState], timeout: float = 30.0) -> RunState:
    """Wait until query-status reports one of ``states``; return it.

    A monitor that does not answer one query within 10 s is asked again while the
    process lives and the wait lasts: a TCG destination that has just taken over a
    guest dirtying memory on a loaded host can hold its main loop for tens of seconds
    (seen on aarch64 virt); its answer comes later. A process that has exited fails at
    once."""

    def probe() -> RunState | None:
        try:
            state = runstate_of(vm.qmp.execute("query-status", timeout=10.0), vm.name)
        except QMPTimeout:
            if vm.exit_code() is not None:
                raise
            return None
        return state if state in states else None

    return wait_for(probe, timeout, f"{vm.name} runstate in {sorted(states)}")


def finish(watch: Watch, dst: Machine | None, timeout: float = 120.0) -> MigrationResult:
    """Wait for a terminal status, then for the destination to run (or, started with -S,
    to stay paused); fill both runstates."""
    final = watch.until(TERMINAL, timeout)
    if watch.samples[-1].status is MigrationStatus.COMPLETED and not final.get("total-time"):
        # QEMU sets "completed" a moment before total-time/downtime are filled in.
        final = watch.poll()
    status = status_of(final, watch.src.name)
    if watch.event_statuses() and watch.src.exit_code() is None:
        # The status is set, then the MIGRATION event is queued to the monitor: a poll can
        # see the terminal status before its event arrives (migration/migration.c
        # migrate_set_state). Wait for the event so the history is complete.
        wait_for(
            lambda: status in watch.event_statuses(), 10.0, f"the MIGRATION event for {status}"
        )
    result = watch.result(final)
    exited = watch.src.exit_code() is not None
    result.src_runstate = None if exited else runstate(watch.src)
    if dst is not None and result.status is MigrationStatus.COMPLETED:
        settled = wait_runstate(dst, {RunState.RUNNING, RunState.PAUSED}, timeout=90.0)
        if settled is RunState.PAUSED and not dst.spec.start_paused:
            # A destination resumes a running guest a moment after the load ends
            # (process_incoming_migration_bh): give it that moment before calling it paused.
            try:
                settled = wait_runstate(dst, {RunState.RUNNING}, timeout=5.0)
            except WaitTimeout:
                pass
        result.dst_runstate = settled
    return result


def migrate(
    src: Machine,
    dst: Machine,
    transport: Transport,
    parameters: dict[str, Any] | None = None,
    timeout: float = 120.0,
) -> MigrationResult:
    """One full live migration from ``src`` to ``dst`` (already listening)."""
    watch = start(src, destination_uri(dst, transport), parameters)
    return finish(watch, dst, timeout)


def slow_postcopy(seconds: float, dirty_mib: int) -> dict[str, Any]:
    """max-postcopy-bandwidth for the same pace once post-copy has started."""
    return {"max-postcopy-bandwidth": slow_enough(seconds, dirty_mib)["max-bandwidth"]}


def slow_enough(seconds: float, dirty_mib: int) -> dict[str, Any]:
    """max-bandwidth that makes ``dirty_mib`` of guest data take about ``seconds``."""
    return {"max-bandwidth": max(1, int(dirty_mib * (1 << 20) / seconds))}
