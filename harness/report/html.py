"""Render a run folder as static HTML: index.html, tests/<test>.html, plots/<test>-<vm>.png.

Reads only what the run wrote (run.json, results.jsonl, catalog.json, artifacts/), so it
works the same at the end of a run, on a partial run that was killed, and later via
``hvlab report RUN``. Pages come from the Jinja2 templates in ``templates/`` (see
:mod:`harness.report.page`); each is written to a temporary name and renamed into place.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from harness.report.artifacts import orphan_artifacts, vm_artifacts
from harness.report.catalog import build_matrix, load_catalog, ordered_targets
from harness.report.detail import PAGES, render_test_page
from harness.report.overview import render_index
from harness.report.page import test_slug
from harness.report.plots import plot_migration, plot_wire, read_migration
from harness.report.results import read_results

PLOTS = "plots"

Progress = Callable[[str, int, int], None]
"""progress(step, done, total): called as pages and plots are written."""


def read_meta(run_dir: Path) -> dict[str, Any]:
    try:
        meta = json.loads((run_dir / "run.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        meta = {}
    if not isinstance(meta, dict):
        meta = {}
    meta.setdefault("run_id", run_dir.name)
    return meta


def _write(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)


def _clear(folder: Path, suffix: str) -> None:
    if folder.is_dir():
        for old in folder.glob(f"*{suffix}"):
            old.unlink()
    folder.mkdir(exist_ok=True)


def write_html(run_dir: Path, progress: Progress | None = None) -> Path:
    """Write the run's HTML report and return the path of its index.html."""
    meta = read_meta(run_dir)
    results = read_results(run_dir)
    targets = ordered_targets(meta, results)
    catalog = load_catalog(run_dir)
    run_id = str(meta["run_id"])

    slugs: list[str] = []
    seen: set[str] = set()
    for r in results:
        slug = test_slug(r.nodeid)
        while slug in seen:  # the same nodeid twice (a rerun): keep both pages
            slug += "_"
        seen.add(slug)
        slugs.append(slug)
    pages = [f"{PAGES}/{s}.html" for s in slugs]

    _clear(run_dir / PAGES, ".html")
    _clear(run_dir / PLOTS, ".png")
    total = len(results)
    for i, (r, slug) in enumerate(zip(results, slugs, strict=True)):
        plots: dict[str, str] = {}
        for vm in vm_artifacts(run_dir, r.artifacts):
            if "wire.json" in vm.files:
                png = f"{PLOTS}/{slug}-{vm.name}.png"
                if plot_wire(vm.dir / "wire.json", run_dir / png, f"{r.name} — on the wire"):
                    plots[vm.name] = png
            if "migration.json" not in vm.files:
                continue
            data = read_migration(vm.dir / "migration.json")
            png = f"{PLOTS}/{slug}-{vm.name}.png"
            if progress:
                progress(f"plotting migration of {r.name} / {vm.name}", i, total)
            if data is not None and plot_migration(data, run_dir / png, f"{r.name} — {vm.name}"):
                plots[vm.name] = png
        _write(run_dir / pages[i], render_test_page(run_dir, r, catalog, plots, run_id))
        if progress:
            progress("test pages", i + 1, total)

    matrix = build_matrix(catalog, results, targets)
    orphans = orphan_artifacts(run_dir, {r.artifacts for r in results})
    index = run_dir / "index.html"
    _write(index, render_index(meta, results, targets, matrix, catalog, pages, orphans))
    return index
