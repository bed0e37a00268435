"""Results of a run: JSONL as results arrive, then results.json and junit.xml.

results.jsonl is appended and fsynced per test, so a run that dies (SIGINT, SIGKILL,
OOM) still leaves every finished result readable; results.json and junit.xml are
rebuilt from it at the end (or later, by ``hvlab report RUN``).
"""

from __future__ import annotations

import json
import os
import time
import xml.etree.ElementTree as ET
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

OUTCOMES = ("passed", "failed", "error", "skipped")


@dataclass
class TestResult:
    nodeid: str
    name: str
    target: str
    outcome: str
    duration: float
    message: str = ""
    catalog: list[str] = field(default_factory=list)
    doc: str = ""
    artifacts: str = ""
    finished: float = field(default_factory=time.time)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> TestResult:
        known = {k: data[k] for k in cls.__dataclass_fields__ if k in data}
        return cls(**known)


def new_run_id() -> str:
    return time.strftime("%Y%m%d-%H%M%S") + f"-{os.getpid()}"


class RunReport:
    def __init__(self, root: Path, run_id: str | None = None) -> None:
        self.run_id = run_id or new_run_id()
        self.root = root
        self.dir = root / self.run_id
        self.dir.mkdir(parents=True, exist_ok=True)
        self.jsonl = self.dir / "results.jsonl"
        self.started = time.time()
        self.meta: dict[str, Any] = {"run_id": self.run_id, "started": self.started}
        self._write_meta()
        self._point_latest()

    def _write_meta(self) -> None:
        (self.dir / "run.json").write_text(json.dumps(self.meta, indent=2, default=str))

    def _point_latest(self) -> None:
        latest = self.root / "latest"
        tmp = self.root / f".latest-{os.getpid()}"
        try:
            if tmp.is_symlink():
                tmp.unlink()
            tmp.symlink_to(self.run_id)
            tmp.replace(latest)
        except OSError:
            pass

    def update_meta(self, **values: Any) -> None:
        self.meta.update(values)
        self._write_meta()

    def add(self, result: TestResult) -> None:
        line = json.dumps(result.to_json(), default=str)
        with self.jsonl.open("a", encoding="utf-8") as fh:
            fh.write(line + "\n")
            fh.flush()
            os.fsync(fh.fileno())

    def finish(self) -> list[TestResult]:
        self.update_meta(finished=time.time(), duration=time.time() - self.started)
        return write_final(self.dir)


def read_results(run_dir: Path) -> list[TestResult]:
    """Results from results.jsonl; a torn last line (killed run) is skipped."""
    out: list[TestResult] = []
    path = run_dir / "results.jsonl"
    if not path.exists():
        return out
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            out.append(TestResult.from_json(json.loads(line)))
        except (ValueError, TypeError):
            continue
    return out


def summarize(results: list[TestResult]) -> dict[str, dict[str, int]]:
    per: dict[str, Counter[str]] = {}
    for r in results:
        per.setdefault(r.target or "-", Counter())[r.outcome] += 1
    return {t: {o: c[o] for o in OUTCOMES} for t, c in sorted(per.items())}


def write_final(run_dir: Path) -> list[TestResult]:
    results = read_results(run_dir)
    try:
        meta = json.loads((run_dir / "run.json").read_text())
    except (OSError, ValueError):
        meta = {"run_id": run_dir.name}
    doc = {"run": meta, "summary": summarize(results), "tests": [r.to_json() for r in results]}
    (run_dir / "results.json").write_text(json.dumps(doc, indent=2, default=str))
    write_junit(results, run_dir / "junit.xml", str(meta.get("run_id", run_dir.name)))
    return results


def write_junit(results: list[TestResult], path: Path, run_id: str) -> None:
    suites = ET.Element("testsuites", name=f"hvlab {run_id}")
    by_target: dict[str, list[TestResult]] = {}
    for r in results:
        by_target.setdefault(r.target or "-", []).append(r)
    for target, items in sorted(by_target.items()):
        counts = Counter(r.outcome for r in items)
        suite = ET.SubElement(
            suites,
            "testsuite",
            name=target,
            tests=str(len(items)),
            failures=str(counts["failed"]),
            errors=str(counts["error"]),
            skipped=str(counts["skipped"]),
            time=f"{sum(r.duration for r in items):.3f}",
        )
        for r in items:
            module, _, rest = r.nodeid.partition("::")
            case = ET.SubElement(
                suite,
                "testcase",
                classname=module.replace("/", ".").removesuffix(".py"),
                name=rest or r.name,
                time=f"{r.duration:.3f}",
            )
            if r.catalog:
                props = ET.SubElement(case, "properties")
                for cid in r.catalog:
                    ET.SubElement(props, "property", name="catalog", value=cid)
            if r.outcome in ("failed", "error"):
                tag = "failure" if r.outcome == "failed" else "error"
                ET.SubElement(
                    case, tag, message=r.message.splitlines()[0][:500] if r.message else r.outcome
                ).text = r.message
            elif r.outcome == "skipped":
                ET.SubElement(case, "skipped", message=r.message)
    ET.indent(suites)
    ET.ElementTree(suites).write(path, encoding="utf-8", xml_declaration=True)
