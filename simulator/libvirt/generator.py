"""The seeded scenario generator of the differential (every dimension of issue 16).

Each scenario mixes: an entry point (all six of libvirt-python), a flag set (hot
flags drawn more often, sometimes an unknown bit), the fixed arguments (dname
including the empty name, migration URIs of every scheme, bandwidth at its limits),
typed parameters and their combinations (listen_address, disks_port, disks_uri,
migrate_disks naming a missing disk, compression given twice, TLS host name, ...),
the domain config (persistence, run state, disk and cache, a busy guest), the
destination (its URI, the source itself, a same-named domain, its disk image), the
host environment (TLS certificates, migrate_tls_force, a shared host UUID) and live
operations during the job. Pure and deterministic: the same seed gives the same list.
"""

from __future__ import annotations

import random
from typing import Any

from simulator.libvirt.flags import MigrateFlag as F
from simulator.libvirt.request import Api, Cache
from simulator.libvirt.scenario import (
    RENAMED,
    DestDomain,
    DestUri,
    DomainSpec,
    Env,
    LiveOp,
    OpName,
    RunState,
    Scenario,
)

#: Flags that make a refusal likely or that matter for outcomes; drawn more often.
HOT = (
    F.PEER2PEER,
    F.TUNNELLED,
    F.PERSIST_DEST,
    F.UNDEFINE_SOURCE,
    F.PAUSED,
    F.OFFLINE,
    F.NON_SHARED_DISK,
    F.NON_SHARED_INC,
    F.POSTCOPY,
    F.ZEROCOPY,
    F.PARALLEL,
    F.TLS,
    F.UNSAFE,
    F.NON_SHARED_SYNCHRONOUS_WRITES,
    F.POSTCOPY_RESUME,
)

MIGRATION_URIS = (
    "tcp://127.0.0.1",
    "tcp:127.0.0.1",
    "tcp://127.0.0.1:49999",
    "unix:///tmp/hvlab-fz-mig.sock",
    "rdma://127.0.0.1",
    "bogus://127.0.0.1",
    "tcp://",
)
#: Bandwidths in MiB/s: unlimited, small, large, and both sides of the limits
#: (QEMU_DOMAIN_MIG_BANDWIDTH_MAX and the storage copy's LLONG_MAX >> 20, src/qemu/).
BANDWIDTHS = (0, 0, 0, 50, 10_000, (1 << 43) - 1, 1 << 43, 1 << 62)

PARAM_VALUES: tuple[tuple[str, Any], ...] = (
    ("listen_address", "127.0.0.1"),
    ("listen_address", "0.0.0.0"),
    ("listen_address", "not-an-address"),
    ("disks_port", 49300),
    ("disks_port", 70000),
    ("disks_uri", "tcp://127.0.0.1:49301"),
    ("disks_uri", "unix:///tmp/hvlab-fz-nbd.sock"),
    ("disks_uri", "bogus://x"),
    ("migrate_disks", ["vda"]),
    ("migrate_disks", ["vdz"]),
    ("compression", ["xbzrle", "xbzrle"]),
    ("compression", ["xbzrle", "mt"]),
    ("compression", "mt"),
    ("compression", "zlib"),
    ("compression.mt.level", 9),
    ("compression.xbzrle.cache", 1 << 20),
    ("auto_converge.initial", 30),
    ("auto_converge.increment", 5),
    ("parallel.connections", 2),
    ("bandwidth.postcopy", 100),
    ("bandwidth.postcopy", 1 << 44),
    ("tls.destination", "wrong.example"),
    ("graphics_uri", "spice://127.0.0.1:5900"),
    ("bogus.param", 1),
)

#: Share of scenarios with a busy guest and live operations during its job.
BUSY_SHARE = 0.07

ENVS = (
    Env(),
    Env(src_certs=True, dst_certs=True),
    Env(src_certs=True),
    Env(dst_certs=True),
    Env(src_certs=True, dst_certs=True, dst_tls_force=True),
    Env(same_host_uuid=True),
)


#: Flags a user plausibly combines; "plausible" flag sets draw only from these.
PLAUSIBLE = (
    F.PERSIST_DEST,
    F.UNDEFINE_SOURCE,
    F.PAUSED,
    F.NON_SHARED_DISK,
    F.NON_SHARED_INC,
    F.UNSAFE,
    F.TLS,
    F.POSTCOPY,
    F.AUTO_CONVERGE,
    F.COMPRESSED,
    F.ABORT_ON_ERROR,
    F.CHANGE_PROTECTION,
    F.TUNNELLED,
)


