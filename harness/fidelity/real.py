"""One configuration on real QEMU: two local processes, hvlab-stress in the guest.

The source boots (from a boot template where the store has one), starts hvlab-stress
(output to a file: the console stays quiet) and waits until it has filled its working
set; its RAM is dumped for the layout (which also says where the memory heartbeat is); the
destination starts with ``-incoming``; capabilities go to both sides (QEMU needs
postcopy-ram, multifd and xbzrle on both), parameters to the source; ``migrate``; then
query-migrate every 50 ms on a fixed schedule (guestperf's period) while both sides'
memory heartbeats are polled every 5 ms. A configuration that has not completed by ``max_s`` is
cancelled (not converged). Post-copy starts once dirty-sync-count reaches the
configuration's count (guestperf's post_copy_iters).
"""

from __future__ import annotations

import contextlib
import time
from pathlib import Path
from typing import Any

from harness import migration, ramdump, stress
from harness.errors import HarnessError, WaitTimeout
from harness.fidelity import guestperf, heartbeat, switchtrace
from harness.fidelity import layout as layout_mod
from harness.fidelity.matrix import POLL_S, Config
from harness.fixtures import VMFactory, destination
from harness.machine import Machine
from harness.migration import MigrationStatus, RunState, Transport
from harness.spec import Arch, MachineType, Topology, VMSpec
from harness.waits import wait_for

JSON = dict[str, Any]
_BOTH_SIDES = ("postcopy-ram", "multifd", "xbzrle")
_MULTIFD_BOTH = ("multifd-channels",)


def spec(cfg: Config, arch: Arch) -> VMSpec:
    return VMSpec(
        machine=MachineType.standard(arch),
        topology=Topology(cpus=2, sockets=1, cores=2, threads=1, maxcpus=2),
        memory_mib=cfg.guest_mib,
    )


#: hvlab-stress's memory heartbeat: word 3 of working-set page 0 (hvlab-stress.c)
BEAT_WORD = 3


def _caps(names: list[str]) -> JSON:
    return {"capabilities": [{"capability": c, "state": True} for c in names]}


