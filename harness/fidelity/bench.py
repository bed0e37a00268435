"""``hvlab bench fidelity``: the matrix on real QEMU, the same through the simulator, scored.

Writes ``reports/fidelity/<run-id>/``: ``real/<config>-<i>.json`` and
``sim/<config>-<i>.json`` (guestperf-style reports), ``host.json`` (the constants
calibrated on the idle configuration; ``python -m simulator --host host.json`` uses
them), ``table.md`` and ``summary.json`` (figures, errors, geometric means, verdicts),
``plots/`` (real vs simulated remaining RAM). ``--rescore DIR`` scores an earlier run's
real reports again without running QEMU (after a model change).
"""

from __future__ import annotations

import json
import shutil
import sys
import time
from pathlib import Path
from typing import Any

from harness.cliparse import OneLineParser, positive_int
from harness.errors import HarnessError
from harness.fidelity import (
    calibrate,
    guestperf,
    hostprobe,
    plots,
    real,
    score,
    simulate,
    switchtrace,
)
from harness.fidelity.layout import Layout
from harness.fidelity.matrix import MATRIX, SMOKE, Config, by_name
from harness.spec import Arch

JSON = dict[str, Any]


def run_real(cfgs: list[Config], arch: Arch, out: Path, runs: int | None) -> None:
    """Every configuration's real runs, one at a time (the machine is shared)."""
    from harness.fixtures import VMFactory
    from harness.guest import guest_image
    from harness.runner import private_dir
    from harness.targets.qemu import QemuTarget
    from harness.templates import TemplateStore

    store = TemplateStore()
    logs = private_dir("hvlab-fidelity-")  # the VMs' logs: kept only when a run failed
    failed = False
    probe = out / "hostprobe.json"
    if not probe.exists():  # measured before the runs, on the same quiet host
        probe.write_text(json.dumps(hostprobe.probe()))
    try:
        for cfg in cfgs:
            for i in range(runs or cfg.runs):
                path = out / "real" / f"{cfg.name}-{i}.json"
                if path.exists():
                    continue
                # calibration runs print QEMU's trace events with timestamps
                extra = switchtrace.ARGV if "calibration" in cfg.tags else ()
                vms = VMFactory(
                    QemuTarget(arch, extra=extra),
                    logs / f"{cfg.name}-{i}",
                    images=guest_image,
                    boot=store,
                )
                t0 = time.monotonic()
                try:
                    report = real.run(cfg, arch, vms, logs / f"{cfg.name}-{i}" / "work")
                except HarnessError as exc:
                    print(f"  {cfg.name} #{i}: failed: {exc} (logs: {logs})", flush=True)
                    failed = True
                    continue
                finally:
                    vms.close()
                guestperf.save(report, path)
                f = score.figures(report)
                print(
                    f"  {cfg.name} #{i}: {report['hvlab']['final'].get('status')} "
                    f"total {f['total_ms']} ms, downtime {f['downtime_ms']} ms, "
                    f"syncs {f['syncs']} ({time.monotonic() - t0:.0f} s)",
                    flush=True,
                )
    finally:
        store.close()
        if not failed:
            shutil.rmtree(logs, ignore_errors=True)


def load(folder: Path) -> dict[str, list[JSON]]:
    by: dict[str, list[JSON]] = {}
    for path in sorted(folder.glob("*.json")):
        rep = guestperf.load(path)
        by.setdefault(rep["scenario"]["name"], []).append(rep)
    return by


