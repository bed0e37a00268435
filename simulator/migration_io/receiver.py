"""The ``-incoming tcp:|unix:|exec:`` side: one stream in, verified, then the guest runs."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import subprocess
import sys

from simulator import transport
from simulator.cmdline_values import parse_endpoint
from simulator.guest_state import GuestState
from simulator.migration_io.tls_channel import session_lost, upgrade_server
from simulator.migration_io.view import JSON, ProcessView
from simulator.migration_io.wire import FrameWire, Wire, destination_wire
from simulator.model.devices import DeviceClass
from simulator.model.migration.params import Capability
from simulator.model.migration.status import MigrationStatus as S
from simulator.model.vm import VM, RunState
from simulator.model.vm_cpus import hotplugged
from simulator.model.vm_migration import config_mismatch
from simulator.sockets import listen
from simulator.tls_creds import TlsCreds, TlsError, for_migration


class Receiver:
    """Accepts exactly one migration stream, checks it, and hands the guest over."""

    def __init__(
        self,
        proc: ProcessView,
        ready: asyncio.Event,
        endpoint: str,
        tls: dict[str, TlsCreds] | None = None,
    ) -> None:
        self.proc, self.ready = proc, ready
        self.tls = tls if tls is not None else {}  # TLS credentials objects, by id
        self.ep = parse_endpoint(endpoint, "-incoming")
        self.status = "setup"
        self.failed: str | None = None
        self.section_error: str | None = None
        self.finished = False
        self.accepted = False
        self.digest: str | None = None  # the verified digest of the received memory
        self.server: asyncio.Server | None = None
        self.port = self.ep.port
        self.one_way = self.ep.kind == "exec"
        self.child: asyncio.subprocess.Process | None = None
        self.task: asyncio.Task[None] | None = None
        self.recovering = False  # migrate-recover: listening for the source's resume

    async def start(self) -> asyncio.Server | None:
        """Listen (tcp, unix: the server is returned) or spawn the exec command."""
        if self.ep.kind == "exec":
            await self._spawn()
            return None
        return await self._listen()

    async def _spawn(self) -> None:
        """``-incoming exec:CMD``: read the stream from ``sh -c CMD``'s stdout."""
        ours, theirs = socket.socketpair()
        try:
            self.child = await asyncio.create_subprocess_exec(
                "/bin/sh", "-c", self.ep.path, stdin=subprocess.DEVNULL, stdout=theirs.fileno()
            )
        finally:
            theirs.close()
        reader, writer = await transport.open_stream(ours)
        self.accepted = True
        self.task = asyncio.get_running_loop().create_task(self._serve(reader, writer))

    async def _listen(self) -> asyncio.Server:
        self.server = await listen(self.ep, self._conn, limit=transport.STREAM_LIMIT)
        if self.ep.kind == "tcp":
            self.port = int(self.server.sockets[0].getsockname()[1])
        return self.server

    async def _send(self, wire: Wire, frame: JSON) -> None:
        if not self.one_way:
            await wire.send(frame)

    def query(self) -> JSON:
        """query-migrate on the destination while it waits or receives.

        QEMU migration.c fill_destination_migration_info: the listening addresses, then
        no status while nothing connected (MIGRATION_STATUS_NONE); an inet address says
        which family it is (util/qemu-sockets.c socket_sockaddr_to_address_inet)."""
        waiting = self.status == "setup" and self.proc.vm.profile.qmp_during_incoming
        out: JSON = {} if waiting else {"status": self.status}
        if self.ep.kind == "exec":
            return out
        if self.ep.kind == "tcp":
            family = "ipv6" if ":" in self.ep.host else "ipv4"
            out["socket-address"] = [
                {"type": "inet", "host": self.ep.host, "port": str(self.port), family: True}
            ]
        else:
            out["socket-address"] = [{"type": "unix", "path": self.ep.path}]
        return out

    def _announce(self, status: str) -> None:
        """QEMU migrate_set_state on the incoming side: a MIGRATION event per change once
        the destination's ``events`` capability is on (migration.c
        process_incoming_migration_co / _bh)."""
        vm = self.proc.vm
        if Capability.EVENTS in vm.caps:
            vm.pending.append(("MIGRATION", {"status": status}))

    def _fail(self, why: str) -> None:
        if self.status == "active":
            self._announce("failed")
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
        if not await self._secure(writer):
            writer.close()
            return
        if self.server is not None:
            self.server.close()
        if self.ep.kind == "unix":
            with contextlib.suppress(OSError):
                os.unlink(self.ep.path)
        await self._serve(reader, writer)

    async def _secure(self, writer: asyncio.StreamWriter) -> bool:
        """With tls-creds set, the TLS handshake as the server (migration/channel.c
        migration_channel_process_incoming -> migration/tls.c). A refusal is reported and
        the listener waits for another connection (migration_tls_incoming_handshake only
        reports it), unless the source dropped the connection in the handshake (it
        refused our certificate: with GnuTLS the session was up then, and the load
        fails; see :mod:`tls_channel`)."""
        creds_id = self.proc.vm.params.tls_creds
        if not creds_id:
            return True
        try:
            await upgrade_server(writer, for_migration(self.tls, creds_id, "server"))
        except TlsError as exc:
            if session_lost(exc):
                self._fail("Cannot read from TLS channel: Input/output error")
            else:
                print(f"simulator: {exc}", file=sys.stderr, flush=True)
                self.accepted = False
            return False
        return True

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        vm = self.proc.vm
        wire: Wire = (
            FrameWire(reader, writer)
            if self.one_way
            else destination_wire(vm.profile.stream_format, reader, writer, vm.host)
        )
        try:
            if self.status == "postcopy-paused":  # a recovered stream (migrate-recover)
                if (await wire.recv()).get("t") != "resume":
                    raise transport.StreamError("expected a post-copy resume")
                self.status, self.recovering = "postcopy-active", False
                await self._stream(wire, reader)
            else:
                await self._receive(wire, reader)
        except (transport.StreamError, ConnectionError, OSError, ValueError, TypeError) as exc:
            if self.status == "postcopy-active":
                # postcopy_pause_incoming: the guest runs here already; wait for a
                # migrate-recover instead of failing
                self.status = "postcopy-paused"
            else:
                self._fail(str(exc))
        finally:
            writer.close()

    @property
    def paused(self) -> bool:
        """A post-copy destination whose stream broke: its main loop waits for pages."""
        return self.status == "postcopy-paused"

    def recover(self, uri: str) -> str | None:
        """migrate-recover URI (out of band): listen there for the source's resume; the
        error text when not paused (migration.c qmp_migrate_recover)."""
        if not self.paused:
            return "Migrate recover can only be run when postcopy is paused."
        if self.recovering:
            return "Migrate recovery is triggered already"
        scheme, _, rest = uri.partition(":")
        self.ep = parse_endpoint(f"{scheme}:{rest}", "migrate-recover")
        self.accepted, self.recovering = False, True
        asyncio.get_running_loop().create_task(self._listen())
        return None

    async def _receive(self, wire: Wire, reader: asyncio.StreamReader) -> None:
        proc, vm = self.proc, self.proc.vm
        hello = await wire.recv()
        if hello.get("t") != "hello":
            raise transport.StreamError("expected the VM configuration first")
        self.status = "active"
        self._announce("active")
        spec, profile = transport.spec_from_config(hello["config"])
        shadow = proc.world.create_vm("source", spec, profile)
        err = config_mismatch(shadow, vm)
        # a section QEMU does not know fails the load of the device state at the end; the
        # source, with no return path, has completed by then
        self.section_error = _unknown_section(hello["config"], vm)
        await self._send(
            wire, {"t": "ack", "ok": err is None, "error": err, "config": transport.vm_config(vm)}
        )
        if err is not None:
            self._fail(err)
            return
        await self._stream(wire, reader)

    async def _stream(self, wire: Wire, reader: asyncio.StreamReader) -> None:
        """Pages until the end: "done" (pre-copy: the guest with it), or "postcopy" (the
        guest runs here from then on) and later "done"."""
        proc, vm = self.proc, self.proc.vm
        while True:
            frame = await wire.recv()
            kind = frame.get("t")
            if kind == "pad":  # filler standing for page data
                left = int(frame.get("n", 0))
                while left > 0:
                    chunk = await reader.read(min(left, transport.STREAM_LIMIT))
                    if not chunk:
                        raise transport.StreamClosed("migration stream ended in page data")
                    left -= len(chunk)
                continue
            if kind in ("mem", "done", "postcopy"):
                for a, b, v in frame.get("ranges", []):
                    proc.memory.write(int(a), int(b), int(v))
            if kind == "cancel":
                # QEMU process_incoming_migration_co: the broken stream is a failed load
                # (migrate_set_state ACTIVE -> FAILED, a MIGRATION event), then exit
                if self.status == "active":
                    self._announce("failed")
                self.status = vm.profile.cancelled_status.value
                self._fail("Cancel migration from source")
                return
            if kind == "postcopy":  # loadvm_postcopy_handle_run: the guest runs here
                # loadvm_postcopy_handle_listen announces postcopy-active before the run
                self._announce("postcopy-active")
                if not await self._arrive(wire, frame):
                    return
                self.status = "postcopy-active"
                continue
            if kind == "done":
                break
            if kind != "mem":
                raise transport.StreamError(f"unexpected frame {kind!r}")
        if self.section_error is not None and self.status != "postcopy-active":
            await self._send(wire, {"t": "ok"})
            self._fail(self.section_error)
            return
        if self.status != "postcopy-active" and not await self._arrive(wire, frame):
            return
        vm.migration_status = S.COMPLETED
        self._announce("completed")
        self.status = "completed"
        self.finished = True
        await self._send(wire, {"t": "ok"})
        self.ready.set()

    async def _arrive(self, wire: Wire, frame: JSON) -> bool:
        """The guest's memory verified and its state taken: it runs here (unless -S or
        the source's state says paused). False when the memory differs."""
        proc, vm = self.proc, self.proc.vm
        if proc.memory.digest() != frame.get("digest"):
            await self._send(wire, {"t": "bad", "error": "memory differs"})
            self._fail("guest memory differs from the source's")
            return False
        self.digest = str(frame.get("digest"))
        proc.guest = GuestState.from_json(dict(frame.get("guest") or {}))
        proc.memory.take_log()
        # QEMU process_incoming_migration_bh (loadvm_postcopy_handle_run_bh): the
        # self-announce once the VM is sure to run here, just before it is started; run
        # unless -S, or unless the source's global state says it was not running.
        proc.guest_arrived()
        answers_qmp = vm.profile.qmp_during_incoming
        paused = answers_qmp and (not vm.autostart or not frame.get("running", True))
        vm.runstate = RunState.PAUSED if paused else RunState.RUNNING
        vm.owns_guest = True
        if not paused and answers_qmp:
            vm.pending.append(("RESUME", {}))
        return True


def _unknown_section(config: JSON, vm: VM) -> str | None:
    """QEMU savevm.c qemu_loadvm_section_start_full: a section the destination did not
    register fails the load. Here: a vCPU the source hot-plugged (its ``cpu_common``
    section, instance = the vCPU's index: cpu_exec_realizefn registers it) that is not
    on the destination's command line, or the source's user netdevs (net/slirp.c)."""
    if not vm.profile.qemu_runstate_rules:
        return None
    ours_cpus = set(range(vm.topology.cpus)) | set(hotplugged(vm))
    theirs_cpus = {
        int(d["addr"])
        for d in config.get("devices", [])
        if d.get("cls") == DeviceClass.CPU.value and d.get("addr") is not None
    }
    missing = sorted(theirs_cpus - ours_cpus)
    theirs, ours = int(config.get("slirp", 0)), len(vm.table.slirp)
    if missing:
        section = f"'cpu_common' {missing[0]}"
    elif theirs > ours:
        section = f"'slirp' {ours}"
    else:
        return None
    return (
        f"Unknown savevm section or instance {section}. Make sure that your current VM "
        "setup matches your saved VM setup, including any hotplugged devices"
    )
