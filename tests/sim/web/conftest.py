"""A running simulated box with its page, in this process, so tests read its pins directly.

The box runs its real main loop (`box.daemon.serve`) in a thread, on mock pins in real time, with
the generated test signal as its microphone; the page is on a free port of 127.0.0.1.
"""

from __future__ import annotations

import contextlib
import dataclasses
import threading
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from consentbox.box.config import load_config
from consentbox.crypto import X25519Identity
from consentbox.sim.simulate import simulated_config
from consentbox.sim.web.simulator import PanelSimulator

#: Seconds of test signal: more than any recording in these tests, and quick to make.
TONE_SECONDS = 20


def start_simulator(tmp_path: Path, identity: X25519Identity, *, policy: Mapping[str, Any] | None = None,
                    **panel: object) -> PanelSimulator:
    """A simulator on a free port with `tmp_path`/card and `tmp_path`/state; `policy` values over the shipped
    ones; `panel` as `simulated_config`'s."""
    card = tmp_path / "card"
    card.mkdir(exist_ok=True)
    config = simulated_config(load_config(), card=card, recipients=[identity.recipient],
                              state_dir=tmp_path / "state", **{"seats": 3, "shared_consent": False, **panel})
    config = dataclasses.replace(config, policy=dataclasses.replace(config.policy, **(policy or {})))
    return PanelSimulator(dataclasses.replace(config, web_port=0), microphone="tone", tone_seconds=TONE_SECONDS)


@contextlib.contextmanager
def running(simulator: PanelSimulator) -> Iterator[PanelSimulator]:
    """`simulator` with its box's main loop running in a thread; stopped and released at the end."""
    with simulator:
        loop = threading.Thread(target=simulator.run, name="box", daemon=True)
        loop.start()
        try:
            yield simulator
        finally:
            simulator.stop()
            loop.join(30)
            assert not loop.is_alive(), "the box did not stop"


@pytest.fixture
def simulator(request: pytest.FixtureRequest, tmp_path: Path, identity: X25519Identity) -> Iterator[PanelSimulator]:
    """A running box (three CONSENT seats) with its page, for one test; a test's indirect parameter, if it
    has one, is policy values for it."""
    with running(start_simulator(tmp_path, identity, policy=getattr(request, "param", None))) as simulator:
        yield simulator


@pytest.fixture(scope="module")
def untouched(tmp_path_factory: pytest.TempPathFactory, identity: X25519Identity) -> Iterator[PanelSimulator]:
    """A running box shared by a module's tests that must not change it (nothing may press its buttons)."""
    with running(start_simulator(tmp_path_factory.mktemp("untouched"), identity)) as simulator:
        yield simulator
