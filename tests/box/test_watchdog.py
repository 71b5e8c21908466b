"""systemd's watchdog is fed by the main loop itself (issue 9, item 3): a hung loop stops the pings.

The real `serve` loop runs in a thread against a socket that speaks the sd_notify protocol; the card's
readiness check, which the loop calls every turn, is made to hang, as a card stuck in the kernel would.
"""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from consentbox.box.clock import RealClock
from consentbox.box.config import load_config
from consentbox.box.daemon import StopRequest, serve
from consentbox.box.notify import Notifier
from consentbox.box.wiring import assemble_box
from consentbox.core.policy import Policy
from consentbox.crypto import X25519Identity
from consentbox.sim.file_microphone import FileMicrophone
from consentbox.sim.pins import SimulatedFactory
from consentbox.sim.simulate import simulated_config
from consentbox.testing.signal import position_pcm, write_wav
from tests.support.notify_socket import NotifySocket


class HangingCard:
    """The box's card, whose readiness check blocks while `hang` is set."""

    def __init__(self, card) -> None:
        self._card = card
        self.path = card.path
        self.hang = threading.Event()
        self.hanging = threading.Event()
        self.release = threading.Event()

    def problems(self):
        if self.hang.is_set():
            self.hanging.set()
            self.release.wait()
        return self._card.problems()


def drain(notify: NotifySocket) -> None:
    try:
        while True:
            assert notify.receive(timeout=0.2) == "WATCHDOG=1"
    except TimeoutError:
        pass


@pytest.fixture
def notify(tmp_path: Path, monkeypatch) -> NotifySocket:
    with NotifySocket(tmp_path / "notify.sock", timeout=5) as socket:
        monkeypatch.setenv("NOTIFY_SOCKET", str(socket.path))
        yield socket


@pytest.fixture
def microphone(tmp_path: Path) -> FileMicrophone:
    write_wav(tmp_path / "input.wav", position_pcm(0, Policy().rate, Policy()), Policy())
    with FileMicrophone(tmp_path / "input.wav", Policy()) as microphone:
        yield microphone


def test_a_hung_main_loop_stops_feeding_the_watchdog_and_a_free_one_feeds_it_again(tmp_path: Path, notify,
                                                                                   microphone):
    (tmp_path / "card").mkdir()
    config = simulated_config(load_config(None), card=tmp_path / "card",
                              recipients=[X25519Identity.generate().recipient], seats=2, shared_consent=False,
                              state_dir=tmp_path / "state")
    clock = RealClock()
    box = assemble_box(config, clock=clock, pin_factory=SimulatedFactory(clock.now),
                       audio_device=microphone.device, report=lambda entry: None)
    card = HangingCard(box.card)
    box.card = card
    stop = StopRequest(clock)
    loop = threading.Thread(target=serve, args=(box, clock, Notifier(), stop))
    loop.start()
    try:
        assert notify.receive() == "READY=1\nSTATUS=IDLE: ready"
        assert [notify.receive(), notify.receive()] == ["WATCHDOG=1", "WATCHDOG=1"]  # a turn a second
        card.hang.set()
        assert card.hanging.wait(5)
        drain(notify)  # the ping of the turn that then hung, and any before it
        with pytest.raises(TimeoutError):
            notify.receive(timeout=3.5)  # three turns' time and not one ping: systemd would restart it
        card.hang.clear()
        card.release.set()
        assert notify.receive(timeout=5) == "WATCHDOG=1"
    finally:
        card.hang.clear()
        card.release.set()
        stop.request()
        loop.join(timeout=10)
    assert not loop.is_alive()
    assert notify.receive() == "STOPPING=1\nSTATUS=stopping"
