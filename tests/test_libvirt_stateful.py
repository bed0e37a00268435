"""The migration state machine against the model (small budget in make test)."""

from __future__ import annotations

import os

from hypothesis import settings

from simulator.libvirt.stateful import MigrationMachine


def test_state_machine_invariants() -> None:
    """Verified:
    1. HVLAB_SM_EXAMPLES (default 200) state-machine runs keep every invariant:
       never lost, never running twice, persistence/pause as the flags say.
    """
    examples = int(os.environ.get("HVLAB_SM_EXAMPLES", "200"))
    MigrationMachine.TestCase.settings = settings(
        max_examples=examples, stateful_step_count=20, deadline=None
    )
    MigrationMachine.TestCase().runTest()
