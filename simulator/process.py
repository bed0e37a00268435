"""One simulated hypervisor process: the model VM, its clock, QMP, serial console, streams.

Virtual time is wall time times ``--time-scale``; a ticker advances the model's World,
runs the guest (its writer dirties the page map, the shell resumes), delivers the
model's asynchronous events to the QMP client and ends the process when the VM exits.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from simulator.cmdline import SimConfig
from simulator.errors import Fatal
from simulator.guest_files import VIRTIO_DRIVER, Disk
from simulator.guest_memory import PageMap, Writer
from simulator.guest_shell import KERNEL_RELEASE, PROMPT, READY_MARK, GuestShell
from simulator.guest_state import GuestState
from simulator.host_files import file_head
from simulator.migration_io.component import MigrationIO
from simulator.model import DeviceClass, QmpError, VMSpec, World, guest_ack_unplug
from simulator.model.errors import ErrorClass, Event
from simulator.model.units import PAGE_SIZE
from simulator.model.vm import VM
from simulator.net.component import Network
from simulator.net.guest_net import GuestNet
from simulator.product_log import ProductLog
from simulator.qmp_server import QmpServer
from simulator.qmp_wire import Dialect
from simulator.serial_console import SerialConsole
from simulator.sockets import open_chardev

JSON = dict[str, Any]
TICK_S = 0.01
#: Virtual seconds a running guest takes to acknowledge a PCIe hot-unplug.
UNPLUG_ACK_S = 0.5
#: Wall seconds from start to the boot banner.
BOOT_S = 0.2


class SimProcess:
    """One simulated hypervisor: the model VM, its guest, QMP and serial sockets, and the
    :class:`MigrationIO` that owns its migration streams and snapshot files."""

    def __init__(
        self,
        cfg: SimConfig,
        log: ProductLog | None = None,
        on_listening: Callable[[], None] | None = None,
    ) -> None:
        self.cfg = cfg
        self.log = log  # the product's -D log
        self.on_listening = on_listening  # called once QMP and the console are open
        self.profile = cfg.product_profile()
        self.world = World(seed=cfg.seed, host_file=file_head)
        self.spec = VMSpec(
            machine=cfg.machine,
            smp=cfg.smp,
            memory=cfg.memory,
            resident=cfg.resident,
            devices=cfg.devices,
            workload=cfg.workload,
            start_paused=cfg.start_paused,
            arch=cfg.arch,
        )
        self.guest = GuestState()
        self.writer = Writer(cfg.workload)
        self.shell = GuestShell(self)
        self.vm: VM
        self._memory = PageMap(cfg.memory // PAGE_SIZE)
        self._t0 = time.monotonic()
        self._servers: list[asyncio.Server] = []
        self._sessions: list[asyncio.Task[None]] = []  # client chardevs' one connection
        self.console = SerialConsole(cfg.serial, self._on_console_input)
        self._unplug_due: dict[str, float] = {}
        self.exit_code: int | None = None
        self.qmp: QmpServer | None = None
        self.migration = MigrationIO(self)
        self.network = Network(self, cfg.taps)

    # ------------------------------------------------------------ GuestView
    @property
    def arch(self) -> str:
        return self.vm.arch.value

    @property
    def online_cpus(self) -> int:
        return len(self.vm.online)

    @property
    def present_cpus(self) -> list[int]:
        return sorted(self.vm.online)

    @property
    def memory(self) -> PageMap:
        return self._memory

    @memory.setter
    def memory(self, value: PageMap) -> None:
        self._memory = value

    def block_devices(self) -> list[str]:
        return [d.name for d in self.disks()]

    def disks(self) -> list[Disk]:
        blks = [d for d in self.vm.table.devices.values() if d.cls is DeviceClass.BLK]
        files = self.vm.table.blockdevs
        return [
            Disk(f"vd{chr(ord('a') + i)}", files.get(d.backend or "", ""))
            for i, d in enumerate(blks)
        ]

    def virtio_drivers(self) -> list[str]:
        devices = self.vm.table.devices.values()
        return [VIRTIO_DRIVER[d.cls] for d in devices if d.cls in VIRTIO_DRIVER]

    def uptime(self) -> float:
        return self.guest.runtime

    def mac_addresses(self) -> list[tuple[str, str]]:
        out = [("lo", "00:00:00:00:00:00")]
        nets = [
            d
            for d in self.vm.table.devices.values()
            if d.cls in (DeviceClass.NET, DeviceClass.VHOST_NET, DeviceClass.VHOST_USER_NET)
        ]
        for i, d in enumerate(nets):
            out.append((f"eth{i}", (d.mac or f"52:54:00:12:34:{0x56 + i:02x}").lower()))
        return out

    @property
    def net(self) -> GuestNet:
        return self.guest.net

    @property
    def time_scale(self) -> float:
        return self.cfg.time_scale

    def guest_arrived(self) -> None:
        """An incoming migration handed the guest over; it is about to run here."""
        self.network.arrived()

    def pattern_base(self) -> int:
        w = self.cfg.workload
        end = max(self.cfg.resident, w.ws_offset + w.working_set)
        return -(-end // PAGE_SIZE)

    # ------------------------------------------------------------ clock
    def now(self) -> float:
        return (time.monotonic() - self._t0) * self.cfg.time_scale

    def tick(self) -> None:
        """Advance the model and the guest to the current virtual time."""
        dt = self.now() - self.world.clock.now
        if dt > 0:
            if self.vm.running:
                self.guest.runtime += dt
                self.writer.run(self._memory, dt)
            self.world.advance(dt)
        if self.vm.running:
            self._boot()
            if self.guest.booted:
                self._run_shell()
            self._ack_unplugs()

    def _ack_unplugs(self) -> None:
        for dev in list(self.vm.table.pending_unplug):
            due = self._unplug_due.setdefault(dev, self.guest.runtime + UNPLUG_ACK_S)
            if self.guest.runtime >= due:
                guest_ack_unplug(self.vm, dev)
                del self._unplug_due[dev]

    # ------------------------------------------------------------ serial console
    def serial_write(self, text: str) -> None:
        self.console.write(text)

    def _boot(self) -> None:
        # A chardev with wait=off drops output nobody reads (unless it has a logfile):
        # like a real kernel, take a moment to boot, and wait for a reader a while longer.
        if self.guest.booted or self.guest.runtime < BOOT_S * self.cfg.time_scale:
            return
        if self.console.has_reader or self.guest.runtime > 5.0 * self.cfg.time_scale:
            self.guest.booted = True
            self.serial_write(f"{READY_MARK}: {KERNEL_RELEASE} {self.arch}\r\n{PROMPT}")

    def _run_shell(self) -> None:
        """The guest's shell reads and runs typed lines, unless its console is blocked
        (output nobody reads: it waits, as a guest writing to a full tty does)."""
        if self.console.blocked:
            return
        if self.shell.busy:
            self.serial_write(self.shell.resume())
        while not self.shell.busy and not self.console.blocked:
            line = self.console.next_line()
            if line is None:
                break
            self.serial_write(self.shell.feed_line(line))

    def _on_console_input(self) -> None:
        if self.vm.running and self.guest.booted:
            self._run_shell()

    # ------------------------------------------------------------ QMP hook
    def execute(self, cmd: str, args: JSON) -> tuple[Any, list[Event]]:
        """The QMP server's command hook: adapters first, then the model."""
        self.tick()
        if cmd == "x-hvlab-memory-digest":  # simulator-only: sha256 of guest memory
            out: JSON = {"digest": self._memory.digest(), "pages": self._memory.pages}
            received = self.migration.received_digest
            if received is not None:
                out["received"] = received
            return out, []
        if cmd == "query-version":
            v = self.profile.greeting["QMP"]["version"]
            return dict(v), []
        handled = self.migration.intercept(cmd, args) or self.network.intercept(cmd, args)
        if handled is not None:
            return handled
        if not self.vm.alive:
            return QmpError(ErrorClass.GENERIC_ERROR, "VM is not running"), []
        reply, events = self.vm.execute(cmd, args)
        self.network.sync()
        events = list(events) + self.vm.take_events()
        return reply, events

    def qmp_events(self, events: list[Event]) -> None:
        """Send events raised outside a command (an asynchronous connect resolving)."""
        qmp = self.qmp
        for name, data in events:
            if qmp is not None:
                qmp.emit(name, data)

    # ------------------------------------------------------------ lifecycle
    async def run(self) -> int:
        loop = asyncio.get_running_loop()
        stop = asyncio.Event()
        signals: list[int] = []

        def on_signal(sig: int) -> None:
            signals.append(sig)
            stop.set()

        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            loop.add_signal_handler(sig, on_signal, sig)
        ready = asyncio.Event()
        try:
            self.vm = self.migration.create_vm()
            self.network.start()
        except Fatal as exc:
            self.network.close()
            return self._failed(str(exc))
        self.console.open_log()
        server = await self.migration.start_incoming(ready)
        if server is not None:
            self._servers.append(server)
        dialect = Dialect.of(self.profile, self.cfg.qmp_rate_limit or 0)
        qmp = self.qmp = QmpServer(dialect, self.execute, ready)
        qmp.blocked = lambda: self.migration.blocked
        try:
            if self.cfg.serial.kind == "socket" and self.cfg.serial.endpoint is not None:
                self._open(await open_chardev(self.cfg.serial.endpoint, self.console.client))
            self._open(await open_chardev(self.cfg.qmp, qmp.handle))
        except Fatal as exc:
            await self._shutdown()
            return self._failed(str(exc))
        if self.on_listening is not None:
            self.on_listening()
        vcpus = loop.create_task(self._vcpus_start(ready))
        try:
            while not stop.is_set():
                self.tick()
                self.network.sync()
                for name, data in self.vm.take_events():
                    qmp.emit(name, data)
                failed = self.migration.incoming_failed
                if failed is not None:
                    self.exit_code = self._failed(failed)
                    break
                if not self.vm.alive and not self.migration.busy:
                    self.exit_code = self.vm.exit_code or 0
                    break
                await asyncio.sleep(TICK_S)
        finally:
            vcpus.cancel()
            await self._shutdown()
        code = self.exit_code if self.exit_code is not None else 0
        if self.log is not None and code == 0:
            self.log.exited(code, signals[0] if signals else None, None)
        return code

    def _failed(self, why: str) -> int:
        """The process ends with status 1 and one line (and the product's log says why)."""
        print(f"simulator: {why}", file=sys.stderr, flush=True)
        if self.log is not None:
            self.log.exited(1, None, why)
        return 1

    async def _vcpus_start(self, ready: asyncio.Event) -> None:
        """The vCPU threads start once the VM is set up (after an incoming migration)."""
        await ready.wait()
        if self.log is not None:
            self.log.vcpus_running([self.vm.thread_ids[i] for i in sorted(self.vm.online)])

    def _open(self, chardev: asyncio.Server | asyncio.Task[None]) -> None:
        if isinstance(chardev, asyncio.Server):
            self._servers.append(chardev)
        else:
            self._sessions.append(chardev)

    async def _shutdown(self) -> None:
        self.network.close()
        qmp = self.qmp
        if qmp is not None:
            qmp.closing = True
            await qmp.close_client()
        self.console.close()
        for srv in self._servers:
            srv.close()
        for ep in (self.cfg.qmp, self.cfg.serial.endpoint):
            if ep is not None and ep.kind == "unix" and ep.server:
                with contextlib.suppress(OSError):
                    Path(ep.path).unlink()
