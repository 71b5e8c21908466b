"""`consentbox-admin` keygen / encrypt / decrypt, run as a user runs them: the installed commands."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

BIN = Path(sys.executable).parent
ADMIN = str(BIN / "consentbox-admin")
CHUNK = 64 * 1024


def admin(*args: str, stdin: bytes = b"", check: bool = False) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([ADMIN, *args], input=stdin, capture_output=True, check=check)


@pytest.fixture
def supervisor_key(tmp_path: Path) -> tuple[Path, str]:
    """A fresh identity file made by our keygen, and its recipient."""
    path = tmp_path / "supervisor.key"
    result = admin("keygen", "-o", str(path), check=True)
    recipient = result.stderr.decode().removeprefix("Public key: ").strip()
    return path, recipient


def test_version_and_help():
    assert admin("--version", check=True).stdout.decode().startswith("consentbox-admin ")
    for command in ("keygen", "encrypt", "decrypt"):
        assert b"usage: consentbox-admin " + command.encode() in admin(command, "--help", check=True).stdout


def test_keygen_writes_an_age_keygen_compatible_file_with_mode_0600(supervisor_key, age_keygen_cli):
    path, recipient = supervisor_key
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    lines = path.read_text().splitlines()
    assert lines[0].startswith("# created: ") and lines[1] == f"# public key: {recipient}"
    assert lines[2].startswith("AGE-SECRET-KEY-1") and len(lines) == 3
    converted = subprocess.run([age_keygen_cli, "-y", str(path)], capture_output=True, check=True)
    assert converted.stdout.decode().strip() == recipient


def test_keygen_never_overwrites_a_key(supervisor_key):
    path, _ = supervisor_key
    before = path.read_bytes()
    result = admin("keygen", "-o", str(path))
    assert result.returncode == 1 and b"already exists" in result.stderr
    assert path.read_bytes() == before


def test_keygen_to_stdout():
    result = admin("keygen", check=True)
    assert b"AGE-SECRET-KEY-1" in result.stdout and result.stderr.startswith(b"Public key: age1")


@pytest.mark.parametrize("size", [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 3 * CHUNK, 5_000_000])
def test_our_files_open_with_age_and_age_files_open_with_ours(tmp_path, supervisor_key, size, age_cli):
    key, recipient = supervisor_key
    plain = tmp_path / "plain"
    plain.write_bytes(os.urandom(size))

    ours = tmp_path / "ours.age"
    admin("encrypt", "-r", recipient, "-o", str(ours), str(plain), check=True)
    by_age = subprocess.run([age_cli, "-d", "-i", str(key), str(ours)], capture_output=True, check=True)
    assert by_age.stdout == plain.read_bytes()

    theirs = tmp_path / "theirs.age"
    subprocess.run([age_cli, "-e", "-r", recipient, "-o", str(theirs), str(plain)], check=True)
    out = tmp_path / "out"
    admin("decrypt", "-i", str(key), "-o", str(out), str(theirs), check=True)
    assert out.read_bytes() == plain.read_bytes()


@pytest.mark.fresh_clone
def test_stdin_to_stdout_round_trip(supervisor_key):
    key, recipient = supervisor_key
    sealed = admin("encrypt", "-r", recipient, stdin=b"session audio", check=True).stdout
    assert sealed.startswith(b"age-encryption.org/v1\n")
    assert admin("decrypt", "-i", str(key), stdin=sealed, check=True).stdout == b"session audio"


def test_several_recipients_each_decrypt(tmp_path, supervisor_key):
    key, recipient = supervisor_key
    other = tmp_path / "other.key"
    other_recipient = admin("keygen", "-o", str(other), check=True).stderr.decode().split()[-1]
    sealed = admin("encrypt", "-r", recipient, "-r", other_recipient, stdin=b"x" * 100, check=True).stdout
    for identity_file in (key, other):
        assert admin("decrypt", "-i", str(identity_file), stdin=sealed, check=True).stdout == b"x" * 100


def sealed_file(tmp_path: Path, recipient: str, size: int) -> tuple[Path, bytes]:
    plain = os.urandom(size)
    path = tmp_path / "session.age"
    path.write_bytes(admin("encrypt", "-r", recipient, stdin=plain, check=True).stdout)
    return path, plain


def test_wrong_key_fails_with_one_line_and_leaves_no_output(tmp_path, supervisor_key):
    _, recipient = supervisor_key
    sealed, _ = sealed_file(tmp_path, recipient, 1000)
    stranger = tmp_path / "stranger.key"
    admin("keygen", "-o", str(stranger), check=True)
    out = tmp_path / "out.wav"
    result = admin("decrypt", "-i", str(stranger), "-o", str(out), str(sealed))
    assert result.returncode == 1
    assert result.stderr.decode().count("\n") == 1 and result.stderr.startswith(b"consentbox-admin: ")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["session.age", "stranger.key", "supervisor.key"]


def test_truncated_file_fails_without_salvage_and_leaves_no_output(tmp_path, supervisor_key):
    key, recipient = supervisor_key
    sealed, _ = sealed_file(tmp_path, recipient, 3 * CHUNK)
    sealed.write_bytes(sealed.read_bytes()[:-1000])
    out = tmp_path / "out"
    result = admin("decrypt", "-i", str(key), "-o", str(out), str(sealed))
    assert result.returncode == 1 and b"\n" == result.stderr[-1:] and result.stderr.count(b"\n") == 1
    assert not out.exists() and not list(tmp_path.glob(".out.*"))


@pytest.mark.parametrize("damage", ["cut", "flip"])
def test_salvage_recovers_the_authenticated_prefix_and_exits_3(tmp_path, supervisor_key, damage):
    key, recipient = supervisor_key
    sealed, plain = sealed_file(tmp_path, recipient, 3 * CHUNK + 500)
    data = bytearray(sealed.read_bytes())
    if damage == "cut":
        del data[-300:]
    else:
        data[-10] ^= 0x01
    sealed.write_bytes(bytes(data))
    out = tmp_path / "out"
    result = admin("decrypt", "--salvage", "-i", str(key), "-o", str(out), str(sealed))
    assert result.returncode == 3
    assert result.stderr.decode().splitlines()[-1] == f"truncated: recovered {3 * CHUNK} bytes"
    assert out.read_bytes() == plain[: 3 * CHUNK]


def test_salvage_of_an_intact_file_is_a_plain_success(tmp_path, supervisor_key):
    key, recipient = supervisor_key
    sealed, plain = sealed_file(tmp_path, recipient, CHUNK + 1)
    result = admin("decrypt", "--salvage", "-i", str(key), str(sealed))
    assert result.returncode == 0 and result.stdout == plain and result.stderr == b""


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["encrypt", "-r", "age1notakey"], "age1notakey"),
        (["decrypt", "-i", "/nonexistent/key"], "/nonexistent/key"),
    ],
)
def test_bad_arguments_are_one_line_errors(args, message):
    result = admin(*args, stdin=b"data")
    assert result.returncode == 1
    assert result.stderr.count(b"\n") == 1 and message.encode() in result.stderr


def test_a_bad_identity_file_names_the_file_and_line(tmp_path):
    bad = tmp_path / "bad.key"
    bad.write_text("# a comment\nAGE-SECRET-KEY-1NOTVALID\n")
    result = admin("decrypt", "-i", str(bad), stdin=b"age-encryption.org/v1\n")
    assert result.returncode == 1 and str(bad).encode() in result.stderr and b"line 2" in result.stderr


def test_decrypting_to_stdout_streams_so_a_failure_part_way_leaves_what_was_written(tmp_path, supervisor_key):
    # As `age` does: each chunk goes out once it authenticates, and a damaged one stops the stream there.
    key, recipient = supervisor_key
    sealed, plain = sealed_file(tmp_path, recipient, 3 * CHUNK + 500)
    sealed.write_bytes(sealed.read_bytes()[:-300])  # the last chunk cut
    result = admin("decrypt", "-i", str(key), str(sealed))
    assert result.returncode == 1 and result.stderr.count(b"\n") == 1
    assert result.stdout == plain[:3 * CHUNK]


@pytest.mark.parametrize("command", [["consentbox-admin", "decrypt", "-i", "key", "--bogus"],
                                     ["consentbox", "wipe", "--bogus"]], ids=["consentbox-admin", "consentbox"])
def test_a_wrong_option_prints_the_usage_and_exits_2(command):
    done = subprocess.run([str(BIN / command[0]), *command[1:]], capture_output=True, text=True, timeout=60)
    lines = done.stderr.splitlines()
    assert done.returncode == 2 and done.stdout == ""
    assert lines[0].startswith(f"usage: {command[0]} ") and lines[-1].endswith("error: unrecognized arguments: --bogus")
