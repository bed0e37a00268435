"""The one wait helper: every timeout in hvlab is scaled by one factor.

``--timeout-factor`` (pytest) or ``HVLAB_TIMEOUT_FACTOR`` sets the factor, so slow
hosts (TCG, nested virtualisation) stretch every wait without editing tests.
"""

from __future__ import annotations

import math
import os
import threading
import time
from collections.abc import Callable
from typing import TypeVar

from harness.errors import WaitTimeout

T = TypeVar("T")

FACTOR_ENV = "HVLAB_TIMEOUT_FACTOR"
MAX_FACTOR = 1000.0


def parse_factor(text: str, what: str = "timeout factor") -> float:
    """A timeout factor from text: a finite number in (0, 1000]; ValueError (one line)
    otherwise. nan would make no wait ever time out, 0 every wait time out at once."""
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"{what} {text!r} is not a number") from None
    if not math.isfinite(value) or not 0 < value <= MAX_FACTOR:
        raise ValueError(f"{what} {text!r} must be a number above 0 and at most {MAX_FACTOR:g}")
    return value


_factor: float | None = None


def set_timeout_factor(factor: float) -> None:
    """Set the global factor applied to every timeout."""
    global _factor
    _factor = parse_factor(repr(factor))


def _current() -> float:
    global _factor
    if _factor is None:
        text = os.environ.get(FACTOR_ENV, "")
        _factor = parse_factor(text, FACTOR_ENV) if text else 1.0
    return _factor


def timeout_factor() -> float:
    return _current()


def scaled(seconds: float) -> float:
    """A timeout in seconds, scaled by the run's factor."""
    return seconds * _current()


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
