"""The migration state machine: on the model, and on the model and real libvirt 9.0 at once."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

import pytest
from hypothesis import settings

from harness.libvirt.daemon import can_run_libvirtd
from simulator.libvirt.session import Session
from simulator.libvirt.stateful import machine_for, model_session


def test_state_machine_on_the_model() -> None:
    """Verified:
    1. HVLAB_SM_EXAMPLES (default 200) state-machine runs on the model keep every
       invariant: never lost, never running twice, persistence/pause as the flags say.
    """
    examples = int(os.environ.get("HVLAB_SM_EXAMPLES", "200"))
    machine = machine_for(lambda: [model_session()])
    machine.TestCase.settings = settings(
        max_examples=examples, stateful_step_count=20, deadline=None
    )
    machine.TestCase().runTest()


@pytest.fixture(scope="module")
def real_pair() -> Iterator[Session]:
    reason = can_run_libvirtd()
    if reason:
        pytest.skip(reason)
    from harness.libvirt.control import real_session

    with contextlib.ExitStack() as stack:
        yield stack.enter_context(real_session())


def test_state_machine_model_and_real_libvirt_in_lockstep(real_pair: Session) -> None:
    """Verified:
    1. HVLAB_SM_REAL_EXAMPLES (default 2) runs of up to 6 steps make every step on the
       model and on two private libvirtd 9.0 daemons; after each step both return
       the same result (or error code and domain) and both hosts show the same domains
       with the same state, reason and persistence; the invariants hold on both.
    """
    examples = int(os.environ.get("HVLAB_SM_REAL_EXAMPLES", "2"))
    machine = machine_for(lambda: [model_session(), real_pair])
    machine.TestCase.settings = settings(
        max_examples=examples, stateful_step_count=6, deadline=None, database=None
    )
    machine.TestCase().runTest()