def score_all(cfgs: list[Config], out: Path, calibration_cfg: Config) -> tuple[str, JSON]:
    """Calibrate on the idle runs, simulate every real run's configuration, score."""
    reals = load(out / "real")
    if calibration_cfg.name not in reals:
        raise HarnessError(f"no real runs of {calibration_cfg.name} to calibrate on in {out}")
    probe = out / "hostprobe.json"
    measured = json.loads(probe.read_text()) if probe.exists() else {}
    if "socket_buffer_bytes" not in measured:
        measured = {**hostprobe.probe(), **measured}
        probe.write_text(json.dumps(measured))
    cal = calibrate.calibrate(
        calibration_cfg,
        reals[calibration_cfg.name],
        float(measured["loopback_bandwidth"]),
        int(measured["socket_buffer_bytes"]),
    )
    (out / "host.json").write_text(json.dumps(cal.host.to_json(), indent=1))
    (out / "calibration.json").write_text(json.dumps(cal.to_json(), indent=1))
    scores = []
    curves: dict[str, tuple[list[JSON], list[JSON]]] = {}
    broken: list[str] = []
    for cfg in cfgs:
        rs = reals.get(cfg.name, [])
        if not rs:
            continue
        sims = []
        for i, r in enumerate(rs):
            sim = simulate.run(cfg, Layout.from_json(r["hvlab"]["layout"]), cal)
            guestperf.save(sim, out / "sim" / f"{cfg.name}-{i}.json")
            broken += [f"{cfg.name} #{i}: {b}" for b in sim["hvlab"]["invariants"]]
            sims.append(sim)
        scores.append(score.score(cfg.name, rs, sims))
        curves[cfg.name] = (rs, sims)
    agg = score.aggregate(scores)
    text = score.table(scores, agg)
    hung = [
        f"{name} #{i}"
        for name, rs in reals.items()
        for i, r in enumerate(rs)
        if not r["hvlab"].get("dst_alive", True)
    ]
    notes = [
        f"calibrated on {calibration_cfg.name} ({len(reals[calibration_cfg.name])} runs): "
        + ", ".join(
            f"{k}={v:.3g}"
            for k, v in cal.host.to_json().items()
            if k
            in (
                "nic_bandwidth",
                "socket_buffer_bytes",
                "first_touch_s",
                "window_overrun_s",
                "resume_s",
                "setup_fixed_s",
                "stop_overhead_s",
                "switchover_s",
            )
        ),
        f"physical invariants: {'all hold' if not broken else '; '.join(broken)}",
        f"destination guest silent after the switch (no heartbeat): {', '.join(hung) or 'none'}",
    ]
    text += "\n\n" + "\n".join(notes) + "\n"
    (out / "table.md").write_text(text)
    summary = {
        "aggregate": agg,
        "configs": [
            {"name": s.name, "real": s.real, "sim": s.sim, "errors": s.errors} for s in scores
        ],
        "calibration": cal.to_json(),
        "invariants_broken": broken,
        "silent_destinations": hung,
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=1, default=str))
    plots.write(out / "plots", curves)
    return text, summary


def main(argv: list[str] | None = None) -> int:
    ap = OneLineParser(prog="hvlab bench fidelity", description=__doc__)
    ap.add_argument("--configs", nargs="*", help="only these configurations (default: all)")
    ap.add_argument(
        "--runs", type=positive_int, help="runs per configuration (default: each one's)"
    )
    ap.add_argument("--smoke", action="store_true", help="one small idle configuration, once")
    ap.add_argument("--arch", default="x86_64", help="guest architecture (default x86_64)")
    ap.add_argument("--out", help="output folder (default reports/fidelity/<timestamp>)")
    ap.add_argument("--rescore", help="score the real reports in this folder again")
    args = ap.parse_args(argv)
    try:
        if args.smoke:
            cfgs, cal_cfg = [SMOKE], SMOKE
        else:
            cfgs = by_name(args.configs) if args.configs else list(MATRIX)
            cal_cfg = MATRIX[0]
            if cal_cfg not in cfgs:
                cfgs.insert(0, cal_cfg)
        arch = Arch.parse(args.arch)
        if args.rescore and not (Path(args.rescore) / "real").is_dir():
            raise ValueError(f"--rescore {args.rescore}: no real/ reports there to score")
        if args.out and Path(args.out).exists() and not Path(args.out).is_dir():
            raise ValueError(f"--out {args.out}: exists and is not a folder")
    except ValueError as exc:
        print(f"hvlab: {exc}", file=sys.stderr)
        return 2
    if args.rescore:
        out = Path(args.rescore)
    else:
        out = Path(args.out or f"reports/fidelity/{time.strftime('%Y%m%d-%H%M%S')}")
        try:
            out.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            print(f"hvlab: --out {out}: {exc.strerror}", file=sys.stderr)
            return 2
        print(f"fidelity: {len(cfgs)} configurations -> {out}", flush=True)
        run_real(cfgs, arch, out, 1 if args.smoke else args.runs)
    try:
        text, _ = score_all(cfgs, out, cal_cfg)
    except HarnessError as exc:
        print(f"hvlab: {exc}", file=sys.stderr)
        return 1
    print(text)
    return 0
