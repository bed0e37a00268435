"""Snapshot files: ``migrate file:DIR`` writes ``DIR/memory`` and ``DIR/state``, and
``-incoming file:DIR`` restores them.

The layout follows StratoVirt's (migration/src/snapshot.rs, address_space/src/state.rs):
each file opens with StratoVirt's 4096-byte migration header (strato_format.py); the
state file then has the device-state descriptors and one instance, the memory file a
length-prefixed body and a RAM-sized region. The simulator's RAM is its page map and its
device state the guest's, so the bodies are JSON.
"""

from __future__ import annotations

import json
import os
import struct
from pathlib import Path

from simulator import transport
from simulator.errors import Fatal
from simulator.guest_memory import PageMap
from simulator.guest_state import GuestState
from simulator.migration_io import strato_format
from simulator.migration_io.view import JSON, ProcessView, Result
from simulator.model import MemoryImage, QmpError
from simulator.model.errors import ErrorClass
from simulator.model.host import Host, default_host
from simulator.model.migration.status import MigrationStatus as S
from simulator.model.units import PAGE_SIZE
from simulator.model.vm import VM
from simulator.model.world import Snapshot
from simulator.sockets import os_error_text

_RESTORE = "Failed to start VM.: Failed to restore snapshot"


def _read_memory(path: Path, host: Host) -> JSON:
    """The memory file: StratoVirt's MemoryFull header, then a length-prefixed body."""
    what = "Invalid memory snapshot file"
    try:
        with open(path, "rb") as f:
            fields = strato_format.parse_header(f.read(strato_format.HEADER_LENGTH))
            strato_format.check_header(fields, host)
            (blen,) = struct.unpack("<Q", f.read(8))
            body = json.loads(f.read(blen))
    except strato_format.HeaderError as exc:
        raise Fatal(f"{_RESTORE}: {exc}") from exc
    except (OSError, ValueError, struct.error) as exc:
        raise Fatal(f"{_RESTORE}: {what}") from exc
    if fields.get("format") != "MemoryFull" or not isinstance(body, dict):
        raise Fatal(f"{_RESTORE}: {what}")
    return body


def _read_state(path: Path, host: Host) -> JSON:
    """The state file: StratoVirt's device-state layout (header, descriptors, instance)."""
    try:
        return strato_format.split_vmstate(path.read_bytes(), host)
    except strato_format.HeaderError as exc:
        raise Fatal(f"{_RESTORE}: {exc}") from exc
    except (OSError, ValueError, struct.error) as exc:
        raise Fatal(f"{_RESTORE}: Invalid device state snapshot file") from exc


def load(path: str, host: Host) -> tuple[PageMap, GuestState, JSON]:
    """The page map, guest state and VM configuration saved under ``path``, checked
    against ``host`` as StratoVirt's check_header does."""
    d = Path(path)
    if not d.is_dir():
        raise Fatal("Failed to start VM.: Invalid snapshot path for restoring snapshot")
    mem_json = _read_memory(d / "memory", host)
    state = _read_state(d / "state", host)
    try:
        mem = PageMap.from_json(mem_json)
    except (ValueError, TypeError, KeyError) as exc:
        raise Fatal(f"{_RESTORE}: Invalid memory snapshot file") from exc
    if mem.digest() != state.get("digest"):
        raise Fatal(f"{_RESTORE}: memory does not match state")
    return mem, GuestState.from_json(dict(state.get("guest") or {})), dict(state["config"])


def restore(proc: ProcessView, incoming: str, path: str) -> VM:
    """``-incoming file:DIR`` (``path`` is DIR): the model VM restored from DIR; the
    guest's memory and state are the process's from then on. Raises :class:`Fatal` as
    the product exits."""
    cfg, world = proc.cfg, proc.world
    mem, guest, snap_cfg = load(path, default_host(cfg.arch))
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


def _write_private(path: Path, data: bytes, size: int = 0) -> None:
    """A private (0600) file; ``size``: the memory file's RAM-sized region follows.

    address_space/src/state.rs: the memory file is a header, a length-prefixed
    AddressSpaceState, then the raw RAM ("memory 文件大小接近配置的虚拟机内存", S004). The
    simulator's RAM is its page map (the JSON), so the raw region is left sparse.
    """
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
        if size:
            f.truncate(max(f.tell(), strato_format.HEADER_LENGTH + PAGE_SIZE + size))


def save(proc: ProcessView, args: JSON, path: str) -> Result:
    """``migrate file:DIR`` (``path`` is DIR): the model's checks and status, then the
    two files."""
    vm = proc.vm
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
        _write_private(d / "state", strato_format.vmstate(vm.host, state))
        body = proc.memory.dumps()
        head = strato_format.header(vm.host, "MemoryFull", strato_format.MEMORY_DESC_LEN)
        _write_private(
            d / "memory",
            head + struct.pack("<Q", len(body)) + body,
            proc.memory.pages * PAGE_SIZE,
        )
    except OSError as exc:
        vm.migration_status = S.FAILED
        return QmpError(
            ErrorClass.GENERIC_ERROR, f"Failed to create snapshot dir: {os_error_text(exc)}"
        ), events
    return reply, events
