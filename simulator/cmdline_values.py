"""Parsers for one command-line value each: sizes, endpoints, -machine, -smp, -m, -device,
-incoming and the simulator's --workload. What a profile's command line accepts comes
from its :class:`~simulator.model.profiles.CmdlineRules`; a value it cannot accept
raises :class:`CmdlineError` with the one line to print.
"""

from __future__ import annotations

import ipaddress
import math
from dataclasses import dataclass

from simulator.model import (
    Arch,
    CpuTopology,
    Device,
    DeviceClass,
    DirtyPattern,
    MachineType,
    Workload,
)
from simulator.model.devices import DRIVERS
from simulator.model.migration.uri import MigrationUri, UriError, UriMode, parse_uri
from simulator.model.profiles import CmdlineRules, Profile
from simulator.model.qemu_x86 import machine_help
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


#: RFC 1918 and unique-local ranges: where lab links live (never the public network)
_LAB_NETS = [
    ipaddress.ip_network(n) for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fc00::/7")
]


class CmdlineError(ValueError):
    """A command line the simulated hypervisor rejects; ``str()`` is the one line to print."""


class UsageError(CmdlineError):
    """A bad value for one of the simulator's own options (``--time-scale``, ...): not the
    product's refusal but a usage error, exit status 2."""


def check_mac(mac: str, separators: str) -> bool:
    """Six pairs of hex digits joined by one of ``separators``."""
    if len(mac) != 17:
        return False
    pairs = [mac[i : i + 2] for i in range(0, 17, 3)]
    seps = {mac[i] for i in range(2, 17, 3)}
    hexdigits = set("0123456789abcdefABCDEF")
    return seps <= set(separators) and all(set(p) <= hexdigits for p in pairs)


class HelpRequested(Exception):
    """An option asked for a listing (``-machine help``): ``str()`` goes to stdout, exit 0."""


@dataclass(frozen=True)
class Endpoint:
    """A socket address: ``unix`` path or loopback ``tcp`` host and port."""

    kind: str  # "unix" | "tcp" | "exec" (QEMU migration/exec.c: path is the command) | "fd"
    path: str = ""
    host: str = ""
    port: int = 0
    # A chardev socket (simulator/chardev.py): listen, or connect to the address / use
    # the inherited socket ``fd``; ``label`` is the option that named it (for errors).
    server: bool = True
    fd: int = -1
    label: str = ""

    def uri(self) -> str:
        if self.kind in ("unix", "exec"):
            return f"{self.kind}:{self.path}"
        return f"tcp:{self.host}:{self.port}"


def split_props(text: str, first_key: str | None = None) -> tuple[str | None, dict[str, str]]:
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
    if not math.isfinite(value) or value < 0:
        raise CmdlineError(f"invalid size '{text}'")
    return int(value * unit)


def parse_int(text: str, what: str) -> int:
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
        # loopback, or a private lab-link address (a lab host in a namespace listens on
        # its own 10.x address); never a public one
        if not (addr.is_loopback or any(addr in net for net in _LAB_NETS)):
            raise CmdlineError(
                f"{what}: the simulator listens on loopback or private addresses, not {host}"
            )
        p = parse_int(port, f"{what} port")
        if not 0 <= p <= 65535:
            raise CmdlineError(f"{what}: invalid port {port}")
        return Endpoint("tcp", host=host, port=p)
    raise CmdlineError(f"{what}: unsupported address '{text}' (use unix:PATH or tcp:IP:PORT)")


def check_server(props: dict[str, str], what: str, rules: CmdlineRules) -> None:
    server = "server" in props and props["server"] in ("", "on")
    nowait = ("nowait" in props) or props.get("wait") == "off"
    if not server:
        raise CmdlineError(f"{what}: only server sockets are supported (add 'server')")
    if rules.server_needs_nowait and not nowait:
        raise CmdlineError(f"{what}: Argument 'server' and 'nowait' are both required")


