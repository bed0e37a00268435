"""Agreement between model and real verdicts: per scenario, per field, per entry point.

A scenario agrees when its :meth:`Verdict.key` is equal on both sides (verdict,
error code and domain, both hosts' state, reason and persistence, live operation
results); the masked message texts are counted apart (the issue asks 100% of the
former and >= 99% of the latter). Where the model documents a race (two hosts fail at
once and libvirt reports whichever failure its job saw first), the real verdict may
match either error; such rows agree and are counted as ``raced`` with the reason.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable
from typing import Any

from simulator.libvirt.scenario import Scenario, Side, Verdict

Field = Callable[[Verdict], Any]


def _side(which: str, attr: str) -> Field:
    def get(v: Verdict) -> Any:
        side: Side | None = getattr(v, which)
        if side is None:
            return None
        if attr == "persistence":
            return (side.exists, side.persistent)
        return (side.exists, getattr(side, attr))

    return get


#: Each compared field; the error fields count only scenarios both sides refused.
FIELDS: dict[str, Field] = {
    "verdict": lambda v: v.accepted,
    "error code": lambda v: v.code,
    "error domain": lambda v: v.domain,
    "source state": _side("source", "state"),
    "source reason": _side("source", "reason"),
    "source persistence": _side("source", "persistence"),
    "dest state": _side("dest", "state"),
    "dest reason": _side("dest", "reason"),
    "dest persistence": _side("dest", "persistence"),
    "live operations": lambda v: tuple(o.key() for o in v.ops),
    "message (masked)": lambda v: v.masked(),
}
_REFUSED_ONLY = ("error code", "error domain")


def compare(scenarios: list[Scenario], model: list[Verdict], real: list[Verdict]) -> dict[str, Any]:
    rows = []
    agree = 0
    fields: dict[str, list[int]] = {name: [0, 0] for name in FIELDS}
    per_api: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])
    for sc, m, r in zip(scenarios, model, real, strict=True):
        matched = m.matched_by(r)
        same = matched is not None
        raced = same and matched is not m
        seen = matched or m  # what the fields are compared with: the race's error if it won
        text = seen.masked() == r.masked()
        agree += same
        api = per_api[sc.api.value]
        api[0] += 1
        api[1] += same
        api[2] += text
        for name, get in FIELDS.items():
            if name in _REFUSED_ONLY and (seen.accepted or r.accepted):
                continue
            if name == "live operations" and not sc.ops:
                continue
            fields[name][0] += 1
            fields[name][1] += get(seen) == get(r)
        rows.append(
            {
                "scenario": sc.label(),
                "api": sc.api.value,
                "agree": same,
                "text_agree": text,
                "raced": m.race if raced else "",
                "model": m.to_json(),
                "real": r.to_json(),
            }
        )
    n = len(rows)
    return {
        "compared": n,
        "agree": agree,
        "agreement_pct": _pct(agree, n),
        "accepted_real": sum(v.accepted for v in real),
        "fields": {
            k: {"compared": c, "agree": a, "pct": _pct(a, c)} for k, (c, a) in fields.items()
        },
        "entry_points": {
            k: {"compared": c, "agree": a, "pct": _pct(a, c), "text_pct": _pct(t, c)}
            for k, (c, a, t) in sorted(per_api.items())
        },
        "raced": sum(bool(r["raced"]) for r in rows),
        "disagreements": [r for r in rows if not r["agree"]],
        "text_disagreements": [r for r in rows if r["agree"] and not r["text_agree"]],
        "rows": rows,
    }


_WINDOW = (
    "timing: the guest had next to nothing to send, so its memory transfer took "
    "milliseconds; whether the operations, made as soon as a poll of the job showed "
    "memory statistics, reached the job in its Finish/Confirm phase or came after it "
    "depends on that poll. The model keeps the job in that phase while operations are "
    "made, which is what real libvirt did in most such scenarios"
)

#: Remaining differences whose cause is known: (name, test on a report row, reason).
KNOWN: tuple[tuple[str, Callable[[dict[str, Any]], bool], str], ...] = (
    (
        "operation error without its domain",
        lambda row: (
            _same_call(row)
            and any(
                o["code"] is None or (o["code"] == 42 and o["domain"] == 0)
                for o in row["real"]["ops"]
            )
        ),
        "timing: the operation queued behind the migration job and the migrated domain "
        "was removed meanwhile, so virDomainObjBeginJob (src/conf/virdomainjob.c, "
        "VIR_FROM_NONE) refused it instead of qemuDomainObjFromDomain (VIR_FROM_QEMU); "
        "or the error reached libvirt-python without its code",
    ),
    (
        "live operations and the end of a short job",
        lambda row: "busy=False" in row["scenario"] and "ops=" in row["scenario"],
        _WINDOW,
    ),
)


def _same_call(row: dict[str, Any]) -> bool:
    """Model and real agree on the call itself and both hosts; only operations differ."""
    m, r = row["model"], row["real"]
    keys = ("accepted", "code", "domain", "source", "dest")
    return all(m[k] == r[k] for k in keys)


def reason_for(row: dict[str, Any]) -> str:
    """The known cause of a difference, or "unexplained"."""
    for name, test, reason in KNOWN:
        if test(row):
            return f"{name}: {reason}"
    return "unexplained"


def _pct(a: int, n: int) -> float:
    return round(100.0 * a / n, 3) if n else 100.0


def summary(report: dict[str, Any]) -> str:
    """Figures per field and entry point, then disagreements grouped by verdict pair."""
    lines = [
        f"libvirt differential, seed {report['seed']}, {report.get('mode', 'real')} run",
        f"compared {report['compared']}, agree {report['agree']} "
        f"({report['agreement_pct']}%, of which raced {report.get('raced', 0)}: a "
        "documented race's other error), "
        f"real accepted {report['accepted_real']}",
        f"model {report.get('model_seconds')} s, real {report.get('real_seconds')} s",
        "per field (compared, agree, %):",
    ]
    lines += [
        f"  {name:20} {f['compared']:6} {f['agree']:6} {f['pct']:8}%"
        for name, f in report["fields"].items()
    ]
    lines.append("per entry point (compared, agree, %, masked text %):")
    lines += [
        f"  {name:20} {e['compared']:6} {e['agree']:6} {e['pct']:8}% {e['text_pct']:8}%"
        for name, e in report["entry_points"].items()
    ]
    for title, key in (("disagreements", "disagreements"), ("text only", "text_disagreements")):
        groups: Counter[tuple[str, str, str]] = Counter()
        for row in report[key]:
            groups[(_verdict_text(row["model"]), _verdict_text(row["real"]), reason_for(row))] += 1
        if groups:
            lines.append(f"{title} (count: model | real | reason):")
            lines += [
                f"  {n}: {m}\n     | {r}\n     reason: {why}"
                for (m, r, why), n in groups.most_common()
            ]
        else:
            lines.append(f"no {title}")
    return "\n".join(lines) + "\n"


def _verdict_text(v: dict[str, Any]) -> str:
    ops = " ops=" + ",".join(
        "ok" if o["ok"] else f"{o['code']}/{o['domain']} {o['message'][:60]}" for o in v["ops"]
    )
    ops = ops if v["ops"] else ""

    def side(s: dict[str, Any] | None) -> str:
        if not s or not s["exists"]:
            return "-"
        return f"{s['state']}/{s['reason']}{'p' if s['persistent'] else 't'}"

    where = f"src={side(v['source'])} dst={side(v['dest'])}"
    if v["accepted"]:
        return f"accepted {where}{ops}"
    return f"{v['code']}/{v['domain']} {v['message'][:110]} {where}{ops}"
