"""Our files against the real `age` command line (Debian's age 1.1.1), in both directions."""

from __future__ import annotations

import io
import random
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import pytest

from consentbox.crypto import (
    NoIdentityMatch,
    X25519Identity,
    X25519Recipient,
    decrypt,
    encrypt,
    identity_file_text,
    parse_identity_file,
)

CHUNK = 64 * 1024
SIZES = [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 3 * CHUNK, 5_000_000]
CREATED = datetime(2024, 5, 6, 7, 8, 9, tzinfo=UTC)


def _plaintext(size: int) -> bytes:
    return random.Random(size).randbytes(size)


def _identity_file(tmp_path: Path, identity: X25519Identity, name: str = "key.txt") -> Path:
    path = tmp_path / name
    path.write_text(identity_file_text(identity, CREATED))
    return path


def _run(*args: str | Path, stdin: bytes = b"") -> bytes:
    done = subprocess.run([str(arg) for arg in args], input=stdin, capture_output=True, check=False)
    assert done.returncode == 0, done.stderr.decode(errors="replace")
    return done.stdout


def _ours_encrypted(plaintext: bytes, recipients: list[X25519Recipient]) -> bytes:
    out = io.BytesIO()
    encrypt(io.BytesIO(plaintext), out, recipients)
    return out.getvalue()


def _ours_decrypted(ciphertext: bytes, identities: list[X25519Identity]) -> bytes:
    out = io.BytesIO()
    result = decrypt(io.BytesIO(ciphertext), out, identities)
    assert result.damage is None
    assert result.bytes_written == len(out.getvalue())
    return out.getvalue()


@pytest.mark.parametrize("size", SIZES)
def test_age_decrypts_our_files(size, tmp_path, age_cli, identity):
    plaintext = _plaintext(size)
    encrypted = tmp_path / "ours.age"
    encrypted.write_bytes(_ours_encrypted(plaintext, [identity.recipient]))

    assert _run(age_cli, "-d", "-i", _identity_file(tmp_path, identity), encrypted) == plaintext


@pytest.mark.parametrize("size", SIZES)
def test_we_decrypt_age_files(size, age_cli, identity):
    plaintext = _plaintext(size)
    encrypted = _run(age_cli, "-e", "-r", identity.recipient.to_string(), stdin=plaintext)

    assert _ours_decrypted(encrypted, [identity]) == plaintext


def test_age_decrypts_our_file_with_each_of_several_recipients(tmp_path, age_cli):
    identities = [X25519Identity.generate() for _ in range(3)]
    plaintext = _plaintext(2 * CHUNK + 5)
    encrypted = tmp_path / "ours.age"
    encrypted.write_bytes(_ours_encrypted(plaintext, [identity.recipient for identity in identities]))

    for number, identity in enumerate(identities):
        key = _identity_file(tmp_path, identity, f"key{number}.txt")
        assert _run(age_cli, "-d", "-i", key, encrypted) == plaintext


def test_we_decrypt_an_age_file_with_any_of_its_recipients(age_cli, identity, other_identity):
    plaintext = _plaintext(CHUNK + 99)
    stranger = X25519Identity.generate()
    recipients = [identity.recipient.to_string(), other_identity.recipient.to_string()]
    encrypted = _run(age_cli, "-e", "-r", recipients[0], "-r", recipients[1], stdin=plaintext)

    assert _ours_decrypted(encrypted, [other_identity]) == plaintext
    assert _ours_decrypted(encrypted, [stranger, identity]) == plaintext
    with pytest.raises(NoIdentityMatch):
        _ours_decrypted(encrypted, [stranger])


def test_an_age_keygen_identity_file_parses(tmp_path, age_keygen_cli):
    key = tmp_path / "keygen.txt"
    _run(age_keygen_cli, "-o", key)
    text = key.read_text()

    [identity] = parse_identity_file(text, str(key))

    public_line = next(line for line in text.splitlines() if line.startswith("# public key: "))
    assert identity.recipient.to_string() == public_line.removeprefix("# public key: ")
    assert identity.recipient.to_string() == _run(age_keygen_cli, "-y", key).decode().strip()


def test_age_accepts_our_identity_file(tmp_path, age_cli, age_keygen_cli, identity):
    key = _identity_file(tmp_path, identity)

    assert _run(age_keygen_cli, "-y", key).decode().strip() == identity.recipient.to_string()
    encrypted = _run(age_cli, "-e", "-i", key, stdin=b"consent given")
    assert _run(age_cli, "-d", "-i", key, stdin=encrypted) == b"consent given"
