"""Simulator speed: a 1 TiB pre-copy (target < 1 s) and short scenarios/s (>= 2,000).

Run: .venv/bin/python bench/bench_sim.py   (prints figures and ratios; asserts nothing)
"""

from __future__ import annotations

import random
import time

from simulator.model import (
    Capability,
    MemoryLayout,
    MigrationParameters,
    PrecopyConfig,
    Workload,
    simulate_precopy,
)
from simulator.model.units import GiB, MiB, TiB


def one_tib() -> float:
    cfg = PrecopyConfig(
        layout=MemoryLayout(size=1 * TiB, resident=256 * GiB),
        workload=Workload(working_set=4 * GiB, dirty_rate=100 * MiB),
        params=MigrationParameters(max_bandwidth=1024 * MiB),
        caps=frozenset({Capability.AUTO_CONVERGE}),
    )
    t0 = time.perf_counter()
    r = simulate_precopy(cfg, max_time=1e6)
    dt = time.perf_counter() - t0
    print(
        f"1 TiB pre-copy: {dt * 1000:.2f} ms wall, status={r.status}, "
        f"virtual total-time={r.query.get('total-time')} ms, syncs={r.dirty_sync_count}"
    )
    return dt


def scenarios(n: int = 4000, seed: int = 7) -> float:
    rng = random.Random(seed)
    cfgs = [
        PrecopyConfig(
            layout=MemoryLayout(
                size=rng.randint(128, 4096) * MiB, resident=rng.randint(0, 128) * MiB
            ),
            workload=Workload(
                working_set=rng.randint(0, 512) * MiB, dirty_rate=rng.uniform(0, 300) * MiB
            ),
            params=MigrationParameters(max_bandwidth=rng.randint(64, 2048) * MiB),
            caps=frozenset({Capability.AUTO_CONVERGE}) if rng.random() < 0.5 else frozenset(),
        )
        for _ in range(n)
    ]
    t0 = time.perf_counter()
    for cfg in cfgs:
        simulate_precopy(cfg, max_time=10.0)
    dt = time.perf_counter() - t0
    rate = n / dt
    print(f"short scenarios (<= 10 s virtual): {rate:.0f}/s over {n}")
    return rate


def main() -> None:
    dt = one_tib()
    rate = scenarios()
    print(
        f"ratios vs targets: 1 TiB {1.0 / dt:.0f}x faster than 1 s; "
        f"scenarios {rate / 2000:.2f}x of 2,000/s"
    )


if __name__ == "__main__":
    main()
