"""Migration plots: remaining RAM, transferred bytes, dirty rate and throttle over time.

Input is ``<artifacts>/<vm>/migration.json``:
``{"samples": [{"t", "remaining", "transferred", "dirty-pages-rate",
"cpu-throttle-percentage", "status"}, ...], "status_history": [...]}``.
Output is one static PNG (matplotlib, Agg backend). Missing series are left out.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

MIB = 1024 * 1024

# (key, panel title, y label, divisor)
SERIES = (
    ("remaining", "Remaining RAM", "MiB", MIB),
    ("transferred", "Transferred", "MiB", MIB),
    ("dirty-pages-rate", "Dirty page rate", "pages/s", 1),
    ("cpu-throttle-percentage", "vCPU throttle", "%", 1),
)


def read_migration(path: Path) -> dict[str, Any] | None:
    """The migration record, or None if the file is absent, torn or not a record."""
    try:
        data = json.loads(path.read_text(encoding="utf-8", errors="replace"))
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or not isinstance(data.get("samples", []), list):
        return None
    return data


def _series(samples: list[Any], key: str, divisor: float) -> tuple[list[float], list[float]]:
    xs: list[float] = []
    ys: list[float] = []
    for s in samples:
        if not isinstance(s, dict):
            continue
        t, v = s.get("t"), s.get(key)
        if isinstance(t, int | float) and isinstance(v, int | float):
            xs.append(float(t))
            ys.append(float(v) / divisor)
    return xs, ys


def _status_changes(samples: list[Any]) -> list[tuple[float, str]]:
    changes: list[tuple[float, str]] = []
    last = None
    for s in samples:
        if not (isinstance(s, dict) and isinstance(s.get("t"), int | float)):
            continue
        if s.get("status") and s["status"] != last:
            changes.append((float(s["t"]), str(s["status"])))
            last = s["status"]
    return changes


def plot_migration(data: dict[str, Any], png: Path, title: str) -> bool:
    """Write the 2x2 panel plot to ``png``; False (nothing written) without samples."""
    samples = data.get("samples") or []
    panels = [(spec, _series(samples, spec[0], spec[3])) for spec in SERIES]
    if not any(xs for _, (xs, _) in panels):
        return False
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    fig, axes = plt.subplots(2, 2, figsize=(10, 6), sharex=True, layout="constrained")
    changes = _status_changes(samples)
    for ax, ((key, label, unit, _), (xs, ys)) in zip(axes.flat, panels, strict=True):
        ax.set_title(label, fontsize=10)
        ax.set_ylabel(unit)
        ax.grid(True, alpha=0.3)
        if xs:
            ax.plot(xs, ys, marker=".", markersize=3, linewidth=1.2, color="#0b57d0")
        else:
            ax.text(
                0.5,
                0.5,
                f"no {key} samples",
                ha="center",
                va="center",
                transform=ax.transAxes,
                color="#5b6475",
            )
        for t, _status in changes[1:]:
            ax.axvline(t, color="#8a4b00", linewidth=0.8, linestyle="--", alpha=0.7)
    for ax in axes[1]:
        ax.set_xlabel("time (s)")
    if changes:
        first = axes.flat[0]
        for t, status in changes:
            first.annotate(
                status,
                xy=(t, 1.0),
                xycoords=("data", "axes fraction"),
                fontsize=7,
                color="#8a4b00",
                rotation=90,
                va="top",
                ha="right",
            )
    fig.suptitle(title, fontsize=11)
    _save(fig, png)
    return True


def plot_wire(wire: Path, png: Path, title: str) -> bool:
    """Echo round trips over time (lost pings on top in red), the guest's heartbeat gaps
    and the announce frames, from a network probe's record (harness/net/probe.py)."""
    try:
        data = json.loads(wire.read_text())
    except (OSError, ValueError):
        return False
    pings = data.get("pings") or []
    if not pings:
        return False
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    t0 = float(pings[0][1])
    fig, ax = plt.subplots(figsize=(10, 3.6), layout="constrained")
    ok = [(float(s) - t0, (float(r) - float(s)) * 1000) for _, s, r in pings if r is not None]
    lost = [float(s) - t0 for _, s, r in pings if r is None]
    if ok:
        ax.plot(*zip(*ok, strict=True), ".", markersize=2, color="#0b57d0", label="echo RTT")
    top = max((y for _, y in ok), default=1.0) * 1.1 or 1.0
    if lost:
        ax.plot(lost, [top] * len(lost), "|", color="#b3261e", label=f"lost ({len(lost)})")
    colors = {"rarp": "#1e7d32", "garp": "#8a4b00"}
    for kind, color in colors.items():
        times = [f["t"] - t0 for f in data.get("frames") or [] if f.get("kind") == kind]
        for i, t in enumerate(times):
            ax.axvline(t, color=color, linewidth=0.8, alpha=0.7, label=kind if i == 0 else None)
    ax.set_xlabel("time (s)")
    ax.set_ylabel("RTT (ms)")
    ax.grid(True, alpha=0.3)
    ax.legend(loc="upper right", fontsize=8)
    fig.suptitle(title, fontsize=11)
    _save(fig, png)
    return True


def _save(fig: Any, png: Path) -> None:
    """Write the figure next to its final name, then move it there (no torn PNG)."""
    from matplotlib import pyplot as plt

    png.parent.mkdir(parents=True, exist_ok=True)
    tmp = png.with_suffix(".tmp.png")
    fig.savefig(tmp, dpi=90)
    plt.close(fig)
    tmp.replace(png)
