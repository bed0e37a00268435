"""Flag scenarios per second through the libvirt model (target >= 2,000/s)."""

from __future__ import annotations

import time

from harness.libvirt.differential import generate, run_model


def main(count: int = 20_000) -> None:
    scenarios = generate(count, seed=1)
    t0 = time.perf_counter()
    verdicts = run_model(scenarios)
    dt = time.perf_counter() - t0
    accepted = sum(v.accepted for v in verdicts)
    print(
        f"model: {count} flag scenarios in {dt:.3f}s = {count / dt:,.0f} scenarios/s "
        f"({accepted} accepted)"
    )


if __name__ == "__main__":
    main()
