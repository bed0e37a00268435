"""Real vs simulated remaining-RAM curves (one PNG per configuration, and a grid)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

JSON = dict[str, Any]


def _curve(report: JSON) -> tuple[list[float], list[float]]:
    """(seconds since migrate, remaining MiB) from the progress history."""
    hist = report["progress_history"]
    if not hist:
        return [], []
    t0 = hist[0]["now"] - hist[0]["duration"] / 1000 if report["hvlab"]["kind"] == "real" else 0
    xs = [p["now"] - t0 for p in hist]
    ys = [p["ram"]["remaining_bytes"] / (1 << 20) for p in hist]
    return xs, ys


def _draw(ax: Any, name: str, real: list[JSON], sim: list[JSON]) -> None:
    for i, r in enumerate(real):
        xs, ys = _curve(r)
        ax.plot(
            xs, ys, color="tab:blue", alpha=0.6, lw=1, label="real QEMU 7.2" if i == 0 else None
        )
    for i, r in enumerate(sim):
        xs, ys = _curve(r)
        ax.plot(xs, ys, color="tab:orange", ls="--", lw=1.5, label="simulator" if i == 0 else None)
    ax.set_title(name, fontsize=9)
    ax.set_xlabel("s")
    ax.set_ylabel("remaining MiB")
    ax.set_yscale("symlog", linthresh=1)
    ax.legend(fontsize=7)


def write(out: Path, runs: dict[str, tuple[list[JSON], list[JSON]]]) -> list[Path]:
    """One PNG per configuration plus all.png; returns the files."""
    out.mkdir(parents=True, exist_ok=True)
    files = []
    for name, (real, sim) in runs.items():
        fig, ax = plt.subplots(figsize=(6, 3.5))
        _draw(ax, name, real, sim)
        fig.tight_layout()
        path = out / f"{name}.png"
        fig.savefig(path, dpi=90)
        plt.close(fig)
        files.append(path)
    if runs:
        cols = 3
        rows = math.ceil(len(runs) / cols)
        fig, axes = plt.subplots(rows, cols, figsize=(5 * cols, 3.2 * rows), squeeze=False)
        for ax, (name, (real, sim)) in zip(axes.flat, runs.items(), strict=False):
            _draw(ax, name, real, sim)
        for ax in list(axes.flat)[len(runs) :]:
            ax.axis("off")
        fig.tight_layout()
        path = out / "all.png"
        fig.savefig(path, dpi=80)
        plt.close(fig)
        files.append(path)
    return files
