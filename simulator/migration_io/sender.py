"""The source side of a stream: ships the page map as the model's engine progresses."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import subprocess
import sys

from simulator import transport
from simulator.migration_io.view import JSON, ProcessView
from simulator.migration_io.wire import FrameWire, Wire
from simulator.model import QemuPrecopy
from simulator.model.migration.status import MigrationStatus as S
from simulator.model.vm import VM

#: Wall seconds between two looks at the engine.
POLL_S = 0.02


class Sender:
    """One outgoing stream; it is in ``running`` from creation until it is done."""

    def __init__(
        self,
        proc: ProcessView,
        peer: VM,
        running: set[Sender],
        child: subprocess.Popen[bytes] | None = None,
    ) -> None:
        self.proc, self.peer, self.running = proc, peer, running
        self.engine = proc.vm.engine
        self.task: asyncio.Task[None] | None = None
        self.child = child  # exec: the one-way channel's command
        self.was_running = proc.vm.running  # global_state_store before the stop
        self.written = 0  # filler bytes sent so far (exec)
        running.add(self)

    def start(self, wire: Wire, writer: asyncio.StreamWriter) -> None:
        """Send over an open stream (tcp, unix) whose handshake ``wire`` has done."""
        self.task = asyncio.get_running_loop().create_task(self.run(wire, writer))

    def start_on(self, sock: socket.socket) -> None:
        """Send over a socket whose stream is not open yet (exec: the command's stdin)."""
        self.task = asyncio.get_running_loop().create_task(self._open_and_run(sock))

    async def _open_and_run(self, sock: socket.socket) -> None:
        reader, writer = await transport.open_stream(sock)
        await self.run(FrameWire(reader, writer), writer)

    async def run(self, wire: Wire, writer: asyncio.StreamWriter) -> None:
        proc, eng = self.proc, self.engine
        full_sent = False
        try:
            if self.child is not None:  # one-way: the configuration travels in the stream
                await wire.send({"t": "hello", "config": transport.vm_config(proc.vm)})
            while True:
                if not self.peer.owns_guest and eng.status in (S.SETUP, S.ACTIVE):
                    # QEMU stores the global run state just before the completion stop
                    # (migration/migration.c migration_completion, global_state_store):
                    # a guest stopped for the switch-over still counts as running.
                    self.was_running = proc.vm.running
                proc.tick()
                if self.peer.owns_guest:  # SWITCHOVER: the guest is stopped on this side
                    await self._finish(wire, writer, full_sent)
                    return
                ended = eng.end is not None and eng.end <= proc.world.clock.now
                if ended and eng.status is not S.COMPLETED:  # failed/cancelled before switch
                    with contextlib.suppress(Exception):
                        await asyncio.wait_for(wire.send({"t": "cancel"}), timeout=5.0)
                    return
                if eng.status in (S.ACTIVE, S.POSTCOPY_ACTIVE):
                    await self._round(wire, writer, full_sent)
                    full_sent = True
                await asyncio.sleep(POLL_S)
        except (transport.StreamError, ConnectionError, OSError) as exc:
            if eng.end is None:
                proc.world.fail_link(proc.vm, f"Unable to write to socket: {exc}")
        finally:
            writer.close()
            if self.child is not None:
                await asyncio.get_running_loop().run_in_executor(None, self.child.wait)
            self.running.discard(self)

    async def _round(self, wire: Wire, writer: asyncio.StreamWriter, full_sent: bool) -> None:
        mem = self.proc.memory
        log = mem.take_log()
        ranges = mem.ranges() if not full_sent else [r for a, b in log for r in mem.slice(a, b)]
        if ranges or not full_sent:
            await wire.send({"t": "mem", "ranges": ranges})
        await self._pad(wire, writer)

    async def _pad(self, wire: Wire, writer: asyncio.StreamWriter) -> None:
        """exec: make the stream as long as the engine's ram.transferred says.

        The page map travels in a compact encoding; a file target's size is observable
        (a 256 MiB guest's QEMU stream is tens of MiB: 4 KiB per non-zero page, 9 bytes
        per zero page), so the rest of the counted bytes follow as filler.
        """
        if self.child is None or not isinstance(self.engine, QemuPrecopy):
            return
        counters = self.engine.c
        missing = int(counters.transferred) - self.written
        if missing <= 0:
            return
        await wire.send({"t": "pad", "n": missing})
        chunk = bytes(1 << 20)
        while missing > 0:
            writer.write(chunk[: min(missing, len(chunk))])
            missing -= len(chunk)
            await writer.drain()
        self.written = int(counters.transferred)

    async def _finish(self, wire: Wire, writer: asyncio.StreamWriter, full_sent: bool) -> None:
        await self._round(wire, writer, full_sent)
        mem = self.proc.memory
        done: JSON = {
            "t": "done",
            "digest": mem.digest(),
            "guest": self.proc.guest.to_json(),
            "running": self.was_running,
        }
        await wire.send(done)
        if self.child is not None:  # no return path
            await writer.drain()
            return
        answer = await asyncio.wait_for(wire.recv(), timeout=30.0)
        if answer.get("t") != "ok":
            print(
                f"simulator: destination rejected the migration: {answer.get('error')}",
                file=sys.stderr,
                flush=True,
            )
