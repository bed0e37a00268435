"""One side of a lockstep run: a target, the VMs of the current example, and how a step
runs on them, settles and is observed.

Each example starts from a source restored from the target's boot template (QEMU: the
saved running guest, harness/templates.py; the simulator boots in a fraction of a
second). A step runs, then the backend *settles*: it polls until nothing is in motion
(no migration in setup/cancelling/device, an active one only if it is held back by a
tiny max-bandwidth, a destination done loading or gone, a running guest's pending
unplugs acknowledged, the MIGRATION event of the current status received), so both
sides are compared in the same state, not at the same wall-clock instant.
"""

from __future__ import annotations

import dataclasses
import shlex
import shutil
import time
from collections.abc import Callable
from pathlib import Path

from harness.conformance.steps import JSON, Action, Observation, Step
from harness.errors import HarnessError, QMPCommandError, QMPTimeout, WaitTimeout
from harness.fixtures import VMFactory
from harness.guest import GuestImage
from harness.machine import Machine
from harness.migration import Transport, destination_uri, incoming_uri
from harness.runner import LOCAL
from harness.spec import Arch, VMSpec
from harness.targets.base import Target
from harness.targets.traits import SnapshotMethod
from harness.templates import TemplateStore
from harness.waits import scaled, wait_for

#: max-bandwidth (bytes/s) the state machine sets to hold a migration in "active": at 10
#: bytes/s QEMU's rate limiter lets a page or so through per 100 ms window. Under 10 it
#: is no limit at all (migration.c divides by XFER_LIMIT_RATIO 10; qemu-file.c
#: qemu_file_rate_limit limits only above 0): the fuzzer found that the simulator held
#: such a migration while QEMU sent it at full speed.
HELD_BANDWIDTH = 10
#: an active migration at or below this max-bandwidth counts as settled
HELD_LIMIT = 64 << 10
#: statuses that always move on by themselves
TRANSIENT = frozenset({"setup", "cancelling", "device", "wait-unplug", "postcopy-active"})
SETTLE_S = 30.0
#: a running guest acknowledges an unplug within this (Linux pciehp waits 5 s after the
#: attention button, drivers/pci/hotplug/pciehp_ctrl.c)
UNPLUG_S = 15.0
#: the pending entry of a hot-plugged vCPU until the guest's _OST for its insertion
INSERTING = "inserting:"
EVENT_GRACE_S = 3.0


def exited(code: int | None) -> JSON:
    return {"exited": code}


