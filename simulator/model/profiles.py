"""Behaviour profiles as data: one frozen record per product/version.

Code never asks "which product is this"; it reads a field of the profile.
``stratovirt-doc`` is what seeds 003/004 say; ``stratovirt-2.4``/``-2.5`` what the
StratoVirt code does (machine/src/micro_common/mod.rs, migration/src/*.rs,
machine_manager/src/qmp/*.rs); ``qemu-7.2`` is QEMU 7.2.0.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum
from types import MappingProxyType
from typing import Any

from simulator.model import qemu_commands, qemu_x86
from simulator.model.devices import DeviceClass as D
from simulator.model.devices import MachineType
from simulator.model.errors import ErrorClass
from simulator.model.migration.status import (
    QEMU_TRANSITIONS,
    STRATOVIRT_TRANSITIONS,
    MigrationStatus,
    Transitions,
)
from simulator.model.product_logs import STRATOVIRT_24_LOG, STRATOVIRT_25_LOG, LogFormat


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


#: The machine types every product's -machine names as themselves.
_BASE = MappingProxyType(
    {m.value: m for m in (MachineType.MICROVM, MachineType.Q35, MachineType.VIRT)}
)


@dataclass(frozen=True)
class CmdlineRules:
    """What the product's command line accepts (read by simulator/cmdline.py)."""

    default_machine: str  # -machine when absent
    default_memory: str  # -m when absent
    # machine_manager/src/config/machine_config.rs: "Memory size must >= 128MiB and <= 512GiB"
    memory_range: tuple[int, int] | None
    server_needs_nowait: bool  # -qmp/-chardev: "Argument 'server' and 'nowait' are both required"
    machine_error: str  # an unknown -machine type: format fields {text} (the option), {name}
    gic_version_check: bool  # -machine gic-version must be 3
    microvm_needs_kernel: bool  # "Failed to check mini-set: kernel file is required"
    needs_rootfs: bool  # "set a initrd or drive_file or vhost-user blk as rootfs"
    incoming_error: str  # an -incoming scheme it does not know: format field {uri}
    # QEMU's socket chardev forms (chardev/char-socket.c): without ``server`` it connects
    # to the address, ``host=``/``port=`` and an inherited ``fd=N``; StratoVirt only listens.
    client_sockets: bool = False
    # -machine names accepted and the modelled type each one is; `-machine help`'s list.
    machines: Mapping[str, MachineType] = field(default_factory=lambda: _BASE)
    machine_list: tuple[tuple[str, str], ...] = ()  # (): the product has no such listing
    virtconsole_without_serial: str = "No virtio serial device found"  # no virtio-serial
    # -pidfile: StratoVirt src/main.rs "-pidfile must be used with -daemonize together.",
    # and util/src/daemonize.rs refuses a file that exists; QEMU writes it either way.
    pidfile_needs_daemonize: bool = True
    pidfile_must_not_exist: bool = True


def _m(d: dict[D, Policy]) -> Mapping[D, Policy]:
    return MappingProxyType(d)


_ALL_MIGRATE = _m({c: Policy.MIGRATES for c in D})
_DOC_UNSUPPORTED = _m(
    {
        **{c: Policy.MIGRATES for c in D},
        D.VHOST_NET: Policy.REFUSED,
        D.VHOST_USER_NET: Policy.REFUSED,
        D.VFIO: Policy.REFUSED,
        D.BALLOON: Policy.REFUSED,
    }
)
# Code: vfio has no MigrationHook, vhost nets are not registered -> silently absent;
# balloon is registered and migrates (virtio/src/device/balloon.rs).
_SV_CODE = _m(
    {
        **{c: Policy.MIGRATES for c in D},
        D.VHOST_NET: Policy.DROPPED,
        D.VHOST_USER_NET: Policy.DROPPED,
        D.VFIO: Policy.DROPPED,
    }
)
# QEMU 7.2: vfio registers a migration blocker unless x-enable-migration.
_QEMU = _m({**{c: Policy.MIGRATES for c in D}, D.VFIO: Policy.REFUSED})


