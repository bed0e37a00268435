"""Real libvirt 9.0: private daemons start and stop cleanly; the model agrees on a slice
of the widened scenario generator (every entry point and dimension, well under a minute).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from xml.etree import ElementTree

import pytest

from harness.libvirt.daemon import can_run_libvirtd, daemon_pair
from harness.libvirt.differential import compare, run_model, run_real
from simulator.libvirt.flags import MigrateFlag as F
from simulator.libvirt.generator import generate
from simulator.libvirt.request import Api
from simulator.libvirt.scenario import DestDomain, DestUri, Env, Scenario

REASON = can_run_libvirtd()
pytestmark = pytest.mark.skipif(REASON is not None, reason=REASON or "")

#: One scenario of the long run's seed per dimension (the first that has it); entry
#: points the dimensions did not reach are added (make_test_slice).
SLICE: tuple[tuple[str, Callable[[Scenario], bool]], ...] = (
    ("accepted p2p", lambda s: s.flags in (3, 0xB, 0x13) and s.bandwidth in (0, 50)),
    ("live operations", lambda s: bool(s.ops) and s.domain.busy),
    ("typed parameters", lambda s: len(s.extra) == 2),
    ("destination has the name", lambda s: s.dest_domain is DestDomain.OTHER_UUID_DEFINED),
    ("same-UUID definition", lambda s: s.dest_domain is DestDomain.SAME_UUID_DEFINED),
    ("missing destination image", lambda s: not s.dest_image and s.domain.disk_cache is not None),
    ("empty dname", lambda s: s.dname == ""),
    ("unreachable daemon", lambda s: s.dest_uri is DestUri.UNREACHABLE and s.flags & 2 == 2),
    ("migrate to itself", lambda s: s.to_self),
    ("TLS certificates", lambda s: s.env == Env(src_certs=True, dst_certs=True)),
)


#: TLS cases the long run's seed does not reach: a certificate that does not name the
#: host (peer-to-peer: the destination's error wins; client-driven: the source's), and
#: TLS with a tunnelled stream.
_BOTH = Env(src_certs=True, dst_certs=True)
_LIVE_TLS = int(F.LIVE | F.TLS)
TLS_CASES = (
    Scenario(
        Api.MIGRATE_TO_URI3,
        _LIVE_TLS | F.PEER2PEER,
        extra=(("tls.destination", "wrong.example"),),
        env=_BOTH,
    ),
    Scenario(Api.MIGRATE3, _LIVE_TLS, extra=(("tls.destination", "wrong.example"),), env=_BOTH),
    Scenario(Api.MIGRATE_TO_URI3, _LIVE_TLS | F.PEER2PEER | F.TUNNELLED, env=_BOTH),
)


def make_test_slice(seed: int = 1601, pool: int = 600) -> list[Scenario]:
    """The first scenario of ``generate(pool, seed)`` for each entry of SLICE, then the
    entry points not reached yet, then TLS_CASES."""
    scenarios = generate(pool, seed)
    picked: list[Scenario] = []
    for _, wanted in SLICE:
        found = next(s for s in scenarios if wanted(s) and s not in picked)
        picked.append(found)
    for api in Api:
        if all(s.api is not api for s in picked):
            picked.append(next(s for s in scenarios if s.api is api and not s.ops))
    return picked + list(TLS_CASES)


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


def test_model_agrees_with_real_libvirt_on_a_slice() -> None:
    """Verified:
    1. The slice holds one scenario per dimension and every entry point (live operations,
       typed parameters, destination name and UUID conflicts, missing image, empty
       dname, unreachable daemon, the source itself, TLS certificates, a certificate
       that does not name the host, TLS with a tunnelled stream).
    2. The model and two private libvirtd 9.0 daemons agree on every one: verdict,
       error code and domain, state, reason and persistence on both hosts, live
       operation results.
    3. And on the error texts with their variable parts masked.
    """
    scenarios = make_test_slice()
    assert {s.api for s in scenarios} == set(Api)
    report = compare(scenarios, run_model(scenarios), run_real(scenarios))
    assert report["disagreements"] == [], json.dumps(report["disagreements"][:3], default=str)
    assert report["text_disagreements"] == [], report["text_disagreements"][:3]
