"""The trusted boxes file on the workstation (issue 15, item 2): its format, its default place on each
OS, the keys a verifier accepts, and `consentbox-admin trust-box` and `boxes` run as IT runs them."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path, PurePosixPath, PureWindowsPath

import pytest

from consentbox.admin import cli
from consentbox.admin.boxes import (
    GIVEN_LABEL,
    MAX_FILE,
    AcceptedBoxes,
    GivenDeviceKey,
    TrustedBox,
    TrustedBoxes,
    TrustedBoxesError,
    UnknownBoxError,
    accepted_boxes,
    boxes_path_for,
    default_boxes_path,
    trust_box,
)
from consentbox.core.errors import ConsentBoxError
from consentbox.crypto.signing import DeviceSigningKey

ADMIN = str(Path(sys.executable).parent / "consentbox-admin")
ROOM_1, ROOM_2, STRANGER = (DeviceSigningKey.generate(secret=bytes([n]) * 32).public_key for n in (1, 2, 3))


def admin(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([ADMIN, *args], capture_output=True, text=True, env=env, timeout=60)


def write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    path.chmod(0o600)
    return path


# -- the file's format -----------------------------------------------------------------------


def test_comments_blank_lines_crlf_and_a_byte_order_mark_are_read(tmp_path: Path):
    text = (f"\ufeff# Clinic boxes, kept by IT\r\n\r\n{ROOM_1}  Room 1, asset 0041 \r\n"
            f"   # retired: {STRANGER} Room 9\n\t\n{ROOM_2}\tRoom 2 (Müller)")
    path = write(tmp_path / "boxes", text.encode("utf-8"))

    trusted = TrustedBoxes.load(path)

    assert trusted.boxes == (TrustedBox(ROOM_1, "Room 1, asset 0041"), TrustedBox(ROOM_2, "Room 2 (Müller)"))
    assert trusted.label_of(ROOM_2) == "Room 2 (Müller)"
    assert trusted.label_of(STRANGER) is None, "a commented-out box is not trusted"


def test_a_missing_file_trusts_no_box(tmp_path: Path):
    assert TrustedBoxes.load(tmp_path / "nowhere" / "boxes").boxes == ()


@pytest.mark.parametrize(("line", "says"), [
    ("consentbox-device-ed25519:AAAA Room 1", "is not 32 bytes in canonical base64"),
    ("consentbox-org-ed25519:" + str(ROOM_1).split(":")[1] + " Room 1", "does not start with consentbox-device"),
    (f"{ROOM_1}", "label '' is empty"),
    (f"{ROOM_1} Room\x1b[2J 1", "control character"),
])
def test_a_bad_line_is_a_one_line_error_naming_the_file_and_line(tmp_path: Path, line: str, says: str):
    # A comment may hold any character: only "\n" ends a line, so the line named is the editor's.
    path = write(tmp_path / "boxes", f"# boxes\u2028kept by IT\x0c\n{ROOM_2} Room 2\n{line}\n".encode())

    with pytest.raises(TrustedBoxesError) as raised:
        TrustedBoxes.load(path)

    message = str(raised.value)
    assert message.startswith(f"{path}, line 3: ") and says in message and "\n" not in message


def test_a_key_twice_is_refused_even_under_the_same_label(tmp_path: Path):
    path = write(tmp_path / "boxes", f"{ROOM_1} Room 1\n{ROOM_2} Room 2\n{ROOM_1} Room 1\n".encode())

    with pytest.raises(TrustedBoxesError, match=r", line 3: device key .* is already on line 1: remove one"):
        TrustedBoxes.load(path)


def test_a_file_over_the_limit_is_refused_before_it_is_parsed(tmp_path: Path):
    line = f"{ROOM_1} Room 1\n".encode()
    at_limit = write(tmp_path / "boxes", line + b"#" * (MAX_FILE - len(line) - 1) + b"\n")
    assert TrustedBoxes.load(at_limit).boxes == (TrustedBox(ROOM_1, "Room 1"),)

    over = write(tmp_path / "boxes", line + b"#" * (MAX_FILE - len(line)) + b"\n")
    with pytest.raises(TrustedBoxesError, match="larger than 1 MiB"):
        TrustedBoxes.load(over)


def test_a_file_others_can_write_is_refused(tmp_path: Path):
    path = write(tmp_path / "boxes", f"{ROOM_1} Room 1\n".encode())
    path.chmod(0o620)

    with pytest.raises(TrustedBoxesError, match=r"writable by others \(mode 0620\): chmod 600 "):
        TrustedBoxes.load(path)


def test_a_file_that_is_not_utf8_is_refused(tmp_path: Path):
    path = write(tmp_path / "boxes", f"{ROOM_1} Raum M".encode() + b"\xfcller\n")

    with pytest.raises(TrustedBoxesError, match="is not UTF-8 text"):
        TrustedBoxes.load(path)


# -- where the file is -----------------------------------------------------------------------


@pytest.mark.parametrize(("os_name", "environ", "home", "expected"), [
    ("posix", {"XDG_CONFIG_HOME": "/srv/it/config"}, PurePosixPath("/home/ana"),
     PurePosixPath("/srv/it/config/consentbox/boxes")),
    ("posix", {}, PurePosixPath("/Users/ana"), PurePosixPath("/Users/ana/.config/consentbox/boxes")),  # macOS too
    ("posix", {"XDG_CONFIG_HOME": ""}, PurePosixPath("/home/ana"), PurePosixPath("/home/ana/.config/consentbox/boxes")),
    ("posix", {"XDG_CONFIG_HOME": "relative/config"}, PurePosixPath("/home/ana"),
     PurePosixPath("/home/ana/.config/consentbox/boxes")),
    ("nt", {"APPDATA": r"C:\Users\Ana Lopez\AppData\Roaming", "XDG_CONFIG_HOME": "/ignored"},
     PureWindowsPath(r"C:\Users\Ana Lopez"), PureWindowsPath(r"C:\Users\Ana Lopez\AppData\Roaming\consentbox\boxes")),
    ("nt", {}, PureWindowsPath(r"D:\Home\ana"), PureWindowsPath(r"D:\Home\ana\AppData\Roaming\consentbox\boxes")),
])
def test_the_default_place_on_each_os(os_name, environ, home, expected):
    assert boxes_path_for(os_name, environ, home) == expected


def test_the_default_place_follows_this_workstations_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    assert default_boxes_path() == tmp_path / "xdg" / "consentbox" / "boxes"
    monkeypatch.delenv("XDG_CONFIG_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "ana"))
    assert default_boxes_path() == tmp_path / "ana" / ".config" / "consentbox" / "boxes"


# -- the keys a verifier accepts -------------------------------------------------------------


def test_the_file_gives_each_trusted_box_its_label_and_refuses_any_other(tmp_path: Path):
    path = write(tmp_path / "boxes", f"{ROOM_1} Room 1\n{ROOM_2} Room 2\n".encode())
    accepted = accepted_boxes(None, path)

    assert accepted.accept(ROOM_2) == "Room 2"
    with pytest.raises(UnknownBoxError) as raised:
        accepted.accept(STRANGER)
    assert str(raised.value) == (
        f"card from an unknown box: device key {STRANGER} is not in {path}; check it with IT, then "
        f"`consentbox-admin trust-box {STRANGER} LABEL --boxes {path}`, or pass --device-key")


def test_the_default_file_needs_no_boxes_option_in_the_advice(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    with pytest.raises(UnknownBoxError, match=r"is not in .*; check it with IT, then `consentbox-admin trust-box "
                       r"consentbox-device-ed25519:\S+ LABEL`, or pass --device-key$"):
        accepted_boxes(None, None).accept(STRANGER)


def test_a_device_key_given_is_the_only_one_accepted_and_the_file_is_not_read(tmp_path: Path):
    broken = write(tmp_path / "boxes", b"not a box\n")
    accepted = accepted_boxes(STRANGER, broken)

    assert accepted.accept(STRANGER) == GIVEN_LABEL
    with pytest.raises(UnknownBoxError, match=f"device key {ROOM_1} is not the key given with --device-key"):
        accepted.accept(ROOM_1)


# -- trust-box and boxes, through the real command -------------------------------------------


def test_trust_box_makes_the_file_and_its_directory_and_appends_one_line(tmp_path: Path):
    path = tmp_path / "it" / "consentbox" / "boxes"

    first = admin("trust-box", str(ROOM_1), "Room 1, asset 0041", "--boxes", str(path))
    second = admin("trust-box", str(ROOM_2), "Room 2", "--boxes", str(path))

    assert first.returncode == 0 and second.returncode == 0, first.stderr + second.stderr
    assert first.stdout == f"trusted: {ROOM_1} Room 1, asset 0041 ({path})\n"
    assert path.read_bytes() == f"{ROOM_1} Room 1, asset 0041\n{ROOM_2} Room 2\n".encode()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700


def test_trust_box_uses_the_default_file(tmp_path: Path):
    env = {**os.environ, "XDG_CONFIG_HOME": str(tmp_path / "config")}
    key_file = tmp_path / "room1.pub"
    key_file.write_text(f"# from the box's `consentbox device-key`\n{ROOM_1}\n")

    done = admin("trust-box", str(key_file), "Room 1", env=env)

    assert done.returncode == 0, done.stderr
    assert (tmp_path / "config" / "consentbox" / "boxes").read_text() == f"{ROOM_1} Room 1\n"


def test_trust_box_again_changes_nothing_and_another_label_is_refused(tmp_path: Path):
    path = write(tmp_path / "boxes", f"# boxes\r\n{ROOM_1} Room 1\r\n".encode())
    before = path.read_bytes()

    again = admin("trust-box", str(ROOM_1), "Room 1", "--boxes", str(path))
    relabel = admin("trust-box", str(ROOM_1), "Room 7", "--boxes", str(path))

    assert again.returncode == 0 and again.stdout.startswith("already trusted: ")
    assert relabel.returncode == 1 and relabel.stdout == ""
    assert relabel.stderr == (f"consentbox-admin: device key {ROOM_1} is already in {path} as 'Room 1': "
                              "edit or remove that line first\n")
    assert path.read_bytes() == before


def test_trust_box_ends_a_last_line_typed_without_its_newline(tmp_path: Path):
    path = write(tmp_path / "boxes", f"{ROOM_1} Room 1".encode())

    done = admin("trust-box", str(ROOM_2), "Room 2", "--boxes", str(path))

    assert done.returncode == 0, done.stderr
    assert TrustedBoxes.load(path).boxes == (TrustedBox(ROOM_1, "Room 1"), TrustedBox(ROOM_2, "Room 2"))


@pytest.mark.parametrize(("key", "label", "says"), [
    ("consentbox-device-ed25519:AAAA", "Room 1", "is not 32 bytes in canonical base64"),
    (str(ROOM_1), "Room 1\nconsentbox-device-ed25519:forged Room 9", "control character or line break"),
    (str(ROOM_1), "   ", "label '' is empty"),
])
def test_trust_box_refuses_a_bad_key_or_label_and_writes_nothing(tmp_path: Path, key: str, label: str, says: str):
    path = tmp_path / "boxes"

    done = admin("trust-box", key, label, "--boxes", str(path))

    assert done.returncode in (1, 2) and says in done.stderr
    assert not path.exists()


def test_trust_box_refuses_to_add_to_a_broken_file(tmp_path: Path):
    path = write(tmp_path / "boxes", b"Room 1\n")

    done = admin("trust-box", str(ROOM_2), "Room 2", "--boxes", str(path))

    assert done.returncode == 1 and f"{path}, line 1: " in done.stderr
    assert path.read_bytes() == b"Room 1\n"


def test_boxes_lists_the_trusted_boxes(tmp_path: Path):
    path = tmp_path / "boxes"
    trust_box(path, TrustedBox(ROOM_1, "Room 1"))
    trust_box(path, TrustedBox(ROOM_2, "Room 2"))

    done = admin("boxes", "--boxes", str(path))

    assert done.returncode == 0, done.stderr
    assert done.stdout == f"{path}: 2 trusted box(es)\n{ROOM_1} Room 1\n{ROOM_2} Room 2\n"


def test_export_and_consent_report_take_the_boxes_file_through_to_their_functions(monkeypatch: pytest.MonkeyPatch,
                                                                                   tmp_path: Path):
    calls = []

    def export_card(card: Path, out: Path, identities: object, boxes: AcceptedBoxes | None, **kwargs: object) -> int:
        calls.append(("export", boxes))
        return 0

    def consent_record(card: Path, session: str, identities: object, boxes: AcceptedBoxes) -> None:
        calls.append(("consent-report", boxes))
        raise ConsentBoxError("stop here: only the arguments are under test")

    monkeypatch.setattr(cli, "load_identities", lambda paths: [])
    monkeypatch.setattr(cli, "export_card", export_card)
    monkeypatch.setattr(cli, "consent_record", consent_record)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    boxes = tmp_path / "boxes"
    trust_box(boxes, TrustedBox(ROOM_1, "Room 1"))

    cli.main(["export", "-i", "id", "--out", "out", "--boxes", str(boxes), "card"])
    cli.main(["consent-report", "-i", "id", "--boxes", str(boxes), "card", "0123456789abcdef"])
    cli.main(["export", "-i", "id", "--out", "out", "card"])
    cli.main(["export", "-i", "id", "--out", "out", "--device-key", str(ROOM_2), "card"])
    cli.main(["export", "-i", "id", "--out", "out", "--unverified", "card"])

    in_file = TrustedBoxes(boxes, (TrustedBox(ROOM_1, "Room 1"),))
    by_default = TrustedBoxes(tmp_path / "config" / "consentbox" / "boxes", ())
    assert calls == [("export", in_file), ("consent-report", in_file), ("export", by_default),
                     ("export", GivenDeviceKey(ROOM_2)), ("export", None)]
