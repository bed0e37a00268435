"""Conformance: libvirt migrate flags on the libvirt targets.

``libvirt_target`` is the axis (suites/conftest.py): ``libvirt-model`` (the model) and
``libvirt-9.0`` (two private libvirtd, skipped with the reason where they cannot run).
One code path: :class:`simulator.libvirt.session.Session` drives whichever it is.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from harness.libvirt.target import LibvirtTarget
from simulator.libvirt.flags import MigrateFlag as F
from simulator.libvirt.request import Api
from simulator.libvirt.scenario import Scenario
from simulator.libvirt.session import Session


@pytest.fixture(scope="module")
def session(libvirt_target: LibvirtTarget) -> Iterator[Session]:
    """One session per target and module: the real target starts its daemons once."""
    with libvirt_target.session() as s:
        yield s


def _case(claim: str, case: str, scenario: Scenario, expected: Any) -> Any:
    return pytest.param(case, scenario, expected, id=case, marks=pytest.mark.catalog(claim))


CASES = [
    _case(
        "FLAG-TUNNELLED-P2P",
        "tunnelled-needs-p2p",
        Scenario(Api.MIGRATE, int(F.LIVE | F.TUNNELLED)),
        (False, 55, 20),
    ),
    _case(
        "FLAG-OFFLINE-PERSIST",
        "offline-needs-persist",
        Scenario(Api.MIGRATE_TO_URI3, int(F.PEER2PEER | F.OFFLINE)),
        (False, 55, 10),
    ),
    _case(
        "FLAG-P2P-URI",
        "migrate3-refuses-p2p",
        Scenario(Api.MIGRATE3, int(F.LIVE | F.PEER2PEER)),
        (False, 8, 20),
    ),
    _case(
        "FLAG-DIRECT",
        "direct-unsupported",
        Scenario(Api.MIGRATE_TO_URI, int(F.LIVE)),
        (False, 74, 20),
    ),
    _case(
        "FLAG-UNKNOWN", "unknown-bit", Scenario(Api.MIGRATE, int(F.LIVE) | 1 << 22), (False, 8, 10)
    ),
]


@pytest.mark.parametrize(("case", "scenario", "expected"), CASES)
def test_flag_rule(session: Session, case: str, scenario: Scenario, expected: Any) -> None:
    """Verified:
    1. The call is refused with libvirt's error code and error domain (seed 000/001
       constraint for the case), identically on every target.
    """
    verdict = session.run(scenario)
    assert (verdict.accepted, verdict.code, verdict.domain) == expected
