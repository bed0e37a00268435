"""Running a host tool the build needs (apt-get, dpkg-deb, depmod, modprobe): its
output, or one SetupError naming the command and the last line it printed."""

from __future__ import annotations

import subprocess
from pathlib import Path

from harness.errors import SetupError


def run_tool(argv: list[str], cwd: Path | None = None, timeout: float | None = None) -> str:
    try:
        done = subprocess.run(
            argv, cwd=cwd, capture_output=True, text=True, check=False, timeout=timeout
        )
    except FileNotFoundError as exc:
        raise SetupError(f"{argv[0]} not found: install it (make setup does)") from exc
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise SetupError(f"{argv[0]} could not run: {exc}", {"argv": argv}) from exc
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["(no output)"])[-1]
        raise SetupError(
            f"{' '.join(argv)} failed (exit {done.returncode}): {last}",
            {"argv": argv, "stderr": done.stderr[-2000:]},
        )
    return done.stdout
