"""A lab host reached over SSH: the OpenSSH client, keys only, strict host keys.

Every command goes through one control master per host (``ControlPath`` in a private
local directory), so a command costs a channel, not a handshake. No user or system ssh
configuration is read (``-F none``: nothing in ~/.ssh/config can add a ProxyCommand),
no password or keyboard prompt is ever tried (``BatchMode``), and the host key must be
in the known_hosts file the inventory names (``StrictHostKeyChecking=yes``).

OpenSSH hands the remote command to the user's shell, so the words are quoted here
(``shlex.join``) from an argv list; inventory values never reach it unchecked
(harness/lab/endpoint.py validates them).

The host runs harness/lab/agent.py (standard-library Python, copied once by checksum)
for everything it does: start a hypervisor in its own session and watch it, make and
remove run folders, stage files, scan for tagged processes, report facts.
"""

from __future__ import annotations

import hashlib
import json
import os
import shlex
import subprocess
import threading
from pathlib import Path
from typing import Any

from harness.errors import HarnessError, LaunchError
from harness.lab.endpoint import SshEndpoint
from harness.lab.zipapp import simulator_zipapp
from harness.leaks import OWNER_ENV, ProcInfo
from harness.waits import scaled

AGENT_SOURCE = Path(__file__).with_name("agent.py")
_SIGNAL_WORDS = {1: "HUP", 2: "INT", 9: "KILL", 15: "TERM", 19: "STOP", 18: "CONT"}
#: Installs the agent: copies stdin to argv[1] (~ expanded) unless it is there already.
_BOOTSTRAP = (
    "import hashlib,os,sys\n"
    "p=os.path.expanduser(sys.argv[1]);d=sys.stdin.buffer.read()\n"
    "if hashlib.sha256(d).hexdigest()!=sys.argv[2]:sys.exit('agent corrupted in transit')\n"
    "os.makedirs(os.path.dirname(p),mode=0o700,exist_ok=True)\n"
    "t=p+'.tmp';open(t,'wb').write(d);os.chmod(t,0o700);os.replace(t,p);print(p)\n"
)


class HostError(HarnessError):
    """A lab host could not be reached, refused us, or was lost."""


class SshProcess:
    """A process on the host, watched through the agent's ``spawn`` channel."""

    def __init__(self, host: str, proc: subprocess.Popen[bytes]) -> None:
        self.host = host
        self._proc = proc
        self._pid: int | None = None
        self._code: int | None = None
        self._error = ""
        self._done = threading.Event()
        self._started = threading.Event()
        self._lock = threading.Lock()
        threading.Thread(target=self._read, name=f"ssh-{host}", daemon=True).start()

    def _read(self) -> None:
        assert self._proc.stdout is not None
        for raw in self._proc.stdout:
            try:
                msg = json.loads(raw)
            except ValueError:
                continue
            if "pid" in msg:
                self._pid = int(msg["pid"])
                self._started.set()
            elif "exit" in msg:
                self._code = int(msg["exit"])
            elif "error" in msg:
                self._error = str(msg["error"])
        self._proc.wait()
        self._started.set()
        self._done.set()

    def started(self, timeout: float) -> int:
        """The remote pid, once the agent reported it."""
        self._started.wait(scaled(timeout))
        if self._pid is None:
            reason = self._error or f"ssh exited with {self._proc.poll()}"
            raise LaunchError(f"host {self.host}: the process did not start: {reason}")
        return self._pid

    @property
    def pid(self) -> int:
        return self._pid if self._pid is not None else -1

    def poll(self) -> int | None:
        if not self._done.is_set():
            return None
        if self._code is None:
            raise HostError(
                f"host {self.host}: lost contact (ssh exited with {self._proc.returncode} "
                "before the process did)",
                {"host": self.host, "ssh_exit": self._proc.returncode},
            )
        return self._code

    def wait(self, timeout: float) -> int | None:
        self._done.wait(timeout)
        try:
            return self.poll()
        except HostError:
            return None

    def signal_group(self, sig: int) -> None:
        word = _SIGNAL_WORDS.get(int(sig))
        if word is None or self._proc.stdin is None:
            return
        with self._lock:
            try:
                self._proc.stdin.write(f"{word}\n".encode())
                self._proc.stdin.flush()
            except (BrokenPipeError, ValueError, OSError):
                pass

    def close(self) -> None:
        """Hang up: the agent then kills whatever is left of the group."""
        if self._proc.stdin is not None:
            try:
                self._proc.stdin.close()
            except OSError:
                pass
        try:
            self._proc.wait(scaled(10))
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()


