"""Migration features (seed 000's AUTO_CONVERGE, COMPRESSED, PARALLEL, POSTCOPY; seed
002's bandwidth): each does on the hypervisor what the flag's text says.

The guest runs hvlab-stress (harness/stress.py: on a real guest from its console, on the
simulator as its modelled workload) so that memory is dirtied at a known rate; every
figure comes from query-migrate on the source. Parameters are chosen so a test takes
seconds: a small working set at a rate above a low bandwidth does not converge without
the feature under test (the cyclic-writer band of tests/test_model_precopy.py).
"""

from __future__ import annotations

import dataclasses
import itertools
import json
from collections.abc import Callable
from typing import Any

import pytest

from harness import migration, ramdump, sockstat, stress
from harness.errors import ConsoleError
from harness.fixtures import VMFactory, destination
from harness.machine import Machine
from harness.migration import RunState, Transport
from harness.spec import VMSpec
from harness.stress import Stress
from harness.workload import read_pattern, write_pattern
from simulator.model.units import MiB
from suites.catalog import Expect
from suites.claim import KnownCrash

#: does not converge below 16 MiB/s: 32 MiB dirtied at 48 MiB/s, W > 3 B (dl + 100 ms)
HEAVY = Stress(ws_mib=32, rate_mib=48)
SLOW = 16 * MiB


def _caps(vm: Machine, *names: str) -> None:
    caps = [{"capability": c, "state": True} for c in names]
    vm.qmp.execute("migrate-set-capabilities", {"capabilities": caps})


def _pair(
    vms: VMFactory, spec: VMSpec, load: Stress, dst_paused: bool = False
) -> tuple[Machine, Machine]:
    """A source running ``load`` and its destination. ``dst_paused`` starts it with -S:
    once a precopy migration completed, neither side runs the guest until _arrived has
    compared them (post-copy needs a destination that runs: its page requests come from
    the guest running there)."""
    src = stress.launch(vms, spec, load)
    dst_spec = dataclasses.replace(spec, start_paused=dst_paused)
    return src, destination(vms, dst_spec, Transport.TCP)


def _arrived(
    vms: VMFactory,
    src: Machine,
    dst: Machine,
    result: migration.MigrationResult,
    known: KnownCrash | None,
) -> None:
    """The guest arrived whole and runs on the destination (started with -S).

    Where the target can dump guest RAM, the stopped source's memory and the paused
    destination's are compared page by page first: a page that differs is data lost by
    the migration. Under TCG, where the catalog knows a hypervisor bug that loses
    writes, that is an xfail carrying the bug's evidence and the pages counted here;
    anywhere else it fails. Then the destination is resumed and its console must answer
    (_guest_answers); a guest whose memory arrived intact has no known excuse to die.
    """
    assert result.status == "completed", result.final
    assert result.dst_runstate == "paused", result.dst_runstate
    if vms.target.traits.ram_dump:
        diff = ramdump.compare(src, dst, vms.artifacts / "ram")
        (vms.artifacts / "ram-compare.json").write_text(
            json.dumps({"pages": diff.pages, "differing": list(diff.differing)})
        )
        if not diff.intact:
            tcg = not dst.qmp.execute("query-kvm").get("enabled", False)
            if known is not None and tcg:
                pytest.xfail(f"{known.evidence}. Here: {diff.describe()}")
            raise AssertionError(f"guest memory differs after the migration: {diff.describe()}")
        known = None
    dst.qmp.execute("cont")
    assert migration.wait_runstate(dst, {RunState.RUNNING}) == "running"
    _guest_answers(dst, known)


def _guest_answers(dst: Machine, known: KnownCrash | None) -> None:
    """The guest runs on the destination: its console answers. A guest killed by a
    hypervisor bug the catalog knows (its signature in the console, under TCG where the
    bug is TCG's: query-kvm) is an xfail carrying the catalog's evidence; the log is
    read first, so a guest that already died costs no console timeout."""

    def known_death() -> str | None:
        if known is None or known.signature not in dst.console.tail(1000):
            return None
        return None if dst.qmp.execute("query-kvm").get("enabled", False) else known.evidence

    if evidence := known_death():
        pytest.xfail(evidence)
    try:
        dst.console.sync()
    except ConsoleError:
        if evidence := known_death():
            pytest.xfail(evidence)
        raise


def _statuses(result: migration.MigrationResult) -> list[str]:
    return result.events or result.history


