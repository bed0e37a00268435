"""StratoVirt- and QEMU-style command lines -> a typed ``SimConfig``.

Accepts the forms the seeds and ``harness/targets/*.py`` produce (docs/config_guidebook.md
for StratoVirt, qemu-options.hx for QEMU 7.2) plus the simulator's own long options:
``--profile``, ``--seed``, ``--workload ws=SIZE,rate=SIZE[,pattern=cyclic|random|hot-cold]``,
``--resident SIZE``, ``--time-scale X`` and ``--qmp-rate-limit N``. Anything it cannot
accept raises :class:`CmdlineError` with one line, which ``__main__`` prints (exit 1).
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field

from simulator.model import (
    PROFILES,
    CpuTopology,
    Device,
    DeviceClass,
    DirtyPattern,
    MachineType,
    Workload,
)
from simulator.model.devices import DRIVERS
from simulator.model.profiles import CmdlineRules, Profile
from simulator.model.units import GiB, KiB, MiB

#: Drivers accepted on the command line that the model does not track.
_IGNORED_DRIVERS = frozenset(
    {
        "virtio-rng-pci",
        "virtio-rng-device",
        "virtio-serial-pci",
        "virtio-serial-device",
        "virtconsole",
        "pci-bridge",
        "virtio-scsi-pci",
        "virtio-vsock-pci",
        "vhost-vsock-pci",
    }
)
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
        "-D",
        "-pidfile",
        "-mem-path",
        "-vga",
        "-monitor",
        "-boot",
        "-rtc",
        "-msg",
        "-uuid",
    }
)


class CmdlineError(ValueError):
    """A command line the simulated hypervisor rejects; ``str()`` is the one line to print."""


@dataclass(frozen=True)
class Endpoint:
    """A socket address: ``unix`` path or loopback ``tcp`` host and port."""

    kind: str  # "unix" | "tcp" | "exec" (QEMU migration/exec.c: path is the command)
    path: str = ""
    host: str = ""
    port: int = 0

    def uri(self) -> str:
        if self.kind in ("unix", "exec"):
            return f"{self.kind}:{self.path}"
        return f"tcp:{self.host}:{self.port}"


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
    start_paused: bool = False
    incoming: str | None = None
    seed: int = 0
    workload: Workload = field(default_factory=Workload)
    resident: int = 64 * MiB
    time_scale: float = 1.0
    qmp_rate_limit: int | None = None  # commands per second (StratoVirt: 100)


def _props(text: str, first_key: str | None = None) -> tuple[str | None, dict[str, str]]:
    """Split ``a,b=c,d`` into (leading bare value, {key: value}); bare flags map to ''."""
    head: str | None = None
    props: dict[str, str] = {}
    for i, part in enumerate(p for p in text.split(",")):
        if "=" in part:
            k, _, v = part.partition("=")
            props[k.strip()] = v
        elif i == 0 and first_key is not None:
            head = part
        elif part:
            props[part] = ""
    if head is None and first_key is not None and first_key in props:
        head = props.pop(first_key)
    return head, props


def parse_size(text: str, default_unit: int = MiB) -> int:
    """``1024``, ``1024M``, ``2G``, ``512k`` -> bytes (QEMU/StratoVirt: bare number = MiB)."""
    t = text.strip()
    units = {"k": KiB, "m": MiB, "g": GiB, "t": 1024 * GiB, "b": 1}
    unit = default_unit
    if t and t[-1].lower() in units:
        unit = units[t[-1].lower()]
        t = t[:-1]
    if t.lower().endswith("i"):  # "Mi"/"Gi" spellings from --workload
        t = t[:-1]
    try:
        value = float(t)
    except ValueError:
        raise CmdlineError(f"invalid size '{text}'") from None
    if value < 0:
        raise CmdlineError(f"invalid size '{text}'")
    return int(value * unit)


def _int(text: str, what: str) -> int:
    try:
        return int(text, 0)
    except ValueError:
        raise CmdlineError(f"invalid {what} '{text}'") from None


def parse_endpoint(text: str, what: str) -> Endpoint:
    """``unix:PATH`` or ``tcp:IP:PORT`` (loopback only)."""
    scheme, _, rest = text.partition(":")
    scheme = scheme.lower()
    if scheme == "exec" and rest:
        return Endpoint("exec", path=rest)
    if scheme == "unix" and rest:
        if ":" in rest:
            raise CmdlineError(f"{what}: unix path must not contain ':': {rest}")
        return Endpoint("unix", path=rest)
    if scheme == "tcp" and rest:
        host, _, port = rest.rpartition(":")
        host = host.strip("[]")
        if host in ("", "0", "0.0.0.0", "localhost"):
            host = "127.0.0.1"
        try:
            addr = ipaddress.ip_address(host)
        except ValueError:
            raise CmdlineError(f"{what}: invalid address '{rest}'") from None
        if not addr.is_loopback:
            raise CmdlineError(f"{what}: the simulator only listens on loopback, not {host}")
        p = _int(port, f"{what} port")
        if not 0 <= p <= 65535:
            raise CmdlineError(f"{what}: invalid port {port}")
        return Endpoint("tcp", host=host, port=p)
    raise CmdlineError(f"{what}: unsupported address '{text}' (use unix:PATH or tcp:IP:PORT)")


def _server_props(props: dict[str, str], what: str, rules: CmdlineRules) -> None:
    server = "server" in props and props["server"] in ("", "on")
    nowait = ("nowait" in props) or props.get("wait") == "off"
    if not server:
        raise CmdlineError(f"{what}: only server sockets are supported (add 'server')")
    if rules.server_needs_nowait and not nowait:
        raise CmdlineError(f"{what}: Argument 'server' and 'nowait' are both required")


def _machine(text: str, rules: CmdlineRules) -> MachineType:
    head, props = _props(text, first_key="type")
    name = (head or "").strip()
    try:
        machine = MachineType(name)
    except ValueError:
        raise CmdlineError(rules.machine_error.format(text=text, name=name)) from None
    gic = props.get("gic-version")
    if gic is not None and gic not in ("3", "max", "host") and rules.gic_version_check:
        raise CmdlineError(f"-machine {text}: gic-version must be 3")
    return machine


def _smp(text: str) -> CpuTopology:
    head, props = _props(text, first_key="cpus")
    cpus = _int(head, "smp cpus") if head else 0
    sockets = _int(props.get("sockets", "0"), "smp sockets")
    dies = _int(props.get("dies", props.get("clusters", "1")), "smp dies")
    cores = _int(props.get("cores", "0"), "smp cores")
    threads = _int(props.get("threads", "1"), "smp threads")
    maxcpus = _int(props.get("maxcpus", "0"), "smp maxcpus")
    if not cpus:
        cpus = maxcpus or max(1, sockets or 1) * dies * max(1, cores or 1) * threads
    topo = CpuTopology(cpus, sockets, dies, cores, threads, maxcpus)
    try:
        return topo.resolved()
    except ValueError as exc:
        raise CmdlineError(f"-smp {text}: {exc}") from None


def _memory(text: str, rules: CmdlineRules) -> int:
    head, _ = _props(text, first_key="size")
    size = parse_size(head or "")
    low, high = rules.memory_range or (0, size)
    if not low <= size <= high:
        raise CmdlineError(
            "Memory size must >= 128MiB and <= 512GiB, default unit: MiB, "
            f"current memory size: {size} Bytes"
        )
    if size < 4 * MiB or size % 4096:
        raise CmdlineError(f"-m {text}: invalid memory size")
    return size


def _addr(text: str, what: str) -> int:
    slot = text.split(".")[0]
    return _int(slot, what)


def _device(text: str) -> Device | None:
    driver, props = _props(text, first_key="driver")
    driver = (driver or "").strip()
    if driver in _IGNORED_DRIVERS:
        return None
    cls = DRIVERS.get(driver)
    if cls is None and driver == "vhost-user-net-pci":
        cls = DeviceClass.VHOST_USER_NET
    if cls is None:
        raise CmdlineError(f"-device {text}: '{driver}' is not a valid device model name")
    dev_id = props.get("id") or props.get("netdev") or props.get("drive") or driver
    if cls is DeviceClass.NET and props.get("vhost") == "on":
        cls = DeviceClass.VHOST_NET
    addr = _addr(props["addr"], f"-device {driver} addr") if "addr" in props else None
    return Device(
        id=dev_id,
        cls=cls,
        driver=driver,
        bus=props.get("bus"),
        addr=addr,
        mac=props.get("mac"),
        backend=props.get("drive") or props.get("netdev") or props.get("chardev"),
    )


def _workload(text: str) -> Workload:
    _, props = _props(text)
    try:
        pattern = DirtyPattern(props.get("pattern", "cyclic"))
    except ValueError:
        raise CmdlineError(f"--workload: unknown pattern '{props['pattern']}'") from None
    unknown = set(props) - {"ws", "rate", "pattern", "offset", "cpu"}
    if unknown:
        raise CmdlineError(f"--workload: unknown key(s) {', '.join(sorted(unknown))}")
    cpu = props.get("cpu")
    return Workload(
        working_set=parse_size(props.get("ws", "0")),
        dirty_rate=float(parse_size(props.get("rate", "0").removesuffix("/s"))),
        pattern=pattern,
        cpu_capacity=float(parse_size(cpu)) if cpu else None,
        ws_offset=parse_size(props.get("offset", "0")),
    )


class _Args:
    def __init__(self, argv: list[str]) -> None:
        self.argv, self.i = argv, 0

    def value(self, flag: str) -> str:
        self.i += 1
        if self.i >= len(self.argv):
            raise CmdlineError(f"{flag} requires an argument")
        return self.argv[self.i]


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
        ):
            raw.setdefault("-machine" if arg == "-M" else arg, []).append(a.value(arg))
        else:
            raise CmdlineError(f"invalid option '{arg}'")
        a.i += 1

    profile = own.get("profile", "qemu-7.2")
    if profile not in PROFILES:
        raise CmdlineError(f"--profile: unknown profile '{profile}' (one of {', '.join(PROFILES)})")
    prof = PROFILES[profile]
    rules = prof.cmdline

    def one(flag: str) -> str | None:
        vals = raw.get(flag, [])
        return vals[-1] if vals else None

    machine = _machine(one("-machine") or rules.default_machine, rules)
    smp = _smp(one("-smp") or "1")
    memory = _memory(one("-m") or rules.default_memory, rules)

    chardevs: dict[str, tuple[Endpoint, str | None]] = {}
    for text in raw.get("-chardev", []):
        backend, props = _props(text, first_key="backend")
        cid = props.get("id")
        if backend != "socket" or not cid or "path" not in props:
            raise CmdlineError(
                f"-chardev {text}: only 'socket,id=ID,path=PATH,server' is supported"
            )
        _server_props(props, f"-chardev {cid}", rules)
        chardevs[cid] = (Endpoint("unix", path=props["path"]), props.get("logfile"))

    qmp_text = one("-qmp")
    qmp: Endpoint | None = None
    if qmp_text is not None:
        addr, _, rest = qmp_text.partition(",")
        _, props = _props(rest)
        _server_props(props, "-qmp", rules)
        qmp = parse_endpoint(addr, "-qmp")
    for text in raw.get("-mon", []):
        _, props = _props(text)
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
        elif serial_text.startswith("unix:"):
            addr, _, rest = serial_text.partition(",")
            _, props = _props(rest)
            _server_props(props, "-serial", rules)
            serial = Serial("socket", parse_endpoint(addr, "-serial"))
        elif serial_text != "none":
            raise CmdlineError(f"-serial {serial_text}: unsupported serial backend")

    drives: dict[str, str] = {}
    for text in raw.get("-drive", []):
        _, props = _props(text)
        if "id" not in props and props.get("if") != "pflash":
            raise CmdlineError(f"-drive {text}: id is required")
        drives[props.get("id", f"pflash{len(drives)}")] = props.get("file", "")
    netdevs: dict[str, str] = {}
    for text in raw.get("-netdev", []):
        kind, props = _props(text, first_key="type")
        if "id" not in props:
            raise CmdlineError(f"-netdev {text}: id is required")
        if kind not in ("tap", "user", "vhost-user", "socket"):
            raise CmdlineError(f"-netdev {text}: unsupported netdev type '{kind}'")
        netdevs[props["id"]] = props.get("ifname", "")
    devices = tuple(d for d in (_device(t) for t in raw.get("-device", [])) if d is not None)
    ids = [d.id for d in devices]
    if len(set(ids)) != len(ids):
        raise CmdlineError("Duplicate device ids on the command line")

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
        _check_incoming(incoming, prof)

    try:
        seed = int(own.get("seed", "0"))
        time_scale = float(own.get("time-scale", "1"))
        rate_limit = int(own["qmp-rate-limit"]) if "qmp-rate-limit" in own else None
    except ValueError as exc:
        raise CmdlineError(f"invalid simulator option: {exc}") from None
    if not time_scale > 0:
        raise CmdlineError("--time-scale must be > 0")
    workload = _workload(own["workload"]) if "workload" in own else Workload()
    resident = parse_size(own.get("resident", "64M"))
    if workload.working_set + workload.ws_offset > memory:
        raise CmdlineError("--workload: the working set does not fit in guest memory")
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
        start_paused="-S" in flags,
        incoming=incoming,
        seed=seed,
        workload=workload,
        resident=min(resident, memory),
        time_scale=time_scale,
        qmp_rate_limit=rate_limit if rate_limit is not None else prof.qmp_rate_limit,
    )


def _check_incoming(uri: str, prof: Profile) -> None:
    """``-incoming`` forms: tcp/unix everywhere, file:DIR where snapshots restore
    (StratoVirt incoming.rs), exec:CMD where the profile migrates through a command."""
    head = uri.split(",")[0]
    scheme, _, rest = head.partition(":")
    if scheme.lower() == "file" and prof.file_snapshot:
        if not rest or ":" in rest:
            raise CmdlineError(f'Add args "{uri}" error.: Invalid incoming uri.')
        return
    if scheme.lower() == "exec" and rest and prof.exec_migration:
        return  # migration/exec.c: "sh -c CMD", the stream on its stdout
    if scheme.lower() not in ("tcp", "unix"):
        raise CmdlineError(prof.cmdline.incoming_error.format(uri=uri))
    if prof.tcp_uri_ipv4_only and scheme.lower() == "tcp":
        host, _, port = rest.rpartition(":")
        try:
            ipaddress.IPv4Address(host)
            int(port)
        except ValueError:
            raise CmdlineError(f'Add args "{uri}" error.: Invalid incoming uri.') from None
    parse_endpoint(head, "-incoming")
