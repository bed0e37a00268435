"""A lockstep run as data: the steps the state machine took and what each backend showed.

A ``Step`` is what the state machine asks every backend to do (one QMP command, a raw
malformed request, or one of the composite actions a harness does over QMP: migrate to a
freshly started destination, save to a file, restore from it). An ``Observation`` is
what one backend showed for it once it settled: the reply, the events each VM sent, and
the state probes (runstate, migration status, process alive). Both are JSON, so a shrunk
run is written out and replayed as a regression test (reproducer.py).
"""

from __future__ import annotations

import enum
import json
from dataclasses import asdict, dataclass, field
from typing import Any

JSON = dict[str, Any]


class Action(enum.Enum):
    #: one QMP command with its arguments
    QMP = "qmp"
    #: a raw message sent as it is (members and types the schema does not allow)
    RAW = "raw"
    #: start a destination with the source's command line and ``-incoming tcp:..:0``,
    #: give it the source's migration capabilities (as libvirt does), ``migrate`` to it
    MIGRATE = "migrate"
    #: ``migrate "exec:cat > FILE"``: QEMU 7.2's snapshot to a file (migration/exec.c)
    SNAPSHOT = "snapshot"
    #: replace the source by a process started with ``-incoming "exec:cat FILE"``
    RESTORE = "restore"


#: Roles of the VMs a backend holds: the source, and the destination of the last migrate.
ROLES = ("src", "dst")


@dataclass(frozen=True)
class Step:
    action: Action
    vm: str = "src"
    command: str = ""
    arguments: JSON | None = None
    message: JSON | None = None

    @property
    def label(self) -> str:
        """What the summary counts it as: the command (``migrate`` for composites)."""
        if self.action is Action.QMP:
            return self.command
        if self.action is Action.RAW:
            return "(malformed)"
        return str(self.action.value)

    def describe(self) -> str:
        if self.action is Action.QMP:
            args = "" if not self.arguments else " " + json.dumps(self.arguments, sort_keys=True)
            return f"{self.vm}: {self.command}{args}"
        if self.action is Action.RAW:
            return f"{self.vm}: raw {json.dumps(self.message, sort_keys=True)}"
        return f"{self.vm}: <{self.action.value}>"

    def to_json(self) -> JSON:
        out: JSON = {"action": self.action.value, "vm": self.vm}
        if self.command:
            out["command"] = self.command
        if self.arguments is not None:
            out["arguments"] = self.arguments
        if self.message is not None:
            out["message"] = self.message
        return out

    @classmethod
    def from_json(cls, data: JSON) -> Step:
        return cls(
            Action(data["action"]),
            str(data.get("vm", "src")),
            str(data.get("command", "")),
            data.get("arguments"),
            data.get("message"),
        )


@dataclass
class Observation:
    """What one backend showed for one step, normalised (masks applied by compare.py)."""

    reply: JSON
    events: dict[str, list[JSON]] = field(default_factory=dict)
    state: dict[str, JSON] = field(default_factory=dict)

    def to_json(self) -> JSON:
        return asdict(self)


@dataclass(frozen=True)
class Difference:
    """One place where the candidate's observation is not the reference's."""

    step: int
    command: str
    where: str  # reply | events:<role> | state:<role>
    path: str
    reference: Any
    candidate: Any

    def line(self) -> str:
        ref = json.dumps(self.reference, sort_keys=True)[:200]
        cand = json.dumps(self.candidate, sort_keys=True)[:200]
        return f"step {self.step} {self.command}: {self.where} {self.path}: {ref} != {cand}"

    def to_json(self) -> JSON:
        return asdict(self)