@dataclass(frozen=True)
class Profile:
    """Everything that differs between targets."""

    name: str
    engine: Engine
    greeting: Mapping[str, Any]
    event_order: EventOrder
    redundant_runstate_error: bool  # v2.4: stop when paused -> GenericError ""
    initial_migration_status: MigrationStatus
    cancelled_status: MigrationStatus
    transitions: Transitions
    tuning_knobs: bool  # migrate-set-parameters / -capabilities exist
    microvm_live_migration: bool
    file_snapshot: bool  # migrate "file:DIR" writes memory + state
    snapshot_auto_stop: bool  # commit 0af38e53
    microvm_blk_slots: int
    microvm_net_slots: int
    microvm_config_limit: int
    microvm_needs_backend_arg: bool  # device_add needs drive=/chardev= (2024)
    migration: Mapping[D, Policy]
    snapshot: Mapping[D, Policy]
    dest_checks: frozenset[ConfigCheck]
    unknown_command: ErrorClass
    standard_hotpluggable_cpus_empty: bool
    microvm_reset_is_shutdown: bool
    deleted_path_prefix: str  # DEVICE_DELETED path on PCI machines
    cmdline: CmdlineRules
    # The QMP wire: framing, whether qmp_capabilities must come first (QEMU
    # monitor/qmp.c), commands whose events follow the reply even when events come first
    # (QEMU's quit only requests the shutdown; the main loop emits SHUTDOWN later), and the
    # default rate limit in commands per second (StratoVirt's leak bucket: 100; 0: none).
    qmp_framing: QmpFraming
    qmp_negotiation: bool
    qmp_deferred_events: frozenset[str]
    qmp_rate_limit: int
    # QEMU answers QMP while -incoming waits; StratoVirt's main loop has not started yet,
    # so its greeting waits for the incoming migration (or snapshot) to finish.
    qmp_during_incoming: bool
    # cont on a running VM: StratoVirt answers {} and still emits RESUME; QEMU no event.
    cont_running_emits_resume: bool
    # The firmware per machine (simulator/model/qemu_x86.py): extra migratable ROM
    # (q35: ram.total 1074274304 @ -m 1024), and what it writes into RAM when no OS boots.
    firmware: Mapping[MachineType, qemu_x86.Firmware]
    # migrate with a URI whose scheme is unknown: QEMU's QAPI text, or StratoVirt's
    # "Unknown mode" (format field {uri}).
    bad_uri_error: str
    # migrate/-incoming tcp:IP:PORT parse the address as an IPv4 address and a port
    # (StratoVirt: "Invalid uri"); QEMU resolves names.
    tcp_uri_ipv4_only: bool
    # migrate exec:CMD / -incoming exec:CMD (QEMU migration/exec.c: "sh -c CMD").
    exec_migration: bool
    # A failed outgoing connect's text: format fields {strerror} and {errno}. StratoVirt
    # returns the io::Error ("... (os error N)"); QEMU socket.c "Failed to connect socket".
    connect_error: str
    # migrate_cancel with no migration on a PCI machine moves the status to canceled
    # (StratoVirt migration/src/protocol.rs); QEMU's migrate_fd_cancel does nothing.
    idle_cancel_sets_status: bool
    # query-migrate while the status is "none" answers {} (QEMU fill_source_migration_info).
    query_migrate_omits_none: bool
    # devices/src/pci/root_port.rs: a root port has one slot ("HotPlug is not supported for
    # device with devfn N"); QEMU 7.2 hw/pci/pci.c has no slot check behind a root port.
    root_port_slot_check: bool = True
    # query-status of a paused VM: S004 制作快照 step 3 shows "running": true; the code
    # (machine_manager/src/machine.rs, QEMU qapi/run-state.json) says false.
    paused_reports_running: bool = False
    # migrate tcp:/unix: connects in the QMP handler (StratoVirt migration/src/lib.rs
    # TcpStream::connect, the reply waits for it) or asynchronously (QEMU migration/socket.c
    # qio_channel_socket_connect_async: {} at once, status "setup" until it resolves).
    async_connect: bool = True
    # migrate_cancel while that connect runs: QEMU 7.2 migrate_fd_cancel moves setup ->
    # cancelling and the connect's end finishes it; the doc profile (S003 lists no
    # "cancelling") is canceled at once.
    cancel_waits_for_connect: bool = False
    # QEMU hw/vfio/migration.c: a vfio device's migration blocker answers with this text.
    vfio_blocker_error: str | None = None
    # -incoming file: with a different -m: S004 "配置的设备必须与制作快照时保持一致" (the doc
    # profile refuses); the code maps RAM from DIR/memory with the snapshot's layout and
    # compares nothing (machine/src/lib.rs init_memory, migration/src/snapshot.rs).
    restore_checks_memory: bool = False
    # migrate_cancel once a migration or snapshot has ended: StratoVirt's code refuses
    # completed/failed -> canceled (migration/src/protocol.rs MigrationStatus::transfer:
    # "Failed to transfer migration status from completed to canceled."); S003 shows only
    # {"return":{}}; QEMU's migrate_fd_cancel does nothing when no migration runs.
    cancel_after_end_errors: bool = False
    product_log: LogFormat | None = None  # -D FILE: the product's own log (product_logs.py)
    # -S (StratoVirt -freeze): the runstate the VM waits in. QEMU 7.2 softmmu/vl.c: a
    # machine that never ran is "prelaunch" (a stop there changes nothing, cpus.c
    # do_vm_stop); StratoVirt: "paused".
    start_stopped_runstate: str = "paused"
    # query-commands: the names the product's monitor lists (() = no such command).
    qmp_commands: tuple[str, ...] = ()
    max_dirty_iterations: int = 30  # manager.rs MigrationLimit
    limit_downtime_s: float = 0.050
    notes: tuple[str, ...] = field(default=())


