"""The libvirt targets: what suites/test_flags.py runs its migrate-flag rules against.

Two targets, one code path (:class:`simulator.libvirt.session.Session`):
``libvirt-model`` (the model in simulator/libvirt) and ``libvirt-9.0`` (two private
libvirtd 9.0 daemons, :mod:`harness.libvirt.daemon`). The suites take them as the
``libvirt_target`` parameter; the report shows their names in its target column.
"""

from __future__ import annotations

import contextlib
import re
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass

from harness.libvirt.control import real_session
from harness.libvirt.daemon import LIBVIRTD, can_run_libvirtd
from simulator.libvirt.control import ModelControl
from simulator.libvirt.session import Session

REAL_VERSION = "9.0"  # libvirt-python is pinned to 9.0.0 (pyproject.toml)


def libvirtd_version(binary: str = LIBVIRTD) -> str | None:
    """``major.minor`` of the installed libvirtd, or None if it cannot tell."""
    try:
        out = subprocess.run(
            [binary, "--version"], capture_output=True, text=True, timeout=30, check=False
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    found = re.search(r"(\d+)\.(\d+)(?:\.\d+)?\s*$", out.strip())
    return f"{found.group(1)}.{found.group(2)}" if found else None


@dataclass(frozen=True)
class LibvirtTarget:
    name: str
    real: bool

    def unavailable_reason(self) -> str | None:
        """Why this target cannot run here (a skip reason), or None."""
        if not self.real:
            return None
        reason = can_run_libvirtd()
        if reason:
            return reason
        version = libvirtd_version()
        if version != REAL_VERSION:
            return f"{LIBVIRTD} is libvirt {version or 'of unknown version'}, not {REAL_VERSION}"
        return None

    @contextlib.contextmanager
    def session(self) -> Iterator[Session]:
        """A :class:`Session` on this target, closed (daemons stopped) on exit."""
        if self.real:
            with real_session() as s:
                yield s
            return
        import simulator.libvirt as sim

        sim.reset()
        s = Session(sim, ModelControl())
        try:
            yield s
        finally:
            s.close()


LIBVIRT_TARGETS = (
    LibvirtTarget("libvirt-model", real=False),
    LibvirtTarget(f"libvirt-{REAL_VERSION}", real=True),
)


def select_libvirt(wanted: list[str]) -> list[LibvirtTarget]:
    """The libvirt targets ``--target`` names (exact or prefix); all without --target."""
    if not wanted:
        return list(LIBVIRT_TARGETS)
    return [t for t in LIBVIRT_TARGETS if any(t.name.startswith(w) for w in wanted)]
