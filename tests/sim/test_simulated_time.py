"""The simulated wall clock (sim/wall_clock.py), the simulated wipe timer (sim/wipe_timer.py), and the refusals of
`consentbox simulate --start-at` and `advance`; `--start-at` exists on `simulate` only."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime
from pathlib import Path

import pytest

from consentbox.cli.consentbox import build_parser, main
from consentbox.core.errors import PolicyError
from consentbox.core.policy import Policy
from consentbox.crypto import X25519Identity
from consentbox.sim.wall_clock import parse_start_at, simulated_start
from consentbox.sim.wipe_timer import next_wipe
from consentbox.state.clock_floor import ClockFloor
from consentbox.testing.signal import position_pcm, write_wav

HOUR = 3600
MARCH_1 = int(datetime(2027, 3, 1, tzinfo=UTC).timestamp())


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("2027-03-01", MARCH_1),  # a date: midnight UTC
        ("2027-03-01T09:30", MARCH_1 + 9 * HOUR + 1800),  # no offset: UTC
        ("2027-03-01T09:30:15.9Z", MARCH_1 + 9 * HOUR + 1815),  # fractions dropped
        ("2027-03-01T10:30+01:00", MARCH_1 + 9 * HOUR + 1800),  # an offset is honoured
    ],
)
def test_start_at_takes_an_iso_date_or_date_and_time_in_utc(text, seconds):
    assert parse_start_at(text) == seconds


@pytest.mark.parametrize(("text", "message"), [
    ("yesterday", "is not an ISO date"), ("2027-02-30", "is not an ISO date"), ("9000-01-01", "is too late")])
def test_a_bad_start_is_a_one_line_error(text, message):
    with pytest.raises(PolicyError) as caught:
        parse_start_at(text)
    assert str(caught.value).startswith(f"--start-at: {text!r} {message}") and "\n" not in str(caught.value)


def test_the_default_start_is_now_or_the_state_s_clock_floor_if_that_is_later(tmp_path):
    assert simulated_start(tmp_path, None, now=lambda: MARCH_1 + 0.7) == MARCH_1
    ClockFloor(tmp_path).raise_to(MARCH_1 + HOUR)
    assert simulated_start(tmp_path, None, now=lambda: MARCH_1 + 0.7) == MARCH_1 + HOUR
    assert simulated_start(tmp_path, MARCH_1 + HOUR) == MARCH_1 + HOUR


def test_the_timer_runs_first_at_the_next_hour_then_only_at_the_first_hour_from_each_later_expiry():
    expiries = [MARCH_1 + 5 * HOUR, MARCH_1 + 7 * HOUR + 1, MARCH_1 - HOUR]
    assert next_wipe(MARCH_1 + 10, expiries, pending=True) == MARCH_1 + HOUR
    assert next_wipe(MARCH_1 + HOUR, expiries, pending=True) == MARCH_1 + 2 * HOUR  # strictly after
    assert next_wipe(MARCH_1 + HOUR, expiries, pending=False) == MARCH_1 + 5 * HOUR  # an expiry on the hour
    assert next_wipe(MARCH_1 + 5 * HOUR, expiries, pending=False) == MARCH_1 + 8 * HOUR
    assert next_wipe(MARCH_1 + 8 * HOUR, expiries, pending=False) is None


def _simulate(tmp_path: Path, script: str, *options: str) -> int:
    (tmp_path / "card").mkdir(parents=True, exist_ok=True)
    write_wav(tmp_path / "input.wav", position_pcm(0, 10 * Policy().rate, Policy()), Policy())
    (tmp_path / "script.txt").write_text(script)
    return main(["simulate", "--script", str(tmp_path / "script.txt"), "--audio", str(tmp_path / "input.wav"),
                 "--card", str(tmp_path / "card"), "--recipient", X25519Identity.generate().recipient.to_string(),
                 "--state", str(tmp_path / "state"), *options])


RECORDING = "0 tap record\n1 tap consent 1\n2 tap consent 2\n3 hold record 1.2\n"


@pytest.mark.parametrize(
    ("script", "options", "message"),
    [
        ("0 end\n", ("--start-at", "1 March"), "consentbox: --start-at: '1 March' is not an ISO date"),
        ("0 tap record\n5 advance 1d\n", ("--realtime",), "consentbox: script line 2: 'advance' needs virtual time"),
        (RECORDING + "10 advance 1d\n", (), "consentbox: script line 5: 'advance' while recording"),
    ],
)
def test_refusals_are_one_line_errors(tmp_path, capsys, script, options, message):
    assert _simulate(tmp_path, script, *options) == 1
    error = capsys.readouterr().err
    assert error.startswith(message) and error.count("\n") == 1, error


def test_a_start_before_the_clock_floor_is_refused_as_time_never_goes_back(tmp_path, capsys):
    assert _simulate(tmp_path, "0 tap record\n5 end\n", "--start-at", "2027-03-01T09:00") == 0
    assert ClockFloor(tmp_path / "state").read() == MARCH_1 + 9 * HOUR
    capsys.readouterr()
    assert _simulate(tmp_path, "0 end\n", "--start-at", "2027-03-01T08:59") == 1
    error = capsys.readouterr().err
    assert error == (f"consentbox: --start-at 2027-03-01T08:59:00Z is before the clock floor of {tmp_path / 'state'}, "
                     "2027-03-01T09:00:00Z: time never goes back on a box; start at or after it, or with a new "
                     "--state\n")
    assert _simulate(tmp_path, "0 end\n", "--start-at", "2027-03-01T09:00") == 0


def _subcommands() -> dict[str, argparse.ArgumentParser]:
    [commands] = [action for action in build_parser()._actions if isinstance(action, argparse._SubParsersAction)]
    return dict(commands.choices)


def test_only_simulate_can_set_the_clock():
    parsers = _subcommands()
    having = [name for name, parser in parsers.items()
              if any("--start-at" in action.option_strings for action in parser._actions)]
    assert having == ["simulate"]
    with pytest.raises(SystemExit) as caught:
        build_parser().parse_args(["run", "--start-at", "2027-03-01"])
    assert caught.value.code == 2
