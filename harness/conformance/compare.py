"""Lockstep comparison: normalise what each backend showed, mask what is volatile, diff.

Replies are compared as shapes: every member and list element must be there on both
sides, with equal values unless a declared :data:`MASKS` entry says the value is
volatile (times, byte counts, thread ids), in which case only its JSON type is compared,
or that the member's presence itself depends on timing (``drop``). Every mask carries
the reason it is there; the report lists them. Error replies compare class and desc;
events compare name, data and order per VM; state probes compare exactly.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from harness.conformance.masks import MASKS, Mask
from harness.conformance.steps import JSON, Difference, Observation

#: at most this many differences are reported per step (the first ones say enough)
MAX_DIFFERENCES = 12


def type_name(value: Any) -> str:
    if isinstance(value, bool):
        return "<bool>"
    if isinstance(value, int | float):
        return "<number>"
    if isinstance(value, str):
        return "<str>"
    if isinstance(value, list):
        return "<list>"
    if isinstance(value, dict):
        return "<object>"
    return "<null>"


def _apply(value: Any, parts: list[str], mask: Mask) -> Any:
    if not parts:
        return type_name(value)
    head, rest = parts[0], parts[1:]
    if isinstance(value, dict):
        out = dict(value)
        for key in list(out):
            if fnmatch.fnmatchcase(key, head):
                if mask.drop and not rest:
                    del out[key]
                else:
                    out[key] = _apply(out[key], rest, mask)
        return out
    if isinstance(value, list) and head == "*":
        return [_apply(v, rest, mask) for v in value]
    return value


def masks_for(scope: str) -> list[Mask]:
    return [m for m in MASKS if fnmatch.fnmatchcase(scope, m.scope)]


def mask(value: Any, scope: str) -> Any:
    """``value`` with every mask declared for ``scope`` applied."""
    for m in masks_for(scope):
        value = _apply(value, m.path.split(".") if m.path else [], m)
    return value


def substitute(value: Any, names: dict[str, str]) -> Any:
    """Backend-specific strings (its ports, its files) replaced by their placeholders."""
    if isinstance(value, str):
        for actual, placeholder in names.items():
            value = value.replace(actual, placeholder)
        return value
    if isinstance(value, dict):
        return {k: substitute(v, names) for k, v in value.items()}
    if isinstance(value, list):
        return [substitute(v, names) for v in value]
    return value


def normalise_events(events: list[JSON]) -> list[JSON]:
    """Name and masked data of each event, in order; runs of an event that a mask marks
    ``collapse`` become one (their number depends on timing)."""
    out: list[JSON] = []
    for event in events:
        name = str(event.get("event"))
        item = {"event": name, "data": mask(event.get("data", {}), f"event:{name}")}
        if out and out[-1] == item and any(m.collapse for m in masks_for(f"event:{name}")):
            continue
        out.append(item)
    return out


def _step_events(events: list[JSON], command: str) -> list[JSON]:
    """Without the events a mask scoped ``events-of:<step>`` drops (its path: the name)."""
    drop = [m.path for m in masks_for(f"events-of:{command}")]
    return [e for e in events if not any(fnmatch.fnmatchcase(str(e.get("event")), p) for p in drop)]


def normalise(obs: Observation, command: str, names: dict[str, str]) -> Observation:
    reply = substitute(obs.reply, names)
    if "return" in reply:
        reply = {"return": mask(reply["return"], f"reply:{command}")}
    return Observation(
        reply,
        {
            role: normalise_events(_step_events(substitute(ev, names), command))
            for role, ev in obs.events.items()
        },
        {role: mask(substitute(st, names), "state") for role, st in obs.state.items()},
    )


@dataclass
class _Walk:
    step: int
    command: str
    where: str

    def diff(self, ref: Any, cand: Any, path: str = "") -> Iterator[Difference]:
        if isinstance(ref, dict) and isinstance(cand, dict):
            for key in sorted(set(ref) | set(cand)):
                sub = f"{path}.{key}" if path else key
                if key not in cand:
                    yield self._d(sub, ref[key], "<missing>")
                elif key not in ref:
                    yield self._d(sub, "<missing>", cand[key])
                else:
                    yield from self.diff(ref[key], cand[key], sub)
        elif isinstance(ref, list) and isinstance(cand, list):
            for i in range(max(len(ref), len(cand))):
                sub = f"{path}[{i}]"
                if i >= len(cand):
                    yield self._d(sub, ref[i], "<missing>")
                elif i >= len(ref):
                    yield self._d(sub, "<missing>", cand[i])
                else:
                    yield from self.diff(ref[i], cand[i], sub)
        elif ref != cand or type(ref) is not type(cand):
            yield self._d(path or "(value)", ref, cand)

    def _d(self, path: str, ref: Any, cand: Any) -> Difference:
        return Difference(self.step, self.command, self.where, path, ref, cand)


def compare(step: int, command: str, ref: Observation, cand: Observation) -> list[Difference]:
    """Every difference between two normalised observations (at most MAX_DIFFERENCES)."""
    out: list[Difference] = []
    out += _Walk(step, command, "reply").diff(ref.reply, cand.reply)
    for role in sorted(set(ref.events) | set(cand.events)):
        walk = _Walk(step, command, f"events:{role}")
        out += walk.diff(ref.events.get(role, []), cand.events.get(role, []))
    for role in sorted(set(ref.state) | set(cand.state)):
        walk = _Walk(step, command, f"state:{role}")
        out += walk.diff(ref.state.get(role, {}), cand.state.get(role, {}))
    return out[:MAX_DIFFERENCES]
