"""Migration features through real libvirt 9.0 (seed 000's flags), shown in the job info.

The private daemon pair of harness/libvirt/daemon.py runs a domain that boots hvlab's
guest with ``hvlab.stress=32,48`` on its kernel command line (harness/guest.py's /init
starts hvlab-stress: 32 MiB dirtied at 48 MiB/s), so a migration limited to 16 MiB/s
does not converge by itself. Each test migrates it source -> destination with one
feature's flag (peer to peer, migrateToURI3), polls the source domain's job info
(virDomainGetJobStats) while it runs, and brings the domain back for the next test.
On libvirt-model these claims are n/a (the model has no QEMU job).
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from harness.guest import READY_MARK, cache_root, guest_image
from harness.libvirt.target import LibvirtTarget
from harness.spec import Arch
from harness.waits import wait_for

NAME = "hvlab-feature"
F_LIVE, F_P2P = 1, 2
F_COMPRESSED, F_AUTO_CONVERGE, F_POSTCOPY, F_PARALLEL = 2048, 8192, 32768, 131072
SLOW_MIB = 16  # VIR_MIGRATE_PARAM_BANDWIDTH is MiB/s (seed 002)


def _xml(serial: Path) -> str:
    image = guest_image(Arch.X86_64)
    cmdline = image.append("hvlab.stress=32,48")
    return (
        f"<domain type='qemu'><name>{NAME}</name><memory unit='MiB'>256</memory>"
        "<vcpu>2</vcpu><os><type arch='x86_64' machine='q35'>hvm</type>"
        f"<kernel>{image.kernel}</kernel><initrd>{image.initrd}</initrd>"
        f"<cmdline>{cmdline}</cmdline></os>"
        "<devices><emulator>/usr/bin/qemu-system-x86_64</emulator>"
        f"<serial type='file'><source path='{serial}' append='on'/></serial>"
        "<memballoon model='none'/></devices></domain>"
    )


@dataclass
class Hosts:
    """The two daemons' connections and p2p URIs; the domain lives on ``src``."""

    lib: Any
    src: Any
    dst: Any
    src_p2p: str
    dst_p2p: str
    serial: Path

    def domain(self, conn: Any) -> Any | None:
        try:
            dom = conn.lookupByName(NAME)
        except self.lib.libvirtError:
            return None
        return dom if dom.isActive() else None

    def home(self) -> Any:
        """The running domain on the source (brought back or started as needed)."""
        dom = self.domain(self.src)
        if dom is not None:
            return dom
        away = self.domain(self.dst)
        if away is not None:
            away.migrateToURI3(self.src_p2p, {}, F_LIVE | F_P2P)
            return self.src.lookupByName(NAME)
        dom = self.src.createXML(_xml(self.serial), 0)
        wait_for(
            lambda: READY_MARK in self.serial.read_text(errors="replace"),
            180,
            "the libvirt domain's guest to boot",
            interval=0.5,
        )
        return dom


@pytest.fixture(scope="module")
def hosts(libvirt_target: LibvirtTarget) -> Iterator[Hosts]:
    import libvirt

    from harness.libvirt.daemon import daemon_pair

    libvirt.registerErrorHandler(lambda _c, _e: None, None)
    folder = cache_root() / "libvirt-serial"
    folder.mkdir(parents=True, exist_ok=True)
    serial = folder / f"{NAME}-{os.getpid()}.log"
    serial.unlink(missing_ok=True)
    with daemon_pair() as (src, dst):
        pair = Hosts(
            libvirt,
            libvirt.open(src.uri),
            libvirt.open(dst.uri),
            src.p2p_uri,
            dst.p2p_uri,
            serial,
        )
        try:
            yield pair
        finally:
            for conn in (pair.src, pair.dst):
                with contextlib.suppress(libvirt.libvirtError):
                    conn.close()
            serial.unlink(missing_ok=True)


@dataclass
class Job:
    """A migration running in a thread, with the source's job info sampled every 50 ms."""

    stats: list[dict[str, Any]] = field(default_factory=list)
    error: str | None = None
    done: threading.Event = field(default_factory=threading.Event)


def migrate(
    hosts: Hosts,
    flags: int,
    params: dict[str, Any],
    during: Callable[[Any, dict[str, Any]], None] | None = None,
) -> Job:
    """Migrate the domain to the destination; sample jobStats until the call returns."""
    dom = hosts.home()
    # hvlab-stress starts before the shell: give the guest 2 s of vCPU time to fill
    # and dirty its working set (virDomainGetInfo's cpuTime, ns)
    cpu0 = dom.info()[4]
    wait_for(lambda: dom.info()[4] - cpu0 >= 2e9, 60, "the guest to run 2 s of vCPU time")
    job = Job()

    def call() -> None:
        try:
            dom.migrateToURI3(hosts.dst_p2p, params, flags)
        except hosts.lib.libvirtError as exc:
            job.error = str(exc)
        finally:
            job.done.set()

    thread = threading.Thread(target=call, daemon=True)
    thread.start()

    def sample() -> bool:
        with contextlib.suppress(hosts.lib.libvirtError):
            stats = dom.jobStats()
            if stats.get("type", 0) != 0:
                job.stats.append(stats)
                if during is not None:
                    during(dom, stats)
        return job.done.is_set()

    wait_for(sample, 240, "the libvirt migration", interval=0.05, backoff=False)
    thread.join(timeout=10)
    return job


