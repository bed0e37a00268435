"""What a simulated StratoVirt shows outside QMP replies (issue 17): the connect error of
migrate, the bytes of its live stream and snapshot files, and its aarch64 builds."""

from __future__ import annotations

import json
import socket
import struct
import threading
from pathlib import Path
from typing import Any

import pytest

from harness.errors import HarnessError, QMPCommandError
from harness.fixtures import VMFactory
from harness.hosts import HostFacts
from harness.inventory import Host
from harness.spec import Arch, MachineType, Topology, VMSpec
from harness.targets.registry import targets_for
from harness.targets.sim import SimTarget
from harness.waits import wait_for
from simulator.cmdline import CmdlineError, parse
from suites.claim import family_of

LOCAL = Host("localhost", "local", "localhost", groups=frozenset({"qemu", "simulator"}))
FACTS = {"localhost": HostFacts(host="localhost", arch="x86_64", kernel="6.1", kvm_device=True)}
REQUEST = struct.Struct("<QH6x")  # migration/src/protocol.rs Request, #[repr(C)]
ACTIVE, VM_CONFIG, MEMORY, STATE, COMPLETE, OK = 0, 1, 2, 3, 4, 6
MAGIC = list(b"STRATOVIRT" + bytes(6))


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# -- 3. the refused connection -------------------------------------------------------------
def test_migrate_to_nothing_gives_the_os_error_text(tmp_path: Path) -> None:
    """migration/src/lib.rs returns the io::Error of the connect; QEMU its own wording.

    1. StratoVirt: migrate to a closed tcp port is refused with
       "Connection refused (os error 111)".
    2. StratoVirt: migrate to a missing unix socket: "No such file or directory (os error 2)".
    3. QEMU: migrate returns and the migration fails with error-desc
       "Failed to connect to '127.0.0.1:PORT': Connection refused".
    """
    port = _closed_port()
    vms = VMFactory(SimTarget("stratovirt-2.5"), tmp_path / "sv")
    try:
        vm = vms.launch(VMSpec(), wait_guest=False)
        for uri, text in (
            (f"tcp:127.0.0.1:{port}", "Connection refused (os error 111)"),
            (f"unix:{tmp_path}/none.sock", "No such file or directory (os error 2)"),
        ):
            with pytest.raises(QMPCommandError) as info:
                vm.qmp.execute("migrate", {"uri": uri})
            assert info.value.desc == text
    finally:
        vms.close()
    vms = VMFactory(SimTarget("qemu-7.2"), tmp_path / "qemu")
    try:
        vm = vms.launch(VMSpec(), wait_guest=False)
        assert vm.qmp.execute("migrate", {"uri": f"tcp:127.0.0.1:{port}"}) == {}
        info = wait_for(
            lambda: (q := vm.qmp.execute("query-migrate"))["status"] == "failed" and q,
            20,
            "the migration to fail",
        )
        assert info["error-desc"] == f"Failed to connect to '127.0.0.1:{port}': Connection refused"
    finally:
        vms.close()


