"""Host access through testinfra and the preflight facts the suites depend on.

The important one is whether KVM *works*: on some machines /dev/kvm opens but every
stock guest hangs, so the answer comes from booting the test guest's kernel under
``-accel kvm`` with a timeout, never from the device node existing.
"""

from __future__ import annotations

import dataclasses
import json
import os
import platform
import re
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import testinfra

from harness.errors import HarnessError, LaunchError, WaitTimeout
from harness.guest import cache_root, guest_image
from harness.inventory import Host
from harness.leaks import check_no_leaks, owner_tag
from harness.machine import Machine
from harness.runner import LOCAL, Runner, private_dir
from harness.spec import Arch, MachineType, Topology, VMSpec
from harness.targets.kvm import Accel, KvmVerdict
from harness.targets.qemu import QEMU_BINARY, QemuTarget
from harness.waits import wait_for

KVM_PROBE_SECONDS = 15.0
_KVM_MARK = "Linux version"


@dataclass(frozen=True)
class HostFacts:
    host: str
    arch: str
    kernel: str
    qemu: dict[str, str] = field(default_factory=dict)
    stratovirt: str | None = None
    libvirt: str | None = None
    kvm_device: bool = False
    kvm_works: bool = False
    kvm_detail: str = ""
    hugepages_total: int = 0
    tools: dict[str, bool] = field(default_factory=dict)
    mem_available_kib: int = 0
    #: the host's kernel boot and KVM device: hosts sharing it share KVM verdicts
    kernel_key: str = ""

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def accel(self) -> str:
        return "kvm" if self.kvm_works else "tcg"


def connect(host: Host) -> Any:
    """A testinfra host object for ``host``."""
    try:
        return testinfra.get_host(host.testinfra_spec)
    except Exception as exc:  # testinfra raises assorted types for a bad spec
        raise HarnessError(
            f"host {host.name}: cannot connect ({host.testinfra_spec}): {exc}"
        ) from exc


def _version(ti: Any, argv: list[str]) -> str | None:
    if not ti.exists(argv[0]):
        return None
    out = ti.run_expect([0, 1], " ".join(argv))
    m = re.search(r"(\d+\.\d+(?:\.\d+)?)", out.stdout + out.stderr)
    return m.group(1) if m else (out.stdout.strip().splitlines() or ["unknown"])[0]


def gather_facts(host: Host, probe: bool = True) -> HostFacts:
    """Arch, kernel, hypervisor versions, tools and a real KVM probe for ``host``."""
    ti = connect(host)
    try:
        arch = ti.system_info.arch
        kernel = ti.check_output("uname -r")
    except Exception as exc:
        raise HarnessError(f"host {host.name}: cannot read system facts: {exc}") from exc
    qemu = {}
    for a, binary in QEMU_BINARY.items():
        v = _version(ti, [binary, "--version"])
        if v:
            qemu[a.value] = v
    kvm_device = ti.file("/dev/kvm").exists
    works, detail = False, "no /dev/kvm"
    if kvm_device and probe:
        if host.connection == "local":
            works, detail = probe_kvm_local(Arch.parse(arch))
        else:
            works, detail = False, "KVM probe on ssh hosts runs when hvlab runs on that host"
    elif kvm_device:
        detail = "not probed"
    hp = ti.run("cat /proc/sys/vm/nr_hugepages")
    return HostFacts(
        host=host.name,
        arch=arch,
        kernel=kernel,
        qemu=qemu,
        stratovirt=_version(ti, ["stratovirt", "-version"]),
        libvirt=_version(ti, ["libvirtd", "--version"]),
        kvm_device=kvm_device,
        kvm_works=works,
        kvm_detail=detail,
        hugepages_total=int(hp.stdout.strip() or 0) if hp.rc == 0 else 0,
        tools={t: ti.exists(t) for t in ("ip", "bridge", "tc", "unshare")},
        mem_available_kib=_mem_available() if host.connection == "local" else 0,
        kernel_key=_kernel_key() if host.connection == "local" else "",
    )


def _mem_available() -> int:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return 0


def _kernel_key() -> str:
    rdev = os.stat("/dev/kvm").st_rdev if os.path.exists("/dev/kvm") else 0
    return f"{_boot_id()}-{rdev}"


def _boot_id() -> str:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return "unknown"