def _seen(job: Job, key: str) -> list[Any]:
    return [s[key] for s in job.stats if key in s]


@pytest.mark.catalog("FEAT-LIBVIRT-AUTO-CONVERGE")
def test_libvirt_auto_converge(hosts: Hosts) -> None:
    """VIR_MIGRATE_AUTO_CONVERGE with initial 50 and increment 45 at 16 MiB/s.

    1. The job info shows auto_converge_throttle while it runs, starting at 50 and
       rising by 45 (capped at 99).
    2. The migration completes: the domain runs on the destination.
    """
    params = {
        "bandwidth": SLOW_MIB,
        "auto_converge.initial": 50,
        "auto_converge.increment": 45,
    }
    job = migrate(hosts, F_LIVE | F_P2P | F_AUTO_CONVERGE, params)
    throttle = list(dict.fromkeys(_seen(job, "auto_converge_throttle")))
    assert throttle and throttle[0] == 50, (throttle, job.stats[-1:])
    assert all(b == min(a + 45, 99) for a, b in itertools.pairwise(throttle)), throttle
    assert job.error is None, job.error
    assert hosts.domain(hosts.dst) is not None


@pytest.mark.catalog("FEAT-LIBVIRT-COMPRESSED")
def test_libvirt_compressed(hosts: Hosts) -> None:
    """VIR_MIGRATE_COMPRESSED (method xbzrle) at 16 MiB/s.

    1. The job info shows the compression cache size it was given.
    2. It shows compressed pages and cache misses.
    3. The migration completes: the domain runs on the destination.
    """
    params = {
        "bandwidth": SLOW_MIB,
        "compression": "xbzrle",
        "compression.xbzrle.cache": 64 << 20,
    }
    job = migrate(hosts, F_LIVE | F_P2P | F_COMPRESSED, params)
    last = job.stats[-1] if job.stats else {}
    assert _seen(job, "compression_cache") and last["compression_cache"] == 64 << 20, last
    assert max(_seen(job, "compression_pages")) > 0, last
    assert max(_seen(job, "compression_cache_misses")) > 0, last
    assert job.error is None, job.error
    assert hosts.domain(hosts.dst) is not None


@pytest.mark.catalog("FEAT-LIBVIRT-POSTCOPY")
def test_libvirt_postcopy(hosts: Hosts) -> None:
    """VIR_MIGRATE_POSTCOPY at 16 MiB/s, switched by virDomainMigrateStartPostCopy.

    1. After the switch the job info counts post-copy page requests.
    2. The migration completes: the domain runs on the destination.
    """
    switched: list[bool] = []

    def switch(dom: Any, stats: dict[str, Any]) -> None:
        if not switched and stats.get("memory_iteration", 0) >= 2:
            dom.migrateStartPostCopy(0)
            switched.append(True)

    job = migrate(hosts, F_LIVE | F_P2P | F_POSTCOPY, {"bandwidth": SLOW_MIB}, switch)
    assert switched, job.stats[-1:]
    assert max(_seen(job, "memory_postcopy_requests") or [0]) > 0, job.stats[-1:]
    assert job.error is None, job.error
    assert hosts.domain(hosts.dst) is not None


@pytest.mark.catalog("FEAT-LIBVIRT-PARALLEL")
def test_libvirt_parallel(hosts: Hosts) -> None:
    """VIR_MIGRATE_PARALLEL with 3 connections.

    1. While it runs, the source QEMU has the multifd capability on and 3 channels
       (read through libvirt's QEMU monitor passthrough).
    2. The migration completes: the domain runs on the destination.
    """
    import libvirt_qemu

    seen: list[tuple[bool, int]] = []

    def look(dom: Any, stats: dict[str, Any]) -> None:
        # libvirt applies capabilities and parameters in its Perform phase, right before
        # QEMU's migrate: look once QEMU has moved memory
        if seen or not stats.get("memory_processed"):
            return
        caps = json.loads(
            libvirt_qemu.qemuMonitorCommand(dom, '{"execute":"query-migrate-capabilities"}', 0)
        )["return"]
        params = json.loads(
            libvirt_qemu.qemuMonitorCommand(dom, '{"execute":"query-migrate-parameters"}', 0)
        )["return"]
        on = any(c["capability"] == "multifd" and c["state"] for c in caps)
        seen.append((on, params["multifd-channels"]))

    params = {"bandwidth": SLOW_MIB * 4, "parallel.connections": 3}
    job = migrate(hosts, F_LIVE | F_P2P | F_PARALLEL, params, look)
    assert seen == [(True, 3)], seen
    assert job.error is None, job.error
    assert hosts.domain(hosts.dst) is not None
