"""Hypothesis profiles and the count of generated inputs the property tests print.

``default`` keeps the unit suite fast; ``nightly`` tries at least 10,000 inputs per property test.
Choose with ``ADDONSTACK_HYPOTHESIS_PROFILE=nightly`` or ``pytest --hypothesis-profile nightly``.
Imported by tests/conftest.py so the profiles exist before Hypothesis' pytest plugin loads one.
"""

from __future__ import annotations

import os
from collections import Counter

from hypothesis import HealthCheck, settings

PROFILE_ENV = "ADDONSTACK_HYPOTHESIS_PROFILE"
_SLOW_OK = [HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much]

settings.register_profile("default", max_examples=150, deadline=None, suppress_health_check=_SLOW_OK)
settings.register_profile(
    "nightly", max_examples=10_000, deadline=None, suppress_health_check=_SLOW_OK, print_blob=True
)
settings.load_profile(os.environ.get(PROFILE_ENV, "default"))

# Test node id -> inputs tried (one per call of the test body, shrinking included).
TRIED: Counter[str] = Counter()


def tried() -> None:
    """Count one input of the running property test."""
    current = os.environ.get("PYTEST_CURRENT_TEST", "?").rsplit(" ", 1)[0]
    TRIED[current] += 1