@pytest.mark.catalog("FEAT-AUTO-CONVERGE")
def test_auto_converge_throttles_until_it_converges(
    vms: VMFactory, standard_spec: VMSpec, expect: Callable[[str], Expect]
) -> None:
    """A workload that does not converge, with auto-converge (S000 AUTO_CONVERGE).

    1. cpu-throttle-percentage appears while the migration is active, starting at
       cpu-throttle-initial.
    2. Every value it takes is the previous one plus cpu-throttle-increment (capped at
       max-cpu-throttle), and it rises at least once.
    3. The migration completes and the guest's memory arrives intact: the destination,
       started with -S, holds the stopped source's RAM page by page (where the target
       can dump RAM; QEMU 7.2 under TCG loses writes made during precopy, a bug the
       catalog knows: pages that differ there are an xfail carrying its evidence and
       the count, see TCG_LOST_WRITES).
    4. Resumed, the guest runs on the destination: its console answers (a guest dead
       with the known bug's signature is that xfail where RAM cannot be compared).
    """
    src, dst = _pair(vms, standard_spec, HEAVY, dst_paused=True)
    initial, step, top = 50, 45, 99  # two steps: at 95% the writer keeps 10% of 48 MiB/s
    _caps(src, "auto-converge", "events")
    watch = migration.start(
        src,
        migration.destination_uri(dst, Transport.TCP),
        parameters={
            "max-bandwidth": SLOW,
            "downtime-limit": 50,
            "cpu-throttle-initial": initial,
            "cpu-throttle-increment": step,
            "max-cpu-throttle": top,
        },
    )
    result = migration.finish(watch, dst, timeout=180)
    result.save(vms.artifacts / "src" / "migration.json")
    seen = list(dict.fromkeys(s.throttle for s in result.samples if s.throttle))
    assert seen and seen[0] == initial, seen
    assert len(seen) >= 2, seen
    for before, after in itertools.pairwise(seen):
        assert after == min(before + step, top), seen
    _arrived(vms, src, dst, result, expect("FEAT-AUTO-CONVERGE").value)


@pytest.mark.catalog("FEAT-XBZRLE")
def test_xbzrle_sends_deltas(
    vms: VMFactory, standard_spec: VMSpec, expect: Callable[[str], Expect]
) -> None:
    """XBZRLE on both sides under a workload that re-dirties its pages (S000 COMPRESSED).

    1. The migration completes (without xbzrle this workload does not converge).
    2. xbzrle-cache shows cache hits (pages) and cache misses (a page's first re-send
       after the bulk stage is a miss: migration/ram.c save_xbzrle_page).
    3. The pages sent as deltas took fewer bytes than whole pages would have.
    4. ram.transferred is below what every page sent whole would have cost.
    5. The guest's memory arrives intact and the guest runs on the destination (as in
       test_auto_converge_throttles_until_it_converges).
    """
    src, dst = _pair(vms, standard_spec, HEAVY, dst_paused=True)
    _caps(dst, "xbzrle")
    _caps(src, "xbzrle", "events")
    watch = migration.start(
        src,
        migration.destination_uri(dst, Transport.TCP),
        parameters={"max-bandwidth": SLOW, "xbzrle-cache-size": 64 * MiB},
    )
    result = migration.finish(watch, dst, timeout=180)
    result.save(vms.artifacts / "src" / "migration.json")
    assert result.status == "completed", result.final
    cache = result.final["xbzrle-cache"]
    assert cache["pages"] > 0 and cache["cache-miss"] > 0, cache
    assert cache["bytes"] < cache["pages"] * 4096, cache
    ram = result.final["ram"]
    whole = (ram["normal"] + cache["pages"]) * (4096 + 8) + ram["duplicate"] * 9
    assert ram["transferred"] < whole, (ram, cache)
    _arrived(vms, src, dst, result, expect("FEAT-XBZRLE").value)


def _multifd_pair(vms: VMFactory, spec: VMSpec, channels: int) -> tuple[Machine, Machine, str]:
    src = vms.launch(spec, "src")
    dst = destination(vms, spec, Transport.TCP)
    for vm in (src, dst):
        _caps(vm, "multifd")
        vm.qmp.execute("migrate-set-parameters", {"multifd-channels": channels})
    return src, dst, migration.destination_uri(dst, Transport.TCP)


@pytest.mark.catalog("FEAT-MULTIFD")
def test_multifd_carries_the_pages(vms: VMFactory, standard_spec: VMSpec) -> None:
    """multifd with 3 channels (S000 PARALLEL).

    1. query-migrate-parameters shows the configured channel count.
    2. The migration completes; ram.multifd-bytes carries at least every page sent whole.
    3. Guest memory written before reads back identical on the destination.
    """
    src, dst, uri = _multifd_pair(vms, standard_spec, 3)
    digest = write_pattern(src, 32)
    assert src.qmp.execute("query-migrate-parameters")["multifd-channels"] == 3
    result = migration.finish(migration.start(src, uri, {"max-bandwidth": 64 * MiB}), dst, 120)
    result.save(vms.artifacts / "src" / "migration.json")
    assert result.status == "completed", result.final
    ram = result.final["ram"]
    assert ram["multifd-bytes"] >= ram["normal"] * 4096, ram
    assert read_pattern(dst) == digest


