"""The process's migration component: incoming, outgoing, snapshots, in one owner."""

from __future__ import annotations

import asyncio
from typing import Any

from simulator.guest_memory import PageMap
from simulator.migration_io import snapshot_files
from simulator.migration_io.outgoing import Outgoing
from simulator.migration_io.receiver import Receiver
from simulator.migration_io.view import JSON, ProcessView, Result, read_uri
from simulator.model import QmpError
from simulator.model.errors import ErrorClass
from simulator.model.migration.uri import UriMode
from simulator.model.units import PAGE_SIZE
from simulator.model.vm import VM


class MigrationIO:
    """Migration and snapshot I/O of one simulator process (``SimProcess.migration``).

    It answers the QMP commands that need I/O beyond the model (:meth:`intercept`),
    receives an ``-incoming`` stream, restores ``-incoming file:`` snapshots, and says
    whether an outgoing stream still holds the process alive (:attr:`busy`).
    """

    def __init__(self, proc: ProcessView) -> None:
        self.proc = proc
        self.outgoing = Outgoing(proc)
        self.receiver: Receiver | None = None
        self._restored_digest: str | None = None

    # ------------------------------------------------------------ start-up
    def create_vm(self) -> VM:
        """The model VM for this process: booted, waiting for a migration, or restored.

        Raises :class:`simulator.errors.Fatal` when a snapshot cannot be restored.
        """
        proc = self.proc
        cfg, world = proc.cfg, proc.world
        incoming = cfg.incoming
        parsed = read_uri(proc.profile, incoming) if incoming is not None else None
        if incoming is not None and parsed is not None and parsed.mode is UriMode.FILE:
            vm = snapshot_files.restore(proc, incoming, parsed.target)
            self._restored_digest = proc.memory.digest()
        elif incoming is not None:
            vm = world.create_vm("vm", proc.spec, proc.profile, cfg.host, incoming=incoming)
        else:
            vm = world.create_vm("vm", proc.spec, proc.profile, cfg.host)
            nonzero = proc.spec.layout().nonzero_ranges(cfg.workload)
            proc.memory = PageMap.boot(cfg.memory // PAGE_SIZE, nonzero)
        vm.attach_backends(cfg.drives, cfg.netdevs)
        return vm

    async def start_incoming(self, ready: asyncio.Event) -> asyncio.Server | None:
        """Wait for an ``-incoming`` stream (the listening server, if any, is returned).

        ``ready`` is set when QMP may greet: at once, unless the profile's QMP waits for
        the incoming migration (StratoVirt's main loop starts after it).
        """
        incoming = self.proc.cfg.incoming
        server = None
        parsed = read_uri(self.proc.profile, incoming) if incoming is not None else None
        if parsed is not None and parsed.mode is not UriMode.FILE:
            self.receiver = Receiver(self.proc, ready, parsed.endpoint)
            server = await self.receiver.start()
        if self.receiver is None or self.proc.profile.qmp_during_incoming:
            ready.set()
        return server

    # ------------------------------------------------------------ state
    @property
    def busy(self) -> bool:
        """An outgoing stream is still sending: the process must not exit yet."""
        return self.outgoing.busy

    @property
    def blocked(self) -> bool:
        """The main loop waits for guest pages (a paused post-copy destination): in-band
        QMP is not answered until the migration is recovered."""
        return self.receiver is not None and self.receiver.paused

    @property
    def incoming_failed(self) -> str | None:
        """Why the incoming migration failed (the process then exits 1), or None."""
        return self.receiver.failed if self.receiver is not None else None

    @property
    def received_digest(self) -> str | None:
        """The verified digest of guest memory that came in (stream or snapshot)."""
        if self.receiver is not None:
            return self.receiver.digest
        return self._restored_digest

    # ------------------------------------------------------------ QMP
    def intercept(self, cmd: str, args: JSON) -> Result | None:
        """Commands that need I/O beyond the model; None lets the model answer."""
        rx = self.receiver
        if cmd == "query-migrate" and rx is not None and not rx.finished:
            return rx.query(), []
        if cmd == "migrate-recover" and self.proc.profile.tuning_knobs:
            why = "Migrate recover can only be run when postcopy is paused."
            if rx is not None:
                why = rx.recover(str(args["uri"])) or ""
            return (QmpError(ErrorClass.GENERIC_ERROR, why) if why else {}), []
        pending = self.outgoing.command(cmd)
        if pending is not None:
            return pending
        uri: Any = args.get("uri")
        vm = self.proc.vm
        if cmd != "migrate" or not isinstance(uri, str) or not vm.alive:
            return None
        parsed = read_uri(vm.profile, uri)
        if parsed is None:
            return None
        if parsed.mode is UriMode.FILE:
            return snapshot_files.save(self.proc, args, parsed.target)
        if parsed.mode in (UriMode.TCP, UriMode.UNIX) and args.get("resume"):
            return self.outgoing.resume(parsed.endpoint)
        if parsed.mode in (UriMode.TCP, UriMode.UNIX):
            return self.outgoing.start(args, parsed.endpoint)
        if parsed.mode is UriMode.EXEC and vm.profile.exec_migration:
            return self.outgoing.start_exec(args)
        return None
