"""Choosing the microphone: this machine's if an ALSA capture device opens, else the test signal."""

from __future__ import annotations

import contextlib
from pathlib import Path

import pytest

from consentbox.core.policy import Policy
from consentbox.hw.alsa import AlsaSource
from consentbox.sim.web.level import peak_dbfs
from consentbox.sim.web.microphone import capture_devices, choose_microphone

POLICY = Policy()
LAPTOP = """\
00-00: ALC3246 Analog : ALC3246 Analog : playback 1 : capture 1
00-03: HDMI 0 : HDMI 0 : playback 1
01-00: USB Audio : USB Audio : capture 1
"""
PLAYBACK_ONLY = "00-00: bcm2835 Headphones : bcm2835 Headphones : playback 8\n"


def test_capture_devices_are_the_pcms_that_capture():
    assert capture_devices(LAPTOP) == ["plughw:0,0", "plughw:1,0"]
    assert capture_devices(PLAYBACK_ONLY) == []
    assert capture_devices("") == []


def listing(tmp_path: Path, text: str | None) -> Path:
    path = tmp_path / "pcm"
    if text is not None:
        path.write_text(text)
    return path


def choose(tmp_path: Path, text: str | None, opening: set[str], tried: list[str]) -> str:
    def probe(device: str, policy: Policy) -> str | None:
        tried.append(device)
        return None if device in opening else f"cannot open {device}"

    with contextlib.ExitStack() as stack:
        microphone = choose_microphone("auto", POLICY, stack, proc_pcm=listing(tmp_path, text), probe=probe,
                                       tone_seconds=1)
        return microphone.words


@pytest.mark.parametrize("text", [None, "", PLAYBACK_ONLY], ids=["no sound cards", "empty", "playback only"])
def test_without_a_capturing_card_it_is_the_test_signal_and_nothing_is_opened(tmp_path, text):
    tried: list[str] = []
    assert choose(tmp_path, text, {"default"}, tried).startswith("a generated test signal")
    assert tried == []


def test_the_default_device_comes_first(tmp_path):
    tried: list[str] = []
    assert choose(tmp_path, LAPTOP, {"default", "plughw:0,0"}, tried) == \
        "this machine's microphone, ALSA device 'default'"
    assert tried == ["default"]


def test_then_each_capturing_card_in_turn(tmp_path):
    tried: list[str] = []
    assert "'plughw:1,0'" in choose(tmp_path, LAPTOP, {"plughw:1,0"}, tried)
    assert tried == ["default", "plughw:0,0", "plughw:1,0"]


def test_when_none_opens_it_says_why_and_uses_the_test_signal(tmp_path):
    words = choose(tmp_path, LAPTOP, set(), [])
    assert words.startswith("a generated test signal")
    assert "cannot open default; cannot open plughw:0,0; cannot open plughw:1,0" in words


def test_a_named_device_is_taken_as_it_is():
    with contextlib.ExitStack() as stack:
        assert choose_microphone("hw:7,0", POLICY, stack).device == "hw:7,0"


def test_the_test_signal_is_captured_through_libasound():
    with contextlib.ExitStack() as stack:
        microphone = choose_microphone("tone", POLICY, stack, tone_seconds=1)
        source = AlsaSource(microphone.device, POLICY)
        source.open()
        try:
            beep = source.read()
        finally:
            source.close()
    assert peak_dbfs(beep, POLICY.sample_format) == pytest.approx(-12.2, abs=0.1)  # 8000 of 32768