@pytest.mark.catalog("FEAT-MULTIFD-CHANNELS")
def test_multifd_opens_its_channels(vms: VMFactory, standard_spec: VMSpec) -> None:
    """The channels are connections of their own (S000 PARALLEL: several connections).

    1. While the migration is active, the source process holds 1 + multifd-channels
       established connections to the destination's port.
    2. The migration completes.
    """
    if not vms.target.traits.migration_channels:
        pytest.skip(f"{vms.target.name}: channels are not sockets of their own here")
    channels = 3
    src, dst, uri = _multifd_pair(vms, standard_spec, channels)
    write_pattern(src, 32)
    port = int(uri.rsplit(":", 1)[1])
    watch = migration.start(src, uri, {"max-bandwidth": 8 * MiB})
    # the main stream connects first, the channels a moment later (multifd_send_setup)
    counted = watch.until_value(
        lambda info: (lambda n: n if n >= 1 + channels else None)(
            sockstat.established_to(src.pid, port)
        ),
        60,
        f"{1 + channels} connections to the destination",
    )
    assert counted == 1 + channels
    src.qmp.execute("migrate-set-parameters", {"max-bandwidth": 1 << 30})  # finish quickly
    result = migration.finish(watch, dst, timeout=120)
    assert result.status == "completed", result.final


@pytest.mark.catalog("FEAT-POSTCOPY", "FEAT-POSTCOPY-REQUESTS", "FEAT-POSTCOPY-INTEGRITY")
def test_postcopy_switch_requests_and_memory(vms: VMFactory, standard_spec: VMSpec) -> None:
    """Post-copy under a workload that does not converge (S000 POSTCOPY).

    1. The migration starts as pre-copy (active) and migrate-start-postcopy moves it to
       postcopy-active; it completes.
    2. postcopy-requests counts the pages the running destination asked for. The rest
       of RAM follows at max-postcopy-bandwidth (SLOW too): unlimited, the source pushed
       the whole working set within ms of the switch, before a TCG aarch64 guest had
       resumed and touched a missing page (a run: 34 MB post-copy bytes, 0 requests).
    3. Memory written before the migration reads back identical on the destination, and
       hvlab-stress finds its whole working set intact there.
    """
    src, dst = _pair(vms, standard_spec, HEAVY)
    digest = write_pattern(src, 16)
    _caps(dst, "postcopy-ram")
    _caps(src, "postcopy-ram", "events")
    watch = migration.start(
        src,
        migration.destination_uri(dst, Transport.TCP),
        parameters={"max-bandwidth": SLOW, "max-postcopy-bandwidth": SLOW},
    )
    watch.until_value(
        lambda info: info.get("ram", {}).get("dirty-sync-count", 0) >= 2 or None,
        120,
        "a second dirty bitmap sync",
    )
    src.qmp.execute("migrate-start-postcopy")
    result = migration.finish(watch, dst, timeout=180)
    result.save(vms.artifacts / "src" / "migration.json")
    statuses = _statuses(result)
    assert "active" in statuses and "postcopy-active" in statuses, statuses
    assert statuses.index("active") < statuses.index("postcopy-active")
    assert result.status == "completed", result.final
    assert result.final["ram"]["postcopy-requests"] > 0, result.final["ram"]
    assert read_pattern(dst) == digest
    assert stress.verify(dst) in (None, f"stress verify ok {HEAVY.ws_mib * 256}")


def _precopy_seconds(final: dict[str, Any]) -> float:
    """Time the VM ran while RAM was sent: total - setup - downtime."""
    return (final["total-time"] - final.get("setup-time", 0) - final["downtime"]) / 1000


@pytest.mark.catalog("FEAT-BANDWIDTH", "FEAT-DOWNTIME-LIMIT")
def test_bandwidth_and_downtime_limit(vms: VMFactory, standard_spec: VMSpec) -> None:
    """A converging workload under max-bandwidth and downtime-limit (S002 bandwidth).

    1. The migration completes.
    2. Pre-copy bytes over the pre-copy time stay within max-bandwidth plus one 100 ms
       window's budget.
    3. The reported downtime is within downtime-limit.
    """
    limit_ms, bandwidth = 200, 24 * MiB
    src, dst = _pair(vms, standard_spec, Stress(ws_mib=16, rate_mib=4))
    _caps(src, "events")
    watch = migration.start(
        src,
        migration.destination_uri(dst, Transport.TCP),
        parameters={"max-bandwidth": bandwidth, "downtime-limit": limit_ms},
    )
    result = migration.finish(watch, dst, timeout=180)
    result.save(vms.artifacts / "src" / "migration.json")
    assert result.status == "completed", result.final
    ram, seconds = result.final["ram"], _precopy_seconds(result.final)
    assert ram["precopy-bytes"] <= bandwidth * (seconds + 0.1), (seconds, ram)
    assert result.final["downtime"] <= limit_ms, result.final
