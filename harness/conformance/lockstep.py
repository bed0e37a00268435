"""Run each step on every backend at once, compare what they showed, check invariants.

The first backend is the reference (real QEMU), the second the candidate (the
simulator). A step runs on both in parallel threads; each settles by itself; then their
observations are normalised and compared (compare.py). An asynchronous event one side
already sent and the other not yet (a guest acknowledging an unplug takes seconds on a
real guest) is waited for before the sides are called different. Any difference raises
a :class:`Divergence` whose class names the command, so Hypothesis shrinks the
differences of each command separately.
"""

from __future__ import annotations

import json
import os
import re
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from harness.conformance import invariants
from harness.conformance.backend import Backend
from harness.conformance.compare import compare, normalise
from harness.conformance.steps import JSON, Difference, Observation, Step
from harness.waits import scaled

T = TypeVar("T")
#: how long an event one side sent may take to arrive on the other
CATCH_UP_S = 10.0
#: HVLAB_LOCKSTEP_TRACE=1 prints every step with each side's time
TRACE = os.environ.get("HVLAB_LOCKSTEP_TRACE", "") not in ("", "0")


class Divergence(AssertionError):
    """The backends differ at a step."""

    label = ""

    def __init__(self, differences: list[Difference], steps: list[Step]) -> None:
        lines = "\n  ".join(d.line() for d in differences)
        super().__init__(f"backends differ at {steps[-1].describe()}:\n  {lines}")
        self.differences = differences
        self.steps = steps


