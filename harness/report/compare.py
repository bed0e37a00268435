"""What changed between two runs: tests whose outcome differs, matched by node id.

A regression is a test that passed (or passed as a documented divergence) in the first
run and failed or errored in the second. Tests present in only one run are listed apart
(a partial run simply has fewer tests; that is not a regression).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from harness.report.results import TestResult

GOOD = frozenset({"passed", "diverged"})
BAD = frozenset({"failed", "error"})


@dataclass(frozen=True)
class Change:
    nodeid: str
    before: str
    after: str

    @property
    def regression(self) -> bool:
        return self.before in GOOD and self.after in BAD

    @property
    def fixed(self) -> bool:
        return self.before in BAD and self.after in GOOD


@dataclass
class Comparison:
    changes: list[Change] = field(default_factory=list)
    only_before: list[str] = field(default_factory=list)
    only_after: list[str] = field(default_factory=list)
    unchanged: int = 0

    @property
    def regressions(self) -> list[Change]:
        return [c for c in self.changes if c.regression]


def _last_by_nodeid(results: list[TestResult]) -> dict[str, str]:
    return {r.nodeid: r.outcome for r in results}  # a rerun's later line wins


def compare(before: list[TestResult], after: list[TestResult]) -> Comparison:
    a, b = _last_by_nodeid(before), _last_by_nodeid(after)
    out = Comparison()
    for nodeid, outcome in a.items():
        if nodeid not in b:
            out.only_before.append(nodeid)
        elif b[nodeid] != outcome:
            out.changes.append(Change(nodeid, outcome, b[nodeid]))
        else:
            out.unchanged += 1
    out.only_after = [n for n in b if n not in a]
    out.changes.sort(key=lambda c: (not c.regression, c.nodeid))
    return out


def format_comparison(cmp: Comparison, name_a: str, name_b: str) -> list[str]:
    """Lines for a terminal: each change, then tests present in one run only."""
    lines = [f"{name_a} -> {name_b}"]
    width = max((len(c.before) for c in cmp.changes), default=0)
    for c in cmp.changes:
        tag = "REGRESSION" if c.regression else ("fixed" if c.fixed else "changed")
        lines.append(f"  {c.before:>{width}} -> {c.after:<8} {tag:<10} {c.nodeid}")
    lines.extend(f"  only in {name_a}: {n}" for n in cmp.only_before)
    lines.extend(f"  only in {name_b}: {n}" for n in cmp.only_after)
    lines.append(
        f"{len(cmp.changes)} changed ({len(cmp.regressions)} regressions), "
        f"{cmp.unchanged} unchanged, {len(cmp.only_before)} only in {name_a}, "
        f"{len(cmp.only_after)} only in {name_b}"
    )
    return lines
