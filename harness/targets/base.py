"""What every backend provides: argv from a VMSpec, availability, typed traits."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from harness.guest import GuestImage
from harness.runner import LOCAL, Runner
from harness.spec import Arch, VMSpec
from harness.targets.traits import Traits


@dataclass(frozen=True)
class RunPaths:
    """Per-VM files: sockets in a private short-lived dir, logs where reports keep them."""

    dir: Path  # sockets (0700, removed at teardown; short path for AF_UNIX), on the host
    logs: Path  # process output, QMP transcript (kept as artifacts), here
    #: where the hypervisor writes its own logs (serial): ``logs`` when it runs here, a
    #: folder on the host otherwise (fetched into ``logs`` at shutdown)
    host_logs: Path | None = None

    @property
    def qmp(self) -> Path:
        return self.dir / "qmp.sock"

    @property
    def serial(self) -> Path:
        return self.dir / "serial.sock"

    @property
    def migration(self) -> Path:
        return self.dir / "migrate.sock"

    @property
    def tag(self) -> str:
        """Six hex digits unique to this VM's run folder: names a VM owns on its host
        (tap interfaces: two VMs on one host cannot attach the same tap)."""
        return hashlib.sha1(str(self.dir).encode()).hexdigest()[:6]

    def tap(self, netdev: str) -> str:
        """The tap interface this VM's netdev ``netdev`` uses when no name is given
        (15 characters at most: IFNAMSIZ)."""
        return f"hv{self.tag}{netdev[:7]}"

    @property
    def serial_log(self) -> Path:
        return (self.host_logs or self.logs) / "serial.log"

    @property
    def stdout(self) -> Path:
        return self.logs / "stdout.log"

    @property
    def stderr(self) -> Path:
        return self.logs / "stderr.log"

    @property
    def transcript(self) -> Path:
        return self.logs / "qmp.jsonl"


def device_args(spec: VMSpec, netdev_arg: Callable[[str], str], tap_options: str = "") -> list[str]:
    """The argv tail both products share: -netdev, -device, -S, -incoming.

    ``tap_options`` follow ``tap,id=..,ifname=..`` for named taps (QEMU: no ifup
    scripts)."""
    argv: list[str] = []
    for netdev in spec.netdevs:
        argv += ["-netdev", netdev_arg(netdev)]
    for tap in spec.taps:
        argv += ["-netdev", f"tap,id={tap.id},ifname={tap.ifname}{tap_options}"]
    for dev in spec.devices:
        props = "".join(f",{k}={v}" for k, v in dev.props)
        argv += ["-device", f"{dev.driver},id={dev.id}{props}"]
    if spec.start_paused:
        argv.append("-S")
    if spec.incoming is not None:
        argv += ["-incoming", spec.incoming]
    return argv


class Target(Protocol):
    """A backend that can launch a VM described by a VMSpec."""

    @property
    def name(self) -> str: ...

    @property
    def arch(self) -> Arch: ...

    @property
    def traits(self) -> Traits: ...

    def unavailable_reason(self) -> str | None:
        """None when this target can run here, else why not (shown as the skip reason)."""

    def unsupported_reason(self, spec: VMSpec) -> str | None:
        """None when ``spec`` can run on this target, else why not."""

    def argv(
        self, spec: VMSpec, paths: RunPaths, image: GuestImage, runner: Runner = LOCAL
    ) -> list[str]:
        """The full command line (argv list, never a shell string) to run on ``runner``."""
