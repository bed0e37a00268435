"""A lab of real hosts on this machine: network namespaces, a bridged link, one sshd each.

    switch namespace  hvlab-<tag>-sw: bridge br0, one port per host
    host namespaces   hvlab-<tag>-<i>: lab0 (veth to the switch) with 10.77.0.<i+1>/24,
                      its own sshd (Debian's openssh-server) on that address with a
                      generated host key, its own /tmp and ~/.cache (hostinit.py)
    portals           127.0.0.1:<port> here -> <address>:22 there (portal.py), so the
                      controller reaches each sshd without any interface or route being
                      added to the machine's own network

A generated client key, known_hosts and a hosts.ini snippet make the hosts usable as
any lab host is: ``NetLab(...).up()`` then ``.inventory()``. Every process it starts
carries the lab's owner tag; ``down()`` kills them, deletes the namespaces and the
folder, and ``leftovers()`` says what would survive.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path

from harness.errors import SetupError
from harness.leaks import (
    LAB_OWNER_FILE,
    LAB_ROOT,
    OWNER_ENV,
    OWNER_FILE,
    kill_tagged,
    owner_tag,
    run_of,
    tagged_processes,
)
from harness.spec import Arch
from harness.waits import wait_for

HERE = Path(__file__).resolve().parent
SSHD = "/usr/sbin/sshd"
PREFIX = "hvlab-"
SUBNET = "10.77.0"
#: where labs keep keys, configs and the hosts' private folders (tmpfs, root only):
#: LAB_ROOT (harness/leaks.py, which finds a lab's sshd by that path)


@dataclass(frozen=True)
class LabHost:
    name: str
    netns: str
    address: str
    port: int  # the portal's loopback port


def _ip(*args: str) -> None:
    done = subprocess.run(["ip", *args], capture_output=True, text=True)
    if done.returncode != 0:
        raise SetupError(f"ip {' '.join(args)}: {done.stderr.strip()}")


def lab_namespaces() -> list[str]:
    """Network namespaces an hvlab lab made (``ip netns list``)."""
    done = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True)
    names = [line.split()[0] for line in done.stdout.splitlines() if line.strip()]
    return [n for n in names if n.startswith(PREFIX)]


class NetLab:
    """``count`` hosts named ``names`` (default labA, labB, ...)."""

    def __init__(self, names: tuple[str, ...] = ("labA", "labB"), owner: str = "") -> None:
        self.names = names
        self.tag = uuid.uuid4().hex[:8]
        self.owner = owner or owner_tag(f"lab-{self.tag}")
        self.dir: Path | None = None
        self.hosts: list[LabHost] = []
        self._netns: list[str] = []

    @property
    def switch(self) -> str:
        return f"{PREFIX}{self.tag}-sw"

    def up(self) -> NetLab:
        for tool in ("ip", SSHD, "ssh-keygen", "mount"):
            if shutil.which(tool) is None:
                raise SetupError(f"the namespace lab needs {tool} (make setup installs it)")
        if os.geteuid() != 0:
            raise SetupError("the namespace lab needs root (network namespaces, bind mounts)")
        # not under /tmp: each host gets its own /tmp, which would hide the lab's files
        LAB_ROOT.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.dir = Path(tempfile.mkdtemp(prefix=f"lab-{self.tag}-", dir=LAB_ROOT))
        (self.dir / OWNER_FILE).write_text(run_of(self.owner))
        (self.dir / LAB_OWNER_FILE).write_text(self.owner)
        try:
            self._keys()
            self._add_netns(self.switch)
            _ip("-n", self.switch, "link", "add", "br0", "type", "bridge")
            _ip("-n", self.switch, "link", "set", "br0", "up")
            for i, name in enumerate(self.names):
                self.hosts.append(self._host(i, name))
            self._known_hosts()
        except BaseException:
            self.down()
            raise
        return self

    # -- building --------------------------------------------------------------------------
    def _keys(self) -> None:
        assert self.dir is not None
        _keygen(self.dir / "client_key", "hvlab lab client")
        shutil.copy(self.dir / "client_key.pub", self.dir / "authorized_keys")

    def _add_netns(self, name: str) -> None:
        _ip("netns", "add", name)
        self._netns.append(name)
        _ip("-n", name, "link", "set", "lo", "up")

    def _host(self, i: int, name: str) -> LabHost:
        assert self.dir is not None
        netns, address = f"{PREFIX}{self.tag}-{i}", f"{SUBNET}.{i + 1}"
        self._add_netns(netns)
        _ip("-n", netns, "link", "add", "lab0", "type", "veth", "peer", "name", f"p{i}",
            "netns", self.switch)  # fmt: skip
        _ip("-n", netns, "addr", "add", f"{address}/24", "dev", "lab0")
        _ip("-n", netns, "link", "set", "lab0", "up")
        _ip("-n", self.switch, "link", "set", f"p{i}", "master", "br0", "up")
        home = self.dir / name
        for sub in ("tmp", "cache"):
            (home / sub).mkdir(parents=True)
        os.chmod(home / "tmp", 0o1777)
        _keygen(home / "ssh_host_ed25519_key", f"hvlab lab host {name}")
        config = home / "sshd_config"
        config.write_text(_sshd_config(home, self.dir / "authorized_keys", address))
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # sshd's privsep directory
        self._start(
            home / "sshd.log",
            ["ip", "netns", "exec", netns, sys.executable, str(HERE / "hostinit.py"),
             str(home / "tmp"), str(home / "cache"), "--",
             SSHD, "-D", "-e", "-f", str(config)],
        )  # fmt: skip
        port_file = home / "portal.port"
        self._start(
            home / "portal.log",
            [sys.executable, str(HERE / "portal.py"), netns, address, "22", str(port_file)],
        )
        wait_for(port_file.exists, 10.0, f"the portal to {name}")
        port = int(port_file.read_text())
        wait_for(lambda: _sshd_answers(port), 20.0, f"{name}'s sshd to answer")
        return LabHost(name, netns, address, port)

    def _start(self, log: Path, argv: list[str]) -> None:
        env = dict(os.environ)
        env[OWNER_ENV] = self.owner
        with log.open("wb") as out:
            subprocess.Popen(
                argv, stdin=subprocess.DEVNULL, stdout=out, stderr=out, env=env,
                start_new_session=True,
            )  # fmt: skip

    def _known_hosts(self) -> None:
        assert self.dir is not None
        lines = []
        for host in self.hosts:
            key = (self.dir / host.name / "ssh_host_ed25519_key.pub").read_text().split()
            lines.append(f"[127.0.0.1]:{host.port} {key[0]} {key[1]}")
        (self.dir / "known_hosts").write_text("\n".join(lines) + "\n")

    # -- using -----------------------------------------------------------------------------
    def host_vars(self, host: LabHost) -> str:
        assert self.dir is not None
        return (
            f"ansible_connection=ssh ansible_host=127.0.0.1 ansible_port={host.port} "
            f"ansible_user=root ansible_ssh_private_key_file={self.dir / 'client_key'} "
            f"hvlab_known_hosts={self.dir / 'known_hosts'} hvlab_lab_address={host.address}"
        )

    def inventory(
        self,
        groups: tuple[str, ...] = ("qemu", "simulator"),
        pairs: bool = False,
        sim_targets: str = "sim:qemu-7.2",
        arches: tuple[Arch, ...] = (),
    ) -> str:
        """A hosts.ini for the lab: each host in ``groups``, each one's peer the next
        (n hosts make n-1 cross-host placements), or with ``pairs`` the hosts in
        disjoint pairs A->B, C->D (for runs that shard a suite over several pairs).
        ``sim_targets``: the simulator targets the lab hosts offer ("" for all);
        ``arches``: the guest arches they run (hvlab_arches; () for every one)."""
        sims = f" hvlab_sim_targets={sim_targets}" if sim_targets else ""
        if arches:
            sims += f" hvlab_arches={','.join(a.value for a in arches)}"
        lines = ["[lab]"]
        for i, host in enumerate(self.hosts):
            has_peer = i + 1 < len(self.hosts) and (not pairs or i % 2 == 0)
            peer = f" hvlab_peer={self.hosts[i + 1].name}" if has_peer else ""
            lines.append(f"{host.name} {self.host_vars(host)}{peer}{sims}")
        for group in groups:
            lines += ["", f"[{group}:children]", "lab"]
        return "\n".join(lines) + "\n"

    def kill_host(self, name: str) -> None:
        """The host dies: every process in its namespace is killed at once (SIGKILL)."""
        host = next(h for h in self.hosts if h.name == name)
        done = subprocess.run(["ip", "netns", "pids", host.netns], capture_output=True, text=True)
        for pid in done.stdout.split():
            try:
                os.kill(int(pid), 9)
            except (ProcessLookupError, ValueError):
                pass

    def leftovers(self) -> list[str]:
        """What of this lab is still there (processes, namespaces, its folder)."""
        out = [f"process {p.pid} ({p.cmdline[:80]})" for p in tagged_processes(self.owner)]
        out += [f"netns {n}" for n in lab_namespaces() if n.startswith(f"{PREFIX}{self.tag}-")]
        if self.dir is not None and self.dir.exists():
            out.append(f"folder {self.dir}")
        return out

    def down(self) -> None:
        kill_tagged(self.owner)
        wait_for(lambda: not tagged_processes(self.owner), 10.0, "the lab's processes to end")
        for name in reversed(self._netns):
            subprocess.run(["ip", "netns", "del", name], capture_output=True)
        self._netns.clear()
        if self.dir is not None:
            shutil.rmtree(self.dir, ignore_errors=True)
            self.dir = None
        self.hosts.clear()

    def __enter__(self) -> NetLab:
        return self.up()

    def __exit__(self, *exc: object) -> None:
        self.down()


def _keygen(path: Path, comment: str) -> None:
    done = subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", str(path)],
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        raise SetupError(f"ssh-keygen: {done.stderr.strip()}")


def _sshd_config(home: Path, authorized: Path, address: str) -> str:
    return "\n".join(
        [
            f"ListenAddress {address}:22",
            f"HostKey {home / 'ssh_host_ed25519_key'}",
            f"PidFile {home / 'sshd.pid'}",
            f"AuthorizedKeysFile {authorized}",
            "StrictModes no",  # the key files are the lab's own, in its 0700 folder
            "PermitRootLogin prohibit-password",
            "PubkeyAuthentication yes",
            "PasswordAuthentication no",
            "KbdInteractiveAuthentication no",
            "UsePAM no",
            "AllowUsers root",
            "X11Forwarding no",
            # sshd permits unix-socket forwards only where it permits local forwarding
            # (session.c: channel_permit_all under AllowTcpForwarding local|yes)
            "AllowTcpForwarding local",
            "AllowStreamLocalForwarding yes",  # QMP and serial sockets reach the controller
            "PermitUserEnvironment no",
            "MaxSessions 200",
            "MaxStartups 100",
            "PrintMotd no",
            "LogLevel ERROR",
            "",
        ]
    )


def _sshd_answers(port: int) -> bool:
    """True once an SSH banner comes back through the portal."""
    import socket

    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2) as s:
            return s.recv(16).startswith(b"SSH-")
    except OSError:
        return False
