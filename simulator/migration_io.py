"""Migration and snapshot I/O of one process, around the model's pure engines.

The model runs a migration between two VMs of *one* World. Across processes, the source
builds a stand-in for the remote destination from the configuration the destination
sends back (``transport.vm_config``), so the model's checks and engine run unchanged;
:class:`Sender` then ships the page map over the real socket as the engine progresses,
and :class:`Receiver` (the ``-incoming`` side) applies it and verifies the digest.
Snapshots (``migrate file:DIR``) write ``DIR/memory`` and ``DIR/state``;
``-incoming file:DIR`` restores them.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import struct
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from simulator import transport
from simulator.cmdline import Endpoint, parse_endpoint
from simulator.guest_memory import PageMap
from simulator.guest_shell import GuestState
from simulator.model import MemoryImage, Profile, QmpError
from simulator.model.errors import ErrorClass
from simulator.model.migration.params import Capability
from simulator.model.migration.status import MigrationStatus as S
from simulator.model.units import PAGE_SIZE
from simulator.model.vm import VM, RunState
from simulator.model.vm_migration import config_mismatch
from simulator.model.world import Snapshot

if TYPE_CHECKING:
    from simulator.process import SimProcess

JSON = dict[str, Any]
_REFUSED = "Connection refused (os error 111)"
_HEADER = 4096


def qmp_during_incoming(profile: Profile) -> bool:
    """QEMU answers QMP while -incoming waits; StratoVirt's main loop has not started."""
    return profile.qmp_during_incoming


