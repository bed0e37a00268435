"""Differential run: the same scenarios against the model and real libvirt 9.0.

``python -m harness.libvirt.differential --count 2000 --seed 7 --progress`` starts two
private daemons (harness.libvirt.daemon), runs every generated scenario through
:class:`simulator.libvirt.scenario.Session` once with ``libvirt`` and once with
``simulator.libvirt``, and writes the comparison to
``reports/libvirt-differential/<seed>-<count>.json`` (plus a ``.txt`` summary).

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
import random
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from simulator.libvirt import api as sim_api
from simulator.libvirt.flags import MigrateFlag as F
from simulator.libvirt.request import Api, Cache
from simulator.libvirt.scenario import DomainSpec, RunState, Scenario, Session, Verdict

SIM_SRC = "sim+qemu:///system?host=src&socket=/sim/src"
SIM_DST = "sim+qemu:///system?host=dst&socket=/sim/dst"
SIM_DST_P2P = "sim+qemu://dst/system"

#: Flags that make a refusal likely or that matter for outcomes; drawn more often.
_HOT = [
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
]


def generate(count: int, seed: int) -> list[Scenario]:
    """Seeded scenarios; about one in eight is expected to migrate for real."""
    rng = random.Random(seed)
    out: list[Scenario] = []
    specs = [
        DomainSpec(persistent=p, state=s, disk_cache=c)
        for p in (True, False)
        for s in RunState
        for c in (None, Cache.NONE, Cache.WRITEBACK)
        if p or s is not RunState.SHUTOFF
    ]
    while len(out) < count:
        flags = int(F.LIVE) if rng.random() < 0.8 else 0
        for flag in F:
            if rng.random() < (0.25 if flag in _HOT else 0.08):
                flags |= int(flag)
        if rng.random() < 0.03:
            flags |= 1 << rng.randrange(21, 31)
        api = rng.choice(list(Api))
        extra: tuple[tuple[str, Any], ...] = ()
        if api.typed_params and rng.random() < 0.3:
            extra = (
                rng.choice(
                    [
                        ("parallel.connections", 2),
                        ("auto_converge.initial", 30),
                        ("compression", "xbzrle"),
                        ("bogus.param", 1),
                    ]
                ),
            )
        out.append(
            Scenario(
                api=api,
                flags=flags,
                domain=rng.choice(specs),
                dname=rng.choice([None, None, "hvlab-fz-renamed"]),
                bandwidth=rng.choice([0, 0, 50]),
                extra=extra,
            )
        )
    return out


def execution_order(scenarios: list[Scenario]) -> list[int]:
    """Indices grouped by domain config, so refused scenarios reuse the running guest."""
    return sorted(range(len(scenarios)), key=lambda i: repr(scenarios[i].domain))


def run_model(scenarios: list[Scenario]) -> list[Verdict]:
    """The scenarios against simulator.libvirt (fresh hosts), in the real run's order."""
    import simulator.libvirt as sim

    sim_api.reset()
    session = Session(sim, SIM_SRC, SIM_DST, SIM_DST_P2P)
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
    progress: Callable[[int, int, Verdict], None] | None = None,
) -> list[Verdict]:
    """The scenarios against two private libvirtd 9.0 daemons."""
    import libvirt

    from harness.libvirt.daemon import daemon_pair

    libvirt.registerErrorHandler(lambda _ctx, _err: None, None)
    with daemon_pair() as (src, dst):
        for host in (src, dst):
            assert host.run is not None
            with (host.run / "lib" / "images" / "hvlab-fz.raw").open("wb") as img:
                img.truncate(1 << 20)
        session = Session(libvirt, src.uri, dst.uri, dst.p2p_uri)

        def show(i: int, v: Verdict) -> None:
            if log:
                print(f"[{i}] {scenarios[i].label()} -> {v.key()}", file=sys.stderr, flush=True)

        # Verdicts are returned in the caller's order.
        result: list[Verdict | None] = [None] * len(scenarios)
        try:
            for done, i in enumerate(execution_order(scenarios), 1):
                verdict = session.run(scenarios[i])
                result[i] = verdict
                show(i, verdict)
                if progress:
                    progress(done, i, verdict)
        finally:
            session.close()
        return [v for v in result if v is not None]


def compare(scenarios: list[Scenario], model: list[Verdict], real: list[Verdict]) -> dict[str, Any]:
    rows = []
    agree = 0
    for sc, m, r in zip(scenarios, model, real, strict=True):
        same = m.key() == r.key()
        agree += same
        rows.append(
            {"scenario": sc.label(), "agree": same, "model": m.to_json(), "real": r.to_json()}
        )
    n = len(rows)
    return {
        "compared": n,
        "agree": agree,
        "agreement_pct": round(100.0 * agree / n, 3) if n else 100.0,
        "accepted_real": sum(v.accepted for v in real),
        "disagreements": [r for r in rows if not r["agree"]],
        "rows": rows,
    }


def summary(report: dict[str, Any]) -> str:
    """A short human summary: figures, then disagreements grouped by verdict pair."""
    groups: Counter[tuple[str, str]] = Counter()
    for row in report["disagreements"]:
        groups[(_verdict_text(row["model"]), _verdict_text(row["real"]))] += 1
    lines = [
        f"libvirt differential, seed {report['seed']}, {report.get('mode', 'real')} run",
        f"compared {report['compared']}, agree {report['agree']} "
        f"({report['agreement_pct']}%), real accepted {report['accepted_real']}",
        f"model {report.get('model_seconds')} s, real {report.get('real_seconds')} s",
    ]
    if groups:
        lines.append("disagreements (count: model | real):")
        lines += [f"  {n}: {m} | {r}" for (m, r), n in groups.most_common()]
    else:
        lines.append("no disagreements")
    return "\n".join(lines) + "\n"


def _verdict_text(v: dict[str, Any]) -> str:
    if v["accepted"]:
        return f"accepted src={v['source']} dst={v['dest']}"
    return f"{v['code']}/{v['domain']} {v['message'][:90]}"


def replay(path: Path) -> tuple[list[Scenario], list[Verdict], dict[str, Any]]:
    """Scenarios and recorded real verdicts of a saved report (labels must match)."""
    saved = json.loads(path.read_text())
    rows = saved["rows"]
    scenarios = generate(len(rows), int(saved["seed"]))
    for sc, row in zip(scenarios, rows, strict=True):
        if sc.label() != row["scenario"]:
            raise SystemExit(
                f"{path}: scenario generator changed: {sc.label()} != {row['scenario']}"
            )
    return scenarios, [Verdict.from_json(row["real"]) for row in rows], saved


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
        tally = {"agree": 0}

        def progress(done: int, i: int, verdict: Verdict) -> None:
            tally["agree"] += model[i].key() == verdict.key()
            if done % 100 == 0 or done == len(scenarios):
                pct = 100.0 * tally["agree"] / done
                print(
                    f"[{done}/{len(scenarios)}] agree {tally['agree']} ({pct:.1f}%), "
                    f"{time.monotonic() - t1:.0f} s",
                    file=sys.stderr,
                    flush=True,
                )

        real = run_real(scenarios, log=args.verbose, progress=progress if args.progress else None)
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
