"""Reports that fit on a disk: big artifacts of passing tests go, old runs go on request.

A passing test's snapshot files, disk images and packet captures say nothing a failure
would need; its logs, QMP transcript and migration samples are small and stay. Big
files are kept for failed tests, or for every test with ``--keep-artifacts``.
"""

from __future__ import annotations

import shutil
from pathlib import Path

#: files at least this big are "big" (guest memory, snapshot streams, disk images)
BIG = 1 << 20
#: small but kept only on failure: packet captures
FAILURE_ONLY = (".pcap",)


def prune_artifacts(folder: Path, limit: int = BIG) -> int:
    """Delete big files (and captures) under ``folder``; return the bytes freed."""
    freed = 0
    if not folder.is_dir():
        return 0
    for path in sorted(folder.rglob("*")):
        try:
            if not path.is_file() or path.is_symlink():
                continue
            size = path.stat().st_blocks * 512  # sparse disk images count what they use
            if size >= limit or path.suffix in FAILURE_ONLY:
                path.unlink()
                freed += size
        except OSError:
            continue
    return freed


def prune_runs(report_dir: Path, keep: int) -> list[Path]:
    """Delete all but the newest ``keep`` run folders (and never the one ``latest``
    points at); return what was deleted."""
    if keep < 1:
        raise ValueError(f"--keep {keep}: keep at least one run")
    latest = report_dir / "latest"
    protected = latest.resolve() if latest.is_symlink() else None
    runs = sorted(
        (p for p in report_dir.iterdir() if p.is_dir() and not p.is_symlink()
         and ((p / "run.json").exists() or (p / "results.jsonl").exists())),
        key=lambda p: p.stat().st_mtime,
        reverse=True,
    )  # fmt: skip
    gone = []
    for run in runs[keep:]:
        if protected is not None and run.resolve() == protected:
            continue
        shutil.rmtree(run, ignore_errors=True)
        gone.append(run)
    return gone
