"""The shared host pool on labgrid's coordinator: hvlab does not grow its own scheduler.

Each lab host's SSH endpoint is a labgrid ``NetworkService`` published by an exporter
named after the host (``hvlab lab export`` writes the exporter configs and the places
from hosts.ini). Places:

    <host>            one host; tags pool=hvlab, kind=host, arch, kvm, qemu, stratovirt
    pair-<A>-<B>      A and its hvlab_peer B (named matches "src" and "dst"); kind=pair

labgrid reserves one place per reservation, and acquiring a place is all-or-nothing over
its resources (labgrid/remote/coordinator.py AcquirePlace), so a pair is one place: two
runs that need the same pair queue on the coordinator, never both on one host.

A run (``hvlab run --coordinator HOST:PORT``): ``reserve --wait`` with the run's own
identity (``LG_USERNAME=hvlab-<run>``), showing that it waits; acquire (retried: a place
that shares a host with a held one is allocated before it can be acquired); then the
run's inventory is hosts.ini cut down to the acquired hosts. On every exit (normal,
failure, Ctrl-C, SIGTERM) it cancels the reservation, then releases the place (in that
order the next waiter gets it at once). A run killed with SIGKILL cannot: it left a
state file (pid, identity, token, place), and the next run on this machine releases
what a dead run holds with ``release-from HOST/USER`` (which releases only if that exact
owner still holds it) and cancels its reservation, as labgrid allows.

The client is labgrid's own command line (``labgrid-client``), driven with argv lists.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from harness.errors import HarnessError
from harness.guest import cache_root
from harness.inventory import Host

Say = Callable[[str], None]
_TOKEN = re.compile(r"export LG_TOKEN=([A-Z0-9]+)")


class PoolError(HarnessError):
    """The coordinator refused, or could not be reached."""


def _client() -> str:
    found = shutil.which("labgrid-client") or str(Path(sys.executable).with_name("labgrid-client"))
    if not Path(found).exists():
        raise PoolError("labgrid-client is not installed (pip install labgrid; make setup does)")
    return found


def place_name(host: Host) -> str:
    return host.name.lower()


def pair_name(src: str, dst: str) -> str:
    return f"pair-{src.lower()}-{dst.lower()}"


# -- configuration from hosts.ini ----------------------------------------------------------
def exporter_yaml(host: Host) -> str:
    """The exporter config publishing ``host``'s SSH endpoint (group = the host's name).

    labgrid reads the file as a Jinja2 template with "#" as line-statement prefix, so
    comments are "##" (labgrid/remote/config.py)."""
    return (
        f"## hvlab lab host {host.name}: its SSH endpoint for the pool\n"
        f"{place_name(host)}:\n"
        f"  NetworkService:\n"
        f"    address: {host.address}\n"
        f"    username: {host.user or 'root'}\n"
        f"    port: {host.port or 22}\n"
    )


def host_tags(host: Host, facts: dict[str, object] | None = None) -> dict[str, str]:
    tags = {"pool": "hvlab", "kind": "host", "arch": host.var("hvlab_arch") or "x86_64"}
    for group in ("qemu", "stratovirt", "simulator"):
        tags[group] = "yes" if group in host.groups else "no"
    if facts is not None:
        tags["arch"] = str(facts.get("arch", tags["arch"]))
        tags["kvm"] = "yes" if facts.get("kvm_works") else "no"
    return tags


def place_commands(hosts: list[Host], facts: dict[str, dict[str, object]]) -> list[list[str]]:
    """labgrid-client argv tails that create every place, its matches and its tags."""
    cmds: list[list[str]] = []
    by_name = {h.name: h for h in hosts}
    for host in hosts:
        if host.connection != "ssh":
            continue
        p = place_name(host)
        tags = host_tags(host, facts.get(host.name))
        cmds += [["-p", p, "create"], ["-p", p, "add-match", f"{p}/{p}/NetworkService"]]
        cmds.append(["-p", p, "set-tags", *(f"{k}={v}" for k, v in sorted(tags.items()))])
        peer = by_name.get(host.var("hvlab_peer") or "")
        if peer is None or peer.connection != "ssh":
            continue
        pair, q = pair_name(host.name, peer.name), place_name(peer)
        cmds += [
            ["-p", pair, "create"],
            ["-p", pair, "add-named-match", f"{p}/{p}/NetworkService", "src"],
            ["-p", pair, "add-named-match", f"{q}/{q}/NetworkService", "dst"],
            ["-p", pair, "set-tags", "pool=hvlab", "kind=pair", f"arch={tags['arch']}",
             f"src={p}", f"dst={q}"],
        ]  # fmt: skip
    return cmds


def write_exports(hosts: list[Host], folder: Path) -> list[Path]:
    """One exporter YAML per ssh host, plus places.sh with the labgrid-client commands."""
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for host in hosts:
        if host.connection == "ssh":
            path = folder / f"{host.name}.yaml"
            path.write_text(exporter_yaml(host))
            written.append(path)
    lines = ["#!/bin/sh", "# create hvlab's places on the coordinator ($LG_COORDINATOR)", "set -e"]
    for cmd in place_commands(hosts, {}):
        lines.append("labgrid-client " + " ".join(_sh(w) for w in cmd))
    script = folder / "places.sh"
    script.write_text("\n".join(lines) + "\n")
    script.chmod(0o755)
    written.append(script)
    return written


def _sh(word: str) -> str:
    import shlex

    return shlex.quote(word)


# -- a run's lease -------------------------------------------------------------------------
@dataclass
class Lease:
    """What a run holds: a place (one host, or a pair) under its own identity."""

    coordinator: str
    user: str
    token: str = ""
    place: str = ""
    hosts: tuple[str, ...] = ()
    waited_s: float = 0.0
    acquired_at: float = 0.0
    released_at: float = 0.0

    @property
    def owner(self) -> str:
        return f"{socket.gethostname()}/{self.user}"


class Pool:
    def __init__(
        self, coordinator: str, run_id: str, inventory: list[Host], say: Say | None = None
    ) -> None:
        if not re.fullmatch(r"[A-Za-z0-9.\-\[\]:]+:[0-9]{1,5}", coordinator, re.ASCII):
            raise PoolError(f"--coordinator {coordinator!r} is not HOST:PORT")
        self.coordinator = coordinator
        self.lease = Lease(coordinator, f"hvlab-{run_id}")
        self.inventory = inventory
        self.say = say or (lambda text: print(text, file=sys.stderr, flush=True))
        self.state_dir = cache_root() / "pool"

    def _env(self, user: str | None = None) -> dict[str, str]:
        env = dict(os.environ)
        env.update(
            LG_COORDINATOR=self.coordinator,
            LG_USERNAME=user or self.lease.user,
            LG_HOSTNAME=socket.gethostname(),
            no_proxy="*",
        )
        return env

    def client(
        self, *words: str, user: str | None = None, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            [_client(), *words], capture_output=True, text=True, env=self._env(user), timeout=120
        )
        if check and done.returncode != 0:
            last = (done.stderr.strip().splitlines() or ["no output"])[-1]
            raise PoolError(f"labgrid-client {' '.join(words)}: {last}")
        return done

    # -- state files: what a SIGKILLed run leaves for the next one to clean up -------------
    def _state_file(self) -> Path:
        return self.state_dir / f"{self.lease.user}.json"

    def _save(self) -> None:
        self.state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        data = {"pid": os.getpid(), **self.lease.__dict__}
        tmp = self._state_file().with_suffix(".tmp")
        tmp.write_text(json.dumps(data))
        tmp.replace(self._state_file())

    def recover(self) -> list[str]:
        """Release what dead runs of this machine left on this coordinator."""
        done: list[str] = []
        if not self.state_dir.is_dir():
            return done
        for path in sorted(self.state_dir.glob("hvlab-*.json")):
            try:
                data = json.loads(path.read_text())
            except (OSError, ValueError):
                continue
            if data.get("coordinator") != self.coordinator or _alive(int(data.get("pid", 0))):
                continue
            owner = f"{socket.gethostname()}/{data['user']}"
            if data.get("token"):
                self.client("cancel-reservation", data["token"], check=False)
            if data.get("place"):
                self.client("-p", data["place"], "release-from", owner, check=False)
                done.append(f"{data['place']} (held by dead run {data['user']}, pid {data['pid']})")
            path.unlink(missing_ok=True)
        return done

    # -- acquire / release -----------------------------------------------------------------
    def acquire(self, filters: dict[str, str], timeout: float = 3600.0) -> Lease:
        """Reserve a place matching ``filters`` (waiting while it is busy), acquire it."""
        for text in self.recover():
            self.say(f"hvlab: pool: released {text}")
        start = time.monotonic()
        self._save()
        words = [f"{k}={v}" for k, v in sorted(filters.items())]
        proc = subprocess.Popen(
            [_client(), "reserve", "--wait", "--shell", *words],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=self._env(),
        )
        assert proc.stdout is not None
        first = proc.stdout.readline()
        token = _TOKEN.search(first)
        if token is None:
            proc.kill()
            err = proc.stderr.read() if proc.stderr else ""
            raise PoolError(f"labgrid reserve {' '.join(words)}: {first.strip() or err.strip()}")
        self.lease.token = token.group(1)
        self._save()
        last_note = 0.0
        try:
            while proc.poll() is None:
                if time.monotonic() - start > timeout:
                    raise PoolError(f"no place matching {' '.join(words)} within {timeout:.0f}s")
                if time.monotonic() - last_note > 10:
                    self.say(
                        f"hvlab: pool: waiting for a place matching {' '.join(words)} "
                        f"({time.monotonic() - start:.0f}s; token {self.lease.token})"
                    )
                    last_note = time.monotonic()
                time.sleep(0.5)
            if proc.returncode != 0:
                raise PoolError(f"labgrid reserve ended with {proc.returncode}")
            self._acquire_allocated(start)
        except BaseException:
            proc.kill()
            proc.wait()
            self.release()
            raise
        return self.lease

    def _acquire_allocated(self, start: float) -> None:
        tries = 0
        while True:
            done = self.client("-p", f"+{self.lease.token}", "acquire", check=False)
            if done.returncode == 0:
                break
            tries += 1
            # allocated but a resource is held through another place: keep the
            # reservation alive (polled by `wait`) and try again
            self.client("wait", self.lease.token, check=False)
            if tries % 10 == 1:
                self.say("hvlab: pool: allocated; waiting for a host held elsewhere")
        env = self.client("-p", f"+{self.lease.token}", "env").stdout
        self.lease.place = _place_of(env) or self.lease.place
        self.lease.hosts = hosts_of(endpoints(env), self.inventory)
        self.lease.acquired_at = time.time()
        self.lease.waited_s = round(time.monotonic() - start, 2)
        self._save()

    def release(self) -> None:
        """Cancel the reservation, then release the place (the next waiter gets it at
        once in that order), then forget the state file. Safe to call twice."""
        if self.lease.token:
            self.client("cancel-reservation", self.lease.token, check=False)
        if self.lease.place:
            self.client("-p", self.lease.place, "release-from", self.lease.owner, check=False)
        self.lease.released_at = time.time()
        self.lease.token = ""
        self._state_file().unlink(missing_ok=True)


@contextlib.contextmanager
def leased(
    coordinator: str, run_id: str, inventory: list[Host], filters: dict[str, str]
) -> Iterator[Lease]:
    """A lease held for the ``with`` block and released on every way out of it (SIGTERM
    included: it is turned into KeyboardInterrupt while the lease is held)."""
    pool = Pool(coordinator, run_id, inventory)
    previous = signal.getsignal(signal.SIGTERM)
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _interrupt)
    try:
        lease = pool.acquire(filters)
        pool.say(
            f"hvlab: pool: holding {lease.place} ({', '.join(lease.hosts)}) "
            f"after {lease.waited_s:.1f}s"
        )
        yield lease
    finally:
        pool.release()
        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGTERM, previous)


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def _alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _place_of(env_yaml: str) -> str:
    m = re.search(r"^targets:\s*\n\s+([A-Za-z0-9_.\-]+):", env_yaml, re.MULTILINE)
    return m.group(1) if m else ""


def endpoints(env_yaml: str) -> list[tuple[str, str, int]]:
    """(role, address, port) of each acquired NetworkService, from ``labgrid-client env``
    (the role is the match's rename, "src"/"dst" in a pair; port 22 when unset)."""
    import yaml  # labgrid depends on PyYAML

    data = yaml.safe_load(env_yaml) or {}
    found: list[tuple[str, str, int]] = []
    for target in (data.get("targets") or {}).values():
        for res in target.get("resources") or []:
            for params in res.values():
                found.append(
                    (
                        str(params.get("name", "")),
                        str(params["address"]),
                        int(params.get("port", 22)),
                    )
                )
    return found


def hosts_of(found: list[tuple[str, str, int]], hosts: list[Host]) -> tuple[str, ...]:
    """The inventory hosts behind the endpoints, source before destination."""
    order = {"src": 0, "dst": 1}
    names = []
    for _role, address, port in sorted(found, key=lambda e: order.get(e[0], 2)):
        match = [h.name for h in hosts if h.address == address and (h.port or 22) == port]
        if not match:
            raise PoolError(f"the pool gave {address}:{port}, which no host of the inventory has")
        names.append(match[0])
    return tuple(names)
