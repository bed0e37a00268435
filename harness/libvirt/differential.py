"""Differential run: the same scenarios against the model and real libvirt 9.0.

``python -m harness.libvirt.differential --count 2000 --seed 7`` starts two private
daemons (harness.libvirt.daemon), runs every generated scenario through
:class:`simulator.libvirt.scenario.Session` once with ``libvirt`` and once with
``simulator.libvirt``, and writes the comparison to
``reports/libvirt-differential/<seed>-<count>.json``.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from collections.abc import Callable, Iterable
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


def run_all(
    session: Session,
    scenarios: Iterable[Scenario],
    progress: Callable[[int, Verdict], None] | None = None,
) -> list[Verdict]:
    verdicts = []
    for i, sc in enumerate(scenarios):
        verdicts.append(session.run(sc))
        if progress:
            progress(i, verdicts[-1])
    return verdicts


def run_model(scenarios: list[Scenario]) -> list[Verdict]:
    """The scenarios against simulator.libvirt (fresh hosts)."""
    import simulator.libvirt as sim

    sim_api.reset()
    session = Session(sim, SIM_SRC, SIM_DST, SIM_DST_P2P)
    try:
        return run_all(session, scenarios)
    finally:
        session.close()


def run_real(scenarios: list[Scenario], log: bool = False) -> list[Verdict]:
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

        # Group by domain config so refused scenarios reuse the running guest;
        # verdicts are returned in the caller's order.
        order = sorted(range(len(scenarios)), key=lambda i: repr(scenarios[i].domain))
        result: list[Verdict | None] = [None] * len(scenarios)
        try:
            for i in order:
                result[i] = session.run(scenarios[i])
                show(i, result[i])  # type: ignore[arg-type]
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--count", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--verbose", action="store_true")
    args = parser.parse_args(argv)
    scenarios = generate(args.count, args.seed)
    t0 = time.monotonic()
    model = run_model(scenarios)
    t1 = time.monotonic()
    real = run_real(scenarios, log=args.verbose)
    t2 = time.monotonic()
    report = compare(scenarios, model, real)
    report.update(seed=args.seed, model_seconds=round(t1 - t0, 3), real_seconds=round(t2 - t1, 1))
    out = args.out or Path("reports/libvirt-differential") / f"{args.seed}-{args.count}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=1, default=str))
    print(
        f"compared {report['compared']} agree {report['agree']} "
        f"({report['agreement_pct']}%), real accepted {report['accepted_real']}, "
        f"real {report['real_seconds']}s -> {out}"
    )
    return 0 if report["agree"] == report["compared"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
