"""Several runs (shards of one suite, on different host pairs) as one report.

Every test counts once per target and placement: a test id found in more than one run
keeps its latest result. The merged run.json keeps each run's targets, hosts and pool
lease; catalog.json comes from the first run that has one.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from harness.errors import HarnessError
from harness.report.results import new_run_id, read_results


def merge_runs(runs: list[Path], report_dir: Path) -> Path:
    """Write a new run folder under ``report_dir`` holding ``runs`` merged; return it."""
    if len(runs) < 2:
        raise HarnessError("--merge needs at least two runs")
    latest: dict[str, Any] = {}
    metas: list[dict[str, Any]] = []
    for run in runs:
        for result in read_results(run):
            old = latest.get(result.nodeid)
            if old is None or result.finished >= old.finished:
                latest[result.nodeid] = result
        try:
            metas.append(json.loads((run / "run.json").read_text()))
        except (OSError, ValueError):
            metas.append({})
    target = report_dir / f"merged-{new_run_id()}"
    target.mkdir(parents=True, mode=0o755)
    with (target / "results.jsonl").open("w") as out:
        for result in sorted(latest.values(), key=lambda r: r.finished):
            out.write(json.dumps(result.to_json()) + "\n")
    targets: list[str] = []
    hosts: dict[str, Any] = {}
    for meta in metas:
        targets += [t for t in meta.get("targets", []) if t not in targets]
        hosts.update(meta.get("hosts", {}))
    merged = {
        "run_id": target.name,
        "merged_from": [r.name for r in runs],
        "targets": targets,
        "hosts": hosts,
        "pools": [m["pool"] for m in metas if m.get("pool")],
        "started": min((m.get("started", 0) for m in metas), default=0),
        "finished": max((m.get("finished", 0) for m in metas), default=0),
    }
    (target / "run.json").write_text(json.dumps(merged, indent=1))
    for run in runs:
        catalog = run / "catalog.json"
        if catalog.exists():
            shutil.copyfile(catalog, target / "catalog.json")
            break
    return target
