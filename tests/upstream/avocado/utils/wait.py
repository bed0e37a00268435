"""avocado.utils.wait.wait_for over hvlab's one wait helper (harness/waits.py).

avocado's contract: call ``func`` until it returns something true and return that, or
return None once ``timeout`` seconds have passed (the caller's assertions then fail).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from harness.errors import WaitTimeout
from harness.waits import wait_for as _wait_for


def wait_for(
    func: Callable[..., Any],
    timeout: float,
    first: float = 0.0,
    step: float = 1.0,
    text: str | None = None,
    args: Any = None,
    kwargs: Any = None,
) -> Any:
    call_args, call_kwargs = tuple(args or ()), dict(kwargs or {})

    def probe() -> Any:
        value = func(*call_args, **call_kwargs)
        return value if value else None

    try:
        return _wait_for(probe, timeout, text or getattr(func, "__name__", "a condition"), step)
    except WaitTimeout:
        return None
