"""The self-test (issue 9, item 6): what it checks, the codes it gives, and the REC LED while it listens."""

from __future__ import annotations

import math
from pathlib import Path

from consentbox.box import selftest as selftest_module
from consentbox.box.box import Box
from consentbox.box.clock import VirtualClock
from consentbox.box.config import load_config
from consentbox.box.selftest import self_test, session_bytes
from consentbox.box.wiring import assemble_box
from consentbox.core.commands import RecLed
from consentbox.core.policy import Policy
from consentbox.core.reasons import Problem
from consentbox.crypto import X25519Identity
from consentbox.sim.pins import SimulatedFactory
from consentbox.sim.simulate import simulated_config
from consentbox.testing.fakes import FailingSource, GeneratedSource
from tests.support.cards import read_only_card, small_card
from tests.support.simulated import play

POLICY = Policy()
SHORT = Policy(max_session=60.0, min_free_mb=0)  # a minute of audio: 5.5 MiB


class SilentSource(GeneratedSource):
    """A microphone that opens and delivers digital zeros, as a muted or unplugged one can."""

    def read(self) -> bytes:
        super().read()
        return bytes(POLICY.period_frames * POLICY.frame_bytes)


def test_a_good_card_and_microphone_pass_and_the_probe_leaves_nothing(tmp_path: Path):
    result = self_test(tmp_path, GeneratedSource(POLICY), POLICY, listen=True)
    assert result.problems == frozenset() and result.details == () and result.listened
    assert list(tmp_path.iterdir()) == []


def test_a_missing_card_is_code_1(tmp_path: Path):
    result = self_test(tmp_path / "nowhere", GeneratedSource(POLICY), POLICY, listen=False)
    assert result.problems == {Problem.NO_CARD}


def test_a_read_only_card_is_code_2(tmp_path: Path):
    (tmp_path / "source").mkdir()
    with read_only_card(tmp_path / "source", tmp_path / "card") as card:
        result = self_test(card, GeneratedSource(POLICY), POLICY, listen=False)
    assert result.problems == {Problem.CARD_READ_ONLY} and "refused a test write" in result.details[0]


def test_a_card_without_room_for_max_session_is_code_3(tmp_path: Path):
    assert session_bytes(SHORT) == 5_760_000 // 65_536 * 65_552 + 65_552  # 88 sealed chunks
    with small_card(tmp_path / "card", 8 << 20) as card:
        assert self_test(card, GeneratedSource(POLICY), SHORT, listen=False).problems == frozenset()
        result = self_test(card, GeneratedSource(POLICY), POLICY, listen=False)  # 4 h: 1.3 GiB
    assert result.problems == {Problem.CARD_FULL} and "needs 1382 MiB" in result.details[0]


def test_a_card_too_full_for_the_probe_is_code_3(tmp_path: Path):
    with small_card(tmp_path / "card", 64 << 10) as card:
        while True:
            try:
                with open(card / "filler", "ab") as filler:
                    filler.write(bytes(4096))
            except OSError:
                break
        result = self_test(card, GeneratedSource(POLICY), SHORT, listen=False)
    assert result.problems == {Problem.CARD_FULL}


def test_a_microphone_that_cannot_open_is_code_7(tmp_path: Path):
    microphone = FailingSource(GeneratedSource(POLICY), POLICY)
    microphone.lose()
    result = self_test(tmp_path, microphone, POLICY, listen=False)
    assert result.problems == {Problem.NO_AUDIO_DEVICE}


def test_a_silent_microphone_is_code_7_only_when_listened_to(tmp_path: Path):
    assert self_test(tmp_path, SilentSource(POLICY), POLICY, listen=False).problems == frozenset()
    result = self_test(tmp_path, SilentSource(POLICY), POLICY, listen=True)
    assert result.problems == {Problem.NO_AUDIO_DEVICE} and "only silence" in result.details[0]


class SpyPanel:
    """The box's panel, noting whether the REC LED was lit at each read of the microphone."""

    def __init__(self, panel) -> None:
        self._panel = panel
        self.rec = False

    def show(self, command) -> None:
        if isinstance(command, RecLed):
            self.rec = command.on
        self._panel.show(command)

    def close(self) -> None:
        self._panel.close()


class WatchedSource(GeneratedSource):
    def __init__(self, policy: Policy, panel: SpyPanel) -> None:
        super().__init__(policy)
        self.panel = panel
        self.reads_with_led: list[bool] = []

    def read(self) -> bytes:
        self.reads_with_led.append(self.panel.rec)
        return super().read()


def simulated_box(tmp_path: Path) -> tuple[Box, list[dict]]:
    """A box of the shipped configuration on mock pins, a card directory and virtual time; its timeline."""
    (tmp_path / "card").mkdir()
    config = simulated_config(load_config(None), card=tmp_path / "card",
                              recipients=[X25519Identity.generate().recipient], seats=2, shared_consent=False,
                              state_dir=tmp_path / "state")
    clock = VirtualClock()
    timeline: list[dict] = []
    box = assemble_box(config, clock=clock, pin_factory=SimulatedFactory(clock.now), audio_device="null",
                       report=timeline.append)
    return box, timeline


