"""Hypothesis strategies over the same dimensions as the seeded generator.

The value tables are :mod:`simulator.libvirt.generator`'s, so ``hvlab fuzz`` and the
differential explore one space; Hypothesis adds shrinking to a minimal reproducer.
"""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

from simulator.libvirt.flags import MigrateFlag
from simulator.libvirt.generator import BANDWIDTHS, ENVS, MIGRATION_URIS, PARAM_VALUES
from simulator.libvirt.request import Api, Cache
from simulator.libvirt.scenario import (
    RENAMED,
    DestDomain,
    DestUri,
    DomainSpec,
    LiveOp,
    OpName,
    RunState,
    Scenario,
)

flag_sets: st.SearchStrategy[int] = st.builds(
    lambda members, unknown: sum(int(m) for m in members) | unknown,
    st.sets(st.sampled_from(list(MigrateFlag))),
    st.one_of(st.just(0), st.integers(21, 31).map(lambda b: 1 << b)),
)

domain_specs: st.SearchStrategy[DomainSpec] = st.builds(
    DomainSpec,
    persistent=st.booleans(),
    state=st.sampled_from(list(RunState)),
    disk_cache=st.one_of(st.none(), st.sampled_from(list(Cache))),
).filter(lambda d: d.persistent or d.state is not RunState.SHUTOFF)

extra_params: st.SearchStrategy[tuple[tuple[str, Any], ...]] = st.lists(
    st.sampled_from(PARAM_VALUES), max_size=2, unique_by=lambda kv: kv[0]
).map(tuple)

live_ops: st.SearchStrategy[tuple[LiveOp, ...]] = st.lists(
    st.builds(
        LiveOp,
        st.sampled_from(list(OpName)),
        st.sampled_from([0, 1, 500, 8192, 2_000_001]),
    ),
    max_size=3,
).map(tuple)

scenarios: st.SearchStrategy[Scenario] = st.builds(
    Scenario,
    api=st.sampled_from(list(Api)),
    flags=flag_sets,
    domain=domain_specs,
    dname=st.sampled_from([None, RENAMED, ""]),
    miguri=st.one_of(st.none(), st.sampled_from(MIGRATION_URIS)),
    bandwidth=st.sampled_from(BANDWIDTHS),
    extra=extra_params,
    dest_uri=st.sampled_from(list(DestUri)),
    to_self=st.booleans(),
    dest_domain=st.sampled_from(list(DestDomain)),
    dest_image=st.booleans(),
    env=st.sampled_from(ENVS),
    ops=live_ops,
)
