"""Figures of a run, errors of the simulation against the real runs, the table.

Per run: converged, total time, bytes (ram.transferred; at the cancel for runs that do
not converge, both real and simulated cut at the same time), dirty syncs, downtime,
guest-visible pause, post-copy page requests, XBZRLE cache misses. Per configuration
the real figure is the median of the real runs, the simulated one the median of the
simulations (one per real run's layout). A ratio figure's error is |ln(sim/real)|;
its geometric mean over configurations is exp(mean) - 1, so 0.03 means 3%.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass, field
from typing import Any

JSON = dict[str, Any]
RATIO_FIGURES = ("total_ms", "bytes", "downtime_ms", "pause_ms", "postcopy_requests", "xbzrle_miss")
FIGURES = ("converged", "total_ms", "bytes", "syncs", *RATIO_FIGURES[2:])
#: the issue's targets: geometric mean / worst relative error, or factor, or count
TARGETS: dict[str, str] = {
    "converged": "100% classified right",
    "total_ms": "geo-mean <= 3%, worst <= 8%",
    "bytes": "geo-mean <= 2%",
    "syncs": "within 1",
    "downtime_ms": "within a factor 1.3",
    "postcopy_requests": "within a factor 2",
    "pause_ms": "(no target)",
    "xbzrle_miss": "same bounds as bytes",
}


def figures(report: JSON) -> JSON:
    """The figures of one run (real or simulated) from its report."""
    hv = report["hvlab"]
    final = hv["final"]
    done = final.get("status") == "completed"
    at = final if done else (hv.get("last_active") or final)
    ram = at.get("ram", {})
    out: JSON = {
        "converged": done,
        "total_ms": final.get("total-time") if done else None,
        "bytes": ram.get("transferred"),
        "syncs": ram.get("dirty-sync-count"),
        "downtime_ms": _downtime(hv, final) if done else None,
        "pause_ms": hv.get("pause_ms") if done else None,
        "postcopy_requests": ram.get("postcopy-requests")
        if report["scenario"].get("post_copy")
        else None,
        "xbzrle_miss": at.get("xbzrle-cache", {}).get("cache-miss")
        if report["scenario"].get("compression_xbzrle")
        else None,
    }
    return out


def _downtime(hv: JSON, final: JSON) -> float | None:
    """Downtime in ms at QEMU's resolution: query-migrate reports whole ms, so values
    below 1 ms read as 1 (the simulator's exact value is rounded up the same way)."""
    exact = hv.get("downtime_s")
    value = exact * 1000 if isinstance(exact, float) else final.get("downtime")
    return None if value is None else max(1.0, float(value))


def _median(values: list[Any]) -> Any:
    vals = [v for v in values if v is not None]
    if not vals:
        return None
    if all(isinstance(v, bool) for v in vals):
        return sum(vals) * 2 > len(vals)
    return statistics.median(vals)


def summary(runs: list[JSON]) -> JSON:
    """Median figures over runs, plus the spread (max/min) of the ratio figures."""
    figs = [figures(r) for r in runs]
    out: JSON = {k: _median([f[k] for f in figs]) for k in FIGURES}
    spread: JSON = {}
    for k in RATIO_FIGURES:
        vals = [f[k] for f in figs if f[k]]
        spread[k] = max(vals) / min(vals) if len(vals) > 1 else None
    out["spread"] = spread
    out["n"] = len(runs)
    return out


@dataclass
class ConfigScore:
    name: str
    real: JSON
    sim: JSON
    errors: JSON = field(default_factory=dict)  # figure -> signed relative error / diff


def score(name: str, real_runs: list[JSON], sim_runs: list[JSON]) -> ConfigScore:
    real, sim = summary(real_runs), summary(sim_runs)
    errors: JSON = {"converged": real["converged"] == sim["converged"]}
    for k in RATIO_FIGURES:
        a, b = real[k], sim[k]
        if a and b is not None and a > 0 and b > 0:
            errors[k] = b / a - 1
        elif a == 0 and b == 0:
            errors[k] = 0.0
    if real["syncs"] is not None and sim["syncs"] is not None:
        errors["syncs"] = sim["syncs"] - real["syncs"]
    return ConfigScore(name, real, sim, errors)


def aggregate(scores: list[ConfigScore]) -> JSON:
    """Per figure: configurations scored, geometric-mean error, worst, and the verdict."""
    out: JSON = {}
    conv = [s.errors["converged"] for s in scores]
    out["converged"] = {"n": len(conv), "right": sum(conv), "met": all(conv)}
    syncs = [abs(s.errors["syncs"]) for s in scores if "syncs" in s.errors]
    out["syncs"] = {
        "n": len(syncs),
        "worst": max(syncs) if syncs else None,
        "mean": statistics.mean(syncs) if syncs else None,
        "met": bool(syncs) and max(syncs) <= 1,
    }
    for k in RATIO_FIGURES:
        logs = [abs(math.log1p(s.errors[k])) for s in scores if k in s.errors]
        if not logs:
            out[k] = {"n": 0}
            continue
        gm = math.exp(statistics.mean(logs)) - 1
        worst = math.exp(max(logs)) - 1
        entry: JSON = {"n": len(logs), "geo_mean": gm, "worst": worst}
        if k == "total_ms":
            entry["met"] = gm <= 0.03 and worst <= 0.08
        elif k in ("bytes", "xbzrle_miss"):
            entry["met"] = gm <= 0.02
        elif k == "downtime_ms":
            entry["met"] = worst <= 0.3
        elif k == "postcopy_requests":
            entry["met"] = worst <= 1.0
        out[k] = entry
    return out


def _fmt(k: str, v: Any) -> str:
    if v is None:
        return "-"
    if k == "converged":
        return "yes" if v else "no"
    if k == "bytes":
        return f"{v / 1e6:.1f}M"
    if isinstance(v, float):
        return f"{v:.0f}" if abs(v) >= 10 else f"{v:.1f}"
    return str(v)


def _err(k: str, e: Any) -> str:
    if e is None:
        return ""
    if k == "converged":
        return "" if e else " !"
    if k == "syncs":
        return f" ({e:+d})" if isinstance(e, int) else f" ({e:+.1f})"
    return f" ({100 * e:+.1f}%)"


def table(scores: list[ConfigScore], agg: JSON) -> str:
    """Per configuration: real / simulated (error) per figure; then the aggregates."""
    cols = list(FIGURES)
    lines = ["configuration | n | " + " | ".join(cols)]
    lines.append("|".join(["---"] * (len(cols) + 2)))
    for s in scores:
        cells = []
        for k in cols:
            if s.real[k] is None and s.sim[k] is None:
                cells.append("-")
                continue
            cells.append(f"{_fmt(k, s.real[k])} / {_fmt(k, s.sim[k])}{_err(k, s.errors.get(k))}")
        lines.append(f"{s.name} | {s.real['n']} | " + " | ".join(cells))
    lines.append("")
    lines.append("figure | configs | geo-mean error | worst | target | met")
    lines.append("---|---|---|---|---|---")
    for k in cols:
        a = agg.get(k, {})
        if k == "converged":
            lines.append(
                f"converged | {a['n']} | {a['right']}/{a['n']} right | | {TARGETS[k]} | "
                f"{'yes' if a['met'] else 'no'}"
            )
        elif k == "syncs":
            worst = "-" if a.get("worst") is None else f"{a['worst']:g}"
            mean = "-" if a.get("mean") is None else f"{a['mean']:.2f} (mean |diff|)"
            lines.append(
                f"syncs | {a['n']} | {mean} | {worst} | {TARGETS[k]} | "
                f"{'yes' if a.get('met') else 'no'}"
            )
        elif a.get("n"):
            met = a.get("met")
            verdict = "-" if met is None else ("yes" if met else "no")
            lines.append(
                f"{k} | {a['n']} | {100 * a['geo_mean']:.1f}% | {100 * a['worst']:.1f}% | "
                f"{TARGETS[k]} | {verdict}"
            )
        else:
            lines.append(f"{k} | 0 | - | - | {TARGETS[k]} | -")
    return "\n".join(lines)
