"""Entry point for ``hvlab fuzz``: seed, example budget, target model|libvirt|both.

On failure it prints the shrunk reproducer as a short Python snippet and returns 1.
It lives in the harness because it drives :mod:`harness.libvirt.differential` (real
libvirt daemons for ``libvirt``/``both``); the simulator does not depend on the harness.
"""

from __future__ import annotations

import enum
import sys
from typing import TextIO

from hypothesis import HealthCheck, Phase, given, seed, settings
from hypothesis.errors import Flaky

from harness.libvirt.differential import run_model, run_real
from simulator.libvirt.scenario import Scenario
from simulator.libvirt.strategies import scenarios


class Target(enum.Enum):
    MODEL = "model"
    LIBVIRT = "libvirt"
    BOTH = "both"


def reproducer(sc: Scenario, target: Target) -> str:
    """A short snippet that replays one scenario."""
    return "\n".join(
        [
            "from simulator.libvirt.request import Api, Cache",
            "from simulator.libvirt.scenario import (",
            "    DestDomain, DestUri, DomainSpec, Env, LiveOp, OpName, RunState, Scenario,",
            ")",
            f"scenario = {sc!r}",
            "# model:   harness.libvirt.differential.run_model([scenario])",
            "# libvirt: harness.libvirt.differential.run_real([scenario])",
            f"# target was {target.value}",
        ]
    )


def fuzz(
    seed_value: int,
    examples: int,
    target: Target | str = Target.MODEL,
    out: TextIO | None = None,
) -> int:
    """Fuzz migration scenarios; 0 on success, 1 with a printed reproducer on failure.

    model: each scenario must give a verdict without crashing and the state machine
    invariants are checked separately (simulator.libvirt.stateful); libvirt/both:
    model and real libvirt must agree (``both``) or real libvirt must not crash.
    """
    out = out if out is not None else sys.stdout  # resolved per call, not at import
    target = Target(target)
    failing: list[Scenario] = []

    @settings(
        max_examples=examples,
        deadline=None,
        database=None,
        derandomize=False,
        suppress_health_check=list(HealthCheck),
        phases=[Phase.generate, Phase.shrink],
    )
    @seed(seed_value)
    @given(scenarios)
    def check(sc: Scenario) -> None:
        model = run_model([sc])[0]
        if target is Target.MODEL:
            return
        real = run_real([sc])[0]
        if target is Target.BOTH and model.key() != real.key():
            failing.append(sc)
            raise AssertionError(f"model {model.key()} != libvirt {real.key()}")

    try:
        check()
    except (AssertionError, Flaky) as exc:
        print(f"fuzz failure: {exc}", file=out)
        if failing:
            print(reproducer(failing[-1], target), file=out)
        return 1
    print(f"fuzz ok: {examples} examples, seed {seed_value}, target {target.value}", file=out)
    return 0
