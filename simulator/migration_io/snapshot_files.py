"""Snapshot files: ``migrate file:DIR`` writes ``DIR/memory`` and ``DIR/state``, and
``-incoming file:DIR`` restores them.

The layout follows StratoVirt's (migration/src/snapshot.rs, address_space/src/state.rs):
each file is a header block, then a length-prefixed body; the memory file then has a
RAM-sized region. The simulator's RAM is its page map, so the bodies are JSON.
"""

from __future__ import annotations

import json
import os
import struct
from pathlib import Path

from simulator import transport
from simulator.errors import Fatal
from simulator.guest_memory import PageMap
from simulator.guest_shell import GuestState
from simulator.migration_io.view import JSON, ProcessView, Result
from simulator.model import MemoryImage, QmpError
from simulator.model.errors import ErrorClass
from simulator.model.migration.status import MigrationStatus as S
from simulator.model.units import PAGE_SIZE
from simulator.model.vm import VM
from simulator.model.world import Snapshot
from simulator.sockets import os_error_text

_HEADER = 4096
_RESTORE = "Failed to start VM.: Failed to restore snapshot"


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
    try:
        with open(path, "rb") as f:
            data = f.read(_HEADER + 8)
            (n,) = struct.unpack("<Q", data[:8])
            head = json.loads(data[8 : 8 + n])
            (blen,) = struct.unpack("<Q", data[_HEADER : _HEADER + 8])
            body = json.loads(f.read(blen))
    except (OSError, ValueError, struct.error) as exc:
        raise Fatal(f"{_RESTORE}: {what}") from exc
    if head.get("magic_num") != "STRATOVIRT" or head.get("format") != fmt:
        raise Fatal(f"{_RESTORE}: {what}")
    if not isinstance(body, dict):
        raise Fatal(f"{_RESTORE}: {what}")
    return body


def load(path: str) -> tuple[PageMap, GuestState, JSON]:
    """The page map, guest state and VM configuration saved under ``path``."""
    d = Path(path)
    if not d.is_dir():
        raise Fatal("Failed to start VM.: Invalid snapshot path for restoring snapshot")
    mem_json = _read(d / "memory", "MemoryFull", "Invalid memory snapshot file")
    state = _read(d / "state", "Device", "Invalid device state snapshot file")
    try:
        mem = PageMap.from_json(mem_json)
    except (ValueError, TypeError, KeyError) as exc:
        raise Fatal(f"{_RESTORE}: Invalid memory snapshot file") from exc
    if mem.digest() != state.get("digest"):
        raise Fatal(f"{_RESTORE}: memory does not match state")
    return mem, GuestState.from_json(dict(state.get("guest") or {})), dict(state["config"])


def restore(proc: ProcessView, incoming: str) -> VM:
    """``-incoming file:DIR``: the model VM restored from DIR; the guest's memory and
    state are the process's from then on. Raises :class:`Fatal` as the product exits."""
    cfg, world = proc.cfg, proc.world
    path = incoming[5:].split(",")[0]
    mem, guest, snap_cfg = load(path)
    if int(snap_cfg["smp"][0]) != cfg.smp.cpus:
        raise Fatal(f"{_RESTORE}: Failed to read instance of object")
    if proc.profile.restore_checks_memory and mem.pages * PAGE_SIZE != cfg.memory:
        raise Fatal(f"{_RESTORE}: the configuration differs from the template (memory size)")
    image = MemoryImage(mem.pages * PAGE_SIZE, ((0, mem.pages),), 0)  # mapped=true
    world.snapshots[path] = Snapshot(proc.spec, image, proc.profile.name, cfg.devices)
    vm = world.create_vm("vm", proc.spec, proc.profile, proc.cfg.host, incoming=incoming)
    if not vm.alive:
        raise Fatal("Failed to start VM.: Invalid snapshot path for restoring snapshot")
    proc.memory, proc.guest = mem, guest
    return vm


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


def save(proc: ProcessView, args: JSON) -> Result:
    """``migrate file:DIR``: the model's checks and status, then the two files."""
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
            ErrorClass.GENERIC_ERROR, f"Failed to create snapshot dir: {os_error_text(exc)}"
        ), events
    return reply, events
