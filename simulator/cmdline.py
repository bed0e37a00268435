"""StratoVirt- and QEMU-style command lines -> a typed ``SimConfig``.

Accepts the forms the seeds and ``harness/targets/*.py`` produce (docs/config_guidebook.md
for StratoVirt, qemu-options.hx for QEMU 7.2) plus the simulator's own long options:
``--profile``, ``--seed``, ``--workload ws=SIZE,rate=SIZE[,pattern=cyclic|random|hot-cold]``,
``--resident SIZE``, ``--time-scale X``, ``--qmp-rate-limit N``, ``--arch x86_64|aarch64``
(the build it stands in for), ``--build-features vfio,...`` (a StratoVirt build's cargo
features) and ``--host FILE`` (host constants as JSON, e.g. the ``host.json`` that
``hvlab bench fidelity`` calibrates). Anything it cannot accept raises
:class:`CmdlineError` with one line, which ``__main__`` prints (exit 1).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

from simulator.chardev import compat_socket, socket_chardev, virtio_console
from simulator.cmdline_checks import (
    check_cold_devices,
    own_options,
    parse_arch,
    parse_build_features,
    with_build_features,
)
from simulator.cmdline_values import (
    CmdlineError,
    Endpoint,
    UsageError,
    check_incoming,
    check_mac,
    parse_device,
    parse_endpoint,
    parse_machine,
    parse_memory,
    parse_size,
    parse_smp,
    split_props,
)
from simulator.model import PROFILES, Arch, CpuTopology, Device, MachineType, Profile, Workload
from simulator.model.host import Host, load_host
from simulator.model.profiles import BuildFeature
from simulator.model.units import MiB

__all__ = [
    "CmdlineError",
    "Endpoint",
    "Serial",
    "SimConfig",
    "UsageError",
    "parse",
    "parse_endpoint",
]

#: Flags without a value that are accepted and ignored (they change nothing observable).
_NOARG_FLAGS = frozenset(
    {
        "-nodefaults",
        "-no-user-config",
        "-nographic",
        "-enable-kvm",
        "-disable-seccomp",
        "-mem-prealloc",
        "-no-reboot",
        "-no-shutdown",
        "-daemonize",
    }
)
#: Flags with a value that are accepted and ignored.
_IGNORED_VALUE_FLAGS = frozenset(
    {
        "-name",
        "-accel",
        "-cpu",
        "-display",
        "-object",
        "-global",
        "-mem-path",
        "-vga",
        "-monitor",
        "-boot",
        "-rtc",
        "-msg",
        "-uuid",
    }
)


@dataclass(frozen=True)
class Serial:
    """Where the guest's serial console goes."""

    kind: str  # "socket" | "stdio" | "none"
    endpoint: Endpoint | None = None
    logfile: str | None = None


@dataclass(frozen=True)
class SimConfig:
    """Everything one simulated hypervisor process is launched with."""

    profile: str
    machine: MachineType
    smp: CpuTopology
    memory: int
    qmp: Endpoint
    serial: Serial
    kernel: str | None = None
    initrd: str | None = None
    append: str = ""
    devices: tuple[Device, ...] = ()
    drives: dict[str, str] = field(default_factory=dict)
    netdevs: dict[str, str] = field(default_factory=dict)
    taps: dict[str, str] = field(default_factory=dict)  # tap netdev id -> ifname
    start_paused: bool = False
    incoming: str | None = None
    seed: int = 0
    workload: Workload = field(default_factory=Workload)
    resident: int = 64 * MiB
    time_scale: float = 1.0
    qmp_rate_limit: int | None = None  # commands per second (StratoVirt: 100)
    host: Host | None = None  # --host FILE: calibrated host constants (None: the default)
    arch: Arch = Arch.X86_64
    build_features: frozenset[BuildFeature] | None = None  # None: the profile's default
    daemonize: bool = False  # -daemonize: detach once the sockets exist (simulator/daemon.py)
    pidfile: str | None = None  # -pidfile FILE: the process id, removed at exit
    logfile: str | None = None  # -D FILE: the product's own log (simulator/product_log.py)

    def product_profile(self) -> Profile:
        """The profile of the build this process stands in for."""
        return with_build_features(PROFILES[self.profile], self.build_features)


