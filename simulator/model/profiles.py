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
from types import MappingProxyType
from typing import Any

from simulator.model import qemu_commands, qemu_x86
from simulator.model.cmdline_rules import QEMU_CMDLINE, SV_CMDLINE, CmdlineRules
from simulator.model.devices import DeviceClass as D
from simulator.model.devices import MachineType as M
from simulator.model.errors import ErrorClass
from simulator.model.host import Arch
from simulator.model.migration.status import (
    QEMU_TRANSITIONS,
    STRATOVIRT_TRANSITIONS,
    MigrationStatus,
    Transitions,
)
from simulator.model.product_logs import STRATOVIRT_24_LOG, STRATOVIRT_25_LOG, LogFormat
from simulator.model.profile_kinds import (
    BuildFeature,
    ConfigCheck,
    CpuPlug,
    Engine,
    EventOrder,
    HotplugApi,
    Policy,
    QmpFraming,
    StreamFormat,
    UriRules,
)

__all__ = [
    "PROFILES",
    "BuildFeature",
    "CmdlineRules",
    "ConfigCheck",
    "CpuPlug",
    "Engine",
    "EventOrder",
    "HotplugApi",
    "Policy",
    "Profile",
    "QmpFraming",
    "StreamFormat",
    "UriRules",
]


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
    firmware: Mapping[M, qemu_x86.Firmware]
    # How migrate and -incoming read a URI (simulator/model/migration/uri.py), and what
    # migrate answers (format field {uri}) for a URI the rules cannot parse, and for one
    # whose mode is unknown on a standard machine and on microvm (StratoVirt
    # machine/src/standard_common/mod.rs and micro_common/mod.rs MigrateInterface::migrate
    # differ by a colon).
    uri_rules: UriRules
    invalid_uri_error: str
    bad_uri_error: str
    bad_uri_error_microvm: str
    # migrate exec:CMD / -incoming exec:CMD (QEMU migration/exec.c: "sh -c CMD").
    exec_migration: bool
    # A failed outgoing connect's text: format fields {strerror}, {errno} and {address}.
    # StratoVirt returns Rust's io::Error display ("Connection refused (os error 111)",
    # migration/src/lib.rs); QEMU util/qemu-sockets.c "Failed to connect to '%s': ...".
    connect_error: str
    # migrate_cancel with no migration on a PCI machine moves the status to canceled
    # (StratoVirt migration/src/protocol.rs); QEMU's migrate_fd_cancel does nothing.
    idle_cancel_sets_status: bool
    # query-migrate while the status is "none" answers {} (QEMU fill_source_migration_info).
    query_migrate_omits_none: bool
    # vCPU hotplug (simulator/model/vm_cpu_hotplug.py): how device_add names the vCPU,
    # the slot type query-hotpluggable-cpus shows per architecture, whether the vCPU
    # list shows a hot-plugged vCPU (StratoVirt cpu/src/lib.rs: query-cpus reads
    # online_mask, set for the boot vCPUs when the machine is created and never written
    # again), and the machines whose query-hotpluggable-cpus is refused as "not enabled"
    # (QEMU 7.2: microvm and Arm virt leave has_hotpluggable_cpus false).
    cpu_plug: CpuPlug
    cpu_types: Mapping[Arch, str]
    lists_hotplugged_cpus: bool
    hotpluggable_cpus_refused: frozenset[M]
    # device_add with id "": StratoVirt machine/src/lib.rs check_device_id_existed "Device
    # id is empty" (machines with a PCI host only: microvm looks the id up among its
    # slot configs); QEMU qdev-monitor.c "Parameter 'id' expects an identifier".
    empty_id_error: str
    empty_id_checked_on_microvm: bool
    # Drivers a build knows only with a cargo feature (StratoVirt 2.5 Cargo.toml
    # [features]: vfio = ["machine/vfio_device"]; 2.4 built vfio-pci always), and the
    # features this build has (default = []). A lab sets its build's features with the
    # simulator's --build-features.
    driver_features: Mapping[str, BuildFeature]
    build_features: frozenset[BuildFeature]
    # The live migration stream's wire format (simulator/migration_io/wire*.py).
    stream_format: StreamFormat
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
    # stop and cont as QEMU 7.2 softmmu/cpus.c qmp_stop/qmp_cont: stop does nothing on a VM
    # that does not run (an incoming one loses autostart), cont resumes a source after its
    # migration and only sets autostart on an incoming VM
    qemu_runstate_rules: bool = False
    # which rules the device and backend commands follow (profile_kinds.HotplugApi)
    hotplug_api: HotplugApi = HotplugApi.STRATOVIRT
    # A migration socket's read and write timeout in seconds: a stream that takes no byte
    # (or gives no answer) that long fails (StratoVirt migration/src/lib.rs: 30 s
    # set_read_timeout/set_write_timeout); None: a blocked stream waits (QEMU).
    stream_timeout_s: float | None = None
    # The wire after an incoming migration (simulator/net/component.py): RARP rounds
    # from each NIC's MAC (QEMU 7.2 net/announce.c qemu_announce_self), and the guest
    # asked to announce itself (virtio-net offers VIRTIO_NET_F_GUEST_ANNOUNCE:
    # hw/net/virtio-net.c). StratoVirt has neither (virtio/src/device/net.rs).
    self_announce: bool = False
    guest_announce: bool = False
    # A tap that cannot be opened (format fields {ifname}, {strerror}, {errno}):
    # StratoVirt util/src/tap.rs Tap::new (TUNSETIFF failed); QEMU net/tap-linux.c tap_open.
    tap_error: str = "Failed to set tap ifr flags, error is {strerror} (os error {errno})"
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
    microvm_net_slots=2,
    microvm_config_limit=6,
    unknown_command=ErrorClass.GENERIC_ERROR,
    microvm_reset_is_shutdown=True,
    cmdline=SV_CMDLINE,
    qmp_framing=QmpFraming.ONE_VALUE_PER_READ,
    qmp_negotiation=False,
    qmp_deferred_events=frozenset(),
    qmp_rate_limit=100,
    qmp_during_incoming=False,
    cont_running_emits_resume=True,
    firmware=MappingProxyType({}),
    uri_rules=UriRules.STRATOVIRT_25,
    invalid_uri_error="Invalid uri: {uri}",
    bad_uri_error="Unknown mode: invalid uri: {uri}",
    bad_uri_error_microvm="Unknown mode: invalid uri {uri}",
    exec_migration=False,
    connect_error="{strerror} (os error {errno})",
    idle_cancel_sets_status=True,
    query_migrate_omits_none=False,
    cpu_plug=CpuPlug.CPU_ID,
    # machine/src/micro_common/mod.rs query_hotpluggable_cpus
    cpu_types=MappingProxyType({Arch.X86_64: "host-x86-cpu", Arch.AARCH64: "host-aarch64-cpu"}),
    hotpluggable_cpus_refused=frozenset(),
    empty_id_error="Device id is empty",
    empty_id_checked_on_microvm=False,
    stream_format=StreamFormat.STRATOVIRT,
    product_log=STRATOVIRT_24_LOG,
    stream_timeout_s=30.0,
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
    # S004 查询拓扑 / 查询vCPU上线情况: the lists show every online vCPU
    lists_hotplugged_cpus=True,
    # S004 热插拔直通设备 documents vfio-pci hotplug, with no build condition
    driver_features=MappingProxyType({}),
    build_features=frozenset(),
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
    lists_hotplugged_cpus=False,
    driver_features=MappingProxyType({}),  # v2.4.0 Cargo.toml: no vfio feature yet
    build_features=frozenset(),
    **{
        **_SV_COMMON,
        "uri_rules": UriRules.STRATOVIRT_24,
        "bad_uri_error": "Invalid uri: {uri}",  # v2.4.0: an unknown mode does not parse
        "bad_uri_error_microvm": "Invalid uri: {uri}",
    },
)
# 2.5 differs from 2.4 only where the reference lists version changes: queued events
# (reply first, commit 69feaed0), redundant stop/cont succeed (25a5dfb0), the
# auto-stop before a snapshot, incoming.rs's new URI parser, and the vfio feature.
STRATOVIRT_25 = dataclasses.replace(
    STRATOVIRT_24,
    name="stratovirt-2.5",
    greeting=_sv_greeting(5, "StratoVirt-2.5.0"),
    event_order=EventOrder.REPLY_FIRST,
    redundant_runstate_error=False,
    snapshot_auto_stop=True,
    uri_rules=UriRules.STRATOVIRT_25,
    bad_uri_error=_SV_COMMON["bad_uri_error"],
    bad_uri_error_microvm=_SV_COMMON["bad_uri_error_microvm"],
    driver_features=MappingProxyType({"vfio-pci": BuildFeature.VFIO}),
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
    cmdline=QEMU_CMDLINE,
    qmp_framing=QmpFraming.JSON_STREAM,
    qmp_negotiation=True,
    qmp_deferred_events=frozenset({"quit"}),
    qmp_rate_limit=0,
    qmp_during_incoming=True,
    cont_running_emits_resume=False,
    firmware=qemu_x86.FIRMWARE,
    uri_rules=UriRules.QEMU,
    invalid_uri_error="Parameter 'uri' expects a valid migration protocol",
    bad_uri_error="Parameter 'uri' expects a valid migration protocol",
    bad_uri_error_microvm="Parameter 'uri' expects a valid migration protocol",
    exec_migration=True,
    connect_error="Failed to connect to '{address}': {strerror}",
    idle_cancel_sets_status=False,
    query_migrate_omits_none=True,
    cpu_plug=CpuPlug.TOPOLOGY,
    # query-hotpluggable-cpus "type": <cpu model>-<target>-cpu, for the models the
    # simulated (TCG) command lines use (target/i386/cpu.c qemu64; the harness's
    # cortex-a57 on aarch64)
    cpu_types=MappingProxyType(
        {Arch.X86_64: "qemu64-x86_64-cpu", Arch.AARCH64: "cortex-a57-arm-cpu"}
    ),
    lists_hotplugged_cpus=True,
    hotpluggable_cpus_refused=frozenset({M.MICROVM, M.VIRT}),
    empty_id_error="Parameter 'id' expects an identifier",
    empty_id_checked_on_microvm=True,
    driver_features=MappingProxyType({}),
    build_features=frozenset(),
    stream_format=StreamFormat.HVLAB_FRAMES,
    root_port_slot_check=False,
    cancel_waits_for_connect=True,
    vfio_blocker_error="VFIO device doesn't support migration",
    start_stopped_runstate="prelaunch",
    qmp_commands=qemu_commands.QUERY_COMMANDS,
    hotplug_api=HotplugApi.QEMU_QDEV,
    qemu_runstate_rules=True,
    self_announce=True,
    guest_announce=True,
    tap_error="could not configure /dev/net/tun ({ifname}): {strerror}",
)

PROFILES: Mapping[str, Profile] = MappingProxyType(
    {p.name: p for p in (STRATOVIRT_DOC, STRATOVIRT_24, STRATOVIRT_25, QEMU_72)}
)
_ = _ALL_MIGRATE
