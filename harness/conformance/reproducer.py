"""Shrunk runs as regression tests: write them out, replay them on both targets.

A reproducer is a JSON file (the targets, the steps, what each side showed, the
differences) next to a pytest file that replays it. Disk image paths in the steps are
written as ``{disks}`` and point at fresh images when replayed.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from harness.conformance.lockstep import Lockstep
from harness.conformance.steps import JSON, Step
from harness.conformance.targets import lockstep_for
from harness.spec import MachineType

DISKS = "{disks}"

_TEST = '''"""Regression test written by hvlab fuzz qmp: {title}.

Replays the shrunk sequence in {json_name} on {reference} and {candidate}; it fails
while their replies, errors, events or states differ at any step. Run it from the hvlab
checkout (its pytest settings): ``pytest -c pyproject.toml --rootdir . <this file>``.
"""

from pathlib import Path

from harness.conformance.reproducer import replay_file


def test_{slug}() -> None:
    replay_file(Path(__file__).with_name("{json_name}"))
'''


def slug(label: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", label.lower()).strip("_") or "step"


def _swap(value: Any, old: str, new: str) -> Any:
    if isinstance(value, str):
        return value.replace(old, new)
    if isinstance(value, dict):
        return {k: _swap(v, old, new) for k, v in value.items()}
    if isinstance(value, list):
        return [_swap(v, old, new) for v in value]
    return value


def write(folder: Path, label: str, failure: JSON, meta: JSON, disks: Path) -> Path:
    """Write ``failure`` (steps, observations, differences) as ``<slug>.json`` and
    ``test_<slug>.py`` into ``folder``; return the JSON file."""
    folder.mkdir(parents=True, exist_ok=True)
    name = slug(label)
    data = _swap({**meta, "label": label, **failure}, str(disks), DISKS)
    path = folder / f"{name}.json"
    path.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")
    title = f"{label} differs after {len(failure['steps'])} steps"
    (folder / f"test_{name}.py").write_text(
        _TEST.format(
            title=title,
            json_name=path.name,
            reference=meta["reference"],
            candidate=meta["candidate"],
            slug=name,
        )
    )
    return path


@contextmanager
def _replaying(data: JSON, work: Path) -> Iterator[tuple[Lockstep, list[Step]]]:
    machine = MachineType(data["machine"]) if "machine" in data else None
    with lockstep_for(data["reference"], data["candidate"], work, machine) as (lockstep, disks):
        steps = [Step.from_json(s) for s in _swap(data["steps"], DISKS, str(disks))]
        yield lockstep, steps


def replay(data: JSON, work: Path) -> None:
    """Run the recorded steps on both targets; raise Divergence or InvariantViolation
    where they differ or break an invariant."""
    with _replaying(data, work) as (lockstep, steps):
        lockstep.start()
        lockstep.check_invariants()
        for step in steps:
            lockstep.step(step)
            lockstep.check_invariants()
            lockstep.check_console()


def replay_file(path: Path, work: Path | None = None) -> None:
    import tempfile

    data = json.loads(path.read_text())
    if work is not None:
        replay(data, work)
        return
    with tempfile.TemporaryDirectory(prefix="hvlab-replay-") as tmp:
        replay(data, Path(tmp))
