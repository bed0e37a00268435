"""Hypothesis strategies: flag sets x parameters x domain config."""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

from simulator.libvirt.flags import MigrateFlag
from simulator.libvirt.request import Api, Cache
from simulator.libvirt.scenario import DomainSpec, RunState, Scenario

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
    hard_limit=st.booleans(),
).filter(lambda d: d.persistent or d.state is not RunState.SHUTOFF)

extra_params: st.SearchStrategy[tuple[tuple[str, Any], ...]] = st.lists(
    st.sampled_from(
        [
            ("parallel.connections", 2),
            ("auto_converge.initial", 30),
            ("compression", "xbzrle"),
            ("bogus.param", 1),
        ]
    ),
    max_size=2,
    unique=True,
).map(tuple)

scenarios: st.SearchStrategy[Scenario] = st.builds(
    Scenario,
    api=st.sampled_from(list(Api)),
    flags=flag_sets,
    domain=domain_specs,
    dname=st.sampled_from([None, "hvlab-fz-renamed"]),
    bandwidth=st.sampled_from([0, 1, 50, 10_000]),
    extra=extra_params,
)
