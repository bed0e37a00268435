"""Results of a run: JSONL as results arrive, then results.json and junit.xml.

The model of the report pipeline: it knows nothing of HTML (harness.report.writer turns
a run folder into the lab report). results.jsonl is appended and fsynced per test, so a
run that dies (SIGINT, SIGKILL, OOM) still leaves every finished result readable;
results.json and junit.xml are rebuilt from it at the end (or later, by
``hvlab report RUN``).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

OUTCOMES = ("passed", "failed", "error", "diverged", "skipped")
"""Every outcome a result can have. ``diverged``: the test passed by observing the
behaviour the behaviour catalog records as diverging from the documentation."""

RUN_ID_ENV = "HVLAB_RUN_ID"
"""When set (by ``hvlab run``), the id of the run folder the plugin writes."""


_FIELD_TYPES: dict[str, type | tuple[type, ...]] = {
    "nodeid": str,
    "name": str,
    "target": str,
    "outcome": str,
    "duration": (int, float),
    "message": str,
    "catalog": list,
    "doc": str,
    "artifacts": str,
    "finished": (int, float),
    "context": dict,
    "hosts": list,
}


@dataclass
class TestResult:
    __test__ = False  # not a pytest test class, whoever imports it

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
    context: dict[str, Any] = field(default_factory=dict)
    """For a failure raised as a HarnessError: its type (``error``) and its context
    (argv, exit code, console tail, QMP sent/received, migration phase...)."""
    hosts: list[str] = field(default_factory=list)
    """The hosts its VMs ran on (source first), from the inventory."""

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> TestResult:
        """A result from its JSON; ValueError naming the field that has the wrong type."""
        if not isinstance(data, dict):
            raise ValueError("not a JSON object")
        known = {k: data[k] for k in cls.__dataclass_fields__ if k in data}
        for name, kind in _FIELD_TYPES.items():
            if name in known and not isinstance(known[name], kind):
                raise ValueError(f"{name} is {type(known[name]).__name__}, not {kind}")
        for name in ("nodeid", "name", "outcome"):
            if name not in known:
                raise ValueError(f"{name} is missing")
        if known["outcome"] not in OUTCOMES:
            raise ValueError(f"outcome {known['outcome']!r} is not one of {', '.join(OUTCOMES)}")
        return cls(**known)


def new_run_id() -> str:
    return time.strftime("%Y%m%d-%H%M%S") + f"-{os.getpid()}"


def _run_id_from_env() -> str | None:
    value = os.environ.get(RUN_ID_ENV, "").strip()
    if not value:
        return None
    if "/" in value or value.startswith(".") or value == "latest":
        raise ValueError(f"{RUN_ID_ENV}={value!r} is not a usable run folder name")
    return value


class RunReport:
    """One run folder. With pytest-xdist every worker holds one on the same folder:
    results.jsonl lines are single appends, run.json updates are merged atomically, and
    only the controller (``primary``) moves ``latest`` and finishes the run."""

    def __init__(self, root: Path, run_id: str | None = None, primary: bool = True) -> None:
        self.run_id = run_id or _run_id_from_env() or new_run_id()
        self.root = root
        self.dir = root / self.run_id
        self.dir.mkdir(parents=True, exist_ok=True)
        self.jsonl = self.dir / "results.jsonl"
        self.started = time.time()
        self.meta: dict[str, Any] = {
            "run_id": self.run_id,
            "started": self.started,
            "hvlab": hvlab_source(),
        }
        self.primary = primary
        self._write_meta()
        if primary:
            self._point_latest()

    def _write_meta(self) -> None:
        path = self.dir / "run.json"
        try:
            merged = json.loads(path.read_text())
        except (OSError, ValueError):
            merged = {}
        if not self.primary:  # a worker adds facts; it never rewrites the run's start
            self.meta = {
                k: v
                for k, v in self.meta.items()
                if k not in merged or k not in ("run_id", "started", "hvlab")
            }
        merged.update(self.meta)
        self.meta = merged
        tmp = path.with_name(f".run.json-{os.getpid()}")
        tmp.write_text(json.dumps(merged, indent=2, default=str))
        tmp.replace(path)

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
        line = (json.dumps(result.to_json(), default=str) + "\n").encode()
        # one write() on an O_APPEND descriptor: lines from parallel workers never interleave
        fd = os.open(self.jsonl, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, line)
            os.fsync(fd)
        finally:
            os.close(fd)

    def finish(self) -> list[TestResult]:
        """Mark the run complete and write results.json and junit.xml (not the HTML:
        :func:`harness.report.writer.finish_run` does both)."""
        self.update_meta(finished=time.time(), duration=time.time() - self.started)
        return write_final(self.dir)

    @property
    def index(self) -> Path:
        return self.dir / "index.html"


def hvlab_source() -> dict[str, Any]:
    """The hvlab checkout this run executes: git sha and whether the tree was dirty."""
    repo = Path(__file__).resolve().parents[2]
    info: dict[str, Any] = {"path": str(repo), "sha": None, "dirty": None}
    try:
        sha = subprocess.run(
            ["git", "-C", str(repo), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.strip()
        status = subprocess.run(
            ["git", "-C", str(repo), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return info
    info.update(sha=sha, dirty=bool(status.strip()))
    return info


def read_results(run_dir: Path, problems: list[str] | None = None) -> list[TestResult]:
    """Results from results.jsonl; a torn last line (killed run) is skipped, and so is a
    line that is not a result (said in ``problems`` with its line number)."""
    out: list[TestResult] = []
    path = run_dir / "results.jsonl"
    if not path.exists():
        return out
    # errors="replace": SIGKILL can tear the last line inside a multi-byte character.
    lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            out.append(TestResult.from_json(json.loads(line)))
        except (ValueError, TypeError) as exc:
            if problems is not None and number < len(lines):  # the last may be torn
                problems.append(f"{path.name}:{number}: {exc}")
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
    write_junit(
        results, run_dir / "junit.xml", str(meta.get("run_id", run_dir.name)), interruption(meta)
    )
    return results


_XML_BAD = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def xml_safe(text: str) -> str:
    """``text`` without the characters XML 1.0 cannot hold (a control character in a
    test's message would make junit.xml unreadable); each becomes a visible \\xNN."""
    return _XML_BAD.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


def interruption(meta: Mapping[str, Any]) -> str:
    """One line saying that, how and where a run was stopped ("" if it was not)."""
    info = meta.get("interrupted")
    if not isinstance(info, dict):
        return ""
    running = info.get("running") or "between tests"
    return f"run interrupted by {info.get('by', 'a signal')} while running {running}"


def write_junit(results: list[TestResult], path: Path, run_id: str, interrupted: str = "") -> None:
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
            if r.catalog or r.outcome == "diverged":
                props = ET.SubElement(case, "properties")
                for cid in r.catalog:
                    ET.SubElement(props, "property", name="catalog", value=cid)
                if r.outcome == "diverged":
                    # JUnit has no such state: a pass that observed a documented divergence.
                    ET.SubElement(props, "property", name="outcome", value="diverged")
            message = xml_safe(r.message)
            if r.outcome in ("failed", "error"):
                tag = "failure" if r.outcome == "failed" else "error"
                ET.SubElement(
                    case, tag, message=message.splitlines()[0][:500] if message else r.outcome
                ).text = message
            elif r.outcome == "skipped":
                ET.SubElement(case, "skipped", message=message)
    if interrupted:
        # a stopped run is not green: one error case says how it stopped, and where
        suite = ET.SubElement(suites, "testsuite", name="hvlab", tests="1", errors="1")
        case = ET.SubElement(suite, "testcase", classname="hvlab", name="run")
        ET.SubElement(case, "error", message=xml_safe(interrupted)).text = xml_safe(interrupted)
    ET.indent(suites)
    ET.ElementTree(suites).write(path, encoding="utf-8", xml_declaration=True)
