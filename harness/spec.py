"""Typed description of a VM, shared by every target backend."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field


class Arch(enum.Enum):
    X86_64 = "x86_64"
    AARCH64 = "aarch64"

    @property
    def deb_arch(self) -> str:
        """Debian's name for the architecture."""
        return {Arch.X86_64: "amd64", Arch.AARCH64: "arm64"}[self]

    @property
    def console_tty(self) -> str:
        """The serial console the guest kernel writes to (8250 on x86, PL011 on Arm virt)."""
        return {Arch.X86_64: "ttyS0", Arch.AARCH64: "ttyAMA0"}[self]

    @classmethod
    def parse(cls, text: str) -> Arch:
        aliases = {
            "x86_64": cls.X86_64,
            "amd64": cls.X86_64,
            "aarch64": cls.AARCH64,
            "arm64": cls.AARCH64,
        }
        try:
            return aliases[text.strip().lower()]
        except KeyError:
            raise ValueError(f"unknown architecture {text!r} (use x86_64 or aarch64)") from None


class MachineType(enum.Enum):
    Q35 = "q35"
    MICROVM = "microvm"
    VIRT = "virt"

    @property
    def arch(self) -> Arch:
        return Arch.AARCH64 if self is MachineType.VIRT else Arch.X86_64

    @classmethod
    def standard(cls, arch: Arch) -> MachineType:
        """The standard (PCIe) machine of an architecture: q35 or virt."""
        return cls.Q35 if arch is Arch.X86_64 else cls.VIRT


@dataclass(frozen=True)
class Topology:
    """-smp: cpus=sockets*cores*threads unless maxcpus leaves room for hotplug."""

    cpus: int = 1
    sockets: int = 1
    cores: int = 1
    threads: int = 1
    maxcpus: int | None = None

    def __post_init__(self) -> None:
        for name in ("cpus", "sockets", "cores", "threads"):
            if getattr(self, name) < 1:
                raise ValueError(f"smp {name} must be >= 1")
        slots = self.sockets * self.cores * self.threads
        limit = self.maxcpus if self.maxcpus is not None else self.cpus
        if slots != limit:
            raise ValueError(
                f"smp sockets*cores*threads = {slots} must equal maxcpus (or cpus) = {limit}"
            )
        if self.cpus > limit:
            raise ValueError(f"smp cpus={self.cpus} exceeds maxcpus={limit}")

    @property
    def max_cpus(self) -> int:
        return self.maxcpus if self.maxcpus is not None else self.cpus

    def position(self, index: int) -> tuple[int, int, int]:
        """(socket, core, thread) of vCPU ``index`` (threads vary fastest, as both
        products number them; an index past maxcpus gives a socket past the last)."""
        per_socket = self.cores * self.threads
        return index // per_socket, index % per_socket // self.threads, index % self.threads

    def smp_arg(self) -> str:
        text = f"{self.cpus},sockets={self.sockets},cores={self.cores},threads={self.threads}"
        if self.maxcpus is not None:
            text += f",maxcpus={self.maxcpus}"
        return text


@dataclass(frozen=True)
class DeviceSpec:
    """A -device (and its backend) present at launch."""

    driver: str
    id: str
    props: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class TapNetdev:
    """A network backend on a host tap device (created by the hypervisor in the network
    namespace it runs in; harness/net/ puts it on that namespace's bridge)."""

    id: str
    ifname: str

    def __post_init__(self) -> None:
        if not (0 < len(self.ifname) < 16) or not self.ifname.replace("-", "").isalnum():
            raise ValueError(f"tap name {self.ifname!r}: 1-15 letters, digits or '-'")


@dataclass(frozen=True)
class TlsCreds:
    """A TLS credentials object for migration (QEMU: tls-creds-x509 / tls-creds-psk)."""

    kind: str  # "x509" or "psk"
    dir: str
    endpoint: str  # "server" (the destination) or "client" (the source)
    id: str = "tls0"
    username: str = ""  # psk client

    def __post_init__(self) -> None:
        if self.kind not in ("x509", "psk") or self.endpoint not in ("server", "client"):
            raise ValueError(f"tls creds {self.kind}/{self.endpoint}: unknown kind or endpoint")


@dataclass(frozen=True)
class VMSpec:
    """Everything a target needs to turn into a hypervisor command line."""

    machine: MachineType = MachineType.Q35
    topology: Topology = field(default_factory=lambda: Topology(2, 2, 1, 1))
    memory_mib: int = 256
    devices: tuple[DeviceSpec, ...] = ()
    netdevs: tuple[str, ...] = ()  # ids of network backends (QEMU: user mode; StratoVirt: tap)
    taps: tuple[TapNetdev, ...] = ()  # network backends on named tap devices
    tls: TlsCreds | None = None  # credentials for a TLS migration stream
    append: str = ""
    start_paused: bool = False
    incoming: str | None = None

    @property
    def arch(self) -> Arch:
        return self.machine.arch

    def __post_init__(self) -> None:
        if self.memory_mib < 64:
            raise ValueError(f"memory {self.memory_mib} MiB is too small (>= 64)")
