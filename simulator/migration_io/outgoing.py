"""Outgoing migrations: pre-checks, connect, configuration exchange, then the model's
engine with a :class:`Sender` on the real socket.

The model runs a migration between two VMs of *one* World. Across processes, the source
builds a stand-in for the remote destination from the configuration the destination
sends back (``transport.vm_config``), so the model's checks and engine run unchanged.
"""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys

from simulator import transport
from simulator.cmdline_values import Endpoint, parse_endpoint
from simulator.migration_io.sender import Sender
from simulator.migration_io.tls_channel import client_hostname, upgrade_client
from simulator.migration_io.view import JSON, ProcessView, Result
from simulator.migration_io.wire import source_wire
from simulator.model import QmpError, VMSpec
from simulator.model.errors import ErrorClass, Event
from simulator.model.migration.params import Capability
from simulator.model.migration.status import MigrationStatus as S
from simulator.model.vm import VM
from simulator.model.vm_migration import migrate_precheck
from simulator.sockets import connect
from simulator.tls_creds import TlsCreds, TlsError, for_migration

#: Wall seconds the source waits for the destination's configuration.
HANDSHAKE_S = 30.0


class Outgoing:
    """This process's outgoing migrations and the streams still sending."""

    def __init__(self, proc: ProcessView, tls: dict[str, TlsCreds]) -> None:
        self.proc = proc
        self.tls = tls  # the process's TLS credentials objects, by id
        self.connecting: Connecting | None = None  # a QEMU-style connect in flight
        self.senders: set[Sender] = set()
        self._peers = 0
        self.peer: VM | None = None  # the destination's stand-in of the last migration

    @property
    def busy(self) -> bool:
        """A stream is still sending: the process must not exit yet."""
        return bool(self.senders)

    def command(self, cmd: str) -> Result | None:
        """query-migrate, migrate_cancel and migrate while a connect is in flight."""
        conn = self.connecting
        if conn is not None and cmd in ("query-migrate", "migrate_cancel", "migrate"):
            return conn.command(cmd)
        return None

    def start(self, args: JSON, endpoint: str) -> Result:
        """``migrate tcp:|unix:``: the model's pre-checks, then connect.

        QEMU (migration/socket.c socket_start_outgoing_migration): migrate_init sets
        "setup" and the connect runs asynchronously (qio_channel_socket_connect_async);
        {} at once. StratoVirt (migration/src/lib.rs): TcpStream/UnixStream::connect inside
        the QMP handler, so the reply (and every other QMP answer) waits for the connect;
        a failure is the reply's GenericError with the OS text.
        """
        vm, uri = self.proc.vm, str(args["uri"])
        refused = migrate_precheck(vm, uri)
        if refused is not None:
            return refused, []
        try:
            ep = parse_endpoint(endpoint, "migrate")
        except ValueError:  # nothing the simulator can reach: the model answers
            return vm.execute("migrate", args)
        loop = asyncio.get_running_loop()
        if vm.profile.async_connect:
            conn = Connecting(self, args)
            self.connecting = conn
            conn.task = loop.create_task(conn.run(ep))
            return {}, conn.set_status(S.SETUP)
        return loop.create_task(self._connect_and_start(args, ep)), []

    def start_exec(self, args: JSON) -> Result:
        """``migrate exec:CMD`` (QEMU migration/exec.c exec_start_outgoing_migration).

        ``/bin/sh -c CMD`` gets the stream on its stdin; the channel is one-way (no return
        path), so the destination's checks happen when the stream is loaded.
        """
        vm, uri = self.proc.vm, str(args["uri"])
        # migration.c qmp_migrate: migrate_prepare refuses before exec.c spawns the
        # command (a refused snapshot must not truncate the file it would write)
        refused = migrate_precheck(vm, uri)
        if refused is not None:
            return refused, []
        if vm.params.tls_creds:
            # migration/exec.c connects with no hostname: migration_tls_client_create
            # needs the credentials and tls-hostname; TLS over a pipe is not modelled
            try:
                for_migration(self.tls, vm.params.tls_creds, "client")
                client_hostname(vm.params.tls_hostname, None)
            except TlsError as exc:
                return QmpError(ErrorClass.GENERIC_ERROR, str(exc)), []
            why = "the simulator carries TLS on tcp and unix migration streams only"
            return QmpError(ErrorClass.GENERIC_ERROR, why), []
        vm_config = transport.vm_config(vm)
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
        # one-way: the destination is this VM's twin until the stream is loaded
        peer, (reply, events) = self._migrate_to(*transport.spec_from_config(vm_config), args)
        if isinstance(reply, QmpError):
            ours.close()
            child.wait()
            return reply, events
        Sender(self.proc, peer, self.senders, child=child).start_on(ours)
        return reply, events

    def _migrate_to(self, spec: VMSpec, profile: str, args: JSON) -> tuple[VM, Result]:
        """The model's migrate towards a stand-in for the peer (and the stand-in)."""
        world, uri = self.proc.world, str(args["uri"])
        self._peers += 1
        peer = self.peer = world.create_vm(f"peer{self._peers}", spec, profile, incoming=uri)
        reply, events = self.proc.vm.execute("migrate", args)
        world.listeners.pop(uri, None)
        return peer, (reply, events)

    def resume(self, endpoint: str) -> Result:
        """``migrate`` with resume=true: a paused post-copy goes on over a new connection
        to the destination's migrate-recover address (migration.c migrate_prepare with
        resume, postcopy_do_resume)."""
        vm, eng = self.proc.vm, self.proc.vm.engine
        if self.peer is None or eng is None or eng.status is not S.POSTCOPY_PAUSED:
            why = "Cannot resume if there is no paused migration"
            return QmpError(ErrorClass.GENERIC_ERROR, why), []
        try:
            ep = parse_endpoint(endpoint, "migrate")
        except ValueError as exc:
            return QmpError(ErrorClass.GENERIC_ERROR, str(exc)), []
        asyncio.get_running_loop().create_task(self._resume(vm, ep, self.peer))
        return {}, []

    async def _resume(self, vm: VM, ep: Endpoint, peer: VM) -> None:
        eng = vm.engine
        try:
            sock = await connect(ep)
            reader, writer = await transport.open_stream(sock)
        except OSError:
            return  # still paused: another migrate-recover and resume may follow
        try:
            await self.secure(writer, ep)
        except TlsError as exc:
            print(f"simulator: {exc}", file=sys.stderr, flush=True)
            writer.close()
            return
        wire = source_wire(vm.profile.stream_format, reader, writer, vm.host)
        try:
            await wire.send({"t": "resume"})
        except (OSError, transport.StreamError):
            writer.close()
            return
        if eng is None or eng.resume(self.proc.world.clock.now) is not None:
            writer.close()
            return
        self.proc.world.sync()
        Sender(self.proc, peer, self.senders, handed_over=True).start(wire, writer)

    async def _connect_and_start(self, args: JSON, ep: Endpoint) -> Result:
        try:
            sock = await connect(ep)
        except OSError as exc:
            return QmpError(ErrorClass.GENERIC_ERROR, connect_error(self.proc.vm, ep, exc)), []
        return await self.handshake_and_start(args, sock, ep)

    async def secure(self, writer: asyncio.StreamWriter, ep: Endpoint) -> None:
        """With tls-creds set, the TLS handshake as the client (migration/channel.c
        migration_channel_connect -> migration/tls.c migration_tls_channel_connect);
        :class:`TlsError` in QEMU's words, which the migration fails with."""
        params = self.proc.vm.params
        if not params.tls_creds:
            return
        creds = for_migration(self.tls, params.tls_creds, "client")
        host = client_hostname(params.tls_hostname, ep.host if ep.kind == "tcp" else None)
        await upgrade_client(writer, creds, host)

    async def handshake_and_start(self, args: JSON, sock: socket.socket, ep: Endpoint) -> Result:
        """TLS if asked for, then exchange configurations over the connected socket, then
        run the model's migrate."""
        vm = self.proc.vm
        try:
            reader, writer = await transport.open_stream(sock)
        except OSError as exc:
            sock.close()
            return QmpError(ErrorClass.GENERIC_ERROR, f"Failed to start migration: {exc}"), []
        try:
            await self.secure(writer, ep)
        except TlsError as exc:
            writer.close()
            return QmpError(ErrorClass.GENERIC_ERROR, str(exc)), []
        wire = source_wire(vm.profile.stream_format, reader, writer, vm.host)
        own = transport.vm_config(vm)
        try:
            await asyncio.wait_for(wire.send({"t": "hello", "config": own}), timeout=HANDSHAKE_S)
            ack = await asyncio.wait_for(wire.recv(), timeout=HANDSHAKE_S)
            # a StratoVirt destination answers Ok or Error only: the source's model then
            # migrates towards its own twin, and fails at once on an Error
            spec, profile = transport.spec_from_config(ack.get("config") or own)
        except transport.StreamClosed:
            writer.close()
            why = "destination closed the migration connection"
            return QmpError(ErrorClass.GENERIC_ERROR, f"Failed to start migration: {why}"), []
        except (OSError, TimeoutError, transport.StreamError, KeyError) as exc:
            writer.close()
            return QmpError(ErrorClass.GENERIC_ERROR, f"Failed to start migration: {exc}"), []
        peer, (reply, events) = self._migrate_to(spec, profile, args)
        if isinstance(reply, QmpError):
            writer.close()
            return reply, events
        if not ack.get("ok", True) and ack.get("config") is None:
            # migration.rs send_vm_config: Response{Error} -> ResponseErr, then
            # recover_from_migration and set_status(Failed); nothing more is sent
            self.proc.world.fail_link(vm, str(ack.get("error") or "Response error"))
            writer.close()
            return reply, events
        Sender(self.proc, peer, self.senders).start(wire, writer)
        return reply, events


