"""The fidelity benchmark's smoke: one real run of one small configuration, scored.

The whole matrix is ``hvlab bench fidelity`` (README); this checks that its parts work
on this host: the recorder, the guestperf format, the calibration, the simulation, the
scorer (which must notice a wrong simulation) and the plots.
"""

from __future__ import annotations

import copy
import dataclasses
import itertools
import shutil
import sys
from pathlib import Path
from typing import Any

import pytest

from harness.fidelity import bench, guestperf, score, simulate
from harness.fidelity.layout import Layout
from harness.fidelity.matrix import MATRIX, POLL_S, SMOKE
from harness.guest import cache_root
from simulator.model.host import Host

QEMU_GUESTPERF = cache_root() / "qemu-source/qemu/tests/migration"


@pytest.fixture(scope="module")
def smoke(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if shutil.which("qemu-system-x86_64") is None:
        pytest.skip("qemu-system-x86_64 is not installed")
    out = tmp_path_factory.mktemp("fidelity")
    bench.run_real([SMOKE], bench.Arch.X86_64, out, 1)
    if not (out / "real" / f"{SMOKE.name}-0.json").exists():
        pytest.fail("the smoke run did not complete (see its output)")
    return out


def _real(out: Path) -> dict[str, Any]:
    return guestperf.load(out / "real" / f"{SMOKE.name}-0.json")


def test_recorder_and_guestperf_format(smoke: Path) -> None:
    """1. The run completed and its report has guestperf's top-level fields.
    2. The progress history is query-migrate every ~50 ms with guestperf's Progress fields.
    3. The layout covers the guest's RAM; the guest ran on the destination (its memory
       heartbeat moved) and the pause was measured.
    4. The calibration run traced its switch-over: a fixed cost above 0 and below the
       downtime QEMU reported.
    5. QEMU's own guestperf code (7.2 source, when unpacked) reads the report.
    """
    rep = _real(smoke)
    assert rep["hvlab"]["final"]["status"] == "completed"
    for key in ("hardware", "scenario", "progress_history", "guest_timings", "binary"):
        assert key in rep
    hist = rep["progress_history"]
    assert len(hist) >= 3
    gaps = [b["now"] - a["now"] for a, b in itertools.pairwise(hist)]
    assert sorted(gaps)[len(gaps) // 2] == pytest.approx(POLL_S, abs=0.03)
    assert set(hist[0]["ram"]) >= {"transferred_bytes", "remaining_bytes", "iterations"}
    assert rep["hvlab"]["layout"]["pages"] == SMOKE.guest_mib * 256
    assert rep["hvlab"]["pause_ms"] is not None and rep["hvlab"]["dst_alive"]
    switch_ms = rep["hvlab"]["switchover_ms"]
    assert switch_ms is not None and 0 < switch_ms <= rep["hvlab"]["final"]["downtime"] + 1
    if not (QEMU_GUESTPERF / "guestperf/report.py").exists():
        pytest.skip("QEMU's tests/migration/guestperf is not unpacked here")
    sys.path.insert(0, str(QEMU_GUESTPERF))
    try:
        from guestperf.report import Report  # type: ignore[import-not-found]

        back = Report.deserialize(rep).serialize()
    finally:
        sys.path.remove(str(QEMU_GUESTPERF))
    assert back["scenario"]["name"] == SMOKE.name
    assert len(back["progress_history"]) == len(hist)


def test_scorer_calibrates_simulates_and_notices_errors(smoke: Path) -> None:
    """1. Scoring calibrates on the run, simulates it and writes the table, summary,
       host constants and plots; the simulated run keeps every physical invariant.
    2. Calibrated on itself, the simulation classifies and times the run closely (bytes
       within 5%, time within 50%: one run on a shared machine).
    3. A simulation made 50% slower and with two more syncs is scored as such, and the
       total-time target reads "not met".
    """
    text, summary = bench.score_all([SMOKE], smoke, SMOKE)
    for name in ("table.md", "summary.json", "host.json", "plots/all.png"):
        assert (smoke / name).exists(), name
    assert SMOKE.name in text and not summary["invariants_broken"]
    row = summary["configs"][0]
    assert row["errors"]["converged"] is True
    host = summary["calibration"]["host"]
    assert host["switchover_s"] * 1000 == pytest.approx(_real(smoke)["hvlab"]["switchover_ms"])
    # loose: one run on a 2-core machine shared with the other worker's TCG guests (the
    # matrix, not this smoke, measures the model's accuracy). Seen in make test: +36%
    # (918 vs 1245 ms, the per-page costs are the default host's, not calibrated on a
    # loaded run); a scorer that mis-calibrates is off by factors, not by half.
    assert abs(row["errors"]["total_ms"]) < 0.5 and abs(row["errors"]["bytes"]) < 0.05
    sim = guestperf.load(smoke / "sim" / f"{SMOKE.name}-0.json")
    worse = copy.deepcopy(sim)
    worse["hvlab"]["final"]["total-time"] = int(sim["hvlab"]["final"]["total-time"] * 1.5)
    worse["hvlab"]["final"]["ram"]["dirty-sync-count"] += 2
    s = score.score(SMOKE.name, [_real(smoke)], [worse])
    slow = worse["hvlab"]["final"]["total-time"]
    assert s.errors["total_ms"] == pytest.approx(slow / s.real["total_ms"] - 1)
    assert s.errors["total_ms"] > 0.4
    assert s.errors["syncs"] == row["errors"]["syncs"] + 2
    agg = score.aggregate([s])
    assert agg["total_ms"]["met"] is False and agg["syncs"]["met"] is False
    flipped = dataclasses.replace(s, errors={**s.errors, "converged": False})
    assert score.aggregate([flipped])["converged"]["met"] is False


def test_simulated_history_ends_with_the_outcome() -> None:
    """Every matrix configuration through the model (no QEMU; the default host, a
    synthetic layout): the progress history's last record is the run's outcome, as a real
    run's last poll is, even when the switch-over straddles a poll (its end falls after
    the poll that saw the engine finish): plots and guestperf's tools read the end there.
    """
    cal = simulate.Calibration(Host(), rom_bytes=0, device_state_bytes=0)
    for cfg in MATRIX:
        pages, ws = cfg.guest_mib * 256, cfg.ws_mib * 256
        lay = Layout(pages, ((0, pages // 8),), ((pages // 4, pages // 4 + ws),) if ws else ())
        rep = simulate.run(cfg, lay, cal)
        last, final = rep["progress_history"][-1], rep["hvlab"]["final"]
        assert last["status"] == final["status"], cfg.name
        if final["status"] == "completed":
            assert last["duration"] == final["total-time"], cfg.name
            assert last["downtime"] == final["downtime"] > 0, cfg.name