def _sv_greeting(major: int, package: str, key: str = "qemu") -> Mapping[str, Any]:
    return MappingProxyType(
        {
            "QMP": {
                "version": {key: {"micro": 1, "minor": 0, "major": major}, "package": package},
                "capabilities": [],
            }
        }
    )


_SV_CMDLINE = CmdlineRules(
    default_machine="microvm",
    default_memory="256M",
    memory_range=(128 << 20, 512 << 30),
    server_needs_nowait=True,
    machine_error="-machine {text}: Invalid machine type.",
    gic_version_check=True,
    microvm_needs_kernel=True,
    needs_rootfs=True,
    incoming_error='Add args "{uri}" error.: Unsupported incoming unix path type',
)
_QEMU_CMDLINE = CmdlineRules(
    default_machine="pc",  # the machine list's "(default)"
    default_memory="128M",
    memory_range=None,
    server_needs_nowait=False,
    machine_error="-machine {name}: unsupported machine type",
    gic_version_check=False,
    microvm_needs_kernel=False,
    needs_rootfs=False,
    incoming_error="-incoming {uri}: unknown migration protocol: {uri}",
    client_sockets=True,
    machines=MappingProxyType({**qemu_x86.MACHINE_NAMES, "virt": MachineType.VIRT}),
    machine_list=qemu_x86.MACHINE_LIST,
    virtconsole_without_serial="No 'virtio-serial-bus' bus found for device 'virtconsole'",
    pidfile_needs_daemonize=False,
    pidfile_must_not_exist=False,
)

_SV_COMMON: dict[str, Any] = dict(
    engine=Engine.STRATOVIRT,
    initial_migration_status=MigrationStatus.SETUP,
    cancelled_status=MigrationStatus.CANCELED,
    transitions=STRATOVIRT_TRANSITIONS,
    tuning_knobs=False,
    microvm_live_migration=False,
    file_snapshot=True,
    microvm_net_slots=2,
    microvm_config_limit=6,
    unknown_command=ErrorClass.GENERIC_ERROR,
    microvm_reset_is_shutdown=True,
    cmdline=_SV_CMDLINE,
    qmp_framing=QmpFraming.ONE_VALUE_PER_READ,
    qmp_negotiation=False,
    qmp_deferred_events=frozenset(),
    qmp_rate_limit=100,
    qmp_during_incoming=False,
    cont_running_emits_resume=True,
    firmware=MappingProxyType({}),
    bad_uri_error="Unknown mode: invalid uri: {uri}",
    tcp_uri_ipv4_only=True,
    exec_migration=False,
    connect_error="{strerror} (os error {errno})",
    idle_cancel_sets_status=True,
    query_migrate_omits_none=False,
    product_log=STRATOVIRT_24_LOG,
)

