"""Post-quantum and hardware-token keys through `consentbox-admin` (issue 21): keygen --pq, encrypt and decrypt,
and the rule that post-quantum and classic recipients never share a file (bundle and inspect: in
test_provisioning_cli.py)."""

from __future__ import annotations

import stat

import pytest

from consentbox.crypto import P256TagRecipient, bech32, parse_identity_file
from tests.admin.test_provisioning_cli import admin, assert_one_line_error
from tests.support.tokens import token_point


def test_keygen_pq_writes_an_identity_as_age_keygen_pq_does(tmp_path):
    path = tmp_path / "supervisor.key"
    done = admin("keygen", "--pq", "-o", path)
    assert done.returncode == 0, done.stderr
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    created, public, secret = path.read_text().splitlines()
    assert created.startswith("# created: ")
    assert public.startswith("# public key: age1pq1") and len(public) == len("# public key: ") + 1959
    assert secret.startswith("AGE-SECRET-KEY-PQ-1")
    [identity] = parse_identity_file(path.read_text(), str(path))
    assert done.stderr == f"Public key: {identity.recipient.to_string()}\n"
    assert public == f"# public key: {identity.recipient.to_string()}"


def test_a_file_encrypted_to_a_post_quantum_key_decrypts_with_it_and_not_another(tmp_path, pq_identity):
    key = tmp_path / "supervisor.key"
    assert admin("keygen", "--pq", "-o", key).returncode == 0
    [identity] = parse_identity_file(key.read_text(), str(key))
    plain, sealed, out = tmp_path / "notes.txt", tmp_path / "notes.txt.age", tmp_path / "back.txt"
    plain.write_bytes(b"session notes\n" * 10_000)
    done = admin("encrypt", "-r", identity.recipient.to_string(), "-r", pq_identity.recipient.to_string(),
                 "-o", sealed, plain)
    assert done.returncode == 0, done.stderr
    assert b"\n-> mlkem768x25519 " in sealed.read_bytes()[:8192]
    assert admin("decrypt", "-i", key, "-o", out, sealed).returncode == 0
    assert out.read_bytes() == plain.read_bytes()
    stranger = tmp_path / "stranger.key"
    assert admin("keygen", "--pq", "-o", stranger).returncode == 0
    assert_one_line_error(admin("decrypt", "-i", stranger, "-o", tmp_path / "no.txt", sealed), "none of the 1")
    assert not (tmp_path / "no.txt").exists()


@pytest.mark.parametrize("classic", ["x25519", "p256tag"])
def test_encrypt_refuses_post_quantum_and_classic_recipients_together(tmp_path, pq_identity, identity, classic):
    other = identity.recipient if classic == "x25519" else P256TagRecipient(token_point())
    plain = tmp_path / "notes.txt"
    plain.write_bytes(b"notes")
    done = admin("encrypt", "-r", pq_identity.recipient.to_string(), "-r", other.to_string(),
                 "-o", tmp_path / "notes.age", plain)
    assert_one_line_error(done, "incompatible recipients", "mlkem768x25519 (post-quantum)",
                          f"{other.STANZA_TYPE} (classic)")
    assert not (tmp_path / "notes.age").exists()


def test_a_token_recipient_takes_a_file_beside_an_x25519_one(tmp_path, identity):
    plain, sealed = tmp_path / "notes.txt", tmp_path / "notes.age"
    plain.write_bytes(b"notes")
    done = admin("encrypt", "-r", P256TagRecipient(token_point()).to_string(), "-r", identity.recipient.to_string(),
                 "-o", sealed, plain)
    assert done.returncode == 0, done.stderr
    assert b"\n-> p256tag " in sealed.read_bytes() and b"\n-> X25519 " in sealed.read_bytes()


def test_a_hybrid_token_recipient_is_refused_in_one_line_naming_its_type(tmp_path):
    text = bech32.encode("age1tagpq", bytes(1249))  # an ML-KEM-768 key and an uncompressed P-256 point
    plain = tmp_path / "notes.txt"
    plain.write_bytes(b"notes")
    assert_one_line_error(admin("encrypt", "-r", text, "-o", tmp_path / "notes.age", plain),
                          "mlkem768p256tag", "cannot encrypt to")
