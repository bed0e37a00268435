"""The simulator's stream on the wire under faults (issue 13): it carries the model's
bytes, so a slow, stopped or broken link does to it what it does to the product."""

from __future__ import annotations

import dataclasses
import signal
from pathlib import Path

from harness import migration
from harness.fixtures import VMFactory
from harness.machine import Machine
from harness.migration import Transport, incoming_uri
from harness.net.proxy import FaultProxy
from harness.spec import VMSpec
from harness.targets.sim import SimTarget
from harness.waits import wait_for


def _pair(vms: VMFactory, spec: VMSpec) -> tuple[Machine, Machine, tuple[str, int]]:
    src = vms.launch(spec, "src", wait_guest=False)
    incoming = incoming_uri(Transport.TCP, vms.target.traits)
    dst = vms.launch(dataclasses.replace(spec, incoming=incoming), "dst", wait_guest=False)
    uri = migration.destination_uri(dst, Transport.TCP)
    host, _, port = uri.removeprefix("tcp:").rpartition(":")
    return src, dst, (host, int(port))


def test_stream_carries_the_models_bytes(tmp_path: Path) -> None:
    """A QEMU-profile migration through a proxy.

    1. It completes.
    2. The proxy forwarded at least ram.transferred bytes (the page map's compact
       encoding alone is a few KiB) and not much more (frames).
    """
    vms = VMFactory(SimTarget("qemu-7.2"), tmp_path)
    try:
        src, _, target = _pair(vms, VMSpec(memory_mib=256))
        with FaultProxy(target) as proxy:
            watch = migration.start(src, proxy.uri)
            final = watch.until(migration.TERMINAL, timeout=60)
        assert final["status"] == "completed", final
        sent = int(final["ram"]["transferred"])
        assert sent <= proxy.forwarded <= sent + (1 << 20), (sent, proxy.forwarded)
    finally:
        vms.close()


def test_slow_link_slows_the_migration(tmp_path: Path) -> None:
    """A link capped at 4 MB/s under a QEMU-profile migration with no max-bandwidth set.

    1. Once 12 MB went through it is still active (unslowed, the 256 MiB guest would
       be through in about 2 s), and ram.transferred is no further ahead of what the
       link let through than a rate-limit window and the sockets' buffers hold.
    """
    vms = VMFactory(SimTarget("qemu-7.2"), tmp_path)
    try:
        src, _, target = _pair(vms, VMSpec(memory_mib=256))
        with FaultProxy(target) as proxy:
            proxy.rate(4e6)
            watch = migration.start(src, proxy.uri)
            wait_for(lambda: proxy.forwarded > 12e6 or None, 30, "12 MB through the link")
            info = watch.poll()
            assert info["status"] == "active", info
            ahead = int(info["ram"]["transferred"]) - proxy.forwarded
            assert ahead < 32 << 20, (info["ram"], proxy.forwarded)
            src.qmp.execute("migrate_cancel")
            watch.until(migration.TERMINAL, timeout=30)
    finally:
        vms.close()


def test_stratovirt_stopped_destination_times_out(tmp_path: Path) -> None:
    """StratoVirt's stream socket has 30 s timeouts (migration/src/lib.rs): a stopped
    destination fails the migration once they pass (3 s of wall time at --time-scale 10).

    1. Right after the SIGSTOP the status is active.
    2. Then it is failed, and the source runs.
    """
    vms = VMFactory(SimTarget("stratovirt-2.5", options=("--time-scale", "10")), tmp_path)
    try:
        src, dst, target = _pair(vms, VMSpec(memory_mib=256))
        with FaultProxy(target) as proxy:
            proxy.rate(4e6)
            watch = migration.start(src, proxy.uri)
            wait_for(lambda: proxy.forwarded > 1 << 20 or None, 30, "the first MiB")
            dst.signal(signal.SIGSTOP)
            assert watch.poll()["status"] == "active"
            final = watch.until(migration.TERMINAL, timeout=30)
            dst.signal(signal.SIGKILL)
        assert final["status"] == "failed", final
        assert migration.runstate(src) == "running"
    finally:
        vms.close()


def test_stratovirt_accepts_its_first_bytes_flipped(tmp_path: Path) -> None:
    """StratoVirt's stream opens with Request{length, Active}; recv_migration reads only
    the status (migration/src/migration.rs), so flipping the length's first 4 bytes
    changes nothing.

    1. The migration completes and the destination runs.
    """
    vms = VMFactory(SimTarget("stratovirt-2.5", options=("--time-scale", "10")), tmp_path)
    try:
        src, dst, target = _pair(vms, VMSpec(memory_mib=256))
        with FaultProxy(target) as proxy:
            proxy.corrupt(at=0, count=4)
            watch = migration.start(src, proxy.uri)
            final = watch.until(migration.TERMINAL, timeout=60)
        assert proxy.corrupted == 4
        assert final["status"] == "completed", final
        assert migration.runstate(dst) == "running"
    finally:
        vms.close()
