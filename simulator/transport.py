"""The migration stream between two simulator processes, over a real tcp or unix socket.

Frames are a 4-byte big-endian length plus a JSON object with a ``"t"`` type:

- ``hello``  source -> destination: the source's configuration (vCPUs, memory, devices).
- ``ack``    destination -> source: ``ok`` or the check_vm_config ``error``, plus its own
  configuration (the source's model needs it to build the destination it talks to).
- ``mem``    source -> destination: page ranges ``[start, end, version]`` sent this round;
  the first ``mem`` carries the whole map (the first pass), later ones the pages the
  guest wrote since (dirty rounds).
- ``done``   source -> destination: the last dirty pages, the device/guest state and the
  sha256 of the source's whole page map; the destination verifies it.
- ``ok`` / ``bad``  destination -> source: the verification result.
- ``cancel`` source -> destination: ``migrate_cancel`` (Request{Cancel}).

The wire carries the compact content encoding of :mod:`simulator.guest_memory`; the
*time* a migration takes is the model engine's, scaled to wall time by the process.
This module is the one framing implementation: every frame, the configuration exchange
included, goes through :func:`send_frame` and :func:`recv_frame`.
"""

from __future__ import annotations

import asyncio
import json
import socket
import struct
from typing import Any

from simulator.model import Arch, CpuTopology, Device, DeviceClass, MachineType, VMSpec
from simulator.model.vm import VM

JSON = dict[str, Any]
MAX_FRAME = 256 << 20
_LEN = struct.Struct(">I")


class StreamError(Exception):
    """The migration stream broke or carried something unexpected."""


class StreamClosed(StreamError):
    """The peer closed the stream before a whole frame arrived."""


#: What a stream buffers before it stops reading: the migration stream moves the model's
#: bytes (simulator/migration_io/sender.py), so it reads in big pieces.
STREAM_LIMIT = 1 << 20


async def open_stream(sock: socket.socket) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """asyncio streams over a connected socket (tcp, unix or a socketpair end)."""
    sock.setblocking(False)
    return await asyncio.open_connection(sock=sock, limit=STREAM_LIMIT)


async def send_frame(writer: asyncio.StreamWriter, frame: JSON) -> None:
    data = json.dumps(frame, separators=(",", ":")).encode()
    writer.write(_LEN.pack(len(data)) + data)
    await writer.drain()


async def recv_frame(reader: asyncio.StreamReader) -> JSON:
    try:
        head = await reader.readexactly(_LEN.size)
        (n,) = _LEN.unpack(head)
        if n > MAX_FRAME:
            raise StreamError(f"frame of {n} bytes is too large")
        body = await reader.readexactly(n)
    except asyncio.IncompleteReadError as exc:
        raise StreamClosed("Failed to read migration stream: unexpected end of file") from exc
    except (ConnectionError, OSError) as exc:
        raise StreamError(f"Failed to read migration stream: {exc}") from exc
    try:
        frame = json.loads(body)
    except ValueError as exc:
        raise StreamError("malformed migration frame") from exc
    if not isinstance(frame, dict) or not isinstance(frame.get("t"), str):
        raise StreamError("malformed migration frame")
    return frame


def vm_config(vm: VM) -> JSON:
    """What check_vm_config compares: vCPUs, memory and devices with their BDFs."""
    t = vm.topology
    return {
        "profile": vm.profile.name,
        "arch": vm.arch.value,
        "machine": vm.spec.machine.value,
        "smp": [t.cpus, t.sockets, t.dies, t.cores, t.threads, t.maxcpus],
        "memory": vm.spec.memory,
        "devices": [
            {
                "id": d.id,
                "cls": d.cls.value,
                "driver": d.driver,
                "bus": d.bus,
                "addr": d.addr,
                "mac": d.mac,
                "backend": d.backend,
            }
            for d in vm.table.devices.values()
        ],
        "slirp": len(vm.table.slirp),
    }


def spec_from_config(cfg: JSON) -> tuple[VMSpec, str]:
    """The peer's VMSpec and profile name from its ``vm_config``."""
    try:
        cpus, sockets, dies, cores, threads, maxcpus = (int(x) for x in cfg["smp"])
        devices = tuple(
            Device(
                id=str(d["id"]),
                cls=DeviceClass(d["cls"]),
                driver=str(d["driver"]),
                bus=d.get("bus"),
                addr=d.get("addr"),
                mac=d.get("mac"),
                backend=d.get("backend"),
            )
            for d in cfg["devices"]
        )
        spec = VMSpec(
            arch=Arch(cfg.get("arch", Arch.X86_64.value)),
            machine=MachineType(cfg["machine"]),
            smp=CpuTopology(cpus, sockets, dies, cores, threads, maxcpus),
            memory=int(cfg["memory"]),
            devices=devices,
        )
        return spec, str(cfg["profile"])
    except (KeyError, TypeError, ValueError) as exc:
        raise StreamError(f"malformed VM configuration from peer: {exc}") from exc