class Backend:
    """A target in a lockstep run; ``images`` gives guest images (None: the simulator)."""

    def __init__(
        self,
        target: Target,
        spec: VMSpec,
        folder: Path,
        images: Callable[[Arch], GuestImage] | None = None,
        boot: TemplateStore | None = None,
        role: str = "reference",
    ) -> None:
        self.target, self.spec, self.folder = target, spec, folder
        self.label = f"{role} {target.name}"
        self._images, self._boot = images, boot
        self.factory: VMFactory | None = None
        self.vms: dict[str, Machine] = {}
        self.pending: dict[str, set[str]] = {}
        self.events_on: set[str] = set()
        self.statuses: dict[str, list[str]] = {}  # VM name -> statuses its events announced
        self.names: dict[str, str] = {}
        self._marks: dict[str, int] = {}
        self._began = 0.0
        self._count = 0
        self._starts_stream = False
        self._dst_fed = False
        self.unsettled = False
        #: VM name -> its migration status when it last settled
        self.last_status: dict[str, str] = {}

    @property
    def name(self) -> str:
        return self.target.name

    # -- examples --------------------------------------------------------------------------
    def start(self) -> None:
        """A fresh example: the source restored from the boot template, events on."""
        self.stop()
        logs = self.folder / "vms"
        shutil.rmtree(logs, ignore_errors=True)  # only the last example's logs stay
        self.factory = VMFactory(self.target, logs, self._images, self._boot)
        self.vms, self.pending, self.events_on, self.statuses = {}, {}, set(), {}
        self.last_status, self._dst_fed = {}, False
        self.names = {str(self.folder.resolve()): "{dir}"}
        self.vms["src"] = self._restored_source(logs)
        self._events(self.vms["src"])
        src = self.vms["src"]
        self.last_status[src.name] = self._info(src).get("status", "none")

    def _restored_source(self, logs: Path) -> Machine:
        """The source restored from the boot template, on every target alike (a
        restored QEMU already shows its incoming migration as "completed"; a simulator
        that booted would not): the simulator is saved and restored the same way."""
        assert self.factory is not None
        if self._boot is None or self.target.traits.snapshot is not SnapshotMethod.EXEC_STREAM:
            # no exec: stream to save it with (StratoVirt): a cold start, no template
            return self.factory.launch(self.spec, "src")
        image = self.factory._image(self.target.arch, LOCAL)
        spec = self._boot.restore_spec(
            self.target, self.spec, image, self.factory.owner, logs / "boot-template"
        )
        vm = self.factory.create(spec, "src")
        return vm.launch(wait_guest=False, restored=True)

    def stop(self) -> None:
        factory, self.factory = self.factory, None
        self.vms = {}
        if factory is not None:
            factory.close()

    def _events(self, vm: Machine) -> None:
        if not self.target.traits.migration_events:  # StratoVirt: no such capability
            return
        vm.qmp.execute(
            "migrate-set-capabilities", {"capabilities": [{"capability": "events", "state": True}]}
        )
        self.events_on.add(vm.name)

    # -- one step ----------------------------------------------------------------------------
    def begin(self) -> None:
        self._began = time.monotonic()
        self._starts_stream = False
        self._marks = {m.name: m.qmp.events.mark() for m in self.vms.values() if _up(m)}

    def run(self, step: Step) -> JSON:
        self._starts_stream = step.action in (Action.MIGRATE, Action.SNAPSHOT, Action.RESTORE)
        if step.action is Action.MIGRATE:
            return self._migrate()
        if step.action is Action.RESTORE:
            return self._restore()
        vm = self.vms.get(step.vm)
        if vm is None:
            return {"absent": step.vm}
        if vm.exit_code() is not None:
            return exited(vm.exit_code())
        if step.action is Action.SNAPSHOT:
            path = self.folder.resolve() / "snapshot.vmstate"
            self.names[str(path)] = "{snapshot}"
            uri = f"exec:umask 077 && cat > {shlex.quote(str(path))}"
            return self.qmp(vm, "migrate", {"uri": uri})
        if step.action is Action.RAW:
            return self._guard(vm, lambda: vm.qmp.execute_raw(step.message or {}))
        if step.command == "device_del":
            return self._device_del(vm, step)
        reply = self.qmp(vm, step.command, step.arguments)
        args = step.arguments or {}
        if step.command == "device_add" and "socket-id" in args and reply == {"return": {}}:
            # a vCPU: the guest onlines it in its own time (its _OST for the insertion,
            # hw/acpi/cpu.c); a migration before that races the guest (waited for
            # like an unplug)
            self.pending.setdefault(step.vm, set()).add(f"{INSERTING}{args.get('id')}")
        return reply

    def qmp(self, vm: Machine, command: str, arguments: JSON | None = None) -> JSON:
        def call() -> JSON:
            try:
                return {"return": vm.qmp.execute(command, arguments, timeout=20)}
            except QMPCommandError as exc:
                return {"error": {"class": exc.error_class, "desc": exc.desc}}

        return self._guard(vm, call)

    def _guard(self, vm: Machine, call: Callable[[], JSON]) -> JSON:
        try:
            return call()
        except QMPTimeout:
            return {"timeout": True}
        except HarnessError:
            code = _exit_after(vm)
            if code is None:
                raise
            return exited(code)

    def _device_del(self, vm: Machine, step: Step) -> JSON:
        """device_del; while the guest's pciehp still blinks the power indicator of the
        slot it just powered on, QEMU refuses with "guest is busy" (hw/pci/pcie.c
        pcie_cap_slot_unplug_request_cb): a guest-timing artefact, asked again."""
        last: JSON = {}

        def attempt() -> JSON | None:
            nonlocal last
            last = self.qmp(vm, "device_del", step.arguments)
            busy = "power indicator blinking" in str(last.get("error", {}).get("desc", ""))
            return None if busy else last

        try:
            reply = wait_for(attempt, 15.0, f"{vm.name} to accept device_del", interval=0.2)
        except WaitTimeout:
            reply = last
        if reply == {"return": {}}:
            self.pending.setdefault(step.vm, set()).add(str((step.arguments or {}).get("id")))
        return reply

    def _migrate(self) -> JSON:
        src = self.vms.get("src")
        if src is None or src.exit_code() is not None:
            return {"absent": "src"} if src is None else exited(src.exit_code())
        assert self.factory is not None
        # the old destination stays until the source accepted the new migrate: killing
        # it first would break a running migration at a moment QEMU (which notices at
        # its next write) and the simulator (at once) see differently
        old = self.vms.pop("dst", None)
        self._count += 1
        incoming = incoming_uri(Transport.TCP, self.target.traits)
        spec = dataclasses.replace(self.spec, incoming=incoming)
        dst = self.factory.launch(spec, f"dst{self._count}", wait_guest=False, role="dst")
        self.vms["dst"] = dst
        self._marks[dst.name] = 0
        caps = self.qmp(src, "query-migrate-capabilities").get("return") or []
        on = [{"capability": c["capability"], "state": True} for c in caps if c.get("state")]
        if on:
            self.qmp(dst, "migrate-set-capabilities", {"capabilities": on})
            if any(c["capability"] == "events" for c in on):
                self.events_on.add(dst.name)
        uri = destination_uri(dst, Transport.TCP)
        self.names[uri.removeprefix("tcp:")] = "{destination}"
        reply = self.qmp(src, "migrate", {"uri": uri})
        if "return" not in reply and old is not None:  # refused: the old one stays
            dst.shutdown()
            self.vms["dst"] = old
            return reply
        if old is not None:
            old.shutdown()
        # a refused migrate (after a snapshot the source is in postmigrate) leaves the
        # destination waiting for good: nothing to settle there
        self._dst_fed = "return" in reply
        return reply

    def _restore(self) -> JSON:
        path = self.folder.resolve() / "snapshot.vmstate"
        if not path.exists():
            return {"absent": "snapshot"}
        assert self.factory is not None
        old = self.vms.pop("src", None)
        if old is not None:
            old.shutdown()
        self._count += 1
        spec = dataclasses.replace(self.spec, incoming=f"exec:cat {shlex.quote(str(path))}")
        vm = self.factory.create(spec, f"restored{self._count}")
        self.vms["src"] = vm
        self._marks[vm.name] = 0
        try:
            vm.launch(wait_guest=False)
            wait_for(
                lambda: vm.exit_code() is not None or _runstate(vm) != "inmigrate",
                60.0,
                f"{vm.name} to load its snapshot",
            )
        except HarnessError:
            code = _exit_after(vm)
            if code is None:
                raise
        if vm.exit_code() is not None:
            return exited(vm.exit_code())
        self._events(vm)
        return {"return": {}}

    # -- settling ----------------------------------------------------------------------------
    def settle(self) -> None:
        """Wait until nothing moves; one that never settles is shown in its state."""
        self.unsettled = False
        try:
            wait_for(self._settled, SETTLE_S, f"{self.name} to settle", interval=0.02)
        except WaitTimeout:
            self.unsettled = True

    def _settled(self) -> bool:
        live = {r: vm for r, vm in self.vms.items() if _up(vm)}
        info = {r: self._info(vm) for r, vm in live.items()}
        src_status = info.get("src", {}).get("status", "none")
        for role, vm in live.items():
            status = info[role].get("status", "none")
            # a status that did not move on during the last settle and that this step
            # did not start is not waited for twice (a StratoVirt at rest shows "setup")
            stuck = status == self.last_status.get(vm.name) and not self._starts_stream
            if (status in TRANSIENT and not stuck) or (
                status == "active" and role == "src" and not self._held(vm)
            ):
                return False
            state = _runstate(vm)
            if state == "finish-migrate" and status != "pre-switchover":
                return False  # pause-before-switchover waits there with the VM stopped
            waits = role == "dst" and state == "inmigrate" and self._dst_fed
            if waits and src_status == "completed":
                return False
            if role == "dst" and status == "active" and src_status in ("failed", "cancelled"):
                return False  # its stream broke: it exits (process_incoming_migration_co)
            if role == "dst" and status == "failed":
                return False  # process_incoming_migration_co: failed, then exit(EXIT_FAILURE)
            late = time.monotonic() - self._began
            if self.pending.get(role) and state == "running" and late < scaled(UNPLUG_S):
                self._collect()
                if self.pending.get(role):
                    return False
            changed = status != self.last_status.get(vm.name, status if role == "src" else "none")
            if vm.name in self.events_on and changed and late < scaled(EVENT_GRACE_S):
                announced = self._announced(vm)
                if not announced or announced[-1] != status:
                    return False
        for role, vm in live.items():
            self.last_status[vm.name] = info[role].get("status", "none")
        return True

    def _info(self, vm: Machine) -> JSON:
        try:
            return dict(vm.qmp.execute("query-migrate", timeout=10))
        except HarnessError:
            return {}

    def _held(self, vm: Machine) -> bool:
        try:
            params = vm.qmp.execute("query-migrate-parameters", timeout=10)
        except HarnessError:
            return True
        return HELD_BANDWIDTH <= int(params.get("max-bandwidth", 0)) <= HELD_LIMIT

    def _announced(self, vm: Machine) -> list[str]:
        """Statuses the VM's MIGRATION events announced, earlier steps' and this one's."""
        return self.statuses.get(vm.name, []) + _statuses(self._since(vm))

    def _since(self, vm: Machine) -> list[JSON]:
        return vm.qmp.events.snapshot()[self._marks.get(vm.name, 0) :]

    def _collect(self) -> None:
        for role, vm in self.vms.items():
            if not _up(vm) or role not in self.pending:
                continue
            for e in self._since(vm):
                data = e.get("data", {})
                if e.get("event") == "DEVICE_DELETED":
                    self.pending[role].discard(str(data.get("device")))
                    # a vCPU: only its lapic child is reported (/machine/peripheral/ID/lapic)
                    path = str(data.get("path", "")).split("/")
                    if path[1:3] == ["machine", "peripheral"] and path[-1] == "lapic":
                        self.pending[role].discard(path[3])
                info = data.get("info", {})
                if e.get("event") == "ACPI_DEVICE_OST" and info.get("source") == 1:
                    self.pending[role].discard(f"{INSERTING}{info.get('device')}")

    # -- observing ---------------------------------------------------------------------------
    def events(self) -> dict[str, list[JSON]]:
        out: dict[str, list[JSON]] = {}
        for role, vm in self.vms.items():
            if not vm.qmp_open:
                continue
            out[role] = self._since(vm)
        return out

    def observe(self, reply: JSON) -> Observation:
        self._collect()
        state: dict[str, JSON] = {}
        for role, vm in self.vms.items():
            code = vm.exit_code()
            runstate = _runstate(vm) if code is None and vm.qmp_open else None
            if runstate == "gone":
                # its monitor closed under the probe: a VM on its way out (a destination
                # whose stream broke) is shown exited, not half-gone
                code = _exit_after(vm)
            up = code is None and runstate is not None
            status = self._info(vm).get("status", "none") if up else None
            if role == "dst" and status == "failed" and runstate == "inmigrate":
                # its load failed after settle looked: process_incoming_migration_co
                # exits next (exit(EXIT_FAILURE)); show it exited once it has (seen on
                # a loaded host: the simulator's destination read the source's cancel a
                # moment after the settle, while QEMU's had already gone)
                code = _exit_after(vm)
                if code is not None:
                    runstate = None
            probe: JSON = {"alive": code is None, "exit": code}
            if code is None and runstate is not None:
                probe["runstate"] = runstate
                probe["migration"] = status
            probe["pending-unplug"] = sorted(self.pending.get(role, set()))
            if self.unsettled:
                probe["unsettled"] = True
            state[role] = probe
        return Observation(reply, self.events(), state)

    def commit(self) -> None:
        """The step is over: remember the statuses its MIGRATION events announced."""
        for vm in self.vms.values():
            if not vm.qmp_open:
                continue
            self.statuses.setdefault(vm.name, []).extend(_statuses(self._since(vm)))

    def console_answers(self) -> dict[str, bool]:
        """For each VM whose guest runs: does its shell answer on the serial console?"""
        out: dict[str, bool] = {}
        for role, vm in self.vms.items():
            if not _up(vm) or _runstate(vm) != "running":
                continue
            try:
                out[role] = vm.console.run("echo hvlab-ok", timeout=15) == (0, "hvlab-ok")
            except HarnessError:
                out[role] = False
        return out


def _up(vm: Machine) -> bool:
    return vm.exit_code() is None and vm.qmp_open


def _runstate(vm: Machine) -> str:
    try:
        return str(vm.qmp.execute("query-status", timeout=10)["status"])
    except HarnessError:
        return "gone"


def _statuses(events: list[JSON]) -> list[str]:
    return [str(e["data"].get("status")) for e in events if e.get("event") == "MIGRATION"]


def _exit_after(vm: Machine, timeout: float = 5.0) -> int | None:
    """The VM's exit code if it exits within ``timeout`` (a QMP error on a dying VM)."""
    try:
        return wait_for(vm.exit_code, timeout, f"{vm.name} to exit")
    except WaitTimeout:
        return None