def parse_machine(text: str, rules: CmdlineRules, arch: Arch = Arch.X86_64) -> MachineType:
    """-machine TYPE[,gic-version=V,...] for a build of ``arch``."""
    head, props = split_props(text, first_key="type")
    name = (head or "").strip()
    listing = rules.machine_lists.get(arch, ())
    if name in ("help", "?") and listing:
        raise HelpRequested(machine_help(listing))
    names = rules.machines.get(arch, {})
    machine = names.get(name)
    if machine is None:
        if name in {n for n, _ in listing}:
            modelled = ", ".join(sorted(names))
            raise CmdlineError(
                f"-machine {name}: machine type not modelled by the simulator "
                f"(modelled: {modelled})"
            )
        raise CmdlineError(rules.machine_error.format(text=text, name=name))
    gic = props.get("gic-version")
    if gic is not None:
        accepted = rules.gic_versions.get(arch)
        if accepted is None:
            raise CmdlineError(rules.no_gic_error.format(text=text, name=name, value=gic))
        if gic not in accepted:
            raise CmdlineError(rules.gic_error.format(text=text, name=name, value=gic))
    return machine


def parse_smp(text: str) -> CpuTopology:
    head, props = split_props(text, first_key="cpus")
    cpus = parse_int(head, "smp cpus") if head else 0
    sockets = parse_int(props.get("sockets", "0"), "smp sockets")
    dies = parse_int(props.get("dies", props.get("clusters", "1")), "smp dies")
    cores = parse_int(props.get("cores", "0"), "smp cores")
    threads = parse_int(props.get("threads", "1"), "smp threads")
    maxcpus = parse_int(props.get("maxcpus", "0"), "smp maxcpus")
    if not cpus:
        cpus = maxcpus or max(1, sockets or 1) * dies * max(1, cores or 1) * threads
    topo = CpuTopology(cpus, sockets, dies, cores, threads, maxcpus)
    try:
        return topo.resolved()
    except ValueError as exc:
        raise CmdlineError(f"-smp {text}: {exc}") from None


def parse_memory(text: str, rules: CmdlineRules) -> int:
    head, _ = split_props(text, first_key="size")
    size = parse_size(head or "")
    if size >= 1 << 64:
        raise CmdlineError(rules.size_error.format(text=head))
    low, high = rules.memory_range or (0, size)
    if not low <= size <= high:
        raise CmdlineError(
            "Memory size must >= 128MiB and <= 512GiB, default unit: MiB, "
            f"current memory size: {size} Bytes"
        )
    if size < 4 * MiB or size % 4096:
        raise CmdlineError(f"-m {text}: invalid memory size")
    return size


def parse_addr(text: str, what: str) -> int:
    slot = text.split(".")[0]
    return parse_int(slot, what)


def parse_device(text: str) -> Device | None:
    driver, props = split_props(text, first_key="driver")
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
    addr = parse_addr(props["addr"], f"-device {driver} addr") if "addr" in props else None
    return Device(
        id=dev_id,
        cls=cls,
        driver=driver,
        bus=props.get("bus"),
        addr=addr,
        mac=props.get("mac"),
        backend=props.get("drive") or props.get("netdev") or props.get("chardev"),
    )


def parse_workload(text: str) -> Workload:
    _, props = split_props(text)
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


def check_incoming(uri: str, prof: Profile) -> MigrationUri:
    """``-incoming URI`` as the profile reads it (simulator/model/migration/uri.py): file:DIR
    restores a snapshot, tcp/unix listen (loopback only), exec:CMD where the profile
    migrates through a command (QEMU migration/exec.c)."""
    try:
        parsed = parse_uri(prof.uri_rules, uri)
    except UriError as exc:
        raise CmdlineError(prof.cmdline.incoming_invalid.format(uri=uri, detail=exc)) from None
    if parsed.mode is UriMode.UNKNOWN or (parsed.mode is UriMode.EXEC and not prof.exec_migration):
        raise CmdlineError(prof.cmdline.incoming_error.format(uri=uri))
    if parsed.mode in (UriMode.TCP, UriMode.UNIX):
        parse_endpoint(parsed.endpoint, "-incoming")
    return parsed
