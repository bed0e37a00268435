"""Differential run: the same scenarios against the model and real libvirt 9.0.

``python -m harness.libvirt.differential --count 5000 --seed 1601 --progress`` starts two
private daemons (harness.libvirt.daemon), runs every scenario of the widened generator
(:mod:`simulator.libvirt.generator`) through :class:`simulator.libvirt.session.Session`
once with ``libvirt`` and once with ``simulator.libvirt``, and writes the comparison
to ``reports/libvirt-differential/<seed>-<count>.json`` (plus a ``.txt`` summary with
the agreement per field and per entry point).

``--replay REPORT.json`` re-runs only the model over the scenarios of a saved report
(regenerated from its seed and count, checked against the saved labels) and compares
with the real verdicts recorded there: seconds instead of minutes.

Both sides run the scenarios in the same order (:func:`execution_order`): a refused
call can leave state behind on real libvirt (a stale migration job), and the model
reproduces that only if it sees the same history.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from harness.libvirt.agreement import compare, summary
from simulator.libvirt.control import ModelControl
from simulator.libvirt.generator import execution_order, generate
from simulator.libvirt.scenario import Scenario, Verdict
from simulator.libvirt.session import Session

__all__ = ["compare", "generate", "main", "run_model", "run_real"]

Progress = Callable[[int, int, Verdict], None]


def run_model(scenarios: list[Scenario]) -> list[Verdict]:
    """The scenarios against simulator.libvirt (fresh hosts), in the real run's order."""
    import simulator.libvirt as sim

    sim.reset()
    session = Session(sim, ModelControl())
    result: list[Verdict | None] = [None] * len(scenarios)
    try:
        for i in execution_order(scenarios):
            result[i] = session.run(scenarios[i])
    finally:
        session.close()
    return [v for v in result if v is not None]


def run_real(
    scenarios: list[Scenario],
    log: bool = False,
    progress: Progress | None = None,
    journal: Path | None = None,
    done_before: dict[int, Verdict] | None = None,
) -> list[Verdict]:
    """The scenarios against two private libvirtd 9.0 daemons.

    ``journal``: a JSON line per verdict as it arrives (``{"i": ..., "real": ...}``),
    so a long run can be replayed against the model while it is still going.
    """
    from harness.libvirt.control import real_session

    result: list[Verdict | None] = [None] * len(scenarios)
    for i, verdict in (done_before or {}).items():
        result[i] = verdict
    sink = journal.open("a") if journal else None
    with real_session() as session:
        for done, i in enumerate(execution_order(scenarios), 1):
            if result[i] is not None:
                continue
            verdict = session.run(scenarios[i])
            result[i] = verdict
            if sink:
                sink.write(json.dumps({"i": i, "real": verdict.to_json()}) + "\n")
                sink.flush()
            if log:
                print(f"[{i}] {scenarios[i].label()} -> {verdict}", file=sys.stderr, flush=True)
            if progress:
                progress(done, i, verdict)
    if sink:
        sink.close()
    return [v for v in result if v is not None]


def replay(path: Path) -> tuple[list[Scenario], list[Verdict], dict[str, Any]]:
    """Scenarios and recorded real verdicts of a saved report (labels must match).

    A ``.jsonl`` journal of a run still going (or killed) gives the scenarios done so
    far; its first line holds the seed and count.
    """
    if path.suffix == ".jsonl":
        lines = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
        head, done = lines[0], lines[1:]
        every = generate(int(head["count"]), int(head["seed"]))
        order = [int(d["i"]) for d in done]
        return (
            [every[i] for i in order],
            [Verdict.from_json(d["real"]) for d in done],
            {"seed": head["seed"], "real_seconds": None},
        )
    saved = json.loads(path.read_text())
    rows = saved["rows"]
    scenarios = generate(len(rows), int(saved["seed"]))
    for sc, row in zip(scenarios, rows, strict=True):
        if sc.label() != row["scenario"]:
            raise SystemExit(
                f"{path}: scenario generator changed: {sc.label()} != {row['scenario']}"
            )
    return scenarios, [Verdict.from_json(row["real"]) for row in rows], saved


def _progress(model: list[Verdict], total: int, t0: float) -> Progress:
    tally = {"agree": 0}

    def show(done: int, i: int, verdict: Verdict) -> None:
        tally["agree"] += model[i].matched_by(verdict) is not None
        if done % 100 == 0 or done == total:
            pct = 100.0 * tally["agree"] / done
            print(
                f"[{done}/{total}] agree {tally['agree']} ({pct:.1f}%), "
                f"{time.monotonic() - t0:.0f} s",
                file=sys.stderr,
                flush=True,
            )

    return show


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--count", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--verbose", action="store_true")
    parser.add_argument(
        "--progress", action="store_true", help="a line every 100 scenarios with agreement so far"
    )
    parser.add_argument(
        "--resume", action="store_true", help="skip the scenarios the run's journal holds"
    )
    parser.add_argument(
        "--replay",
        type=Path,
        default=None,
        metavar="REPORT",
        help="model only, against the real verdicts recorded in REPORT",
    )
    args = parser.parse_args(argv)
    if args.replay:
        scenarios, real, saved = replay(args.replay)
        t0 = time.monotonic()
        model = run_model(scenarios)
        report = compare(scenarios, model, real)
        report.update(
            seed=saved["seed"],
            mode=f"replay of {args.replay}",
            model_seconds=round(time.monotonic() - t0, 3),
            real_seconds=saved.get("real_seconds"),
        )
        default_out = args.replay.with_name(args.replay.stem + "-replay.json")
    else:
        scenarios = generate(args.count, args.seed)
        t0 = time.monotonic()
        model = run_model(scenarios)
        t1 = time.monotonic()
        show = _progress(model, len(scenarios), t1) if args.progress else None
        out = args.out or Path("reports/libvirt-differential") / f"{args.seed}-{args.count}.json"
        out.parent.mkdir(parents=True, exist_ok=True)
        journal = out.with_suffix(".jsonl")
        before: dict[int, Verdict] = {}
        if args.resume and journal.exists():
            lines = [json.loads(x) for x in journal.read_text().splitlines() if x.strip()]
            before = {int(d["i"]): Verdict.from_json(d["real"]) for d in lines[1:]}
        else:
            journal.write_text(json.dumps({"seed": args.seed, "count": args.count}) + "\n")
        real = run_real(
            scenarios, log=args.verbose, progress=show, journal=journal, done_before=before
        )
        t2 = time.monotonic()
        report = compare(scenarios, model, real)
        report.update(
            seed=args.seed,
            mode="real",
            model_seconds=round(t1 - t0, 3),
            real_seconds=round(t2 - t1, 1),
        )
        default_out = Path("reports/libvirt-differential") / f"{args.seed}-{args.count}.json"
    out = args.out or default_out
    out.parent.mkdir(parents=True, exist_ok=True)
    text = summary(report)
    report["summary"] = text.splitlines()
    out.write_text(json.dumps(report, indent=1, default=str))
    out.with_suffix(".txt").write_text(text)
    print(text + f"-> {out}", end="\n")
    return 0 if report["agree"] == report["compared"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