def _flags(rng: random.Random, api: Api) -> int:
    """Half plausible combinations (most of them migrate), half anything at all."""
    flags = int(F.LIVE) if rng.random() < 0.8 else 0
    p2p = 0.75 if not api.managed else 0.35
    if rng.random() < p2p:
        flags |= int(F.PEER2PEER)
    if rng.random() < 0.5:
        for flag in PLAUSIBLE:
            if rng.random() < 0.12:
                flags |= int(flag)
        return flags
    for flag in F:
        if rng.random() < (0.16 if flag in HOT else 0.06):
            flags |= int(flag)
    if rng.random() < 0.04:
        flags |= 1 << rng.randrange(21, 31)
    return flags


def _domain(rng: random.Random) -> DomainSpec:
    persistent = rng.random() < 0.6
    states = list(RunState) if persistent else [RunState.RUNNING, RunState.PAUSED]
    return DomainSpec(
        persistent=persistent,
        state=rng.choice(states),
        disk_cache=rng.choice([None, None, Cache.NONE, Cache.WRITEBACK]),
    )


def _ops(rng: random.Random, flags: int) -> tuple[LiveOp, ...]:
    """Some live operations, usually ending in one that ends the job quickly."""
    ops = [
        rng.choice(
            [
                LiveOp(OpName.SET_MAX_DOWNTIME, rng.choice([1, 500, 2_000_000, 2_000_001])),
                LiveOp(OpName.SET_MAX_SPEED, rng.choice([1, 2])),
                LiveOp(OpName.START_POSTCOPY),
            ]
        )
        for _ in range(rng.randrange(0, 3))
    ]
    last = [LiveOp(OpName.ABORT), LiveOp(OpName.SET_MAX_SPEED, 8192)]
    if flags & F.POSTCOPY:
        last.append(LiveOp(OpName.START_POSTCOPY))
    ops.append(rng.choice(last))
    return tuple(ops)


def _one(rng: random.Random) -> Scenario:
    api = rng.choice(list(Api))
    flags = _flags(rng, api)
    domain = _domain(rng)
    extra: tuple[tuple[str, Any], ...] = ()
    if api.typed_params and rng.random() < 0.45:
        picked = rng.sample(range(len(PARAM_VALUES)), rng.choice([1, 1, 2]))
        chosen = {PARAM_VALUES[i][0]: PARAM_VALUES[i][1] for i in sorted(picked)}
        extra = tuple(chosen.items())
    bandwidth = rng.choice(BANDWIDTHS)
    ops: tuple[LiveOp, ...] = ()
    if rng.random() < BUSY_SHARE:
        # A busy guest at 1 MiB/s: the job lasts seconds, long enough for live operations.
        flags |= int(F.LIVE)
        domain = DomainSpec(domain.persistent, RunState.RUNNING, domain.disk_cache, busy=True)
        bandwidth = 1
        ops = _ops(rng, flags)
    elif rng.random() < 0.04:
        ops = _ops(rng, flags)  # no job to act on (or one that ends at once)
    if bandwidth > 50 and api is Api.MIGRATE:
        bandwidth = rng.choice([0, 50])  # virDomainMigrate takes an unsigned long
    r = rng.random()
    return Scenario(
        api=api,
        flags=flags,
        domain=domain,
        dname=rng.choice([None, None, None, RENAMED, ""]),
        miguri=rng.choice(MIGRATION_URIS) if rng.random() < 0.25 else None,
        bandwidth=bandwidth,
        extra=extra,
        dest_uri=rng.choice(list(DestUri)) if rng.random() < 0.15 else DestUri.PEER,
        to_self=r < 0.04,
        dest_domain=rng.choice(list(DestDomain)) if rng.random() < 0.15 else DestDomain.NONE,
        dest_image=rng.random() < 0.75,
        env=rng.choice(ENVS) if rng.random() < 0.35 else Env(),
        ops=ops,
    )


def generate(count: int, seed: int) -> list[Scenario]:
    """``count`` seeded scenarios; about one in five migrates for real."""
    rng = random.Random(seed)
    return [_one(rng) for _ in range(count)]


def execution_order(scenarios: list[Scenario]) -> list[int]:
    """Indices grouped by environment, then domain config: fewest restarts and boots."""
    return sorted(
        range(len(scenarios)),
        key=lambda i: (repr(scenarios[i].env), repr(scenarios[i].domain)),
    )
