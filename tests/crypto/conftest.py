"""Fixtures for the age tests: seeded randomness, fixed keys, and the real `age` command line.

The fixtures hold no state, so they are session-scoped, which Hypothesis tests can use too.
"""

from __future__ import annotations

import random
import shutil
from collections.abc import Callable

import pytest

from consentbox.crypto import X25519Identity

RandomBytes = Callable[[int], bytes]


@pytest.fixture(scope="session")
def seeded_random() -> Callable[[int], RandomBytes]:
    """`seeded_random(seed)` stands in for os.urandom: same seed, same bytes, so outputs are exact."""
    return lambda seed: random.Random(seed).randbytes


@pytest.fixture(scope="session")
def identity() -> X25519Identity:
    """A fixed identity, so that failures reproduce."""
    return X25519Identity.generate(secret=bytes(range(32)))


@pytest.fixture(scope="session")
def other_identity() -> X25519Identity:
    """A second fixed identity, for files that must not open with the first."""
    return X25519Identity.generate(secret=bytes(range(100, 132)))


def _command(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"the `{name}` command is not installed: apt-get install age")
    return path


@pytest.fixture(scope="session")
def age_cli() -> str:
    """Path of the real `age` binary; its absence fails the test, since interop is the point."""
    return _command("age")


@pytest.fixture(scope="session")
def age_keygen_cli() -> str:
    """Path of the real `age-keygen` binary (from the same Debian package as `age`)."""
    return _command("age-keygen")