def create_vm(proc: SimProcess) -> VM:
    """The model VM for this process (booted, waiting for a migration, or restored)."""
    from simulator.process import Fatal

    cfg, world = proc.cfg, proc.world
    incoming = cfg.incoming
    if incoming is not None and incoming.startswith("file:"):
        path = incoming[5:].split(",")[0]
        mem, guest, snap_cfg = _load_snapshot(path)
        if int(snap_cfg["smp"][0]) != cfg.smp.cpus:
            raise Fatal(
                "Failed to start VM.: Failed to restore snapshot: Failed to read instance of object"
            )
        if proc.profile.restore_checks_memory and mem.pages * PAGE_SIZE != cfg.memory:
            raise Fatal(
                "Failed to start VM.: Failed to restore snapshot: the configuration differs "
                "from the template (memory size)"
            )
        image = MemoryImage(mem.pages * PAGE_SIZE, ((0, mem.pages),), 0)  # mapped=true
        world.snapshots[path] = Snapshot(proc.spec, image, proc.profile.name, cfg.devices)
        vm = world.create_vm("vm", proc.spec, proc.profile, incoming=incoming)
        if not vm.alive:
            raise Fatal("Failed to start VM.: Invalid snapshot path for restoring snapshot")
        proc.memory, proc.guest = mem, guest
        proc.received_digest = mem.digest()
    elif incoming is not None:
        vm = world.create_vm("vm", proc.spec, proc.profile, incoming=incoming)
    else:
        vm = world.create_vm("vm", proc.spec, proc.profile)
        nonzero = proc.spec.layout().nonzero_ranges(cfg.workload)
        proc.memory = PageMap.boot(cfg.memory // PAGE_SIZE, nonzero)
    vm.table.blockdevs.update(cfg.drives)
    vm.table.netdevs.update(cfg.netdevs)
    return vm


# ------------------------------------------------------------------ QMP adapters
def intercept(proc: SimProcess, cmd: str, args: JSON) -> tuple[Any, list[Any]] | None:
    """Commands that need I/O beyond the model; None lets the model answer."""
    rx: Receiver | None = getattr(proc, "receiver", None)
    if cmd == "query-migrate" and rx is not None and not rx.finished:
        return rx.query(), []
    conn: Connecting | None = getattr(proc, "connecting", None)
    if conn is not None and cmd in ("query-migrate", "migrate_cancel", "migrate"):
        return conn.command(cmd)
    uri = args.get("uri")
    if cmd != "migrate" or not isinstance(uri, str) or not proc.vm.alive:
        return None
    scheme = uri.partition(":")[0].lower()
    if scheme == "file":
        return _snapshot(proc, args)
    if scheme in ("tcp", "unix"):
        return _start_outgoing(proc, args)
    if scheme == "exec" and proc.vm.profile.exec_migration:
        return _start_exec(proc, args)
    return None


def _start_exec(proc: SimProcess, args: JSON) -> tuple[Any, list[Any]]:
    """``migrate exec:CMD`` (QEMU migration/exec.c exec_start_outgoing_migration).

    ``/bin/sh -c CMD`` gets the stream on its stdin; the channel is one-way (no return
    path), so the destination's checks happen when the stream is loaded.
    """
    vm, uri = proc.vm, str(args["uri"])
    ours, theirs = socket.socketpair()
    try:
        child = subprocess.Popen(
            ["/bin/sh", "-c", uri[5:]], stdin=theirs.fileno(), stdout=subprocess.DEVNULL
        )
    except OSError as exc:
        ours.close()
        return QmpError(ErrorClass.GENERIC_ERROR, f"Unable to spawn: {exc}"), []
    finally:
        theirs.close()
    spec, profile = transport.spec_from_config(transport.vm_config(vm))
    proc.peers += 1
    peer = proc.world.create_vm(f"peer{proc.peers}", spec, profile, incoming=uri)
    reply, events = vm.execute("migrate", args)
    proc.world.listeners.pop(uri, None)
    if isinstance(reply, QmpError):
        ours.close()
        child.wait()
        return reply, events
    sender = Sender(proc, ours, peer, child=child)
    proc.keep_alive.add(sender)
    sender.task = asyncio.get_running_loop().create_task(sender.run())
    return reply, events


def _os_error(exc: OSError) -> str:
    return f"{exc.strerror or exc} (os error {exc.errno or 0})"


def _start_outgoing(proc: SimProcess, args: JSON) -> tuple[Any, list[Any]]:
    """``migrate tcp:|unix:``: connect, exchange the configuration, start the engine.

    QEMU (migration/socket.c socket_start_outgoing_migration): migrate_init sets "setup"
    and the connect runs asynchronously (qio_channel_socket_connect_async); {} at once.
    StratoVirt (migration/src/lib.rs): TcpStream/UnixStream::connect inside the QMP
    handler, so the reply (and every other QMP answer) waits for the connect; a failure
    is the reply's GenericError with the OS text.
    """
    vm, uri = proc.vm, str(args["uri"])
    reply, events = vm.execute("migrate", args)  # no stand-in yet: runs only the pre-checks
    if not isinstance(reply, QmpError) or reply.desc != _REFUSED:
        return reply, events
    try:
        ep = parse_endpoint(uri.split(",")[0], "migrate")
    except ValueError:
        return reply, events
    loop = asyncio.get_running_loop()
    if vm.profile.async_connect:
        conn = Connecting(proc, args)
        proc.connecting = conn
        conn.task = loop.create_task(conn.run(ep))
        return {}, conn.set_status(S.SETUP)
    return loop.create_task(_connect_and_start(proc, args, ep)), []


async def _connect(ep: Endpoint) -> socket.socket:
    """A kernel connect with no timeout of its own (neither product sets one)."""
    fam = socket.AF_UNIX if ep.kind == "unix" else socket.AF_INET
    sock = socket.socket(fam, socket.SOCK_STREAM)
    sock.setblocking(False)
    try:
        await asyncio.get_running_loop().sock_connect(
            sock, ep.path if ep.kind == "unix" else (ep.host, ep.port)
        )
    except BaseException:
        sock.close()
        raise
    return sock


def _connect_error(vm: VM, exc: OSError) -> str:
    return vm.profile.connect_error.format(strerror=exc.strerror or exc, errno=exc.errno or 0)


async def _connect_and_start(proc: SimProcess, args: JSON, ep: Endpoint) -> tuple[Any, list[Any]]:
    try:
        sock = await _connect(ep)
    except OSError as exc:
        return QmpError(ErrorClass.GENERIC_ERROR, _connect_error(proc.vm, exc)), []
    return await _handshake_and_start(proc, args, sock)


async def _handshake_and_start(
    proc: SimProcess, args: JSON, sock: socket.socket
) -> tuple[Any, list[Any]]:
    """Exchange configurations over the connected socket, then run the model's migrate."""
    vm, uri = proc.vm, str(args["uri"])
    try:
        await _send_async(sock, {"t": "hello", "config": transport.vm_config(vm)})
        ack = await asyncio.wait_for(_recv_async(sock), timeout=30.0)
        spec, profile = transport.spec_from_config(ack["config"])
    except (OSError, TimeoutError, transport.StreamError, KeyError) as exc:
        sock.close()
        return QmpError(ErrorClass.GENERIC_ERROR, f"Failed to start migration: {exc}"), []
    proc.peers += 1
    peer = proc.world.create_vm(f"peer{proc.peers}", spec, profile, incoming=uri)
    reply, events = vm.execute("migrate", args)
    proc.world.listeners.pop(uri, None)
    if isinstance(reply, QmpError):
        sock.close()
        return reply, events
    sender = Sender(proc, sock, peer)
    proc.keep_alive.add(sender)
    sender.task = asyncio.get_running_loop().create_task(sender.run())
    return reply, events


class Connecting:
    """A QEMU-style outgoing connect in flight: the status is "setup" until it resolves.

    QEMU 7.2 migration/migration.c: migrate_cancel (migrate_fd_cancel) moves setup ->
    cancelling but has no channel to shut down yet, so the connect runs on; when it
    resolves, migrate_fd_connect (error: migrate_fd_error + migrate_fd_cleanup; success:
    the migration thread finds the state is not setup) ends cancelling -> cancelled, and
    a failed connect without a cancel ends setup -> failed. The doc profile has no
    "cancelling": S003 lists none, so a cancel is "canceled" at once.
    """

    def __init__(self, proc: SimProcess, args: JSON) -> None:
        self.proc, self.args = proc, args
        self.cancelled = False
        self.task: asyncio.Task[None] | None = None
        self.error: str | None = None

    def set_status(self, st: S) -> list[tuple[str, JSON]]:
        vm = self.proc.vm
        vm.engine = None  # query-migrate now describes this migration, not an older one
        vm.migration_status = st
        if Capability.EVENTS in vm.caps:
            return [("MIGRATION", {"status": st.value})]
        return []

    def command(self, cmd: str) -> tuple[Any, list[Any]]:
        vm = self.proc.vm
        if cmd == "query-migrate":
            return {"status": vm.migration_status.value}, []
        if cmd == "migrate":
            return QmpError(ErrorClass.GENERIC_ERROR, "There's a migration process in progress"), []
        if self.cancelled:
            return {}, []
        self.cancelled = True
        if vm.profile.cancel_waits_for_connect:
            return {}, self.set_status(S.CANCELLING)
        if self.task is not None:
            self.task.cancel()
        self.proc.connecting = None
        return {}, self.set_status(vm.profile.cancelled_status)

    def _end(self, st: S) -> None:
        if self.proc.connecting is self:
            self.proc.connecting = None
            self.proc.qmp_events(self.set_status(st))

    async def run(self, ep: Endpoint) -> None:
        try:
            sock = await _connect(ep)
        except OSError as exc:
            self.error = _connect_error(self.proc.vm, exc)
            self._end(S.CANCELLED if self.cancelled else S.FAILED)
            return
        if self.cancelled:
            sock.close()
            self._end(S.CANCELLED)
            return
        self.proc.connecting = None
        reply, events = await _handshake_and_start(self.proc, self.args, sock)
        if isinstance(reply, QmpError):
            self.error = reply.desc
            self.proc.connecting = self
            self._end(S.FAILED)
            return
        eng = self.proc.vm.engine
        timeline = getattr(eng, "tl", None)
        if timeline is not None and timeline.events[:1] == [
            (eng.start, "MIGRATION", {"status": "setup"})
        ]:
            del timeline.events[0]  # announced by migrate_init already
        self.proc.qmp_events(list(events))


async def _send_async(sock: socket.socket, frame: JSON) -> None:
    data = json.dumps(frame, separators=(",", ":")).encode()
    await asyncio.get_running_loop().sock_sendall(sock, struct.pack(">I", len(data)) + data)


async def _recv_async(sock: socket.socket) -> JSON:
    loop = asyncio.get_running_loop()

    async def exact(n: int) -> bytes:
        buf = b""
        while len(buf) < n:
            part = await loop.sock_recv(sock, n - len(buf))
            if not part:
                raise transport.StreamError("destination closed the migration connection")
            buf += part
        return buf

    (n,) = struct.unpack(">I", await exact(4))
    frame = json.loads(await exact(n))
    if not isinstance(frame, dict):
        raise transport.StreamError("malformed frame")
    return frame


class Sender:
    """Ships the page map to the destination as the source engine progresses."""

    def __init__(
        self,
        proc: SimProcess,
        sock: socket.socket,
        peer: VM,
        child: subprocess.Popen[bytes] | None = None,
    ) -> None:
        self.proc, self.sock, self.peer = proc, sock, peer
        self.engine = proc.vm.engine
        self.task: asyncio.Task[None] | None = None
        self.child = child  # exec: the one-way channel's command
        self.was_running = proc.vm.running  # global_state_store before the stop
        self.written = 0  # filler bytes sent so far (exec)

    async def run(self) -> None:
        proc, eng = self.proc, self.engine
        self.sock.setblocking(False)
        reader, writer = await asyncio.open_connection(sock=self.sock)
        full_sent = False
        if self.child is not None:
            hello = {"t": "hello", "config": transport.vm_config(proc.vm)}
            await transport.send_frame(writer, hello)
        try:
            while True:
                if not self.peer.owns_guest and eng.status in (S.SETUP, S.ACTIVE):
                    # QEMU stores the global run state just before the completion stop
                    # (migration/migration.c migration_completion, global_state_store):
                    # a guest stopped for the switch-over still counts as running.
                    self.was_running = proc.vm.running
                proc.tick()
                if self.peer.owns_guest:  # SWITCHOVER: the guest is stopped on this side
                    await self._finish(reader, writer, full_sent)
                    return
                ended = eng.end is not None and eng.end <= proc.world.clock.now
                if ended and eng.status is not S.COMPLETED:  # failed/cancelled before switch
                    with contextlib.suppress(Exception):
                        await transport.send_frame(writer, {"t": "cancel"})
                    return
                if eng.status in (S.ACTIVE, S.POSTCOPY_ACTIVE):
                    await self._round(writer, full_sent)
                    full_sent = True
                await asyncio.sleep(0.02)
        except (transport.StreamError, ConnectionError, OSError) as exc:
            if eng.end is None:
                proc.world.fail_link(proc.vm, f"Unable to write to socket: {exc}")
        finally:
            writer.close()
            if self.child is not None:
                await asyncio.get_running_loop().run_in_executor(None, self.child.wait)
            proc.keep_alive.discard(self)

    async def _round(self, writer: asyncio.StreamWriter, full_sent: bool) -> None:
        mem = self.proc.memory
        log = mem.take_log()
        ranges = mem.ranges() if not full_sent else [r for a, b in log for r in mem.slice(a, b)]
        if ranges or not full_sent:
            await transport.send_frame(writer, {"t": "mem", "ranges": ranges})
        await self._pad(writer)

    async def _pad(self, writer: asyncio.StreamWriter) -> None:
        """exec: make the stream as long as the engine's ram.transferred says.

        The page map travels in a compact encoding; a file target's size is observable
        (a 256 MiB guest's QEMU stream is tens of MiB: 4 KiB per non-zero page, 9 bytes
        per zero page), so the rest of the counted bytes follow as filler.
        """
        counters = getattr(self.engine, "c", None)
        if self.child is None or counters is None:
            return
        missing = int(counters.transferred) - self.written
        if missing <= 0:
            return
        await transport.send_frame(writer, {"t": "pad", "n": missing})
        chunk = bytes(1 << 20)
        while missing > 0:
            writer.write(chunk[: min(missing, len(chunk))])
            missing -= len(chunk)
            await writer.drain()
        self.written = int(counters.transferred)

    async def _finish(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, full_sent: bool
    ) -> None:
        await self._round(writer, full_sent)
        mem = self.proc.memory
        await transport.send_frame(
            writer,
            {
                "t": "done",
                "digest": mem.digest(),
                "guest": self.proc.guest.to_json(),
                "running": self.was_running,
            },
        )
        if self.child is not None:  # no return path
            await writer.drain()
            return
        answer = await asyncio.wait_for(transport.recv_frame(reader), timeout=30.0)
        if answer.get("t") != "ok":
            print(
                f"simulator: destination rejected the migration: {answer.get('error')}",
                file=sys.stderr,
                flush=True,
            )


class Receiver:
    """The ``-incoming tcp:|unix:`` side: one connection, verify, then run the guest."""

    def __init__(self, proc: SimProcess, ready: asyncio.Event) -> None:
        self.proc, self.ready = proc, ready
        self.ep = parse_endpoint(str(proc.cfg.incoming), "-incoming")
        self.status = "setup"
        self.failed: str | None = None
        self.finished = False
        self.accepted = False
        self.server: asyncio.Server | None = None
        self.port = self.ep.port
        self.one_way = self.ep.kind == "exec"
        self.child: asyncio.subprocess.Process | None = None
        self.task: asyncio.Task[None] | None = None
        proc.receiver = self

    async def spawn(self) -> None:
        """``-incoming exec:CMD``: read the stream from ``sh -c CMD``'s stdout."""
        ours, theirs = socket.socketpair()
        try:
            self.child = await asyncio.create_subprocess_exec(
                "/bin/sh", "-c", self.ep.path, stdin=subprocess.DEVNULL, stdout=theirs.fileno()
            )
        finally:
            theirs.close()
        reader, writer = await asyncio.open_connection(sock=ours)
        self.accepted = True
        self.task = asyncio.get_running_loop().create_task(self._serve(reader, writer))

    async def _send(self, writer: asyncio.StreamWriter, frame: JSON) -> None:
        if not self.one_way:
            await transport.send_frame(writer, frame)

    async def listen(self) -> asyncio.Server:
        from simulator.process import listen

        self.server = await listen(self.ep, self._conn)
        if self.ep.kind == "tcp":
            self.port = int(self.server.sockets[0].getsockname()[1])
        return self.server

    def query(self) -> JSON:
        out: JSON = {"status": self.status}
        if self.ep.kind == "exec":
            return out
        if self.ep.kind == "tcp":
            out["socket-address"] = [{"type": "inet", "host": self.ep.host, "port": str(self.port)}]
        else:
            out["socket-address"] = [{"type": "unix", "path": self.ep.path}]
        return out

    def _fail(self, why: str) -> None:
        self.status = "failed"
        self.failed = (
            f"Failed to start VM.: Failed to start migration.: "
            f"Failed to receive migration with {self.ep.kind} mode: {why}"
        )

    async def _conn(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.accepted:  # exactly one accept(): later connections see a closed socket
            writer.close()
            return
        self.accepted = True
        if self.server is not None:
            self.server.close()
        if self.ep.kind == "unix":
            with contextlib.suppress(OSError):
                os.unlink(self.ep.path)
        await self._serve(reader, writer)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await self._receive(reader, writer)
        except (transport.StreamError, ConnectionError, OSError, ValueError, TypeError) as exc:
            self._fail(str(exc))
        finally:
            writer.close()

    async def _receive(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        proc, vm = self.proc, self.proc.vm
        hello = await transport.recv_frame(reader)
        if hello.get("t") != "hello":
            raise transport.StreamError("expected the VM configuration first")
        self.status = "active"
        spec, profile = transport.spec_from_config(hello["config"])
        shadow = proc.world.create_vm("source", spec, profile)
        err = config_mismatch(shadow, vm)
        await self._send(
            writer, {"t": "ack", "ok": err is None, "error": err, "config": transport.vm_config(vm)}
        )
        if err is not None:
            self._fail(err)
            return
        while True:
            frame = await transport.recv_frame(reader)
            kind = frame.get("t")
            if kind == "pad":  # filler standing for page data (exec streams)
                left = int(frame.get("n", 0))
                while left > 0:
                    left -= len(await reader.readexactly(min(left, 1 << 20)))
                continue
            if kind in ("mem", "done"):
                for a, b, v in frame.get("ranges", []):
                    proc.memory.write(int(a), int(b), int(v))
            if kind == "cancel":
                self.status = vm.profile.cancelled_status.value
                self._fail("Cancel migration from source")
                return
            if kind == "done":
                break
            if kind != "mem":
                raise transport.StreamError(f"unexpected frame {kind!r}")
        if proc.memory.digest() != frame.get("digest"):
            await self._send(writer, {"t": "bad", "error": "memory differs"})
            self._fail("guest memory differs from the source's")
            return
        proc.received_digest = str(frame.get("digest"))
        proc.guest = GuestState.from_json(dict(frame.get("guest") or {}))
        proc.memory.take_log()
        # QEMU process_incoming_migration_bh: run unless -S, or unless the source's
        # global state says it was not running (a paused VM's stream restores paused).
        paused = qmp_during_incoming(vm.profile) and (
            proc.cfg.start_paused or not frame.get("running", True)
        )
        vm.runstate = RunState.PAUSED if paused else RunState.RUNNING
        vm.owns_guest = True
        vm.migration_status = S.COMPLETED
        if not paused and qmp_during_incoming(vm.profile):
            vm.pending.append(("RESUME", {}))
        self.status = "completed"
        self.finished = True
        await self._send(writer, {"t": "ok"})
        self.ready.set()


# ------------------------------------------------------------------ snapshots
def _header(fmt: str, arch: str) -> bytes:
    head = json.dumps(
        {
            "magic_num": "STRATOVIRT",
            "compat_version": 8194,
            "arch": arch,
            "format": fmt,
            "os_type": "linux000",
            "hvlab_sim": 1,
        }
    ).encode()
    return (struct.pack("<Q", len(head)) + head).ljust(_HEADER, b"\0")


def _read(path: Path, fmt: str, what: str) -> JSON:
    from simulator.process import Fatal

    try:
        with open(path, "rb") as f:
            data = f.read(_HEADER + 8)
            (n,) = struct.unpack("<Q", data[:8])
            head = json.loads(data[8 : 8 + n])
            (blen,) = struct.unpack("<Q", data[_HEADER : _HEADER + 8])
            body = json.loads(f.read(blen))
    except (OSError, ValueError, struct.error) as exc:
        raise Fatal(f"Failed to start VM.: Failed to restore snapshot: {what}") from exc
    if head.get("magic_num") != "STRATOVIRT" or head.get("format") != fmt:
        raise Fatal(f"Failed to start VM.: Failed to restore snapshot: {what}")
    if not isinstance(body, dict):
        raise Fatal(f"Failed to start VM.: Failed to restore snapshot: {what}")
    return body


def _load_snapshot(path: str) -> tuple[PageMap, GuestState, JSON]:
    from simulator.process import Fatal

    d = Path(path)
    if not d.is_dir():
        raise Fatal("Failed to start VM.: Invalid snapshot path for restoring snapshot")
    mem_json = _read(d / "memory", "MemoryFull", "Invalid memory snapshot file")
    state = _read(d / "state", "Device", "Invalid device state snapshot file")
    try:
        mem = PageMap.from_json(mem_json)
    except (ValueError, TypeError, KeyError) as exc:
        raise Fatal(
            "Failed to start VM.: Failed to restore snapshot: Invalid memory snapshot file"
        ) from exc
    if mem.digest() != state.get("digest"):
        raise Fatal("Failed to start VM.: Failed to restore snapshot: memory does not match state")
    return mem, GuestState.from_json(dict(state.get("guest") or {})), dict(state["config"])


def _write_private(path: Path, head: bytes, body: bytes, size: int = 0) -> None:
    """Header block, length-prefixed JSON body, then (memory file) a RAM-sized region.

    address_space/src/state.rs: the memory file is a header, a length-prefixed
    AddressSpaceState, then the raw RAM ("memory 文件大小接近配置的虚拟机内存", S004). The
    simulator's RAM is its page map (the JSON), so the raw region is left sparse.
    """
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(head + struct.pack("<Q", len(body)) + body)
        if size:
            f.truncate(max(f.tell(), _HEADER + PAGE_SIZE + size))


def _snapshot(proc: SimProcess, args: JSON) -> tuple[Any, list[Any]]:
    vm = proc.vm
    path = str(args["uri"])[5:].split(",")[0]
    parent = os.path.dirname(path.rstrip("/")) or "/"
    proc.world.dirs = {parent} if os.path.isdir(parent) else set()
    reply, events = vm.execute("migrate", args)
    events = list(events) + vm.take_events()
    if isinstance(reply, QmpError):
        return reply, events
    d = Path(path)
    try:
        if not d.is_dir():
            os.mkdir(d, 0o700)
        state = {
            "config": transport.vm_config(vm),
            "guest": proc.guest.to_json(),
            "digest": proc.memory.digest(),
        }
        _write_private(d / "state", _header("Device", proc.arch), json.dumps(state).encode())
        _write_private(
            d / "memory",
            _header("MemoryFull", proc.arch),
            proc.memory.dumps(),
            proc.memory.pages * PAGE_SIZE,
        )
    except OSError as exc:
        vm.migration_status = S.FAILED
        return QmpError(
            ErrorClass.GENERIC_ERROR, f"Failed to create snapshot dir: {_os_error(exc)}"
        ), events
    return reply, events
