"""Keys: Bech32, the age1… and AGE-SECRET-KEY-1… strings, X25519 stanzas and identity files."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from consentbox.crypto import (
    HeaderError,
    KeyFormatError,
    X25519Recipient,
    bech32,
    identity_file_text,
    parse_identity,
    parse_identity_file,
    parse_recipient,
)
from consentbox.crypto.format import Stanza

FILE_KEY = bytes(range(16))

# The example key pair in the age specification (c2sp.org/age, "The X25519 recipient type").
SPEC_IDENTITY = "AGE-SECRET-KEY-1GFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPQ4EGAEX"
SPEC_RECIPIENT = "age1zvkyg2lqzraa2lnjvqej32nkuu0ues2s82hzrye869xeexvn73equnujwj"


@given(
    hrp=st.sampled_from(["age", "age-secret-key-", "a"]), data=st.binary(max_size=200), upper=st.booleans()
)
def test_bech32_round_trips_without_a_length_limit(hrp, data, upper):
    text = bech32.encode(hrp, data, upper=upper)
    assert text == (text.upper() if upper else text.lower())
    assert bech32.decode(text) == (hrp, data)


def test_bech32_checks_its_checksum_and_case():
    text = bech32.encode("age", bytes(32))
    assert bech32.decode(text.upper()) == ("age", bytes(32))
    with pytest.raises(KeyFormatError, match="checksum"):
        bech32.decode(text[:-1] + ("q" if text[-1] != "q" else "p"))
    with pytest.raises(KeyFormatError, match="mixes upper and lower case"):
        bech32.decode(text[:5] + text[5:].upper())
    with pytest.raises(KeyFormatError, match="alphabet"):
        bech32.decode(text[:-1] + "b")


def test_the_spec_example_key_pair():
    identity = parse_identity(SPEC_IDENTITY)
    assert identity.recipient.to_string() == SPEC_RECIPIENT
    assert identity.to_string() == SPEC_IDENTITY
    assert parse_recipient(SPEC_RECIPIENT) == identity.recipient


def test_a_secret_key_never_shows_in_repr(identity):
    assert identity.to_string() not in repr(identity)
    assert identity.recipient.to_string() in repr(identity)


def test_keys_of_the_wrong_kind_are_refused_without_echoing_secrets(identity):
    with pytest.raises(KeyFormatError, match="secret key .* where a recipient") as refused:
        parse_recipient(identity.to_string())
    assert identity.to_string() not in str(refused.value)
    with pytest.raises(KeyFormatError, match="public key"):
        parse_identity(identity.recipient.to_string())


@pytest.mark.parametrize("text", ["age1notakey", "age1qqqqqqqqqqqqqqqqqqqqqq", "ag1" + "q" * 58])
def test_a_bad_recipient_is_quoted_in_its_error(text):
    with pytest.raises(KeyFormatError, match=f"'{text}'"):
        parse_recipient(text)


def test_wrap_is_exact_given_the_ephemeral_secret_and_unwraps(identity, other_identity):
    stanza = identity.recipient.wrap(FILE_KEY, bytes)

    assert stanza == identity.recipient.wrap(FILE_KEY, bytes)
    assert stanza.type == "X25519" and len(stanza.args) == 1 and len(stanza.body) == 32
    assert identity.unwrap(stanza) == FILE_KEY
    assert other_identity.unwrap(stanza) is None
    assert identity.unwrap(Stanza("scrypt", ("c2FsdA", "10"), stanza.body)) is None


def test_a_malformed_x25519_stanza_fails_the_header(identity):
    stanza = identity.recipient.wrap(FILE_KEY)
    with pytest.raises(HeaderError, match="arguments"):
        identity.unwrap(Stanza("X25519", (*stanza.args, "extra"), stanza.body))
    with pytest.raises(HeaderError, match="body is 33 bytes"):
        identity.unwrap(Stanza("X25519", stanza.args, stanza.body + b"\0"))
    with pytest.raises(HeaderError, match="low-order"):
        identity.unwrap(Stanza("X25519", ("A" * 43,), stanza.body))


def test_wrapping_to_a_low_order_recipient_is_refused():
    with pytest.raises(KeyFormatError, match="low-order"):
        X25519Recipient(bytes(32)).wrap(FILE_KEY)


def test_identity_file_has_the_age_keygen_layout(identity):
    text = identity_file_text(identity, datetime(2024, 5, 6, 7, 8, 9, 999, tzinfo=UTC))
    assert text == (
        "# created: 2024-05-06T07:08:09Z\n"
        f"# public key: {identity.recipient.to_string()}\n"
        f"{identity.to_string()}\n"
    )
    paris = timezone(timedelta(hours=2))
    assert identity_file_text(identity, datetime(2024, 5, 6, 9, 8, 9, tzinfo=paris)).startswith(
        "# created: 2024-05-06T09:08:09+02:00\n"
    )
    with pytest.raises(ValueError, match="time zone"):
        identity_file_text(identity, datetime(2024, 5, 6))


def test_identity_file_round_trips_with_comments_and_blank_lines(identity, other_identity):
    text = identity_file_text(identity, datetime.now(UTC)) + "\n  \n" + other_identity.to_string()
    parsed = parse_identity_file(text, "keys.txt")
    assert [key.to_string() for key in parsed] == [identity.to_string(), other_identity.to_string()]


def test_a_bad_identity_file_line_is_named_without_echoing_the_key(identity):
    broken = identity.to_string()[:-1] + ("Q" if identity.to_string()[-1] != "Q" else "P")
    text = f"# a comment\n\n{identity.to_string()}\n{broken}\n"
    with pytest.raises(KeyFormatError, match=r"^/card/keys\.txt line 4: bech32 checksum") as refused:
        parse_identity_file(text, "/card/keys.txt")
    assert broken not in str(refused.value)


def test_an_identity_file_without_keys_is_refused():
    with pytest.raises(KeyFormatError, match="keys.txt: no AGE-SECRET-KEY-1"):
        parse_identity_file("# only a comment\n", "keys.txt")
