"""The switch-over's fixed cost read from QEMU's trace events (harness/fidelity/switchtrace.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.fidelity.switchtrace import switchover_s

TRACE = Path(__file__).parent / "data" / "switchover-trace.log"


def test_switchover_from_a_real_trace() -> None:
    """A recorded QEMU 7.2 completion (VM stopped at .133179, "completed" at .138553).

    1. The cost is the completion less the RAM section (.133190-.134744) plus the bitmap
       sync inside it (.133193-.134356): 5.374 - 1.554 + 1.163 = 4.983 ms.
    2. Only the last completion counts: an earlier one in the log is ignored.
    """
    log = TRACE.read_text()
    assert switchover_s(log) == pytest.approx(0.004983, abs=2e-6)
    earlier = log.replace("1796222606.", "1796222500.")
    assert switchover_s(earlier + log) == pytest.approx(0.004983, abs=2e-6)


def test_switchover_needs_a_completed_migration() -> None:
    """No completion, or one that never reached "completed", gives None (the calibration
    then keeps the model's default), never a made-up figure."""
    log = TRACE.read_text()
    assert switchover_s("") is None
    assert switchover_s(log.replace("new state completed", "new state failed")) is None
    cut = "\n".join(line for line in log.splitlines() if "vm_stop" not in line)
    assert switchover_s(cut) is None
