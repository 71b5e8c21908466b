"""Fixtures for the age tests: seeded randomness (keys and the `age` tools come from tests/conftest.py).

The fixtures hold no state, so they are session-scoped, which Hypothesis tests can use too.
"""

from __future__ import annotations

import random
from collections.abc import Callable

import pytest

RandomBytes = Callable[[int], bytes]


@pytest.fixture(scope="session")
def seeded_random() -> Callable[[int], RandomBytes]:
    """`seeded_random(seed)` stands in for os.urandom: same seed, same bytes, so outputs are exact."""
    return lambda seed: random.Random(seed).randbytes
