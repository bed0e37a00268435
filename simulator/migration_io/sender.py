"""The source side of a stream: ships the page map as the model's engine progresses, and
puts the engine's bytes on the wire.

The page map travels in a compact encoding (:mod:`simulator.guest_memory`), so on its
own the stream would be a few KiB long whatever the model says it sent. The wire carries
the model's bytes instead: after each look at the engine, filler makes the stream as long
as ``ram.transferred`` (divided by ``--time-scale``: the wire moves the model's bytes per
second of wall time), and the engine may run ahead of what the socket took by only
:data:`SLACK` bytes (``engine.wire_limit``). So a link is the bottleneck it would be for
the product: a destination that stops reading (SIGSTOP) blocks the stream and
``transferred`` stops growing; a slow link (a proxy, a rate cap) slows the migration; a
destination that dies or a link that is cut fails the next write; and a file target
(exec) gets as many bytes as the product would write.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import socket
import subprocess
import sys
from collections.abc import Awaitable
from typing import Any, TypeVar

from simulator import transport
from simulator.migration_io.view import JSON, ProcessView
from simulator.migration_io.wire import FrameWire, Wire
from simulator.model.migration.status import MigrationStatus as S
from simulator.model.vm import VM

#: Wall seconds between two looks at the engine.
POLL_S = 0.005
#: Wire bytes the engine may be ahead of what the socket took (QEMUFile's buffer and
#: what a write has in hand; the kernel's socket buffers are real and come on top).
SLACK = 1 << 20
#: Filler is written and drained in pieces of this size.
CHUNK = 1 << 20
_ZEROS = bytes(CHUNK)
T = TypeVar("T")


class StreamAborted(Exception):
    """The migration ended (cancelled) while a write waited: the channel is shut down."""


class Sender:
    """One outgoing stream; it is in ``running`` from creation until it is done."""

    def __init__(
        self,
        proc: ProcessView,
        peer: VM,
        running: set[Sender],
        child: subprocess.Popen[bytes] | None = None,
        handed_over: bool = False,
    ) -> None:
        self.proc, self.peer, self.running = proc, peer, running
        self.engine: Any = proc.vm.engine
        self.task: asyncio.Task[None] | None = None
        self.child = child  # exec: the one-way channel's command
        self.was_running = proc.vm.running  # global_state_store before the stop
        # a file target gets the product's byte count; a socket the model's bytes per
        # second of wall time
        self.scale = 1.0 if child is not None else proc.cfg.time_scale
        # post-copy: the guest runs on the destination already (a resumed stream)
        self.handed_over = handed_over
        # filler bytes the socket took so far (a resumed stream goes on from where the
        # engine is: what the broken one had in hand is not sent again)
        self.written = int(self.engine.transferred / self.scale) if handed_over else 0
        # the product's socket write timeout (StratoVirt lib.rs: 30 s), in wall seconds
        timeout = proc.profile.stream_timeout_s
        self.timeout = None if timeout is None else timeout / proc.cfg.time_scale
        self.engine.wire_limit = (self.written + SLACK) * self.scale
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
        full_sent = self.handed_over
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
                if not proc.vm.alive and eng.end is None:
                    # quit with a migration that cannot end (a cancel waiting for good on
                    # an exec channel's return path): QEMU exits all the same, its
                    # migration thread is not joined (softmmu/runstate.c qemu_cleanup ->
                    # migration/migration.c migration_shutdown)
                    return
                if self.peer.owns_guest and eng.status is S.COMPLETED:  # the switch-over
                    await self._finish(wire, writer, full_sent)
                    return
                if self.peer.owns_guest and not self.handed_over:  # post-copy starts
                    await self._hand_over(wire, writer, "postcopy", full_sent)
                    self.handed_over = full_sent = True
                if eng.status is S.POSTCOPY_PAUSED:
                    return  # the stream is shut down: the destination pauses too
                ended = eng.end is not None and eng.end <= proc.world.clock.now
                if ended and eng.status is not S.COMPLETED:  # failed/cancelled before switch
                    with contextlib.suppress(Exception):
                        await asyncio.wait_for(wire.send({"t": "cancel"}), timeout=5.0)
                    return
                if eng.status in (S.ACTIVE, S.POSTCOPY_ACTIVE):
                    await self._round(wire, writer, full_sent)
                    full_sent = True
                await asyncio.sleep(POLL_S)
        except StreamAborted:
            pass  # the channel was shut down by the cancel
        except (transport.StreamError, ConnectionError, OSError) as exc:
            if eng.end is None:
                proc.world.fail_link(proc.vm, self._failure(exc))
        finally:
            writer.close()
            if self.child is not None:
                await asyncio.get_running_loop().run_in_executor(None, self.child.wait)
            self.running.discard(self)

    def _failure(self, exc: BaseException) -> str:
        """A broken stream in the product's words (QEMU's qemu_file error text)."""
        if isinstance(exc, OSError) and exc.errno:
            return f"Unable to write to socket: {os.strerror(exc.errno)}"
        return f"Unable to write to socket: {exc}"

    async def _round(self, wire: Wire, writer: asyncio.StreamWriter, full_sent: bool) -> None:
        mem = self.proc.memory
        log = mem.take_log()
        ranges = mem.ranges() if not full_sent else [r for a, b in log for r in mem.slice(a, b)]
        if ranges or not full_sent:
            await self._wait(wire.send({"t": "mem", "ranges": ranges}))
        await self._pad(wire, writer)

    def _owed(self) -> int:
        return int(self.engine.transferred / self.scale) - self.written

    async def _pad(self, wire: Wire, writer: asyncio.StreamWriter) -> None:
        """Filler up to the engine's ``transferred``, taken by the socket piece by piece;
        each piece the socket takes lets the engine run on."""
        missing = self._owed()
        if missing <= 0:
            return
        await self._wait(wire.begin_pad(missing))
        while missing > 0:
            n = min(missing, CHUNK)
            writer.write(_ZEROS[:n])
            if writer.transport.get_write_buffer_size() > CHUNK:
                await self._wait(writer.drain())  # the socket takes no more for now
            else:
                await asyncio.sleep(0)  # it took it: let the loop run, then go on
            missing -= n
            self.written += n
            self.engine.wire_limit = (self.written + SLACK) * self.scale
        await self._wait(wire.end_pad())

    async def _wait(self, step: Awaitable[T]) -> T:
        """One step on the stream (a write to drain, an answer to come). A cancel shuts
        the channel down (QEMU migrate_fd_cancel: qemu_file_shutdown); the product's
        socket timeout, if it has one, fails a step that waits that long (EAGAIN)."""
        loop = asyncio.get_running_loop()
        task = asyncio.ensure_future(step)
        since = loop.time()
        while True:
            done, _ = await asyncio.wait({task}, timeout=POLL_S)
            if done:
                return task.result()
            self.proc.tick()
            eng = self.engine
            if eng.status is S.POSTCOPY_PAUSED or (
                eng.end is not None and eng.status is not S.COMPLETED
            ):
                task.cancel()
                raise StreamAborted
            if self.timeout is not None and loop.time() - since >= self.timeout:
                task.cancel()
                raise OSError(errno.EAGAIN, os.strerror(errno.EAGAIN))

    async def _hand_over(
        self, wire: Wire, writer: asyncio.StreamWriter, kind: str, full_sent: bool
    ) -> None:
        """The last pages, the guest's state and the digest of its memory: the
        destination verifies them and runs the guest. "done": after the bytes the model
        sent (the migration ends); "postcopy": at once, the bytes follow while the guest
        runs there (postcopy_start sends the device state and "run" before the rest)."""
        mem = self.proc.memory
        log = mem.take_log()
        ranges = mem.ranges() if not full_sent else [r for a, b in log for r in mem.slice(a, b)]
        if kind == "done":
            await self._pad(wire, writer)
        frame: JSON = {
            "t": kind,
            "ranges": ranges,
            "digest": mem.digest(),
            "guest": self.proc.guest.to_json(),
            "running": self.was_running,
        }
        await self._wait(wire.send(frame))

    async def _finish(self, wire: Wire, writer: asyncio.StreamWriter, full_sent: bool) -> None:
        if self.handed_over:  # post-copy: the guest is there already
            await self._round(wire, writer, True)
            await wire.send({"t": "done"})
        else:
            await self._hand_over(wire, writer, "done", full_sent)
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