class SshRunner:
    """One lab host. ``control_dir`` is private (0700) and local; ``owner`` tags the
    local ssh master so the run's leak check finds it if it survives."""

    def __init__(self, endpoint: SshEndpoint, control_dir: Path, owner: str) -> None:
        self.endpoint = endpoint
        self.control_dir = control_dir
        self.owner = owner
        self._agent: str | None = None
        self._forwards: dict[Path, Path] = {}
        self._simulator: list[str] | None = None
        self._lock = threading.Lock()

    @property
    def name(self) -> str:
        return self.endpoint.host

    @property
    def address(self) -> str:
        """Where other hosts reach this one (the lab link), e.g. for -incoming tcp:."""
        return self.endpoint.lab_address

    # -- ssh -------------------------------------------------------------------------------
    def _argv(self, *extra: str) -> list[str]:
        e = self.endpoint
        return [
            "ssh",
            "-F",
            "none",
            "-o",
            "BatchMode=yes",
            "-o",
            "StrictHostKeyChecking=yes",
            "-o",
            f"UserKnownHostsFile={e.known_hosts}",
            "-o",
            "GlobalKnownHostsFile=/dev/null",
            "-o",
            "IdentitiesOnly=yes",
            "-o",
            "PasswordAuthentication=no",
            "-o",
            "KbdInteractiveAuthentication=no",
            "-o",
            "ConnectTimeout=10",
            "-o",
            "ServerAliveInterval=5",
            "-o",
            "ServerAliveCountMax=3",
            "-o",
            f"ControlPath={self.control_dir}/%C",
            "-i",
            str(e.key),
            "-p",
            str(e.port),
            "-l",
            e.user,
            *extra,
            e.address,
        ]

    def _env(self, owner: str) -> dict[str, str]:
        env = dict(os.environ)
        env[OWNER_ENV] = owner
        return env

    def connect(self) -> None:
        """Start the control master (or find it running); HostError says why not."""
        with self._lock:
            check = subprocess.run(
                self._argv("-O", "check"), capture_output=True, env=self._env(self.owner)
            )
            if check.returncode == 0:
                return
            # -f: the master forks once authenticated and keeps its output streams, so
            # they go to a file (a pipe would stay open as long as the master lives)
            log = self.control_dir / f"master-{self.name}.log"
            with log.open("wb") as err:
                start = subprocess.run(
                    self._argv("-o", "ControlMaster=yes", "-o", "ControlPersist=yes", "-f", "-N"),
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.DEVNULL,
                    stderr=err,
                    env=self._env(self.owner),
                    timeout=scaled(60),
                )
        if start.returncode != 0:
            text = log.read_text(errors="replace").strip().splitlines() or ["no output"]
            raise HostError(f"host {self.name}: ssh failed: {text[-1]}", {"host": self.name})

    def run(
        self, words: list[str], data: bytes | None = None, timeout: float = 60.0
    ) -> subprocess.CompletedProcess[bytes]:
        """Run ``words`` (an argv) on the host; the remote shell gets them quoted."""
        self.connect()
        try:
            return subprocess.run(
                [*self._argv("-o", "ControlMaster=no"), "--", shlex.join(words)],
                input=data if data is not None else b"",
                capture_output=True,
                env=self._env(self.owner),
                timeout=scaled(timeout),
            )
        except subprocess.TimeoutExpired as exc:
            raise HostError(f"host {self.name}: {words[0]} took over {timeout:.0f}s") from exc

    def agent(self, *args: str, data: bytes | None = None, timeout: float = 60.0) -> bytes:
        """Run an agent command; its stdout, or HostError with its stderr."""
        done = self.run(["python3", self._agent_path(), *args], data, timeout)
        if done.returncode != 0:
            err = done.stderr.decode(errors="replace").strip().splitlines() or ["no output"]
            raise HostError(
                f"host {self.name}: agent {args[0]} failed ({done.returncode}): {err[-1]}",
                {"host": self.name, "stderr": "\n".join(err[-10:])},
            )
        return done.stdout

    def _agent_path(self) -> str:
        if self._agent is None:
            code = AGENT_SOURCE.read_bytes()
            sha = hashlib.sha256(code).hexdigest()
            target = f"~/.cache/hvlab-remote/agent-{sha[:16]}.py"
            done = self.run(["python3", "-c", _BOOTSTRAP, target, sha], code)
            if done.returncode != 0:
                err = done.stderr.decode(errors="replace").strip()
                raise HostError(f"host {self.name}: cannot install the hvlab agent: {err}")
            self._agent = done.stdout.decode().strip()
        return self._agent

    # -- Runner ----------------------------------------------------------------------------
    def spawn(self, argv: list[str], owner: str, stdout: Path, stderr: Path) -> SshProcess:
        self.connect()
        words = ["python3", self._agent_path(), "spawn", owner, "--", *argv]
        stdout.write_bytes(b"")  # the process's output arrives on the channel's stderr
        with stderr.open("wb") as err:
            proc = subprocess.Popen(
                [*self._argv("-o", "ControlMaster=no"), "--", shlex.join(words)],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=err,
                env=self._env(owner),
                start_new_session=True,
            )
        process = SshProcess(self.name, proc)
        process.started(30.0)
        return process

    def private_dir(self, prefix: str) -> Path:
        return Path(self.agent("mkdtemp", prefix).decode().strip())

    def remove_tree(self, path: Path) -> None:
        try:
            self.agent("rmtree", str(path))
        except HostError:
            pass

    def exists(self, path: Path) -> bool:
        return self.run(["python3", self._agent_path(), "exists", str(path)]).returncode == 0

    def read_text(self, path: Path) -> str:
        try:
            return self.agent("cat", str(path)).decode(errors="replace")
        except HostError:
            return ""

    def fetch(self, remote: Path, local: Path) -> None:
        """Copy a file from the host (a log into the local artifacts)."""
        try:
            local.write_bytes(self.agent("cat", str(remote), timeout=120))
        except HostError:
            pass

    def stage(self, local: Path) -> Path:
        """``local`` copied to the host once: reused while its checksum matches."""
        sha = _sha256(local)
        remote = f"~/.cache/hvlab-remote/files/{sha[:24]}-{local.name}"
        probe = self.run(["python3", self._agent_path(), "has", remote, sha])
        if probe.returncode != 0:
            self.agent("put", remote, sha, "0644", data=local.read_bytes(), timeout=300)
        return Path(self._expand(remote))

    def simulator_command(self) -> list[str]:
        """hvlab's simulator as one zip application (standard library only), staged."""
        if self._simulator is None:
            self._simulator = ["python3", str(self.stage(simulator_zipapp(self.control_dir)))]
        return self._simulator

    def _expand(self, path: str) -> str:
        agent = self._agent_path()  # ~/.cache/hvlab-remote/agent-*.py, absolute
        root = agent.split("/.cache/hvlab-remote/", 1)[0]
        return path.replace("~", root, 1) if path.startswith("~/") else path

    def local_socket(self, path: Path) -> Path:
        """The host's unix socket ``path``, forwarded through the master to a local one."""
        with self._lock:
            if path in self._forwards:
                return self._forwards[path]
            digest = hashlib.sha256(f"{self.name}:{path}".encode()).hexdigest()[:16]
            local = self.control_dir / f"fwd-{digest}.sock"
        done = subprocess.run(
            self._argv("-O", "forward", "-L", f"{local}:{path}"),
            capture_output=True,
            text=True,
            env=self._env(self.owner),
        )
        if done.returncode != 0:
            raise HostError(f"host {self.name}: cannot forward {path}: {done.stderr.strip()}")
        with self._lock:
            self._forwards[path] = local
        return local

    def drop_socket(self, path: Path) -> None:
        with self._lock:
            local = self._forwards.pop(path, None)
        if local is None:
            return
        subprocess.run(
            self._argv("-O", "cancel", "-L", f"{local}:{path}"),
            capture_output=True,
            env=self._env(self.owner),
        )
        local.unlink(missing_ok=True)

    def free_port(self) -> int:
        return int(self.agent("free-port", self.address).decode().strip())

    def tagged(self, owner: str | None) -> list[ProcInfo]:
        rows: list[dict[str, Any]] = json.loads(
            self.agent(*(["procs", owner] if owner else ["procs"]))
        )
        return [ProcInfo(int(r["pid"]), str(r["cmdline"])) for r in rows]

    def kill_tagged(self, owner: str) -> list[ProcInfo]:
        rows: list[dict[str, Any]] = json.loads(self.agent("kill-tagged", owner))
        return [ProcInfo(int(r["pid"]), str(r["cmdline"])) for r in rows]

    def facts(self) -> dict[str, Any]:
        data: dict[str, Any] = json.loads(self.agent("facts", timeout=120))
        return data

    def close(self) -> None:
        """Cancel the forwards and stop the master."""
        for path in list(self._forwards):
            self.drop_socket(path)
        subprocess.run(self._argv("-O", "exit"), capture_output=True, env=self._env(self.owner))


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
