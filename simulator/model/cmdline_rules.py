"""What each product's command line accepts (read by simulator/cmdline.py and
simulator/cmdline_values.py); a profile names one of these."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from simulator.model import qemu_x86
from simulator.model.devices import MachineType as M
from simulator.model.host import Arch

#: No such listing on any architecture.
_NO_LISTS: Mapping[Arch, tuple[tuple[str, str], ...]] = MappingProxyType({})


def _names(*machines: M) -> Mapping[str, M]:
    """Machine types that -machine names as themselves."""
    return MappingProxyType({m.value: m for m in machines})


@dataclass(frozen=True)
class CmdlineRules:
    """What the product's command line accepts (read by simulator/cmdline.py)."""

    default_machine: str  # -machine when absent
    default_memory: str  # -m when absent
    # machine_manager/src/config/machine_config.rs: "Memory size must >= 128MiB and <= 512GiB"
    memory_range: tuple[int, int] | None
    server_needs_nowait: bool  # -qmp/-chardev: "Argument 'server' and 'nowait' are both required"
    machine_error: str  # an unknown -machine type: format fields {text} (the option), {name}
    microvm_needs_kernel: bool  # "Failed to check mini-set: kernel file is required"
    needs_rootfs: bool  # "set a initrd or drive_file or vhost-user blk as rootfs"
    incoming_error: str  # an -incoming scheme it does not know: format field {uri}
    incoming_invalid: str  # an -incoming URI it cannot parse: format fields {uri}, {detail}
    # Per architecture of the build: the -machine names it accepts and the modelled type
    # each one is.
    machines: Mapping[Arch, Mapping[str, M]]
    # -machine gic-version values per architecture; an architecture not listed has no
    # such property. gic_error: a value not accepted, no_gic_error: no property (format
    # fields {text} (the option) and {value}).
    gic_versions: Mapping[Arch, frozenset[str]]
    gic_error: str
    no_gic_error: str
    # QEMU's socket chardev forms (chardev/char-socket.c): without ``server`` it connects
    # to the address, ``host=``/``port=`` and an inherited ``fd=N``; StratoVirt only listens.
    client_sockets: bool = False
    # `-machine help`'s list per architecture (none: the product has no such listing).
    machine_lists: Mapping[Arch, tuple[tuple[str, str], ...]] = field(
        default_factory=lambda: _NO_LISTS
    )
    virtconsole_without_serial: str = "No virtio serial device found"  # no virtio-serial
    # -pidfile: StratoVirt src/main.rs "-pidfile must be used with -daemonize together.",
    # and util/src/daemonize.rs refuses a file that exists; QEMU writes it either way.
    pidfile_needs_daemonize: bool = True
    pidfile_must_not_exist: bool = True
    # -m whose byte count does not fit in 64 bits (format field {text}, the value):
    # QEMU util/cutils.c qemu_strtosz via qemu-option.c; StratoVirt
    # machine_manager/src/config/machine_config.rs memory_unit_conversion (value.parse::<u64>,
    # then checked_mul: ConfigError::ConvertValueFailed / IntegerOverflow).
    size_error: str = "Unable to parse '{text}' for 'u64'"
    # -device ...,mac=M that is not a MAC (format fields {text} (the option), {mac}):
    # QEMU hw/core/qdev-properties-system.c set_mac (hex pairs joined by ':' or '-');
    # StratoVirt machine_manager/src/config/network.rs check_mac_address (':' only).
    mac_error: str = "Mac address is illegal."
    mac_separators: str = ":"


SV_CMDLINE = CmdlineRules(
    default_machine="microvm",
    default_memory="256M",
    memory_range=(128 << 20, 512 << 30),
    server_needs_nowait=True,
    machine_error="-machine {text}: Invalid machine type.",
    microvm_needs_kernel=True,
    needs_rootfs=True,
    incoming_error='Add args "{uri}" error.: Unsupported incoming unix path type',
    incoming_invalid='Add args "{uri}" error.: {detail}',
    # machine_manager/src/config/machine_config.rs MachineType::from_str: q35 only in an
    # x86_64 build, virt only in an aarch64 build; gic_version exists only on aarch64 and
    # its clap parser takes 3..=3 (the errors are clap's, under "Add args ... error.").
    machines=MappingProxyType(
        {Arch.X86_64: _names(M.MICROVM, M.Q35), Arch.AARCH64: _names(M.MICROVM, M.VIRT)}
    ),
    gic_versions=MappingProxyType({Arch.AARCH64: frozenset({"3"})}),
    gic_error=(
        "Add args \"{text}\" error.: invalid value '{value}' for "
        "'--gic-version <GIC_VERSION>': {value} is not in 3..=3"
    ),
    no_gic_error="Add args \"{text}\" error.: unexpected argument '--gic-version' found",
)
QEMU_CMDLINE = CmdlineRules(
    default_machine="pc",  # qemu-system-x86_64's machine list: "(default)"
    default_memory="128M",
    memory_range=None,
    server_needs_nowait=False,
    machine_error="-machine {name}: unsupported machine type",
    microvm_needs_kernel=False,
    needs_rootfs=False,
    incoming_error="-incoming {uri}: unknown migration protocol: {uri}",
    incoming_invalid="-incoming {uri}: unknown migration protocol: {uri}",
    # qemu-system-x86_64 and qemu-system-aarch64 7.2 (the machines hvlab models, with
    # x86_64's versioned names, simulator/model/qemu_x86.py);
    # hw/arm/virt.c virt_set_gic_version: "Valid values are 3, 2, host, max." (TCG)
    machines=MappingProxyType({Arch.X86_64: qemu_x86.MACHINE_NAMES, Arch.AARCH64: _names(M.VIRT)}),
    gic_versions=MappingProxyType({Arch.AARCH64: frozenset({"2", "3", "host", "max"})}),
    gic_error="-machine {text}: Invalid gic-version value",
    no_gic_error="-machine {text}: Property '{name}-machine.gic-version' not found",
    client_sockets=True,
    machine_lists=MappingProxyType({Arch.X86_64: qemu_x86.MACHINE_LIST}),
    virtconsole_without_serial="No 'virtio-serial-bus' bus found for device 'virtconsole'",
    pidfile_needs_daemonize=False,
    pidfile_must_not_exist=False,
    size_error="-m {text}: Parameter 'size' expects a non-negative number below 2^64",
    mac_error="-device {text}: Property 'virtio-net-device.mac' doesn't take value '{mac}'",
    mac_separators=":-",
)
