"""The lab for real: namespace hosts with their own sshd, reached with the OpenSSH client."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.errors import InventoryError
from harness.fixtures import VMFactory
from harness.hostset import HostSet
from harness.inventory import parse_inventory
from harness.lab.endpoint import endpoint
from harness.lab.netlab import NetLab, lab_namespaces
from harness.lab.ssh import HostError, SshRunner
from harness.leaks import owner_tag, tagged_processes
from harness.runner import private_dir
from harness.spec import VMSpec
from harness.targets.sim import SimTarget
from harness.waits import wait_for

ROOT = Path(__file__).resolve().parents[1]
#: tests that start hvlab sessions of their own run on one xdist worker (make test:
#: --dist loadgroup): every session reaps dead runs at its start, so two at once would
#: take each other's evidence
pytestmark = [
    pytest.mark.xdist_group("hvlab-sessions"),
    pytest.mark.skipif(
        os.geteuid() != 0 or (shutil.which("sshd") is None and not Path("/usr/sbin/sshd").exists()),
        reason="the namespace lab needs root and openssh-server (make setup installs it)",
    ),
]


def _closed_port() -> int:
    """A loopback port nothing listens on (a host nobody answers for)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def lab() -> Iterator[NetLab]:
    netlab = NetLab(("labA", "labB")).up()
    yield netlab
    netlab.down()
    assert netlab.leftovers() == []


