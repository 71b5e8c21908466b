"""SIGTERM stops the box, finalising what is open: nothing a signal handler does can hang the main loop
(issue 22, the flaky SIGTERM test).

The handler that wakes the clock runs in the main thread between any two bytecodes, so also while that
thread is inside the clock, waking or sleeping. With a lock there (a threading.Event's) the handler waited
for its own thread: an idle box ignored SIGTERM until systemd killed it. Each box here runs in a process
of its own, so that a hang can be bounded: first a loop that turns through the clock as fast as it can
while signals wake it, then a whole box (the daemon's wiring on mock pins, a file microphone, real time)
stopped while it records.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from consentbox.admin.export import read_manifest
from consentbox.core.policy import Policy
from consentbox.core.reasons import EndReason
from consentbox.crypto import X25519Identity
from consentbox.recording.manifest import manifest_name
from consentbox.testing.signal import position_pcm, write_wav

#: Wakes sent from a signal handler before SIGTERM: with a lock in the handler's way, a few are enough to hang.
WAKES = 200

LOOP = """
import signal
from consentbox.box.clock import RealClock
from consentbox.box.daemon import StopRequest

clock = RealClock()
stop = StopRequest(clock)
stop.on_signals()
signal.signal(signal.SIGUSR1, lambda signum, frame: clock.wake())
print("turning", flush=True)
while not stop.requested:  # the main loop's use of the clock, with nothing to wait for
    clock.wake()  # Box.post
    clock.sleep_until(clock.now())  # Box.run_until
print("stopped", flush=True)
"""


def test_signals_that_wake_the_main_loop_never_hang_it_and_sigterm_stops_it():
    box = subprocess.Popen([sys.executable, "-c", LOOP], stdout=subprocess.PIPE, text=True)
    try:
        assert box.stdout is not None and box.stdout.readline() == "turning\n"
        for _ in range(WAKES):
            box.send_signal(signal.SIGUSR1)
            time.sleep(0.001)  # not a measure: apart, so that each lands somewhere else in the loop
        box.send_signal(signal.SIGTERM)
        box.wait(timeout=60)
    except subprocess.TimeoutExpired:
        pytest.fail("the main loop hung in a signal handler: SIGTERM did not stop it")
    finally:
        if box.poll() is None:
            box.kill()
            box.wait()
    assert (box.stdout.read(), box.returncode) == ("stopped\n", 0)


#: `consentbox run` (box/daemon.py) on mock pins, a file microphone and the card directory under argv[1],
#: encrypting to argv[2]; a thread presses the panel's buttons as people would, up to a recording.
RECORDING = """
import json, sys, threading, time
from pathlib import Path
from consentbox.box.clock import RealClock
from consentbox.box.config import load_config
from consentbox.box.daemon import StopRequest, serve
from consentbox.box.notify import Notifier
from consentbox.box.wiring import assemble_box
from consentbox.core.events import RECORD, ConsentButton
from consentbox.crypto import parse_recipient
from consentbox.sim.file_microphone import FileMicrophone
from consentbox.sim.pins import SimulatedFactory, drive_button
from consentbox.sim.simulate import simulated_config

root = Path(sys.argv[1])
config = simulated_config(load_config(None), card=root / "card", recipients=[parse_recipient(sys.argv[2])],
                          seats=2, shared_consent=False, state_dir=root / "state")
with FileMicrophone(root / "input.wav", config.policy) as microphone:
    clock = RealClock()
    box = assemble_box(config, clock=clock, pin_factory=SimulatedFactory(clock.now), audio_device=microphone.device,
                       report=lambda entry: print(json.dumps(entry), flush=True))
    stop = StopRequest(clock)
    stop.on_signals()

    def people():  # set up, both consent, RECORD held
        for button, held in ((RECORD, 0.1), (ConsentButton(1), 0.1), (ConsentButton(2), 0.1), (RECORD, 1.5)):
            pin = box.panel.buttons[button].pin
            drive_button(pin, pressed=True, pull_up=config.panel.pull_up)
            time.sleep(held)
            drive_button(pin, pressed=False, pull_up=config.panel.pull_up)

    threading.Thread(target=people, daemon=True).start()
    serve(box, clock, Notifier(), stop)
"""


def test_sigterm_while_recording_finalises_the_session_and_stops_the_box(tmp_path: Path):
    identity = X25519Identity.generate()
    write_wav(tmp_path / "input.wav", position_pcm(0, 60 * Policy().rate, Policy()), Policy())
    (tmp_path / "card").mkdir()
    box = subprocess.Popen([sys.executable, "-c", RECORDING, str(tmp_path), identity.recipient.to_string()],
                           stdout=subprocess.PIPE, text=True)
    timeline: list[dict[str, Any]] = []
    recording = threading.Event()

    def read() -> None:
        assert box.stdout is not None
        for line in box.stdout:
            entry = json.loads(line)
            timeline.append(entry)
            if entry["event"] == "capture" and entry["open"]:
                recording.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        assert recording.wait(60), "the box never started recording"
        box.send_signal(signal.SIGTERM)
        box.wait(timeout=60)
    except subprocess.TimeoutExpired:
        pytest.fail("consentbox run did not stop on SIGTERM while recording")
    finally:
        if box.poll() is None:
            box.kill()
            box.wait()
    reader.join(timeout=60)
    assert not reader.is_alive() and box.returncode == 0

    [session] = [entry for entry in timeline if entry["event"] == "session"]
    assert (session["end"], session["kept"]) == ("shutdown", True)
    closed = [entry for entry in timeline if entry["event"] == "capture" and not entry["open"]]
    assert closed and closed[0]["t"] <= session["t"], "the session ended with capture open"
    manifest = read_manifest(tmp_path / "card" / manifest_name(session["id"]), [identity])
    assert manifest.end_reason is EndReason.SHUTDOWN and manifest.intervals, "the card's manifest was not finalised"


def test_wakes_while_the_box_never_sleeps_do_not_pile_up():
    # While capture is open the loop reads audio and never sleeps, and every event posted wakes the clock:
    # a wake queued per event grew without bound over a long recording.
    from consentbox.box.clock import RealClock

    clock = RealClock()
    for _ in range(10_000):
        clock.wake()
    assert clock._wakes.qsize() == 1  # what is queued is the point here
    clock.sleep_until(clock.now() + 60)  # the one wake ends this sleep at once
    assert clock._wakes.empty()