def run(cfg: Config, arch: Arch, vms: VMFactory, work: Path) -> JSON:
    """One real migration of ``cfg``; its guestperf-style report."""
    vm_spec = spec(cfg, arch)
    src = stress.launch(vms, vm_spec, stress.Stress(cfg.ws_mib, cfg.rate_mib, cfg.pattern))
    lay = layout_mod.read(src, work)
    if not lay.ws:
        raise HarnessError(f"{cfg.name}: hvlab-stress's pages are not in the RAM dump")
    beat_addr = ramdump.RAM_BASE[arch] + lay.ws[0][0] * ramdump.PAGE + 8 * BEAT_WORD
    calibrating = "calibration" in cfg.tags
    stop_ms = stop_latency(src) if calibrating else None
    if calibrating:
        switchtrace.enable(src)  # the switch-over's fixed cost (switchtrace.py)
    dst = destination(vms, vm_spec, Transport.TCP)
    both = [c for c in cfg.caps if c in _BOTH_SIDES]
    if both:
        dst.qmp.execute("migrate-set-capabilities", _caps(both))
    dst_params = {k: v for k, v in cfg.params.items() if k in _MULTIFD_BOTH}
    if dst_params:
        dst.qmp.execute("migrate-set-parameters", dst_params)
    src.qmp.execute("migrate-set-capabilities", _caps([*cfg.caps, "events"]))
    src.qmp.execute("migrate-set-parameters", cfg.params)
    # only the destination is polled; the source's stop comes from its own figures
    tap = heartbeat.MemTap(dst, beat_addr).start()
    history: list[JSON] = []
    infos: list[tuple[float, JSON]] = []
    state = {"postcopy_at": None, "cancel_at": None}
    uri = migration.destination_uri(dst, Transport.TCP)
    start = time.monotonic()
    try:
        src.qmp.execute("migrate", {"uri": uri})

        def poll() -> JSON | None:
            now = time.monotonic() - start
            info = dict(src.qmp.execute("query-migrate"))
            infos.append((now, info))
            history.append(guestperf.progress(info, round(now, 4)))
            st = migration.status_of(info, src.name)
            if st in migration.TERMINAL:
                return info
            syncs = info.get("ram", {}).get("dirty-sync-count", 0)
            if (
                cfg.postcopy_after_syncs is not None
                and state["postcopy_at"] is None
                and syncs >= cfg.postcopy_after_syncs
            ):
                src.qmp.execute("migrate-start-postcopy")
                state["postcopy_at"] = now  # type: ignore[assignment]
            if now >= cfg.max_s and state["cancel_at"] is None and st is MigrationStatus.ACTIVE:
                src.qmp.execute("migrate_cancel")
                state["cancel_at"] = now  # type: ignore[assignment]
            return None

        final = wait_for(poll, cfg.max_s + 120, f"{cfg.name}: migration end", POLL_S, False)
        done = migration.status_of(final, src.name) is MigrationStatus.COMPLETED
        if done and not final.get("total-time"):
            final = dict(src.qmp.execute("query-migrate"))  # set a moment after "completed"
        frozen = heartbeat.read_word(src, beat_addr)
        if done:
            migration.wait_runstate(dst, {RunState.RUNNING}, timeout=30)
            # the guest's first steps on the destination; a guest that stays silent is
            # recorded (dst_alive false), not fatal
            with contextlib.suppress(WaitTimeout):
                wait_for(lambda: heartbeat.resumed(tap, frozen), 20, "the destination's guest")
    finally:
        tap.stop()
    pause = heartbeat.pause_since_stop(tap, frozen, start, final)
    switch_s = switchtrace.switchover_s(src.paths.stderr.read_text()) if calibrating else None
    last = infos[-1][1] if infos else {}
    hv = {
        "kind": "real",
        "arch": arch.value,
        "config": cfg.name,
        "final": final,
        "last_active": _last_active(infos),
        "postcopy_requested_at_s": state["postcopy_at"],
        "cancelled_at_s": state["cancel_at"],
        "pause_ms": pause,
        "heartbeats": {"dst": len(tap.beats)},
        "tap_errors": tap.errors[:5],
        "heartbeat_addr": beat_addr,
        "stop_ms": stop_ms,
        "switchover_ms": None if switch_s is None else switch_s * 1000,
        "dst_alive": final.get("status") != "completed" or pause is not None,
        "layout": lay.to_json(),
        "ram_total": last.get("ram", {}).get("total") or final.get("ram", {}).get("total"),
    }
    image = vms.machines[0].argv
    return guestperf.report(
        scenario=cfg.scenario(),
        hw=guestperf.hardware(vm_spec.topology.cpus, cfg.guest_mib),
        history=history,
        binary=image[0],
        kernel=_arg_after(image, "-kernel"),
        initrd=_arg_after(image, "-initrd"),
        hvlab=hv,
    )


def _last_active(infos: list[tuple[float, JSON]]) -> JSON:
    """The last query-migrate answer while still active (the state at a cancel)."""
    for _, info in reversed(infos):
        if info.get("status") in ("active", "postcopy-active"):
            return info
    return {}


def _arg_after(argv: list[str], flag: str) -> str:
    return argv[argv.index(flag) + 1] if flag in argv else ""


def stop_latency(vm: Machine, rounds: int = 5) -> float:
    """What stopping the VM costs (ms): QMP ``stop`` (vm_stop: kick and wait for every
    vCPU, as migration_completion does) less a plain round trip (query-status); the
    median of a few stop/cont rounds on the idle guest before it migrates."""
    costs = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        vm.qmp.execute("query-status")
        t1 = time.perf_counter()
        vm.qmp.execute("stop")
        t2 = time.perf_counter()
        vm.qmp.execute("cont")
        costs.append(max(0.0, (t2 - t1) - (t1 - t0)) * 1000)
    return sorted(costs)[len(costs) // 2]