def _processes_naming(text: str) -> list[str]:
    """Command lines of live processes that contain ``text`` (read from /proc here, not
    through harness.leaks, which this checks)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmd = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            except (OSError, UnicodeDecodeError):
                continue
            if text in cmd:
                found.append(f"{entry.name}: {cmd}")
    return found


def test_down_stops_the_sshds_though_they_overwrite_their_environment() -> None:
    """A lab's sshd rewrites its process title over its environment (OpenSSH
    setproctitle), so the owner tag hvlab puts there is gone.

    1. hvlab still counts each host's sshd as the lab's (by the lab folder on its
       command line).
    2. After down() no process names the lab's folder (the sshds are gone), and
       leftovers() is empty.
    """
    netlab = NetLab(("labA", "labB")).up()
    assert netlab.dir is not None
    folder = str(netlab.dir)
    try:
        mine = [p for p in tagged_processes(netlab.owner) if "sshd_config" in p.cmdline]
        assert len(mine) == 2, (mine, _processes_naming(folder))
    finally:
        netlab.down()
    assert _processes_naming(folder) == []
    assert netlab.leftovers() == []


@pytest.fixture
def runners(lab: NetLab) -> Iterator[dict[str, SshRunner]]:
    control = private_dir("hvlab-ctl-")
    hosts = parse_inventory(lab.inventory())
    out = {h.name: SshRunner(endpoint(h), control, f"{lab.owner}-ctl") for h in hosts}
    yield out
    for r in out.values():
        r.close()
    shutil.rmtree(control, ignore_errors=True)


def test_lab_hosts_are_separate_machines(lab: NetLab, runners: dict[str, SshRunner]) -> None:
    """Two namespace hosts behave as two machines on one link.

    1. Each answers over SSH with its own run folder, which the other cannot see (each
       has its own /tmp).
    2. B reaches A's sshd on the lab link (10.77.0.1:22).
    3. Nothing of the lab is on this machine's own network: no address of the lab
       link on any interface here (the lab is never reached but through the portals).
    """
    a, b = runners["labA"], runners["labB"]
    folder = a.private_dir("hvlab-sep-")
    assert a.exists(folder) and not b.exists(folder)
    probe = "import socket; print(socket.create_connection(('10.77.0.1', 22), 3).recv(4))"
    done = b.run(["python3", "-c", probe])
    assert done.returncode == 0 and b"SSH-" in done.stdout, done.stderr
    here = subprocess.run(["ip", "-o", "addr", "show"], capture_output=True, text=True).stdout
    assert "10.77.0." not in here
    a.remove_tree(folder)


def test_files_are_staged_once_by_checksum(lab: NetLab, runners: dict[str, SshRunner]) -> None:
    """A file goes to a host once and is reused while its content is the same.

    1. Staging puts it under the host's own cache (not visible on the other host).
    2. Staging it again copies nothing (the file on the host is not rewritten).
    3. Changed content is a new file.
    """
    assert lab.dir is not None
    src = lab.dir / "payload.bin"
    src.write_bytes(os.urandom(4096))
    a = runners["labA"]
    remote = a.stage(src)
    on_disk = lab.dir / "labA" / "cache" / remote.relative_to(Path("/root/.cache"))
    assert on_disk.read_bytes() == src.read_bytes()
    assert not runners["labB"].exists(remote)
    before = on_disk.stat().st_mtime_ns
    assert a.stage(src) == remote
    assert on_disk.stat().st_mtime_ns == before
    src.write_bytes(os.urandom(4096))
    assert a.stage(src) != remote


def test_hangup_leaves_nothing_on_the_host(runners: dict[str, SshRunner]) -> None:
    """A controller that dies (its ssh client SIGKILLed) leaves no process on the host.

    1. A spawned process runs on the host, tagged.
    2. After the local ssh client is killed, the agent kills the process group.
    """
    a = runners["labA"]
    owner = owner_tag(f"t-hangup-{os.getpid()}")
    logs = private_dir("hvlab-hangup-")
    proc = a.spawn(["sleep", "300"], owner, logs / "out", logs / "err")
    assert wait_for(lambda: tagged_processes(owner) or None, 10, "the remote sleep")
    proc._proc.kill()  # the controller's end goes away without a word
    wait_for(lambda: not tagged_processes(owner), 20, "the host to clean up")
    shutil.rmtree(logs, ignore_errors=True)


def test_ssh_refuses_what_it_must(lab: NetLab, runners: dict[str, SshRunner]) -> None:
    """Keys only, strict host keys, one clear line each.

    1. An unknown host key (empty known_hosts) is refused: "Host key verification failed".
    2. A key the host does not know is refused: "Permission denied".
    3. A host nobody answers for gives "Connection refused" naming the host.
    """
    assert lab.dir is not None
    e = endpoint(parse_inventory(lab.inventory())[0])
    control = private_dir("hvlab-ctl-")
    empty = control / "known_hosts"
    empty.write_text("")
    other_key = control / "key"
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(other_key)], check=True
    )
    closed = _closed_port()
    cases = [
        (dict(known_hosts=empty), "Host key verification failed"),
        (dict(key=other_key), "Permission denied"),
        (dict(port=closed), "Connection refused"),
    ]
    try:
        for change, words in cases:
            import dataclasses

            bad = SshRunner(dataclasses.replace(e, **change), control, f"{lab.owner}-bad")
            with pytest.raises(HostError, match=f"host labA: ssh failed: .*{words}"):
                bad.connect()
    finally:
        shutil.rmtree(control, ignore_errors=True)


@pytest.mark.parametrize(
    ("line", "words"),
    [
        ("h1 ansible_host=x?ssh_config=/tmp/evil", "is not a plain host name or IP address"),
        ("h1 ansible_host=-oProxyCommand=x", "is not a plain host name or IP address"),
        ("h1 ansible_port=\u0662\u0662", "is not a port"),
        ("h1 ansible_user=root;id", "is not a plain user name"),
        ("h1 hvlab_lab_address=10.0.0.1/8", "is not a plain host name or IP address"),
    ],
)
def test_inventory_values_that_would_reach_ssh_are_checked(line: str, words: str) -> None:
    """A value that could become an ssh option, a URL query or a shell word is refused.

    1. Loading the inventory raises one line naming the host and the value.
    """
    with pytest.raises(InventoryError, match=words):
        parse_inventory(f"[qemu]\n{line} ansible_connection=ssh\n")


def test_a_host_lost_mid_test_fails_that_test_and_leaves_nothing(lab: NetLab) -> None:
    """A destination host that dies fails the test with one line naming it.

    1. Source on labA, destination on labB (simulator, cross-host placement) both run.
    2. labB dies (every process in its namespace killed): asking the destination
       raises HostError naming labB.
    3. Tearing down cleans both hosts: no tagged process is left anywhere.
    """
    hosts = HostSet(parse_inventory(lab.inventory()))
    try:
        placement = hosts.resolve(hosts.placements(SimTarget("qemu-7.2"))[1])
        assert placement.name == "labA->labB"
        logs = private_dir("hvlab-lost-")
        vms = VMFactory(SimTarget("qemu-7.2"), logs, placement=placement)
        src = vms.launch(VMSpec(), "src")
        dst = vms.launch(VMSpec(incoming="tcp:10.77.0.2:0"), "dst", wait_guest=False, role="dst")
        assert src.exit_code() is None and dst.exit_code() is None
        lab.kill_host("labB")
        with pytest.raises(HostError, match="host labB: lost contact"):
            wait_for(lambda: dst.exit_code(), 30, "labB to be noticed gone")
        try:
            vms.close()
        except Exception as exc:  # the dead host's leak check may fail: it is gone
            assert "labB" in str(exc)
        assert tagged_processes(vms.owner) == []
        shutil.rmtree(logs, ignore_errors=True)
    finally:
        hosts.close()
        lab.down()
        lab.up()


def test_dead_host_in_inventory_gives_clean_skips(lab: NetLab, tmp_path: Path) -> None:
    """An inventory with a host nobody answers for: its placements are skipped, the run
    goes on.

    1. The run exits 0: the same-host test passes.
    2. The placement to the dead host is skipped with a reason naming the host.
    """
    assert lab.dir is not None
    closed = _closed_port()
    inventory = tmp_path / "hosts.ini"
    inventory.write_text(
        textwrap.dedent(f"""\
        [simulator]
        localhost ansible_connection=local hvlab_peer=ghost
        ghost ansible_connection=ssh ansible_host=127.0.0.1 ansible_port={closed} \