def connect_error(vm: VM, ep: Endpoint, exc: OSError) -> str:
    """A failed connect as the profile words it: the kernel's text for the errno (asyncio's
    own strerror, "Connect call failed ('127.0.0.1', 1)", is not what the products print)."""
    errno = exc.errno or 0
    strerror = os.strerror(errno) if errno else str(exc)
    address = ep.path if ep.kind == "unix" else f"{ep.host}:{ep.port}"
    return vm.profile.connect_error.format(strerror=strerror, errno=errno, address=address)


class Connecting:
    """A QEMU-style outgoing connect in flight: the status is "setup" until it resolves.

    QEMU 7.2 migration/migration.c: migrate_cancel (migrate_fd_cancel) moves setup ->
    cancelling but has no channel to shut down yet, so the connect runs on; when it
    resolves, migrate_fd_connect (error: migrate_fd_error + migrate_fd_cleanup; success:
    the migration thread finds the state is not setup) ends cancelling -> cancelled, and
    a failed connect without a cancel ends setup -> failed. The doc profile has no
    "cancelling": S003 lists none, so a cancel is "canceled" at once.
    """

    def __init__(self, owner: Outgoing, args: JSON) -> None:
        self.owner, self.proc, self.args = owner, owner.proc, args
        self.cancelled = False
        self.task: asyncio.Task[None] | None = None
        self.error: str | None = None

    def set_status(self, st: S) -> list[Event]:
        vm = self.proc.vm
        vm.engine = None  # query-migrate now describes this migration, not an older one
        vm.migration_status = st
        vm.migration_error = self.error if st is S.FAILED else None
        if Capability.EVENTS in vm.caps:
            return [("MIGRATION", {"status": st.value})]
        return []

    def command(self, cmd: str) -> Result:
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
        self.owner.connecting = None
        return {}, self.set_status(vm.profile.cancelled_status)

    def _end(self, st: S) -> None:
        if self.owner.connecting is self:
            self.owner.connecting = None
            self.proc.qmp_events(self.set_status(st))

    async def run(self, ep: Endpoint) -> None:
        try:
            sock = await connect(ep)
        except OSError as exc:
            self.error = connect_error(self.proc.vm, ep, exc)
            self._end(S.CANCELLED if self.cancelled else S.FAILED)
            return
        if self.cancelled:
            sock.close()
            self._end(S.CANCELLED)
            return
        self.owner.connecting = None
        reply, events = await self.owner.handshake_and_start(self.args, sock, ep)
        if isinstance(reply, QmpError):
            self.error = reply.desc
            self.owner.connecting = self
            self._end(S.FAILED)
            return
        eng = self.proc.vm.engine
        timeline = getattr(eng, "tl", None)
        if timeline is not None and timeline.events[:1] == [
            (eng.start, "MIGRATION", {"status": "setup"})
        ]:
            del timeline.events[0]  # announced by migrate_init already
        self.proc.qmp_events(list(events))
