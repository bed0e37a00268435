"""Start and stop a private, hand-run libvirtd (no systemd) for differential runs.

Each daemon gets a 0700 run folder under the system temp dir with its own
config (``libvirtd.conf``, ``qemu.conf``, ``host_uuid``), unix sockets, state and
logs, and runs in its own mount namespace (see :mod:`harness.libvirt.ns_entry`).
QEMU's incoming migration listens on 127.0.0.1 only. :meth:`LibvirtDaemon.stop`
destroys every domain, stops the daemon and kills anything left in its mount
namespace, then removes the run folder: nothing is left behind.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from harness.errors import HarnessError, WaitTimeout
from harness.waits import wait_for

UNSHARE = "/usr/bin/unshare"
NSENTER = "/usr/bin/nsenter"
LIBVIRTD = "/usr/sbin/libvirtd"
QEMU = "/usr/bin/qemu-system-x86_64"
KEEP_ENV = "HVLAB_LIBVIRT_KEEP"
DEBUG_FILTERS = "1:qemu 1:libvirt 1:conf.virdomainjob 4:object 4:json 4:event 4:util 4:rpc"
TRACE_FILTERS = "2:qemu.qemu_monitor 1:conf.virdomainjob"


class LibvirtDaemonError(HarnessError):
    """A private libvirtd could not be started or stopped cleanly."""


def can_run_libvirtd() -> str | None:
    """Return None if a private libvirtd can run here, else the reason why not."""
    if os.geteuid() != 0:
        return "private libvirtd needs root (mount namespaces, qemu as root)"
    for path in (UNSHARE, LIBVIRTD, QEMU):
        if not Path(path).exists():
            return f"{path} is missing (install libvirt-daemon-driver-qemu, qemu-system-x86)"
    try:
        import libvirt  # noqa: F401
    except ImportError:
        return "libvirt-python is not installed"
    return None


def _libvirtd_conf(run: Path, host_uuid: str, tcp_port: int) -> str:
    # TCP without auth is only reachable inside the daemons' private network
    # namespace (lo only): that is how the source daemon reaches the
    # destination for peer-to-peer migration (the remote driver refuses a
    # server name with the unix transport).
    return "\n".join(
        [
            "listen_tls = 0",
            "listen_tcp = 1",
            'listen_addr = "127.0.0.1"',
            f'tcp_port = "{tcp_port}"',
            'auth_tcp = "none"',
            f'unix_sock_dir = "{run / "sock"}"',
            'unix_sock_group = "root"',
            'unix_sock_ro_perms = "0700"',
            'unix_sock_rw_perms = "0700"',
            'unix_sock_admin_perms = "0700"',
            'auth_unix_ro = "none"',
            'auth_unix_rw = "none"',
            f'host_uuid = "{host_uuid}"',
            "log_level = 3",
            # the QEMU monitor traffic and the domain job lock always (log_tail shows them
            # when a call hangs); HVLAB_LIBVIRT_KEEP=DIR: the QEMU driver and the API at
            # debug level, and the daemon's logs kept in DIR when it stops
            f'log_filters = "{DEBUG_FILTERS if os.environ.get(KEEP_ENV) else TRACE_FILTERS}"',
            f'log_outputs = "1:file:{run / "log" / "libvirtd.log"}"',
            "",
        ]
    )


def _qemu_conf(port_min: int, pki: Path, tls_force: bool) -> str:
    return "\n".join(
        [
            'user = "root"',
            'group = "root"',
            "dynamic_ownership = 0",
            "remember_owner = 0",
            'security_driver = "none"',
            "namespaces = [ ]",
            "cgroup_controllers = [ ]",
            'stdio_handler = "file"',
            f"migration_port_min = {port_min}",
            f"migration_port_max = {port_min + 63}",
            # Migration TLS credentials (empty unless a scenario puts certificates
            # there: harness.libvirt.control); libvirt checks the folder exists.
            f'migrate_tls_x509_cert_dir = "{pki}"',
            f"migrate_tls_force = {int(tls_force)}",
            "",
        ]
    )


def _mnt_ns(pid: int) -> str | None:
    try:
        return os.readlink(f"/proc/{pid}/ns/mnt")
    except OSError:
        return None


@dataclass
class LibvirtDaemon:
    """One private libvirtd; ``name`` is also the fake host name in its URIs."""

    name: str
    port_min: int
    host_uuid: str = field(default_factory=lambda: str(uuid.uuid4()))
    tls_force: bool = False  # qemu.conf migrate_tls_force
    run: Path | None = None
    proc: subprocess.Popen[bytes] | None = None
    mnt_ns: str | None = None

    @property
    def socket(self) -> Path:
        assert self.run is not None
        return self.run / "sock" / "libvirt-sock"

    @property
    def uri(self) -> str:
        """Connection URI for the test process (local unix socket)."""
        return f"qemu+unix:///system?socket={self.socket}"

    @property
    def images(self) -> Path:
        """The daemon's /var/lib/libvirt/images, seen from outside its namespace."""
        assert self.run is not None
        return self.run / "lib" / "images"

    @property
    def pki(self) -> Path:
        """The daemon's migration TLS credentials folder (migrate_tls_x509_cert_dir)."""
        assert self.run is not None
        return self.run / "pki"

    @property
    def p2p_uri(self) -> str:
        """URI the *other* daemon uses to reach this one (peer-to-peer).

        libvirt refuses a peer2peer URI without a server part or one starting
        with "localhost" (virDomainMigrateCheckNotLocal in src/libvirt-domain.c),
        and the remote driver refuses a server name with the unix transport, so
        this is TCP on 127.0.0.1 inside the daemons' private network namespace.
        """
        return f"qemu+tcp://127.0.0.1:{self.port_min + 64}/system"

    def start(self, timeout: float = 30.0, net_of: LibvirtDaemon | None = None) -> None:
        """Write the config, launch libvirtd in a new mount namespace, wait for it.

        Without ``net_of`` the daemon also gets a new network namespace holding
        only ``lo`` (libvirt refuses 127.0.0.1 as migration_address, so QEMU
        listens on 0.0.0.0 -- which in this namespace is loopback only). With
        ``net_of`` it joins that daemon's network namespace.
        """
        self.run = Path(tempfile.mkdtemp(prefix=f"hvlab-libvirt-{self.name}-"))
        os.chmod(self.run, 0o700)
        for sub in ("etc", "etc/qemu", "lib", "lib/images", "log", "sock", "pki"):
            (self.run / sub).mkdir(mode=0o700, exist_ok=True)
        (self.run / "etc" / "libvirtd.conf").write_text(
            _libvirtd_conf(self.run, self.host_uuid, self.port_min + 64)
        )
        (self.run / "etc" / "qemu.conf").write_text(
            _qemu_conf(self.port_min, self.run / "pki", self.tls_force)
        )
        (self.run / "etc" / "libvirt.conf").write_text("")
        entry = [sys.executable, "-m", "harness.libvirt.ns_entry", str(self.run)]
        if net_of is None:
            argv = [UNSHARE, "--mount", "--net", "--propagation", "private", "--", *entry, "lo"]
        else:
            assert net_of.proc is not None
            argv = [
                NSENTER,
                f"--net=/proc/{net_of.proc.pid}/ns/net",
                "--",
                UNSHARE,
                "--mount",
                "--propagation",
                "private",
                "--",
                *entry,
            ]
        out = (self.run / "log" / "stdio.log").open("wb")
        self.proc = subprocess.Popen(
            argv,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        out.close()
        proc = self.proc

        def answered() -> str | None:
            if proc.poll() is not None:
                return "exited"
            return "up" if self.socket.exists() and self._ping() else None

        try:
            up = wait_for(answered, timeout, f"libvirtd {self.name} to answer")
        except WaitTimeout as exc:
            self.stop()
            raise LibvirtDaemonError(f"libvirtd {self.name} did not answer: {exc}") from exc
        if up == "exited":
            log = "".join(
                (self.run / "log" / f).read_text(errors="replace")
                for f in ("stdio.log", "libvirtd.log")
                if (self.run / "log" / f).exists()
            )
            self._cleanup_dir()
            raise LibvirtDaemonError(f"libvirtd {self.name} exited early: {log[-2000:]}")
        self.mnt_ns = _mnt_ns(proc.pid)

    def _ping(self) -> bool:
        import libvirt

        try:
            conn = libvirt.open(self.uri)
        except libvirt.libvirtError:
            return False
        conn.close()
        return True

    def destroy_all(self) -> None:
        """Destroy and undefine every domain (used between scenarios and at stop)."""
        import libvirt

        try:
            conn = libvirt.open(self.uri)
        except libvirt.libvirtError:
            return
        try:
            for dom in conn.listAllDomains():
                with contextlib.suppress(libvirt.libvirtError):
                    if dom.isActive():
                        dom.destroy()
                with contextlib.suppress(libvirt.libvirtError):
                    dom.undefineFlags(0)
        finally:
            conn.close()

    def leftovers(self) -> list[int]:
        """Pids still living in this daemon's mount namespace."""
        if self.mnt_ns is None:
            return []
        found = []
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit() and _mnt_ns(int(entry.name)) == self.mnt_ns:
                found.append(int(entry.name))
        return found

    def stop(self, timeout: float = 15.0) -> None:
        """Destroy domains, stop libvirtd, kill leftovers, remove the run folder."""
        if self.proc is not None and self.proc.poll() is None:
            self.destroy_all()
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout)
        for pid in self.leftovers():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        self.proc = None
        self._cleanup_dir()

    def log_tail(self, lines: int = 40) -> list[str]:
        """The last lines of the daemon's log (QEMU monitor traffic, job lock waits)."""
        if self.run is None:
            return []
        try:
            text = (self.run / "log" / "libvirtd.log").read_text(errors="replace")
        except OSError:
            return []
        return [line[:300] for line in text.splitlines()[-lines:]]

    def _cleanup_dir(self) -> None:
        keep = os.environ.get(KEEP_ENV)
        if self.run is not None and keep:
            shutil.copytree(
                self.run / "log", Path(keep) / self.run.name, ignore_dangling_symlinks=True
            )
        if self.run is not None:
            shutil.rmtree(self.run, ignore_errors=True)
            self.run = None


@contextlib.contextmanager
def daemon_pair() -> Iterator[tuple[LibvirtDaemon, LibvirtDaemon]]:
    """A source and a destination daemon, always stopped on exit."""
    base = 49152 + (os.getpid() % 100) * 128
    src = LibvirtDaemon("src", base)
    dst = LibvirtDaemon("dst", base + 65)
    try:
        src.start()
        dst.start(net_of=src)
        yield src, dst
    finally:
        dst.stop()
        src.stop()
