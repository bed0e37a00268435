"""Real libvirt 9.0: private daemons start and stop cleanly; model agrees on a sample."""

from __future__ import annotations

import pytest

from harness.libvirt.daemon import can_run_libvirtd, daemon_pair
from harness.libvirt.differential import compare, generate, run_model, run_real

REASON = can_run_libvirtd()
pytestmark = pytest.mark.skipif(REASON is not None, reason=REASON or "")


def test_daemon_pair_leaves_nothing_behind() -> None:
    """Verified:
    1. Both daemons answer on their private sockets with distinct host UUIDs.
    2. After stop no process remains in their mount namespaces.
    3. The run folders are removed.
    """
    import libvirt

    with daemon_pair() as (src, dst):
        uuids = {libvirt.open(d.uri).getURI() and d.host_uuid for d in (src, dst)}
        runs = [src.run, dst.run]
        ns_holders = (src, dst)
        assert len(uuids) == 2
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