class InvariantViolation(AssertionError):
    """A backend broke an invariant QEMU's source guarantees."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.label = f"invariant: {kind}"


_KINDS: dict[str, type[Divergence]] = {}


def divergence_class(label: str) -> type[Divergence]:
    """One Divergence subclass per command: Hypothesis tells failures apart by type."""
    if label not in _KINDS:
        name = "Divergence_" + re.sub(r"\W+", "_", label).strip("_")
        _KINDS[label] = type(name, (Divergence,), {"label": label})
    return _KINDS[label]


@dataclass
class Stats:
    examples: int = 0
    steps: Counter[str] = field(default_factory=Counter)
    differences: Counter[str] = field(default_factory=Counter)
    #: backend name -> seconds spent in steps, and in starting examples
    step_seconds: defaultdict[str, float] = field(default_factory=lambda: defaultdict(float))
    start_seconds: defaultdict[str, float] = field(default_factory=lambda: defaultdict(float))
    first: dict[str, list[str]] = field(default_factory=dict)  # label -> first diff lines

    def to_json(self) -> JSON:
        total = sum(self.steps.values())
        return {
            "examples": self.examples,
            "steps": total,
            "steps_by_command": dict(self.steps.most_common()),
            "differences_by_command": dict(self.differences.most_common()),
            "first_difference": self.first,
            "backends": {
                name: {
                    "steps": round(self.step_seconds[name], 2),
                    "starts": round(self.start_seconds[name], 2),
                    "steps_per_second": round(total / self.step_seconds[name], 2)
                    if self.step_seconds[name]
                    else None,
                }
                for name in self.step_seconds
            },
        }


class Lockstep:
    def __init__(self, reference: Backend, candidate: Backend) -> None:
        self.backends = (reference, candidate)
        self.steps: list[Step] = []
        self.records: list[JSON] = []
        self.stats = Stats()
        self._pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="lockstep")
        self._runstates: dict[tuple[str, str], str] = {}
        #: label -> the last failing run of that kind (after shrinking: the minimal one)
        self.failures: dict[str, JSON] = {}
        #: called before each example starts (progress display)
        self.on_start: Callable[[Stats], None] | None = None
        #: survey mode: record differences (first of each command) but go on
        self.keep_going = False
        #: every differing step, appended as it happens (a JSON line with the example's
        #: steps so far and the differences): a killed long run keeps what it found
        self.journal: Path | None = None

    def _failure(self, differences: list[Difference], problem: str = "") -> JSON:
        return {
            "steps": [s.to_json() for s in self.steps],
            "observed": list(self.records),
            "differences": [d.to_json() for d in differences],
            "problem": problem,
        }

    def _fail(self, label: str, differences: list[Difference], problem: str = "") -> None:
        self.failures[label] = self._failure(differences, problem)

    def _both(self, fn: Callable[[Backend], T]) -> tuple[T, T]:
        futures = [self._pool.submit(fn, b) for b in self.backends]
        a, b = (f.result() for f in futures)
        return a, b

    def start(self) -> None:
        """A new example on every backend."""
        if self.on_start is not None:
            self.on_start(self.stats)

        def start(b: Backend) -> None:
            began = time.monotonic()
            b.start()
            self.stats.start_seconds[b.label] += time.monotonic() - began

        self._both(start)
        self.steps, self.records, self._runstates = [], [], {}
        self.stats.examples += 1

    def stop(self) -> None:
        self._both(lambda b: b.stop())

    def close(self) -> None:
        try:
            self.stop()
        finally:
            self._pool.shutdown()

    def _one(self, b: Backend, step: Step) -> tuple[Observation, float]:
        began = time.monotonic()
        b.begin()
        reply = b.run(step)
        b.settle()
        obs = b.observe(reply)
        took = time.monotonic() - began
        self.stats.step_seconds[b.label] += took
        return obs, took

    def step(self, step: Step) -> None:
        """Run ``step`` on both; raise a Divergence if they differ."""
        self.steps.append(step)
        index = len(self.steps)
        (ref, t_ref), (cand, t_cand) = self._both(lambda b: self._one(b, step))
        ref, cand = self._catch_up(step, ref, cand)
        if TRACE:
            print(f"    {step.describe()[:90]}: {t_ref:.2f} s / {t_cand:.2f} s", flush=True)
        diffs = compare(index, step.label, *self._normalised(step, ref, cand))
        for b in self.backends:
            b.commit()
        shown = self._normalised(step, ref, cand)
        self.records.append(
            {
                "step": step.to_json(),
                "observed": [o.to_json() for o in shown],
                "seconds": [round(t_ref, 3), round(t_cand, 3)],
            }
        )
        self.stats.steps[step.label] += 1
        if diffs:
            self.stats.differences[step.label] += 1
            self.stats.first.setdefault(step.label, [d.line() for d in diffs])
            if self.journal is not None:
                line = {
                    "example": self.stats.examples,
                    "label": step.label,
                    "steps": [s.to_json() for s in self.steps],
                    "differences": [d.to_json() for d in diffs],
                    "lines": [d.line() for d in diffs],
                }
                with self.journal.open("a") as f:
                    f.write(json.dumps(line, sort_keys=True) + "\n")
            if self.keep_going:
                self.failures.setdefault(step.label, self._failure(diffs))
                return
            self._fail(step.label, diffs)
            raise divergence_class(step.label)(diffs, list(self.steps))

    def _normalised(
        self, step: Step, ref: Observation, cand: Observation
    ) -> tuple[Observation, Observation]:
        a, b = self.backends
        return normalise(ref, step.label, a.names), normalise(cand, step.label, b.names)

    def _catch_up(
        self, step: Step, ref: Observation, cand: Observation
    ) -> tuple[Observation, Observation]:
        """Wait while one side's events of a VM are a strict prefix of the other's."""
        deadline = time.monotonic() + scaled(CATCH_UP_S)
        obs = [ref, cand]
        while time.monotonic() < deadline:
            n_ref, n_cand = self._normalised(step, obs[0], obs[1])
            behind = _behind(n_ref, n_cand)
            if behind is None:
                break
            b = self.backends[behind]
            time.sleep(0.05)
            obs[behind] = b.observe(obs[behind].reply)
        return obs[0], obs[1]

    # -- invariants --------------------------------------------------------------------------
    def check_invariants(self) -> None:
        try:
            self._check_states()
        except InvariantViolation as exc:
            self._fail(exc.label, [], str(exc))
            raise

    def check_console(self) -> None:
        try:
            self._check_console()
        except InvariantViolation as exc:
            self._fail(exc.label, [], str(exc))
            raise

    def _check_states(self) -> None:
        for b in self.backends:
            for role, vm in b.vms.items():
                probe = b.observe({}).state.get(role, {})
                state = probe.get("runstate")
                if not probe.get("alive") or state is None:
                    continue
                if state not in invariants.RUNSTATES:
                    raise InvariantViolation(
                        "runstate", f"{b.name} {vm.name}: runstate {state!r} is no RunState"
                    )
                prev = self._runstates.get((b.name, vm.name))
                if prev is not None and not invariants.reachable(
                    invariants.RUNSTATE_EDGES, prev, state, invariants.PASSING_RUNSTATES
                ):
                    raise InvariantViolation(
                        "runstate",
                        f"{b.name} {vm.name}: runstate {prev} -> {state} "
                        "(softmmu/runstate.c allows no such path)",
                    )
                self._runstates[(b.name, vm.name)] = state
                edges = invariants.DESTINATION_EDGES if role == "dst" else invariants.SOURCE_EDGES
                bad = invariants.bad_edges(b.statuses.get(vm.name, []), edges)
                if bad:
                    raise InvariantViolation(
                        "migration status",
                        f"{b.name} {vm.name}: migration status {bad[0][0]} -> {bad[0][1]} "
                        f"(announced {b.statuses.get(vm.name)}; migration.c makes no such change)",
                    )

    def _check_console(self) -> None:
        for b in self.backends:
            for role, ok in b.console_answers().items():
                if not ok:
                    raise InvariantViolation(
                        "console", f"{b.name} {role}: the running guest's shell is silent"
                    )


def _behind(ref: Observation, cand: Observation) -> int | None:
    """0 or 1: the side whose events of some VM are a strict prefix of the other's."""
    for role in set(ref.events) | set(cand.events):
        a, b = ref.events.get(role, []), cand.events.get(role, [])
        if len(a) < len(b) and b[: len(a)] == a:
            return 0
        if len(b) < len(a) and a[: len(b)] == b:
            return 1
    return None
