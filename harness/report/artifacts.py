"""What a test left in ``artifacts/<test>/<vm>/``, read for the report.

Files may be torn (a killed run) or huge (a chatty guest): every reader tolerates a bad
line and keeps a bounded amount, saying what it left out.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

LOG_LIMIT = 200_000  # characters of a log shown inline (its tail)
QMP_LIMIT = 1500  # transcript rows shown inline (first half + last half)
KNOWN = ("serial.log", "stdout.log", "stderr.log", "qmp.jsonl", "migration.json")

_ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b[@-Z\\-_]")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


@dataclass
class LogText:
    text: str
    total: int  # characters in the file
    shown_from: int  # first character shown (0 = all of it)


@dataclass
class QMPMessage:
    t: float | None
    direction: str  # "send" | "recv" | "event" | "raw" (a line that was not a record)
    msg: Any
    raw: str = ""  # set for a line that was not JSON


@dataclass
class Transcript:
    messages: list[QMPMessage]
    omitted: int = 0  # rows left out in the middle
    bad_lines: int = 0


@dataclass
class VMArtifacts:
    name: str
    dir: Path  # absolute
    rel: str  # relative to the run folder
    files: list[str] = field(default_factory=list)


def clean_log(text: str) -> str:
    """Console output without terminal escapes and control characters; \\r\\n -> \\n."""
    text = _ANSI.sub("", text.replace("\r\n", "\n"))
    return _CONTROL.sub("", text.replace("\r", "\n"))


def read_log(path: Path, limit: int = LOG_LIMIT) -> LogText | None:
    try:
        text = clean_log(path.read_text(encoding="utf-8", errors="replace"))
    except OSError:
        return None
    if len(text) <= limit:
        return LogText(text, len(text), 0)
    start = len(text) - limit
    cut = text.find("\n", start)
    start = cut + 1 if 0 <= cut < start + 2000 else start
    return LogText(text[start:], len(text), start)


def read_transcript(path: Path, limit: int = QMP_LIMIT) -> Transcript | None:
    try:
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return None
    messages: list[QMPMessage] = []
    bad = 0
    for line in lines:
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except ValueError:
            bad += 1
            messages.append(QMPMessage(None, "raw", None, raw=line))
            continue
        if not isinstance(rec, dict) or "msg" not in rec:
            bad += 1
            messages.append(QMPMessage(None, "raw", None, raw=line))
            continue
        msg = rec["msg"]
        direction = "send" if rec.get("dir") == "send" else "recv"
        if direction == "recv" and isinstance(msg, dict) and "event" in msg:
            direction = "event"
        t = rec.get("t")
        messages.append(
            QMPMessage(float(t) if isinstance(t, int | float) else None, direction, msg)
        )
    omitted = 0
    if len(messages) > limit:
        half = limit // 2
        omitted = len(messages) - 2 * half
        messages = messages[:half] + messages[-half:]
    return Transcript(messages, omitted, bad)


def vm_artifacts(run_dir: Path, rel: str) -> list[VMArtifacts]:
    """The VMs of one test (sub-folders of its artifacts folder): migrated ones first."""
    if not rel:
        return []
    base = (run_dir / rel).resolve()
    try:
        base.relative_to(run_dir.resolve())  # never read outside the run folder
    except ValueError:
        return []
    if not base.is_dir():
        return []
    out: list[VMArtifacts] = []
    for vm_dir in sorted(p for p in base.iterdir() if p.is_dir()):
        files = sorted(f.name for f in vm_dir.iterdir() if f.is_file())
        files.sort(key=lambda n: (KNOWN.index(n) if n in KNOWN else len(KNOWN), n))
        out.append(VMArtifacts(vm_dir.name, vm_dir, f"{rel}/{vm_dir.name}", files))
    out.sort(key=lambda vm: ("migration.json" not in vm.files, vm.name))
    return out


def orphan_artifacts(run_dir: Path, recorded: set[str]) -> list[str]:
    """Artifact folders of tests with no result: running when the run was killed."""
    base = run_dir / "artifacts"
    if not base.is_dir():
        return []
    return sorted(
        f"artifacts/{p.name}"
        for p in base.iterdir()
        if p.is_dir() and f"artifacts/{p.name}" not in recorded
    )
