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

from simulator.model.devices import DeviceClass as D
from simulator.model.errors import ErrorClass
from simulator.model.migration.status import (
    QEMU_TRANSITIONS,
    STRATOVIRT_TRANSITIONS,
    MigrationStatus,
    Transitions,
)


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
    EVENT_FIRST = "event-first"  # <= v2.4 and the docs
    REPLY_FIRST = "reply-first"  # v2.5 (commit 69feaed0) and QEMU


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
    # -incoming file: with a different -m: S004 "配置的设备必须与制作快照时保持一致" (the doc
    # profile refuses); the code maps RAM from DIR/memory with the snapshot's layout and
    # compares nothing (machine/src/lib.rs init_memory, migration/src/snapshot.rs).
    restore_checks_memory: bool = False
    # migrate_cancel once a migration or snapshot has ended: StratoVirt's code refuses
    # completed/failed -> canceled (migration/src/protocol.rs MigrationStatus::transfer:
    # "Failed to transfer migration status from completed to canceled."); S003 shows only
    # {"return":{}}; QEMU's migrate_fd_cancel does nothing when no migration runs.
    cancel_after_end_errors: bool = False
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
    standard_hotpluggable_cpus_empty=True,
    microvm_reset_is_shutdown=True,
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
    event_order=EventOrder.REPLY_FIRST,
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
    root_port_slot_check=False,
)

PROFILES: Mapping[str, Profile] = MappingProxyType(
    {p.name: p for p in (STRATOVIRT_DOC, STRATOVIRT_24, STRATOVIRT_25, QEMU_72)}
)
_ = _ALL_MIGRATE
