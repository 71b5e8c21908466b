"""A box whose gpiozero can load no pin factory (no lgpio, no RPi.GPIO) cannot drive its panel, so no LED
can say why: `consentbox run` and `panel-off` write one line with status code 12 and exit 3, and `run`
tells systemd the same in STATUS= (docs/status-codes.md, "When the panel cannot start").

Run with the real gpiozero, which this machine (not a Raspberry Pi) gives no working factory."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.notify_socket import NotifySocket

CONSENTBOX = Path(sys.executable).parent / "consentbox"
#: The box's error, whatever gpiozero said: one line, the code, what to install.
LINE = ("consentbox: no GPIO pin driver: gpiozero could not load a pin factory ({said}); install python3-lgpio "
        "(or python3-rpi.gpio) and restart the box (status code 12)")


def box_config(tmp_path: Path) -> Path:
    """A configuration whose card and state are directories of `tmp_path`, pins gpiozero's own choice."""
    (tmp_path / "card").mkdir()
    config = tmp_path / "config.toml"
    config.write_text(f'[card]\npath = "{tmp_path / "card"}"\nrequire_mount = false\n'
                      f'[box]\nstate_dir = "{tmp_path / "state"}"\n[keys]\norg_key = "{tmp_path / "org.pub"}"\n')
    return config


def consentbox(*args: str, factory: str | None, notify: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {name: value for name, value in os.environ.items() if name not in ("GPIOZERO_PIN_FACTORY", "NOTIFY_SOCKET")}
    if factory is not None:
        env["GPIOZERO_PIN_FACTORY"] = factory
    if notify is not None:
        env["NOTIFY_SOCKET"] = str(notify)
    return subprocess.run([str(CONSENTBOX), *args], env=env, capture_output=True, text=True, timeout=60)


def errors(done: subprocess.CompletedProcess[str]) -> list[str]:
    """What the box wrote to stderr but its timeline (JSON lines, outside systemd's journal)."""
    return [line for line in done.stderr.splitlines() if not line.startswith("{")]


def test_run_without_a_pin_driver_writes_one_line_with_code_12_and_tells_systemd(tmp_path: Path) -> None:
    said = "Unable to find pin factory 'nonesuch'"  # a factory gpiozero does not know
    with NotifySocket(tmp_path / "notify", timeout=5) as notify:
        done = consentbox("run", "--config", str(box_config(tmp_path)), factory="nonesuch", notify=notify.path)
        assert (done.returncode, errors(done)) == (3, [LINE.format(said=said)]), done.stderr
        assert notify.receive() == f"STATUS=cannot start: {LINE.format(said=said).removeprefix('consentbox: ')}"


def test_gpiozero_s_own_choice_failing_names_each_factory_it_tried(tmp_path: Path) -> None:
    if Path("/proc/device-tree/model").exists():
        pytest.fail("this test needs a machine without GPIO (CI's); /proc/device-tree/model says it has some")
    done = consentbox("run", "--config", str(box_config(tmp_path)), factory=None)
    (line,) = errors(done)
    assert done.returncode == 3 and line.startswith(LINE.split("{")[0] + "Unable to load any default pin factory!; ")
    for tried in ("lgpio", "rpigpio", "native"):
        assert f"Falling back from {tried}: " in line
    assert line.endswith(LINE.split("}")[1])


def test_panel_off_without_a_pin_driver_says_the_same(tmp_path: Path) -> None:
    done = consentbox("panel-off", "--config", str(box_config(tmp_path)), factory="nonesuch")
    assert (done.returncode, errors(done)) == (3, [LINE.format(said="Unable to find pin factory 'nonesuch'")])
