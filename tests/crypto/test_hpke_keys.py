"""The HPKE-based key types (mlkem768x25519, p256tag) and the rules around every recipient type: what a key
string must be, what is refused and how, the mixing rule, and the largest header the box writes.

Interop with another implementation is tests/crypto/test_interop_pq.py; the CCTV hybrid vectors are in
test_vectors.py.
"""

from __future__ import annotations

import io

import pytest

from consentbox.crypto import (
    AgeReader,
    IncompatibleRecipients,
    KeyFormatError,
    MLKEM768X25519Identity,
    NoIdentityMatch,
    P256TagRecipient,
    UnsupportedKey,
    bech32,
    check_compatible,
    decrypt,
    describe_recipient,
    encrypt,
    identity_file_text,
    parse_identity,
    parse_identity_file,
    parse_recipient,
)
from consentbox.crypto.exposure import SECRET_KEY
from consentbox.crypto.format import MAX_HEADER_BYTES
from consentbox.provisioning.bundle import MAX_AUDITORS, MAX_RECIPIENTS
from tests.crypto.test_interop import CREATED
from tests.support.tokens import token_point


def test_a_post_quantum_identity_and_recipient_round_trip_through_their_strings(pq_identity):
    recipient = pq_identity.recipient.to_string()
    assert recipient.startswith("age1pq1") and len(recipient) == 1959
    assert parse_recipient(recipient) == pq_identity.recipient
    secret = pq_identity.to_string()
    assert secret.startswith("AGE-SECRET-KEY-PQ-1")
    assert parse_identity(secret).recipient == pq_identity.recipient
    assert parse_identity(secret.lower()).recipient == pq_identity.recipient
    assert secret not in repr(pq_identity) and recipient[:40] in repr(pq_identity)


def test_an_identity_file_holds_both_kinds_as_age_keygen_writes_them(pq_identity, identity):
    text = identity_file_text(pq_identity, CREATED) + identity_file_text(identity, CREATED)
    read = parse_identity_file(text, "keys.txt")
    assert [key.recipient for key in read] == [pq_identity.recipient, identity.recipient]
    assert text.splitlines()[1] == f"# public key: {pq_identity.recipient.to_string()}"


@pytest.mark.parametrize(("data", "words"), [
    (bytes(1215), "1216 bytes, not 1215"),
    (bytes(1217), "1216 bytes, not 1217"),
    (b"\xff" * 1216, "not a valid ML-KEM-768 key"),  # coefficients above the modulus
], ids=["short", "long", "not-ml-kem"])
def test_a_malformed_post_quantum_recipient_is_refused_in_one_line(data, words):
    with pytest.raises(KeyFormatError, match=words) as refused:
        parse_recipient(bech32.encode("age1pq", data))
    assert "\n" not in str(refused.value)


@pytest.mark.parametrize(("data", "words"), [
    (bytes(33), "not a point on the P-256 curve"),
    (b"\x02" + b"\xff" * 32, "not a point on the P-256 curve"),
    (b"\x04" + bytes(64), "33 bytes, not 65"),  # uncompressed: the recipient string carries the compressed form
], ids=["zero", "off-curve", "uncompressed"])
def test_a_malformed_token_recipient_is_refused_in_one_line(data, words):
    with pytest.raises(KeyFormatError, match=words):
        parse_recipient(bech32.encode("age1tag", data))


def test_a_token_recipient_round_trips_and_its_stanza_has_the_specs_shape():
    recipient = P256TagRecipient(token_point())
    assert parse_recipient(recipient.to_string()) == recipient
    stanza = recipient.wrap(bytes(16))
    assert stanza.type == "p256tag" and len(stanza.args) == 2 and len(stanza.body) == 32


def test_a_hybrid_token_recipient_is_refused_by_type():
    with pytest.raises(UnsupportedKey, match="mlkem768p256tag recipient .*cannot encrypt to"):
        parse_recipient(bech32.encode("age1tagpq", bytes(1249)))


@pytest.mark.parametrize("text", ["AGE-SECRET-KEY-PQ-1XXXX", "age-secret-key-pq-1qqqq"])
def test_a_post_quantum_secret_key_given_as_a_recipient_is_never_shown(text):
    with pytest.raises(KeyFormatError) as refused:
        parse_recipient(text)
    assert SECRET_KEY in str(refused.value) and text not in str(refused.value)


def test_an_unknown_prefix_names_the_ones_taken():
    with pytest.raises(KeyFormatError, match="must start with age1, age1pq1 or age1tag1"):
        parse_recipient(bech32.encode("age1foo", bytes(32)))


def test_keys_of_one_kind_mix_freely_and_post_quantum_with_classic_never(pq_identity, other_pq_identity,
                                                                         identity):
    tag = P256TagRecipient(token_point())
    check_compatible([identity.recipient, tag])
    check_compatible([pq_identity.recipient, other_pq_identity.recipient])
    for classic in (identity.recipient, tag):
        with pytest.raises(IncompatibleRecipients, match="^incompatible recipients: mlkem768x25519"):
            encrypt(io.BytesIO(b"x"), io.BytesIO(), [pq_identity.recipient, classic])


def test_the_largest_set_of_readers_a_bundle_names_fits_one_header_and_each_opens_it():
    # A session's ledger extract is encrypted to every recipient and every auditor of the bundle.
    identities = [MLKEM768X25519Identity.generate() for _ in range(MAX_RECIPIENTS + MAX_AUDITORS)]
    sealed = io.BytesIO()
    encrypt(io.BytesIO(b"ledger"), sealed, [identity.recipient for identity in identities])
    header = sealed.getvalue()[: sealed.getvalue().index(b"\n--- ") + 1]
    assert len(header) <= MAX_HEADER_BYTES, f"{len(header)} bytes of header for {len(identities)} readers"
    for identity in (identities[0], identities[-1]):
        out = io.BytesIO()
        decrypt(io.BytesIO(sealed.getvalue()), out, [identity])
        assert out.getvalue() == b"ledger"


def test_an_x25519_identity_passes_over_a_post_quantum_stanza_as_not_its_own(pq_identity, identity):
    sealed = io.BytesIO()
    encrypt(io.BytesIO(b"notes"), sealed, [pq_identity.recipient])
    with pytest.raises(NoIdentityMatch, match="none of the 1 given identities"):
        AgeReader(io.BytesIO(sealed.getvalue()), [identity])


def test_a_listing_shows_each_key_with_its_type_and_kind(pq_identity, identity):
    text = pq_identity.recipient.to_string()
    assert describe_recipient(pq_identity.recipient) == f"{text[:24]}…{text[-12:]} (mlkem768x25519, post-quantum)"
    assert describe_recipient(identity.recipient) == f"{identity.recipient.to_string()} (X25519, classic)"
    tag = P256TagRecipient(token_point())
    assert describe_recipient(tag) == f"{tag.to_string()} (p256tag, classic)"