class _Args:
    def __init__(self, argv: list[str]) -> None:
        self.argv, self.i = argv, 0

    def value(self, flag: str) -> str:
        self.i += 1
        if self.i >= len(self.argv):
            raise CmdlineError(f"{flag} requires an argument")
        return self.argv[self.i]


#: Guest RAM holding data when an OS has booted and no --resident says otherwise.
BOOTED_RESIDENT = 64 * MiB


def _resident(own: dict[str, str], prof: Profile, machine: MachineType, boots: bool) -> int:
    """Guest RAM holding data at start: --resident, else a booted OS's, else (nothing to
    boot: SeaBIOS says "No bootable device" and idles) what the firmware wrote."""
    if "resident" in own:
        return parse_size(own["resident"])
    firmware = prof.firmware.get(machine)
    return firmware.ram_nonzero if firmware is not None and not boots else BOOTED_RESIDENT


def parse(argv: list[str]) -> SimConfig:
    """Parse a full argv (without the program name)."""
    a = _Args(argv)
    raw: dict[str, list[str]] = {}
    flags: set[str] = set()
    own: dict[str, str] = {}
    while a.i < len(argv):
        arg = argv[a.i]
        if arg.startswith("--") and arg[2:].split("=")[0] in (
            "profile",
            "seed",
            "workload",
            "resident",
            "time-scale",
            "qmp-rate-limit",
            "host",
            "arch",
            "build-features",
        ):
            key, eq, val = arg[2:].partition("=")
            own[key] = val if eq else a.value(arg)
        elif arg in ("-S", "-freeze"):
            flags.add("-S")
        elif arg in _NOARG_FLAGS:
            flags.add(arg)
        elif arg in _IGNORED_VALUE_FLAGS:
            a.value(arg)
        elif arg in (
            "-machine",
            "-M",
            "-smp",
            "-m",
            "-kernel",
            "-initrd",
            "-append",
            "-qmp",
            "-mon",
            "-chardev",
            "-serial",
            "-drive",
            "-device",
            "-netdev",
            "-incoming",
            "-pidfile",
            "-D",
        ):
            raw.setdefault("-machine" if arg == "-M" else arg, []).append(a.value(arg))
        else:
            raise CmdlineError(f"invalid option '{arg}'")
        a.i += 1

    profile = own.get("profile", "qemu-7.2")
    if profile not in PROFILES:
        raise CmdlineError(f"--profile: unknown profile '{profile}' (one of {', '.join(PROFILES)})")
    arch = parse_arch(own.get("arch", Arch.X86_64.value))
    features = parse_build_features(own["build-features"]) if "build-features" in own else None
    prof = with_build_features(PROFILES[profile], features)
    rules = prof.cmdline

    def one(flag: str) -> str | None:
        vals = raw.get(flag, [])
        return vals[-1] if vals else None

    machine = parse_machine(one("-machine") or rules.default_machine, rules, arch)
    smp = parse_smp(one("-smp") or "1")
    memory = parse_memory(one("-m") or rules.default_memory, rules)

    chardevs: dict[str, tuple[Endpoint, str | None]] = {}
    for text in raw.get("-chardev", []):
        backend, props = split_props(text, first_key="backend")
        cid = props.get("id")
        if backend != "socket" or not cid:
            raise CmdlineError(
                f"-chardev {text}: only 'socket,id=ID,path=PATH,server' is supported"
            )
        chardevs[cid] = (socket_chardev(props, f"-chardev {text}", rules), props.get("logfile"))

    qmp_text = one("-qmp")
    qmp: Endpoint | None = None
    if qmp_text is not None:
        qmp = compat_socket(qmp_text, f"-qmp {qmp_text}", rules)
    for text in raw.get("-mon", []):
        _, props = split_props(text)
        cid = props.get("chardev", "")
        if props.get("mode", "control") != "control" or cid not in chardevs:
            raise CmdlineError(f"-mon {text}: needs chardev=ID of a -chardev and mode=control")
        qmp = chardevs[cid][0]
    if qmp is None:
        raise CmdlineError("Please use '-qmp' or '-mon' to give a qmp path for Unix socket")

    serial = Serial("none")
    serial_text = one("-serial")
    if serial_text is not None:
        if serial_text.startswith("chardev:"):
            cid = serial_text[8:]
            if cid not in chardevs:
                raise CmdlineError(f"-serial {serial_text}: no chardev '{cid}'")
            serial = Serial("socket", chardevs[cid][0], chardevs[cid][1])
        elif serial_text == "stdio":
            if "-daemonize" in flags:
                raise CmdlineError("-serial stdio cannot be combined with -daemonize")
            serial = Serial("stdio")
        elif serial_text.startswith(("unix:", "tcp:")):
            serial = Serial("socket", compat_socket(serial_text, f"-serial {serial_text}", rules))
        elif serial_text not in ("none", "null"):
            raise CmdlineError(f"-serial {serial_text}: unsupported serial backend")

    console = virtio_console(raw.get("-device", []), chardevs, rules)
    if console is not None:  # the guest's shell lives on its virtio console (hvc0)
        serial = Serial("socket", *console)

    pidfile = one("-pidfile")
    if pidfile is not None and rules.pidfile_needs_daemonize and "-daemonize" not in flags:
        raise CmdlineError("-pidfile must be used with -daemonize together.")

    drives: dict[str, str] = {}
    for text in raw.get("-drive", []):
        _, props = split_props(text)
        if "id" not in props and props.get("if") != "pflash":
            raise CmdlineError(f"-drive {text}: id is required")
        drives[props.get("id", f"pflash{len(drives)}")] = props.get("file", "")
    netdevs: dict[str, str] = {}
    taps: dict[str, str] = {}
    for text in raw.get("-netdev", []):
        kind, props = split_props(text, first_key="type")
        if "id" not in props:
            raise CmdlineError(f"-netdev {text}: id is required")
        if kind not in ("tap", "user", "vhost-user", "socket"):
            raise CmdlineError(f"-netdev {text}: unsupported netdev type '{kind}'")
        netdevs[props["id"]] = props.get("ifname", "")
        if kind == "tap" and props.get("ifname"):
            taps[props["id"]] = props["ifname"]
    parsed: list[Device] = []
    for text in raw.get("-device", []):
        dev = parse_device(text)
        if dev is not None and dev.mac is not None and not check_mac(dev.mac, rules.mac_separators):
            raise CmdlineError(rules.mac_error.format(text=text, mac=dev.mac))
        parsed += [dev] if dev is not None else []
    devices = tuple(parsed)
    ids = [d.id for d in devices]
    if len(set(ids)) != len(ids):
        raise CmdlineError("Duplicate device ids on the command line")
    check_cold_devices(devices, machine, prof)

    kernel = one("-kernel")
    initrd = one("-initrd")
    if rules.microvm_needs_kernel and machine is MachineType.MICROVM and not kernel:
        raise CmdlineError("Failed to check mini-set: kernel file is required for microvm")
    if rules.needs_rootfs and not initrd and not drives:
        raise CmdlineError(
            "Before Vm start, set a initrd or drive_file or vhost-user blk as rootfs"
        )

    incoming = one("-incoming")
    if incoming is not None:
        check_incoming(incoming, prof)

    seed, time_scale, rate_limit, workload = own_options(own)
    try:
        host = load_host(Path(own["host"])) if "host" in own else None
    except ValueError as exc:
        raise UsageError(f"--host: {exc}") from None
    try:
        resident = _resident(own, prof, machine, kernel is not None or bool(drives))
    except CmdlineError as exc:
        raise UsageError(f"--resident: {exc}") from None
    if workload.working_set + workload.ws_offset > memory:
        raise UsageError("--workload: the working set does not fit in guest memory")
    return SimConfig(
        profile=profile,
        machine=machine,
        smp=smp,
        memory=memory,
        qmp=qmp,
        serial=serial,
        kernel=kernel,
        initrd=initrd,
        append=one("-append") or "",
        devices=devices,
        drives=drives,
        netdevs=netdevs,
        taps=taps,
        start_paused="-S" in flags,
        incoming=incoming,
        seed=seed,
        workload=workload,
        resident=min(resident, memory),
        time_scale=time_scale,
        qmp_rate_limit=rate_limit if rate_limit is not None else prof.qmp_rate_limit,
        # the constants are the host's; the architecture is the build's (--arch)
        host=None if host is None else dataclasses.replace(host, arch=arch),
        arch=arch,
        build_features=features,
        daemonize="-daemonize" in flags,
        pidfile=pidfile,
        logfile=one("-D"),
    )
