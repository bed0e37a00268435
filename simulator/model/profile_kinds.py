"""The vocabulary of behaviour profiles: the enums a profile field takes.
:mod:`simulator.model.profiles` builds the profiles from these.
"""

from __future__ import annotations

from enum import Enum


class Engine(Enum):
    QEMU_PRECOPY = "qemu-precopy"
    STRATOVIRT = "stratovirt"


class Policy(Enum):
    """How a device or feature fares in a migration or snapshot."""

    MIGRATES = "migrates"
    REFUSED = "refused"  # migrate returns an error, nothing starts
    DROPPED = "dropped"  # accepted, but the state silently does not travel


class ConfigCheck(Enum):
    """What the destination compares with the source (migration.rs check_vm_config)."""

    VCPUS = "vcpus"
    MEMORY = "memory"
    DEVICE_TYPE_PER_BDF = "device-type-per-bdf"
    MAC = "mac"


class EventOrder(Enum):
    """Events a command raises: written before its reply, or queued after it."""

    # <= v2.4 and the docs; QEMU's monitor too: it sends an event the moment a handler
    # raises it (STOP inside qmp_stop), before the handler's reply.
    EVENT_FIRST = "event-first"
    REPLY_FIRST = "reply-first"  # v2.5 (commit 69feaed0): events are queued


class QmpFraming(Enum):
    """How the QMP socket cuts its input into messages."""

    # QEMU qobject/json-streamer.c: a JSON stream, values may span reads (64 MiB tokens).
    JSON_STREAM = "json-stream"
    # StratoVirt machine_manager/src/socket.rs: each read is one JSON value (8 KiB).
    ONE_VALUE_PER_READ = "one-value-per-read"


class UriRules(Enum):
    """How ``migrate`` and ``-incoming`` read a migration URI (simulator/model/migration/uri.py)."""

    # StratoVirt v2.4.0 machine_manager/src/config/incoming.rs: split at every ':'; two
    # parts for file/unix, three for tcp; anything else (an unknown mode too) is invalid.
    STRATOVIRT_24 = "stratovirt-2.4"
    # StratoVirt v2.5.0 incoming.rs: ",mapped=" options parsed by clap, the mode matched
    # as file|File|FILE..., an unknown mode kept as Unknown ("Unknown mode: ...").
    STRATOVIRT_25 = "stratovirt-2.5"
    # QEMU 7.2 migration/migration.c qemu_start_outgoing_migration: a known scheme prefix.
    QEMU = "qemu"


class CpuPlug(Enum):
    """How ``device_add`` names the vCPU it plugs (simulator/model/vm_cpu_hotplug.py)."""

    # StratoVirt machine/src/standard_common/mod.rs plug_cpu_device: driver
    # generic-x86-cpu and a cpu-id; devices/src/acpi/ged.rs raises CPU_RESIZE.
    CPU_ID = "cpu-id"
    # QEMU 7.2 hw/i386/x86.c x86_cpu_pre_plug: the slot's type from
    # query-hotpluggable-cpus and its socket-id/core-id/thread-id; no event on plug,
    # DEVICE_DELETED once the guest ejected it (hw/acpi/cpu.c).
    TOPOLOGY = "topology"


class BuildFeature(Enum):
    """Cargo features of a StratoVirt build that add a device driver (Cargo.toml
    ``[features]``; ``default = []``)."""

    VFIO = "vfio"  # machine/vfio_device: the vfio-pci driver


class StreamFormat(Enum):
    """What a live migration stream looks like on the wire."""

    # simulator/transport.py: 4-byte length-prefixed JSON frames (QEMU's own stream
    # format is not modelled)
    HVLAB_FRAMES = "hvlab-frames"
    # StratoVirt migration/src/protocol.rs: Request{length,status} and Response{status}
    # messages, the State message carrying general.rs save_header's 4096-byte header
    STRATOVIRT = "stratovirt"


class HotplugApi(Enum):
    """Which rules device_add/_del, blockdev-add/-del and netdev_add/_del follow."""

    # machine/src/standard_common/mod.rs, micro_common/mod.rs, lib.rs (vm_hotplug.py)
    STRATOVIRT = "stratovirt"
    # QEMU 7.2 softmmu/qdev-monitor.c, hw/pci/pcie.c, net/net.c, blockdev.c (qemu_qdev.py)
    QEMU_QDEV = "qemu-qdev"
