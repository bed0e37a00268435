"""``hvlab fuzz qmp``: a lockstep run of the conformance state machine, its summary, its
reproducers and its report page, all in one run folder.

The folder (``<report-dir>/fuzz-qmp-<run id>/``) holds ``summary.json``, ``summary.txt``,
``index.html`` (the report page), ``reproducers/`` (one JSON + pytest file per shrunk
difference), ``differences.jsonl`` in a survey (every differing step as it happens) and
the last example's VM logs. Exit code 0 when the backends never
differed, 1 otherwise.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, Phase, Verbosity, seed, settings
from hypothesis.errors import Flaky
from hypothesis.stateful import run_state_machine_as_test

from harness.conformance import reproducer
from harness.conformance.lockstep import Lockstep, Stats
from harness.conformance.machine import conformance_machine
from harness.conformance.masks import MASKS
from harness.conformance.steps import JSON
from harness.conformance.targets import lockstep_for, resolve
from harness.report.page import render
from harness.report.results import new_run_id

#: a survey run that Hypothesis ends as flaky goes on with the next seed, this many times
ROUNDS = 5


@dataclass(frozen=True)
class FuzzConfig:
    reference: str
    candidate: str
    examples: int
    seed: int
    steps: int
    report_dir: Path
    #: shrink each difference (off: report the first failing example as it was)
    shrink: bool = True
    #: survey: note the first difference of each command and carry on (no shrinking)
    survey: bool = False
    #: shrink every kind of difference found (off: only the first one, a quick check)
    every_kind: bool = True


def _progress(cfg: FuzzConfig, out: Callable[[str], None]) -> Callable[[Stats], None]:
    began = time.monotonic()

    def show(stats: Stats) -> None:
        done = stats.examples
        if done == 0:
            return
        steps = sum(stats.steps.values())
        diffs = sum(stats.differences.values())
        took = time.monotonic() - began
        out(
            f"  [{done}/{cfg.examples}+] {steps} steps, {diffs} differences, "
            f"{took:.0f} s ({steps / took if took else 0:.1f} steps/s)"
        )

    return show


def run(
    cfg: FuzzConfig,
    out: Callable[[str], None] = print,
    progress: Callable[[str], None] | None = None,
) -> tuple[int, Path]:
    """Fuzz; return (exit code, run folder). The summary goes to ``out``, the header and
    progress lines to ``progress`` (default: ``out`` too)."""
    say = progress or out
    ref = resolve(cfg.reference)
    resolve(cfg.candidate)
    folder = cfg.report_dir / f"fuzz-qmp-{new_run_id()}"
    folder.mkdir(parents=True, exist_ok=True)
    say(
        f"fuzzing QMP: {cfg.reference} against {cfg.candidate}, {cfg.examples} examples of "
        f"up to {cfg.steps} steps, seed {cfg.seed}; run folder {folder}"
    )
    began = time.monotonic()
    problem = ""
    with lockstep_for(cfg.reference, cfg.candidate, folder / "work") as (lockstep, disks):
        lockstep.on_start = _progress(cfg, say)
        lockstep.keep_going = cfg.survey
        lockstep.journal = folder / "differences.jsonl" if cfg.survey else None
        machine = conformance_machine(lockstep, ref.arch, str(disks))
        shrink = cfg.shrink and not cfg.survey
        phases = [Phase.generate, Phase.shrink] if shrink else [Phase.generate]
        options = settings(
            max_examples=cfg.examples,
            stateful_step_count=cfg.steps,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
            phases=phases,
            report_multiple_bugs=cfg.every_kind,
            verbosity=Verbosity.quiet,
            print_blob=False,
        )
        for round_ in range(ROUNDS):
            seed(cfg.seed + round_)(machine)
            try:
                run_state_machine_as_test(machine, settings=options)
            except Flaky as exc:
                # a replay drew differently (a backend that answered differently the
                # second time): note it, go on with the examples left on the next seed
                problem = _first_line(exc)
                left = cfg.examples - lockstep.stats.examples
                if left <= 0 or not cfg.survey:
                    break
                options = settings(options, max_examples=left)
                continue
            except (AssertionError, ExceptionGroup) as exc:
                problem = _first_line(exc)
            break
        meta = {
            "reference": cfg.reference,
            "candidate": cfg.candidate,
            "arch": ref.arch.value,
            "seed": cfg.seed,
        }
        written = {
            label: reproducer.write(folder / "reproducers", label, failure, meta, disks)
            for label, failure in lockstep.failures.items()
        }
        stats = lockstep.stats
    summary = _summary(cfg, stats, lockstep, written, problem, time.monotonic() - began, folder)
    (folder / "summary.json").write_text(json.dumps(summary, indent=1) + "\n")
    text = summary_text(summary)
    (folder / "summary.txt").write_text(text + "\n")
    (folder / "index.html").write_text(render("fuzz.html", s=summary, masks=MASKS))
    out(text)
    return (1 if lockstep.failures else 0), folder


def _first_line(exc: BaseException) -> str:
    if isinstance(exc, BaseExceptionGroup):
        return "; ".join(_first_line(e) for e in exc.exceptions)
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]


def _summary(
    cfg: FuzzConfig,
    stats: Stats,
    lockstep: Lockstep,
    written: dict[str, Path],
    problem: str,
    seconds: float,
    folder: Path,
) -> JSON:
    data: dict[str, Any] = {
        "reference": cfg.reference,
        "candidate": cfg.candidate,
        "seed": cfg.seed,
        "examples_asked": cfg.examples,
        "max_steps": cfg.steps,
        "seconds": round(seconds, 1),
        "folder": str(folder),
        **stats.to_json(),
        "problem": problem,
        "reproducers": [
            {
                "label": label,
                "json": str(path.relative_to(folder)),
                "test": str(path.with_name(f"test_{path.stem}.py").relative_to(folder)),
                "steps": lockstep.failures[label]["steps"],
                "differences": lockstep.failures[label]["differences"],
                "problem": lockstep.failures[label]["problem"],
            }
            for label, path in written.items()
        ],
    }
    return data


def summary_text(s: JSON) -> str:
    lines = [
        f"{s['reference']} vs {s['candidate']}: {s['examples']} examples, {s['steps']} steps "
        f"in {s['seconds']} s, seed {s['seed']}",
    ]
    for name, t in s["backends"].items():
        lines.append(
            f"  {name}: {t['steps_per_second']} steps/s ({t['steps']} s in steps, "
            f"{t['starts']} s starting examples)"
        )
    lines.append(
        "  steps by command: " + ", ".join(f"{k} {v}" for k, v in s["steps_by_command"].items())
    )
    if s["differences_by_command"]:
        lines.append(
            "  differences by command: "
            + ", ".join(f"{k} {v}" for k, v in s["differences_by_command"].items())
        )
    else:
        lines.append("  no differences")
    for r in s["reproducers"]:
        lines.append(f"  reproducer {r['json']} ({len(r['steps'])} steps): {r['label']}")
        for d in r["differences"][:4]:
            lines.append(f"    {d['where']} {d['path']}: {d['reference']!r} != {d['candidate']!r}")
        if r["problem"]:
            lines.append(f"    {r['problem'][:200]}")
    lines.append(f"  run folder {s['folder']} (report: index.html)")
    return "\n".join(lines)


def main(cfg: FuzzConfig) -> int:
    """The command: progress on stderr, the summary on stdout."""
    code, _folder = run(
        cfg,
        lambda line: print(line, flush=True),
        lambda line: print(line, file=sys.stderr, flush=True),
    )
    return code