STRATOVIRT_DOC = Profile(
    name="stratovirt-doc",
    greeting=_sv_greeting(0, "", key="StratoVirt"),
    event_order=EventOrder.EVENT_FIRST,
    redundant_runstate_error=False,
    snapshot_auto_stop=False,
    microvm_blk_slots=6,
    microvm_needs_backend_arg=False,
    migration=_DOC_UNSUPPORTED,
    snapshot=_DOC_UNSUPPORTED,
    dest_checks=frozenset(ConfigCheck),
    # docs/cpu_hotplug.md lists every slot on a standard VM (the code returns {}).
    standard_hotpluggable_cpus_empty=False,
    deleted_path_prefix="",
    paused_reports_running=True,
    restore_checks_memory=True,
    **_SV_COMMON,
)
STRATOVIRT_24 = Profile(
    name="stratovirt-2.4",
    greeting=_sv_greeting(5, "StratoVirt-2.4.0"),
    event_order=EventOrder.EVENT_FIRST,
    redundant_runstate_error=True,
    snapshot_auto_stop=False,
    microvm_blk_slots=4,
    microvm_needs_backend_arg=True,
    migration=_SV_CODE,
    snapshot=_SV_CODE,
    dest_checks=frozenset({ConfigCheck.VCPUS, ConfigCheck.MEMORY, ConfigCheck.DEVICE_TYPE_PER_BDF}),
    standard_hotpluggable_cpus_empty=True,  # machine/src/standard_common/mod.rs: {}
    deleted_path_prefix="/machine/peripheral/",
    async_connect=False,
    cancel_after_end_errors=True,
    **_SV_COMMON,
)
# 2.5 differs from 2.4 only where the reference lists version changes: queued events
# (reply first, commit 69feaed0), redundant stop/cont succeed (25a5dfb0), and the
# auto-stop before a snapshot.
STRATOVIRT_25 = dataclasses.replace(
    STRATOVIRT_24,
    name="stratovirt-2.5",
    greeting=_sv_greeting(5, "StratoVirt-2.5.0"),
    event_order=EventOrder.REPLY_FIRST,
    redundant_runstate_error=False,
    snapshot_auto_stop=True,
    product_log=STRATOVIRT_25_LOG,
)
QEMU_72 = Profile(
    name="qemu-7.2",
    engine=Engine.QEMU_PRECOPY,
    greeting=MappingProxyType(
        {
            "QMP": {
                "version": {"qemu": {"micro": 0, "minor": 2, "major": 7}, "package": ""},
                "capabilities": ["oob"],
            }
        }
    ),
    event_order=EventOrder.EVENT_FIRST,
    redundant_runstate_error=False,
    initial_migration_status=MigrationStatus.NONE,
    cancelled_status=MigrationStatus.CANCELLED,
    transitions=QEMU_TRANSITIONS,
    tuning_knobs=True,
    microvm_live_migration=True,
    file_snapshot=False,
    snapshot_auto_stop=False,
    microvm_blk_slots=0,
    microvm_net_slots=0,
    microvm_config_limit=0,
    microvm_needs_backend_arg=True,
    migration=_QEMU,
    snapshot=_QEMU,
    dest_checks=frozenset({ConfigCheck.MEMORY, ConfigCheck.DEVICE_TYPE_PER_BDF}),
    unknown_command=ErrorClass.COMMAND_NOT_FOUND,
    standard_hotpluggable_cpus_empty=False,
    microvm_reset_is_shutdown=False,
    deleted_path_prefix="/machine/peripheral/",
    cmdline=_QEMU_CMDLINE,
    qmp_framing=QmpFraming.JSON_STREAM,
    qmp_negotiation=True,
    qmp_deferred_events=frozenset({"quit"}),
    qmp_rate_limit=0,
    qmp_during_incoming=True,
    cont_running_emits_resume=False,
    firmware=qemu_x86.FIRMWARE,
    bad_uri_error="Parameter 'uri' expects a valid migration protocol",
    tcp_uri_ipv4_only=False,
    exec_migration=True,
    connect_error="Failed to connect socket: {strerror}",
    idle_cancel_sets_status=False,
    query_migrate_omits_none=True,
    root_port_slot_check=False,
    cancel_waits_for_connect=True,
    vfio_blocker_error="VFIO device doesn't support migration",
    start_stopped_runstate="prelaunch",
    qmp_commands=qemu_commands.QUERY_COMMANDS,
)

PROFILES: Mapping[str, Profile] = MappingProxyType(
    {p.name: p for p in (STRATOVIRT_DOC, STRATOVIRT_24, STRATOVIRT_25, QEMU_72)}
)
_ = _ALL_MIGRATE