def probe_kvm_local(arch: Arch, seconds: float = KVM_PROBE_SECONDS) -> tuple[bool, str]:
    """Boot the test guest's kernel under KVM here (see probe_kvm)."""
    if platform.machine() != arch.value:
        return False, f"host is {platform.machine()}, KVM cannot run {arch.value} guests"
    return probe_kvm(arch, _kernel_key(), LOCAL, seconds)


def probe_kvm(
    arch: Arch, kernel_key: str, runner: Runner, seconds: float = KVM_PROBE_SECONDS
) -> tuple[bool, str]:
    """Boot the test guest's kernel under KVM on ``runner``'s host; it works only if the
    kernel prints in time.

    The verdict is cached per boot of the host's kernel and KVM device (``kernel_key``)
    and per QEMU binary: hosts on one kernel (namespace lab hosts) share it.
    """
    binary = QEMU_BINARY[arch]
    key = f"{kernel_key.split('-', 1)[0]}-{binary}-{kernel_key.split('-', 1)[-1]}"
    cache = cache_root() / "kvm-probe.json"
    try:
        known = json.loads(cache.read_text())
    except (OSError, ValueError):
        known = {}
    if key in known:
        return bool(known[key][0]), str(known[key][1])
    works, detail = _boot_under_kvm(arch, binary, seconds, runner=runner)
    known[key] = [works, detail]
    cache.parent.mkdir(parents=True, exist_ok=True)
    cache.write_text(json.dumps(known))
    return works, detail


def _boot_under_kvm(
    arch: Arch, binary: str, seconds: float, accel: Accel = Accel.KVM, runner: Runner = LOCAL
) -> tuple[bool, str]:
    """Launch the test guest under ``-accel kvm``; it works if the kernel prints in time.

    ``accel`` is for the self-test, which checks the detection under TCG.
    """
    target = QemuTarget(arch, binary=binary, accel=accel)
    # loglevel=7 after the image's "quiet": the kernel's first line is the sign of life
    spec = VMSpec(
        machine=MachineType.standard(arch), topology=Topology(1, 1, 1, 1), append="loglevel=7"
    )
    logs = private_dir("hvlab-kvm-")
    owner = owner_tag(f"kvm-probe-{os.getpid()}")
    image = guest_image(arch)
    image = dataclasses.replace(
        image, kernel=runner.stage(image.kernel), initrd=runner.stage(image.initrd)
    )
    vm = Machine(target, spec, image, "kvm-probe", logs, owner, runner)
    start = time.monotonic()
    try:
        vm.start()
        wait_for(
            lambda: vm.exit_code() is not None or _KVM_MARK in _read(vm.paths.serial_log) or None,
            seconds,
            "the guest kernel to print under KVM",
        )
        code = vm.exit_code()
        if code is not None:
            last = vm.stderr_tail(1) or "no output"
            return False, f"qemu -accel {accel.value} exited with {code}: {last}"
        took = time.monotonic() - start
        return True, f"guest kernel printed under {accel.name} after {took:.1f}s"
    except LaunchError as exc:
        return False, f"qemu -accel {accel.value} did not start: {exc}"
    except WaitTimeout:
        size = len(_read(vm.paths.serial_log))
        return False, (
            f"/dev/kvm opens but the guest kernel printed nothing in "
            f"{seconds:.0f}s ({size} bytes of console): use TCG"
        )
    finally:
        vm.shutdown(timeout=1.0)
        shutil.rmtree(logs, ignore_errors=True)
        runner.kill_tagged(owner)
        check_no_leaks(owner)


def _read(path: Path) -> str:
    try:
        return path.read_text(errors="replace")
    except OSError:
        return ""


def kvm_verdict(host: Host, facts: HostFacts, arch: Arch) -> KvmVerdict:
    """Whether KVM works for ``arch`` guests on ``host``: probed on first ask, not before."""
    if not facts.kvm_device:
        return KvmVerdict.fixed(False, "no /dev/kvm")
    if Arch.parse(facts.arch) is not arch:
        return KvmVerdict.fixed(False, f"host is {facts.arch}, KVM cannot run {arch.value} guests")
    if host.connection != "local":
        return KvmVerdict.fixed(False, "KVM probe on ssh hosts runs when hvlab runs on that host")
    return KvmVerdict(lambda: probe_kvm_local(arch))
