"""Real libvirt 9.0: private daemons start and stop cleanly; model agrees on a sample."""

from __future__ import annotations

from xml.etree import ElementTree

import pytest

from harness.libvirt.daemon import can_run_libvirtd, daemon_pair
from harness.libvirt.differential import compare, generate, run_model, run_real

REASON = can_run_libvirtd()
pytestmark = pytest.mark.skipif(REASON is not None, reason=REASON or "")


def _reported_host_uuid(uri: str) -> str:
    """The host UUID the daemon at ``uri`` reports (capabilities XML, /capabilities/host/uuid)."""
    import libvirt

    conn = libvirt.open(uri)
    try:
        caps = ElementTree.fromstring(conn.getCapabilities())
    finally:
        conn.close()
    found = caps.findtext("host/uuid")
    assert found, "capabilities carry no host uuid"
    return found


def test_daemon_pair_leaves_nothing_behind() -> None:
    """Verified:
    1. Each daemon answers on its private socket and reports, in its capabilities, the
       host UUID its config gave it; the two UUIDs differ.
    2. After stop no process remains in their mount namespaces.
    3. The run folders are removed.
    """
    with daemon_pair() as (src, dst):
        reported = [_reported_host_uuid(d.uri) for d in (src, dst)]
        assert reported == [src.host_uuid, dst.host_uuid]
        assert reported[0] != reported[1]
        runs = [src.run, dst.run]
        ns_holders = (src, dst)
    assert all(not d.leftovers() for d in ns_holders)
    assert all(r is not None and not r.exists() for r in runs)


@pytest.mark.slow
def test_model_agrees_with_real_libvirt_sample() -> None:
    """Verified:
    1. 40 generated scenarios give the same verdict (accepted/refused, error code and
       domain, outcome on both hosts) on the model and on real libvirt.
    """
    scenarios = generate(40, seed=3)
    report = compare(scenarios, run_model(scenarios), run_real(scenarios))
    assert report["disagreements"] == [], report["disagreements"][:3]
