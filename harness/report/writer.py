"""The end of the report pipeline: a run folder -> results.json, junit.xml and the HTML.

The pytest plugin calls :func:`finish_run` when the session ends; ``hvlab run`` and
``hvlab report`` call :func:`rebuild` on a run folder (finished, partial or old).
"""

from __future__ import annotations

import sys
from pathlib import Path

from harness.report.html import Progress, write_html
from harness.report.results import RunReport, TestResult, summarize, write_final


def finish_run(report: RunReport) -> list[TestResult]:
    """Mark the run finished, write results.json, junit.xml and index.html.

    A failure to render the HTML is reported on stderr and in run.json (``html_error``)
    but never loses the JSON/JUnit results nor fails the run.
    """
    results = report.finish()
    try:
        write_html(report.dir)
    except Exception as exc:  # a broken page must not turn a run into an error
        report.update_meta(html_error=f"{type(exc).__name__}: {exc}")
        print(f"hvlab: index.html not written: {exc}", file=sys.stderr)
    return results


def rebuild(run_dir: Path, progress: Progress | None = None) -> tuple[list[TestResult], Path]:
    """Write results.json, junit.xml and the HTML again from what the run left."""
    results = write_final(run_dir)
    return results, write_html(run_dir, progress)


def summary_lines(results: list[TestResult]) -> list[str]:
    """The run for a terminal: counts per target, skip reasons, failures' last lines."""
    lines = [f"{'target':<24}{'passed':>8}{'failed':>8}{'error':>8}{'diverged':>10}{'skipped':>9}"]
    for target, c in summarize(results).items():
        lines.append(
            f"{target:<24}{c['passed']:>8}{c['failed']:>8}"
            f"{c['error']:>8}{c['diverged']:>10}{c['skipped']:>9}"
        )
    reasons = sorted({(r.target, r.message) for r in results if r.outcome == "skipped"})
    lines.extend(f"skipped on {target or '-'}: {reason}" for target, reason in reasons[:10])
    for r in results:
        if r.outcome in ("failed", "error"):
            last = (r.message.strip().splitlines() or [""])[-1][:150]
            lines.append(f"{r.outcome.upper()} {r.nodeid}: {last}")
    return lines
