"""The one wait helper: every timeout in hvlab is scaled by one factor.

``--timeout-factor`` (pytest) or ``HVLAB_TIMEOUT_FACTOR`` sets the factor, so slow
hosts (TCG, nested virtualisation) stretch every wait without editing tests.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from typing import TypeVar

from harness.errors import WaitTimeout

T = TypeVar("T")

_factor: float = float(os.environ.get("HVLAB_TIMEOUT_FACTOR", "1") or "1")


def set_timeout_factor(factor: float) -> None:
    """Set the global factor applied to every timeout."""
    global _factor
    if factor <= 0:
        raise ValueError(f"timeout factor must be > 0, got {factor}")
    _factor = factor


def timeout_factor() -> float:
    return _factor


def scaled(seconds: float) -> float:
    """A timeout in seconds, scaled by the run's factor."""
    return seconds * _factor


def wait_for(
    probe: Callable[[], T | None],
    timeout: float,
    what: str,
    interval: float = 0.05,
    backoff: bool = True,
) -> T:
    """Call ``probe`` until it returns something other than None/False.

    The timeout is scaled. The pause between probes grows from ``interval`` to 0.5 s,
    so long waits do not spin; with ``backoff=False`` probes start every ``interval``
    seconds on a fixed schedule (a recorder that samples at a period). Raises
    WaitTimeout naming ``what``.
    """
    deadline = time.monotonic() + scaled(timeout)
    pause = interval
    gate = threading.Event()
    tick = time.monotonic()
    while True:
        value = probe()
        if value is not None and value is not False:
            return value
        now = time.monotonic()
        left = deadline - now
        if left <= 0:
            raise WaitTimeout(f"timed out after {scaled(timeout):.1f}s waiting for {what}")
        if backoff:
            gate.wait(min(pause, left))
            pause = min(pause * 1.5, 0.5)
        else:
            tick = max(tick + interval, now)
            gate.wait(min(tick - now, left))