ansible_ssh_private_key_file={lab.dir / "client_key"} hvlab_known_hosts={lab.dir / "known_hosts"}
        """)
    )
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "suites/test_migration.py", "-q", "-rs",
         "--hosts", str(inventory), "--target", "sim:qemu-7.2", "-k", "tcp", "-p",
         "no:randomly"],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:]
    assert "1 passed" in done.stdout
    assert "localhost->ghost: host ghost: ssh failed" in done.stdout, done.stdout[-2000:]
    assert not [n for n in lab_namespaces() if n.startswith("hvlab-") and "ghost" in n]


def test_hosts_check_reports_each_host(lab: NetLab, tmp_path: Path) -> None:
    """``hvlab hosts check`` over lab hosts and one nobody answers for.

    1. Each lab host: reachable over ssh, its arch and kernel, QEMU versions, the KVM
       verdict (not probed here: --no-probe), free memory, tools, the targets it offers
       and its placements (labA migrates to labB).
    2. The dead host is named with why it cannot be used; the exit code is 1.
    """
    assert lab.dir is not None
    closed = _closed_port()
    inventory = tmp_path / "hosts.ini"
    inventory.write_text(
        lab.inventory()
        + f"\n[qemu]\nghost ansible_connection=ssh ansible_host=127.0.0.1 ansible_port={closed}"
        f" ansible_ssh_private_key_file={lab.dir / 'client_key'}"
        f" hvlab_known_hosts={lab.dir / 'known_hosts'}\n"
    )
    done = subprocess.run(
        [sys.executable, "-m", "harness.cli", "hosts", "check", "--hosts", str(inventory),
         "--no-probe"],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    out = done.stdout
    assert done.returncode == 1, out + done.stderr
    assert "labA: reachable (ssh), x86_64, kernel" in out
    assert "qemu: x86_64 7.2" in out and "free memory:" in out
    assert "targets: qemu-x86_64, qemu-aarch64, sim:qemu-7.2" in out
    assert "placements: same-host, labA->labB" in out
    assert "ghost: unreachable or unusable: host ghost: ssh failed:" in out
