"""`consentbox panel` (`make run`): the box simulated in real time, its front panel a page on 127.0.0.1.

The box is the real one, put together by `assemble_box` and run by the daemon's own main loop
(`box.daemon.serve`): the real `GpioPanel` on gpiozero mock pins (`SimulatedFactory` on the real
clock), real libasound capturing this machine's microphone or a generated test signal (`microphone`),
a directory as the card and another as the box's state, both under HOME and kept between runs (so a
session the last run left open is recovered, as on the box). The recordings are encrypted to a demo
supervisor key, HOME/supervisor.key (made on first use), so they can be exported and heard.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Any

from consentbox.box.box import Box, Report
from consentbox.box.clock import RealClock
from consentbox.box.config import Config
from consentbox.box.daemon import StopRequest, serve
from consentbox.box.notify import Notifier
from consentbox.box.timeline import describe
from consentbox.box.wiring import assemble_box
from consentbox.crypto.signing import DeviceSigningKey
from consentbox.sim.demo import QUIET_EVENTS, demo_identity
from consentbox.sim.pins import SimulatedFactory
from consentbox.sim.simulate import simulated_config
from consentbox.sim.web.buttons import PanelButtons
from consentbox.sim.web.feed import PanelFeed, Timeline
from consentbox.sim.web.level import LevelMeter
from consentbox.sim.web.microphone import TONE_SECONDS, Microphone, choose_microphone
from consentbox.sim.web.server import PanelServer
from consentbox.state.files import DEVICE_KEY


class PanelSimulator:
    """A box on mock pins with its page served; `run` is its main loop, `close` releases everything."""

    def __init__(self, config: Config, *, microphone: str, export_hint: str = "",
                 echo: Report = lambda entry: None, tone_seconds: float = TONE_SECONDS) -> None:
        """`config` as `simulated_config` makes it; `microphone` as `choose_microphone` takes it;
        `echo` also receives each timeline entry."""
        self.config = config
        self._cleanup = contextlib.ExitStack()
        with self._cleanup:
            # The port first: a taken port stops us before the box touches its card or ledger.
            self.server = self._cleanup.enter_context(contextlib.closing(PanelServer(config.web_port)))
            self.microphone: Microphone = choose_microphone(microphone, config.policy, self._cleanup,
                                                            tone_seconds=tone_seconds)
            self.clock = RealClock()
            self._stop = StopRequest(self.clock)
            self.timeline = Timeline()
            box: Box | None = None
            meter = LevelMeter(lambda: box.policy.sample_format if box else config.policy.sample_format)

            def report(entry: dict[str, Any]) -> None:
                self.timeline.add(entry)
                if entry["event"] == "capture" and not entry["open"]:
                    meter.clear()
                echo(entry)

            box = assemble_box(config, clock=self.clock, pin_factory=SimulatedFactory(self.clock.now),
                               audio_device=self.microphone.device, report=report, audio_tap=meter.tap)
            self.box = box
            self._box_running = True
            self._cleanup.callback(self._shut_down_box)  # unless `run` did
            self.feed = PanelFeed(box, self.timeline, meter, config.card_path)
            buttons = PanelButtons(self.feed.panel, pull_up=config.panel.pull_up,
                                   bounce_time=config.panel.bounce_time,
                                   shared_consent=config.panel.shared_consent)
            policy = box.policy
            layout = {
                "buttons": [dataclasses.asdict(face) for face in buttons.faces],
                "holds": {"record": policy.record_hold, "end": policy.end_hold, "withdraw": policy.withdraw_hold,
                          "withdraw_window": policy.withdraw_window},
                "card": str(config.card_path),
                "state": str(config.state_dir),
                "microphone": self.microphone.words,
                "export": export_hint,
            }
            self.feed.start()
            self._cleanup.callback(self.feed.close)
            self.server.serve(self.feed, buttons, layout)
            self._cleanup = self._cleanup.pop_all()  # everything made: `close` releases it

    @property
    def url(self) -> str:
        """The page's address."""
        return self.server.url

    def run(self) -> None:
        """The box's main loop (self-test, readiness, the session) until `stop`; then it shuts the box down."""
        serve(self.box, self.clock, Notifier(), self._stop)
        self._box_running = False  # serve shut it down

    def stop(self) -> None:
        """Make `run` finalise what is open and return (safe from signal handlers and other threads)."""
        self._stop.request()

    def stop_on_signals(self) -> None:
        """Make SIGINT (Ctrl+C) and SIGTERM `stop` the box, as they stop `consentbox run`."""
        self._stop.on_signals()

    def close(self) -> None:
        """Stop the page, shut the box down if `run` did not, release the microphone and the port."""
        self._cleanup.close()

    def _shut_down_box(self) -> None:
        if self._box_running:
            self._box_running = False
            self.box.shut_down()

    def __enter__(self) -> PanelSimulator:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.close()


def run_panel(config: Config, *, home: Path, microphone: str, seats: int | None, shared_consent: bool,
              say: Callable[[str], None] = print) -> None:
    """Run the simulated box with its page until SIGINT or SIGTERM, keeping its card and state under `home`."""
    home.mkdir(parents=True, exist_ok=True)
    card, state, key_file = home / "card", home / "state", home / "supervisor.key"
    card.mkdir(exist_ok=True)
    identity = demo_identity(key_file)
    config = simulated_config(config, card=card, recipients=[identity.recipient], seats=seats,
                              shared_consent=shared_consent, state_dir=state)
    # The box makes its device key at its first start; made now, the export line can pin it.
    state.mkdir(mode=0o700, parents=True, exist_ok=True)
    device_key = DeviceSigningKey.load_or_create(state / DEVICE_KEY).public_key
    export = f"consentbox-admin export -i {key_file} --device-key {device_key} --out {home / 'export'} {card}"

    def echo(entry: dict[str, Any]) -> None:
        if entry["event"] not in QUIET_EVENTS:
            say(describe(entry))

    with PanelSimulator(config, microphone=microphone, export_hint=export, echo=echo) as simulator:
        simulator.stop_on_signals()  # before the banner: the page serves, and its reader may stop us at once
        say(f"ConsentBox front panel: {simulator.url}")
        say(f"  card:       {card}/ (a directory; the box's state: {state}/)")
        say(f"  microphone: {simulator.microphone.words}")
        say(f"  supervisor: {key_file} (a demo key); export the card with: {export}")
        say("  Ctrl+C stops the box (what is being recorded is finalised first).\n")
        simulator.run()
    say(f"\nConsentBox stopped. Export the card with: {export}")

