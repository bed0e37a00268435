"""Hypothesis profiles for every self-test (loaded before any test module).

No wall-clock deadline: examples run on a shared 2-core CI machine next to TCG guests,
where a 200 ms deadline fails on load, not on behaviour. ``HYPOTHESIS_PROFILE=thorough``
runs 5,000 examples per property instead of 400.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

settings.register_profile(
    "fast", max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile(
    "thorough", max_examples=5000, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "fast"))