# -- 7. the live stream --------------------------------------------------------------------
class FakeDestination(threading.Thread):
    """A StratoVirt destination (migration.rs recv_migration) that keeps what it read."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = int(self.server.getsockname()[1])
        self.requests: list[tuple[int, int]] = []  # (status, length)
        self.first = b""
        self.config: Any = None
        self.header = b""
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            conn, _ = self.server.accept()
            with conn, conn.makefile("rwb") as f:
                self._serve(f)
        except BaseException as exc:  # reported by the test
            self.error = exc
        finally:
            self.server.close()

    def _request(self, f: Any) -> tuple[int, int]:
        raw = f.read(REQUEST.size)
        if not self.first:
            self.first = raw
        length, status = REQUEST.unpack(raw)
        self.requests.append((status, length))
        return status, length

    def _serve(self, f: Any) -> None:
        def ok() -> None:
            f.write(struct.pack("<H", OK))
            f.flush()

        self._request(f)
        ok()
        _, length = self._request(f)
        self.config = json.loads(f.read(length))
        ok()
        while True:
            status, length = self._request(f)
            if status == MEMORY:
                blocks = json.loads(f.read(length))
                if isinstance(blocks, dict):  # the blocks' bytes follow the MemBlocks
                    f.read(int(blocks.get("data", 0)))
                ok()
                continue
            assert status == STATE, status
            self.header = f.read(4096)
            (n,) = struct.unpack("<Q", self.header[:8])
            desc_len = json.loads(self.header[8 : 8 + n])["desc_len"]
            f.read(desc_len)
            _, _, size = struct.unpack("<QQQ", f.read(24))
            f.read(size)
            ok()
            self._request(f)  # Complete
            ok()
            return


def test_live_stream_is_stratovirt_framed(tmp_path: Path) -> None:
    """A capture of a simulated StratoVirt live migration looks like a real one.

    1. The stream opens with Request{length 0, status Active}: 16 bytes.
    2. Then Request{VmConfig, n} and n bytes of configuration.
    3. Memory requests follow, each answered Ok, then Request{State, 0}.
    4. The state begins with general.rs save_header's 4096-byte block: the LE length of
       the MigrationHeader JSON, whose magic_num is "STRATOVIRT" as 16 bytes,
       compat_version 8194, arch "x86_6400", format "Device"; zeros to 4096.
    5. After Ok the source sends Complete, and exits 0 once answered.
    """
    dst = FakeDestination()
    dst.start()
    vms = VMFactory(SimTarget("stratovirt-2.5", options=("--time-scale", "20")), tmp_path)
    try:
        src = vms.launch(VMSpec(), wait_guest=False)
        assert src.qmp.execute("migrate", {"uri": f"tcp:127.0.0.1:{dst.port}"}) == {}
        dst.join(60)
        assert dst.error is None, dst.error
        assert dst.first == REQUEST.pack(0, ACTIVE)
        assert dst.requests[1][0] == VM_CONFIG and isinstance(dst.config, dict)
        statuses = [s for s, _ in dst.requests[2:]]
        assert set(statuses[:-2]) == {MEMORY} and statuses[-2:] == [STATE, COMPLETE]
        assert dst.requests[-2] == (STATE, 0)
        (n,) = struct.unpack("<Q", dst.header[:8])
        head = json.loads(dst.header[8 : 8 + n])
        assert head["magic_num"] == MAGIC and head["compat_version"] == (2 << 12) | 2
        assert head["arch"] == list(b"x86_6400") and head["format"] == "Device"
        assert dst.header[8 + n :] == bytes(4096 - 8 - n)
        assert src.wait_exit(30) == 0
    finally:
        vms.close()


def test_snapshot_files_open_with_the_header(tmp_path: Path) -> None:
    """migrate file:DIR writes StratoVirt's header at the start of both files.

    1. DIR/state's header says format "Device", DIR/memory's "MemoryFull" with desc_len
       4096 (two pages minus the header); both carry the magic and the x86_64 arch.
    2. A state file whose magic is damaged does not restore: the process exits 1 naming
       the magic number.
    """
    vms = VMFactory(SimTarget("stratovirt-2.5"), tmp_path / "logs")
    snap = tmp_path / "snap"
    try:
        vm = vms.launch(VMSpec(), wait_guest=False)
        assert vm.qmp.execute("migrate", {"uri": f"file:{snap}"}) == {}
        heads = {}
        for name in ("state", "memory"):
            block = (snap / name).read_bytes()[:4096]
            (n,) = struct.unpack("<Q", block[:8])
            heads[name] = json.loads(block[8 : 8 + n])
            assert heads[name]["magic_num"] == MAGIC
            assert heads[name]["arch"] == list(b"x86_6400")
        assert heads["state"]["format"] == "Device"
        assert heads["memory"]["format"] == "MemoryFull" and heads["memory"]["desc_len"] == 4096
        vm.shutdown()
        data = bytearray((snap / "state").read_bytes())
        at = data.index(b"[83,84,82")
        data[at + 1 : at + 3] = b"99"
        (snap / "state").write_bytes(bytes(data))
        bad = vms.create(VMSpec(incoming=f"file:{snap}"), "restore")
        with pytest.raises(HarnessError):
            bad.launch(wait_guest=False)
        assert "Magic_number for snapshot file / migration stream is not fit" in (
            bad.paths.stderr.read_text()
        )
    finally:
        vms.close()


# -- 8. aarch64 ----------------------------------------------------------------------------
def test_default_inventory_has_aarch64_simulators() -> None:
    """The [simulator] group gives every profile on x86_64 and on aarch64.

    1. The x86_64 names stay sim:<profile>; the aarch64 ones are sim:aarch64:<profile>.
    2. Every target name is unique.
    3. The catalog maps sim:aarch64:qemu-7.2 to qemu-aarch64, a StratoVirt profile to
       itself.
    """
    names = [t.name for t in targets_for([LOCAL], FACTS, lambda h, a: None)]  # type: ignore[arg-type,return-value]
    sims = [n for n in names if n.startswith("sim:")]
    assert {"sim:qemu-7.2", "sim:stratovirt-2.5", "sim:aarch64:qemu-7.2"} <= set(sims)
    assert {"sim:aarch64:stratovirt-2.5", "sim:aarch64:stratovirt-2.4"} <= set(sims)
    assert len(names) == len(set(names))
    assert family_of("sim:aarch64:qemu-7.2") == "qemu-aarch64"
    assert family_of("sim:aarch64:stratovirt-2.4") == "stratovirt-2.4"
    assert family_of("sim:qemu-7.2") == "qemu-x86_64"


def test_lab_sets_the_stratovirt_build_features() -> None:
    """hosts.ini hvlab_stratovirt_features reaches the StratoVirt simulators only.

    1. Every StratoVirt sim target runs with --build-features vfio; QEMU's does not.
    2. The simulator then knows vfio-pci on 2.5 (its default build does not).
    """
    lab = Host(
        "lab",
        "local",
        "lab",
        groups=frozenset({"simulator"}),
        vars=(("hvlab_stratovirt_features", "vfio"),),
    )
    facts = {"lab": FACTS["localhost"]}
    for t in targets_for([lab], facts, lambda h, a: None):  # type: ignore[arg-type,return-value]
        assert isinstance(t, SimTarget)
        assert (t.options == ("--build-features", "vfio")) is t.profile.startswith("stratovirt")
    argv = ["--profile", "stratovirt-2.5", "-machine", "q35", *BOOT]
    cold = ["-device", "vfio-pci,id=v0,host=0000:1a:00.3,bus=pcie.0,addr=0x5"]
    assert parse(["--build-features", "vfio", *argv, *cold]).devices[0].driver == "vfio-pci"
    with pytest.raises(CmdlineError):
        parse(argv + cold)


BOOT = ["-kernel", "k", "-initrd", "i", "-qmp", "unix:/tmp/hvlab-never.sock,server,nowait"]


@pytest.mark.parametrize(
    ("profile", "arch", "machine", "error"),
    [
        ("stratovirt-2.5", "aarch64", "q35", "Invalid machine type."),
        ("stratovirt-2.5", "x86_64", "virt", "Invalid machine type."),
        ("stratovirt-2.5", "aarch64", "virt,gic-version=2", "2 is not in 3..=3"),
        ("stratovirt-2.5", "aarch64", "virt,gic-version=3", None),
        ("stratovirt-2.5", "aarch64", "microvm", None),
        ("stratovirt-2.5", "x86_64", "q35,gic-version=3", "unexpected argument '--gic-version'"),
        ("qemu-7.2", "aarch64", "virt,gic-version=2", None),
        ("qemu-7.2", "aarch64", "virt,gic-version=4", "Invalid gic-version value"),
        ("qemu-7.2", "aarch64", "microvm", "unsupported machine type"),
        ("qemu-7.2", "x86_64", "q35,gic-version=3", "gic-version' not found"),
        ("stratovirt-2.5", "x86_64", "pc", "Invalid machine type."),
        ("qemu-7.2", "x86_64", "pc-q35-7.2", None),
        ("qemu-7.2", "x86_64", "isapc", None),
        ("qemu-7.2", "x86_64", "virt", "unsupported machine type"),
        ("qemu-7.2", "aarch64", "pc", "unsupported machine type"),
        ("qemu-7.2", "aarch64", "isapc", "unsupported machine type"),
    ],
)
def test_machine_rules_per_architecture(
    profile: str, arch: str, machine: str, error: str | None
) -> None:
    """machine_config.rs (StratoVirt) and QEMU's binaries per architecture.

    1. A build knows only its architecture's machines (StratoVirt: q35 on x86_64, virt on
       aarch64, microvm on both, no pc; qemu-system-x86_64: pc, q35 and their 7.2 names,
       isapc, microvm; qemu-system-aarch64: virt).
    2. gic-version exists on aarch64 only; StratoVirt takes 3 alone, QEMU 2, 3, host, max.
    """
    argv = ["--profile", profile, "--arch", arch, "-machine", machine, *BOOT]
    if error is None:
        assert parse(argv).arch.value == arch
    else:
        with pytest.raises(CmdlineError, match=error.replace(".", r"\.")):
            parse(argv)


def test_aarch64_stratovirt_simulator(tmp_path: Path) -> None:
    """An aarch64 StratoVirt build: virt and microvm, Arm vCPUs, an aarch64 header.

    1. On virt the guest says aarch64 and query-cpus reports "arm" vCPUs with
       cluster_id in their props.
    2. generic-x86-cpu is unknown to an aarch64 build.
    3. A snapshot's header carries arch "aarch640" and no cpu_model.
    4. microvm runs too, and reports "arm" vCPUs.
    """
    vms = VMFactory(SimTarget("stratovirt-2.5", Arch.AARCH64), tmp_path / "logs")
    smp = Topology(cpus=2, sockets=2, cores=2, threads=1, maxcpus=4)
    try:
        vm = vms.launch(VMSpec(machine=MachineType.VIRT, topology=smp))
        assert vm.console.run("uname -m") == (0, "aarch64")
        cpus = vm.qmp.execute("query-cpus")
        assert {c["arch"] for c in cpus} == {"arm"} and "cluster_id" in cpus[0]["props"]
        with pytest.raises(QMPCommandError) as info:
            vm.qmp.execute("device_add", {"id": "c2", "driver": "generic-x86-cpu", "cpu-id": 2})
        assert info.value.desc == "Failed to add device: Driver generic-x86-cpu is not support"
        snap = tmp_path / "snap"
        assert vm.qmp.execute("migrate", {"uri": f"file:{snap}"}) == {}
        block = (snap / "state").read_bytes()[:4096]
        (n,) = struct.unpack("<Q", block[:8])
        head = json.loads(block[8 : 8 + n])
        assert head["arch"] == list(b"aarch640") and "cpu_model" not in head
        micro = vms.launch(VMSpec(machine=MachineType.MICROVM), "micro", wait_guest=False)
        assert {c["arch"] for c in micro.qmp.execute("query-cpus")} == {"arm"}
    finally:
        vms.close()