def test_the_box_listens_at_start_with_the_rec_led_lit_and_then_shows_the_result(tmp_path: Path):
    box, timeline = simulated_box(tmp_path)
    box.panel = panel = SpyPanel(box.panel)
    box.audio = source = WatchedSource(box.policy, panel)
    box.start()
    box.check_readiness()
    box.pump()
    assert source.reads_with_led == [True]  # one period was enough to hear sound; it was read under REC
    assert not panel.rec  # and off again
    [entry] = [e for e in timeline if e["event"] == "selftest"]
    assert entry == {"t": 0.0, "event": "selftest", "ok": True, "listened": True, "codes": [], "details": []}
    assert box.status_line() == "IDLE: ready"
    box.shut_down()


def test_a_failed_self_test_stands_on_the_status_led_until_a_retry_passes(tmp_path: Path):
    box, timeline = simulated_box(tmp_path)
    box.audio = SilentSource(box.policy)
    box.start()
    box.check_readiness()
    box.pump()
    assert box.status_line() == "IDLE: cannot record: no audio device (code 7)"
    box.audio = GeneratedSource(box.policy)  # the microphone is plugged in
    box.run_until(box.policy.notice_timeout - 1)
    box.check_readiness()
    assert box.status_line().endswith("(code 7)")  # not retried yet
    box.run_until(box.policy.notice_timeout)
    box.check_readiness()
    box.pump()
    assert box.status_line() == "IDLE: ready"
    assert [e["ok"] for e in timeline if e["event"] == "selftest"] == [False, True]
    box.shut_down()


def test_a_card_the_box_already_refuses_gets_no_test_write(tmp_path, monkeypatch):
    def no_write(*args, **kwargs):
        raise AssertionError("the self-test wrote to a card the box refuses")

    monkeypatch.setattr(selftest_module, "create_file", no_write)
    result = self_test(tmp_path, GeneratedSource(POLICY), POLICY, listen=False, write_card=False)
    assert result.problems == frozenset()


def test_the_self_test_runs_at_start_and_again_after_each_session_ends(tmp_path: Path):
    # A session recorded and ended, then a set-up withdrawn from: three self-tests, the first listening.
    timeline: list[dict] = []
    play(tmp_path, "0 tap record\n1 tap consent 1\n2 tap consent 2\n4 hold record 1.2\n8 hold record 2.5\n"
         "20 tap record\n21 hold consent 1 2.5\n30 end\n", timeline.append)
    ran = [(entry["event"], entry.get("listened")) for entry in timeline if entry["event"] in ("selftest", "session")]
    assert ran == [("selftest", True), ("selftest", False), ("session", None), ("selftest", False), ("session", None)]


class SwitchedMicrophone(WatchedSource):
    """A microphone that opens and delivers digital zeros (muted, or its cable out) until it is `switched_on`;
    it notes whether the REC LED was lit at each read."""

    def __init__(self, policy: Policy, panel: SpyPanel) -> None:
        super().__init__(policy, panel)
        self.switched_on = False

    def read(self) -> bytes:
        period = super().read()
        return period if self.switched_on else bytes(len(period))


def test_a_retry_after_a_silent_microphone_listens_again_and_only_sound_turns_the_box_green(tmp_path: Path):
    # Issue 17, point 5: a retry that only opened the device turned the box green over a silent microphone.
    box, timeline = simulated_box(tmp_path)
    box.panel = panel = SpyPanel(box.panel)
    box.audio = microphone = SwitchedMicrophone(box.policy, panel)
    box.start()
    box.check_readiness()
    box.pump()
    for retry in range(1, 4):
        box.run_until(retry * box.policy.notice_timeout)
        box.check_readiness()
        box.pump()
        assert box.status_line() == "IDLE: cannot record: no audio device (code 7)", f"retry {retry}"
    ran = [(entry["ok"], entry["listened"]) for entry in timeline if entry["event"] == "selftest"]
    assert ran == [(False, True)] * 4, "each retry must listen, and a silent microphone fail it"
    listening = math.ceil(selftest_module.LISTEN_SECONDS / box.policy.period_seconds)
    assert microphone.reads_with_led == [True] * listening * 4, "every period listened to under the REC LED"
    assert not panel.rec

    microphone.switched_on = True  # unmuted: the next retry hears it
    box.run_until(4 * box.policy.notice_timeout)
    box.check_readiness()
    box.pump()
    assert box.status_line() == "IDLE: ready"
    assert [(entry["ok"], entry["listened"]) for entry in timeline if entry["event"] == "selftest"][-1] == (True, True)
    assert microphone.reads_with_led[-1] is True and not panel.rec
    box.shut_down()

