"""The log scan: it finds audio and key material as it is, in hex or in base64, wherever it starts, and
nothing in a real box's log lines."""

from __future__ import annotations

import base64
import json
import os

import pytest

from consentbox.box.logs import journal_fields
from consentbox.core.policy import Policy
from consentbox.crypto import X25519Identity
from consentbox.crypto.signing import DeviceSigningKey
from consentbox.testing.signal import position_pcm
from tests.support.leaks import AUDIO_STRIDE, KEY_STRIDE, Secrets, device_key_bytes, probes

AUDIO = position_pcm(0, 48_000, Policy())
KEY = os.urandom(32)
IDENTITY = X25519Identity.generate().to_string()
SECRETS = Secrets((probes(AUDIO, "the audio", AUDIO_STRIDE), probes(KEY, "the key", KEY_STRIDE)), (IDENTITY,))
#: A line as the box logs it, to hide things in.
LINE = json.dumps({"t": 12.5, "event": "fault", "problem": "card full", "detail": "{}"}, separators=(",", ":"))

ENCODINGS = {
    "as is": lambda data: data,
    "in hex": lambda data: data.hex().encode(),
    "in base64": base64.b64encode,
}


def hidden(data: bytes, before: bytes = b"") -> bytes:
    return LINE.encode().replace(b"{}", before + data)


@pytest.mark.parametrize("encoding", ENCODINGS)
@pytest.mark.parametrize("start", [0, 1, 5, 63, 4097])
@pytest.mark.parametrize("before", [b"", b"x", b"ab", b"abc"])  # other characters of the same alphabet first
def test_a_run_of_the_audio_is_found_however_it_is_written_and_wherever_it_starts(encoding, start, before):
    run = AUDIO[start : start + AUDIO_STRIDE + 7]
    assert SECRETS.leaks(hidden(ENCODINGS[encoding](run), before), "stderr") == [
        f"stderr holds the audio, {encoding}"]


@pytest.mark.parametrize("encoding", ENCODINGS)
@pytest.mark.parametrize("start", [0, 3, 21])
def test_eleven_bytes_of_a_key_are_found(encoding, start):
    run = KEY[start : start + KEY_STRIDE + 7]
    assert SECRETS.leaks(hidden(ENCODINGS[encoding](run)), "ledger.jsonl") == [
        f"ledger.jsonl holds the key, {encoding}"]


def test_url_safe_base64_is_found_too():
    key = bytes.fromhex("fbffbf") * 10 + os.urandom(2)  # base64 "+/+/…", URL-safe "-_-_…"
    secrets = Secrets((probes(key, "the key", KEY_STRIDE),))
    assert secrets.leaks(hidden(base64.urlsafe_b64encode(key)), "x") == ["x holds the key, in base64"]


def test_an_age_identity_is_found_by_its_form_and_by_its_data_in_either_case():
    assert SECRETS.leaks(hidden(X25519Identity.generate().to_string().encode()), "out") == [
        "out holds an age secret key (AGE-SECRET-KEY-1…)"]
    data = IDENTITY.removeprefix("AGE-SECRET-KEY-1")
    for piece in (data[20:35], data[20:35].lower()):
        assert SECRETS.leaks(hidden(piece.encode()), "out") == [
            "out holds the key data of an age identity the test made"]


def test_a_pem_private_key_is_found_and_so_is_the_device_key_in_it(tmp_path):
    key = DeviceSigningKey.generate()
    key.save(tmp_path / "device.key")
    pem = (tmp_path / "device.key").read_text()
    secrets = Secrets((probes(device_key_bytes(pem), "the device key", KEY_STRIDE),))
    assert secrets.leaks(pem.encode(), "out") == ["out holds a PEM private key", "out holds the device key, in base64"]
    [body] = [line for line in pem.splitlines() if not line.startswith("-----")]
    assert secrets.leaks(hidden(body.encode()), "out") == ["out holds the device key, in base64"]


def test_the_words_that_name_a_secret_and_a_box_s_real_log_lines_are_no_leak():
    named = "no AGE-SECRET-KEY-1… line found; a secret key (not shown: treat it as exposed and replace it)"
    assert SECRETS.leaks(hidden(named.encode()), "out") == []
    entries = [
        {"t": 0.0, "event": "state", "state": "IDLE"},
        {"t": 3.2, "event": "setup", "id": os.urandom(8).hex(), "headcount": 2},
        {"t": 9.0, "event": "file", "name": os.urandom(8).hex() + ".000.wav.age", "sha256": os.urandom(32).hex()},
        {"t": 9.1, "event": "ledger", "signature": base64.b64encode(os.urandom(64)).decode(), "prev": "0" * 64},
    ]
    text = "\n".join(value for entry in entries for value in journal_fields(entry).values())
    assert SECRETS.leaks(text.encode(), "out") == []


def test_silence_in_the_input_is_not_a_secret():
    silent = Secrets((probes(bytes(4096) + AUDIO[:4096], "the audio", AUDIO_STRIDE),))
    assert silent.leaks(hidden(bytes(200).hex().encode()), "out") == []
    assert silent.leaks(hidden(AUDIO[1000:1100].hex().encode()), "out") == ["out holds the audio, in hex"]


def test_several_leaks_give_one_line_each():
    output = hidden(KEY.hex().encode() + b" " + base64.b64encode(AUDIO[:200]))
    assert SECRETS.leaks(output, "stdout") == ["stdout holds the key, in hex", "stdout holds the audio, in base64"]
