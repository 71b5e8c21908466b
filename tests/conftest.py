"""Fixtures shared by every test directory: fixed keys, a card directory, and the real `age` tools.

A missing tool fails the test that needs it (never a skip): `make test` installs them all (system-packages.txt).
"""

from __future__ import annotations

import shutil
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from consentbox.crypto import MLKEM768X25519Identity, X25519Identity, identity_file_text
from consentbox.recording.journal import Journal, JournalError


def required_tool(name: str) -> str:
    """The path of command `name`; the test fails, loudly, when it is not installed."""
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"the `{name}` command is not installed: `make test` installs what tests need")
    return path


@pytest.fixture(scope="session")
def age_cli() -> str:
    """The real `age` binary: our files must open with it."""
    return required_tool("age")


@pytest.fixture(scope="session")
def age_keygen_cli() -> str:
    """The real `age-keygen` (from the same Debian package as `age`)."""
    return required_tool("age-keygen")


@pytest.fixture(scope="session")
def identity() -> X25519Identity:
    """The supervisor's key, fixed so that failures reproduce."""
    return X25519Identity.generate(secret=bytes(range(32)))


@pytest.fixture(scope="session")
def other_identity() -> X25519Identity:
    """A second fixed key, for files that must not open with the first."""
    return X25519Identity.generate(secret=bytes(range(100, 132)))


@pytest.fixture(scope="session")
def pq_identity() -> MLKEM768X25519Identity:
    """A supervisor's post-quantum key (mlkem768x25519), fixed so that failures reproduce."""
    return MLKEM768X25519Identity(bytes(range(32)))


@pytest.fixture(scope="session")
def other_pq_identity() -> MLKEM768X25519Identity:
    """A second fixed post-quantum key."""
    return MLKEM768X25519Identity(bytes(range(100, 132)))


@pytest.fixture(scope="session")
def started() -> datetime:
    """The wall-clock time the box gives a session, with its UTC offset."""
    return datetime(2026, 3, 4, 9, 30, 0, tzinfo=timezone(timedelta(hours=1)))


@pytest.fixture
def key_file(tmp_path: Path, identity: X25519Identity) -> Path:
    """The supervisor's identity file, as `age -i` and `consentbox-admin -i` take it."""
    path = tmp_path / "supervisor.key"
    path.write_text(identity_file_text(identity, datetime(2026, 1, 1, tzinfo=UTC)))
    return path


@pytest.fixture
def card(tmp_path: Path) -> Path:
    """An empty directory standing in for the card."""
    path = tmp_path / "card"
    path.mkdir()
    return path


def _journal_failed(error: JournalError) -> None:
    raise AssertionError(f"the box's journal failed: {error}")


@pytest.fixture
def journal(tmp_path: Path) -> Journal:
    """The box's journal in a fresh state directory (`tmp_path`/state); any journal failure fails the test."""
    return Journal(tmp_path / "state", on_failure=_journal_failed)
