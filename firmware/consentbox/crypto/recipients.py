"""Every age recipient and identity type we take, read from its string by its prefix, and the rule on mixing them.

Recipients: X25519 (`age1…`), post-quantum mlkem768x25519 (`age1pq1…`) and a hardware token's
p256tag (`age1tag1…`). Identities: X25519 (`AGE-SECRET-KEY-1…`) and mlkem768x25519
(`AGE-SECRET-KEY-PQ-1…`); a token's identity stays on the token. One file's recipients are all
post-quantum or all classic, as the age spec says: a classic stanza beside a post-quantum one
would open the file to whoever breaks X25519 or P-256 later, which is what post-quantum keys
are chosen to prevent.
"""

from collections.abc import Iterable
from datetime import datetime, timedelta

from consentbox.crypto import bech32
from consentbox.crypto.errors import IncompatibleRecipients, KeyFormatError, UnsupportedKey
from consentbox.crypto.exposure import SECRET_KEY, holds_secret, shown
from consentbox.crypto.hpke_keys import (
    PQ_IDENTITY_HRP,
    PQ_RECIPIENT_HRP,
    TAG_RECIPIENT_HRP,
    MLKEM768X25519Identity,
    MLKEM768X25519Recipient,
    P256TagRecipient,
)
from consentbox.crypto.keys import IDENTITY_HRP, RECIPIENT_HRP, X25519Identity, X25519Recipient

Recipient = X25519Recipient | MLKEM768X25519Recipient | P256TagRecipient
Identity = X25519Identity | MLKEM768X25519Identity

_RECIPIENT_TYPES: dict[str, type[Recipient]] = {
    RECIPIENT_HRP: X25519Recipient,
    PQ_RECIPIENT_HRP: MLKEM768X25519Recipient,
    TAG_RECIPIENT_HRP: P256TagRecipient,
}
_IDENTITY_TYPES: dict[str, type[Identity]] = {
    IDENTITY_HRP: X25519Identity,
    PQ_IDENTITY_HRP: MLKEM768X25519Identity,
}
# The spec's hybrid tagged type: cryptography has no MLKEM768-P256 KEM, and we never write our own.
_HYBRID_TAG_HRP = "age1tagpq"


def parse_recipient(text: str) -> Recipient:
    """Parse a recipient string of any type we take; errors show it (`exposure.shown`: never a secret key)."""
    text = text.strip()
    if holds_secret(text):
        raise KeyFormatError(f"{SECRET_KEY} was given where a recipient (age1…) belongs")
    try:
        hrp, data = bech32.decode(text)
    except KeyFormatError as error:
        raise KeyFormatError(f"age recipient {shown(text)} is not valid: {error}") from None
    if hrp == _HYBRID_TAG_HRP:
        raise UnsupportedKey(
            f"{shown(text)} is an mlkem768p256tag recipient (age1tagpq1…), which ConsentBox cannot encrypt to: "
            "cryptography has no MLKEM768-P256 KEM; use the token's p256tag (age1tag1…) or an age1pq1… key"
        )
    recipient_type = _RECIPIENT_TYPES.get(hrp)
    if recipient_type is None:
        raise KeyFormatError(
            f"{shown(text)} is not an age recipient: it must start with age1, age1pq1 or age1tag1"
        )
    try:
        return recipient_type(data)
    except UnsupportedKey:
        raise
    except KeyFormatError as error:
        raise KeyFormatError(f"age recipient {shown(text)} is not valid: {error}") from None


def parse_identity(text: str) -> Identity:
    """Parse an `AGE-SECRET-KEY-1…` or `AGE-SECRET-KEY-PQ-1…` string. Errors never show it."""
    hrp, data = bech32.decode(text.strip())
    if hrp in _RECIPIENT_TYPES:
        raise KeyFormatError("this is an age public key (age1…), not a secret key")
    identity_type = _IDENTITY_TYPES.get(hrp)
    if identity_type is None:
        raise KeyFormatError(
            "not an age secret key: it must start with AGE-SECRET-KEY-1… or AGE-SECRET-KEY-PQ-1…"
        )
    return identity_type(data)


def check_compatible(recipients: Iterable[Recipient]) -> None:
    """Raise IncompatibleRecipients if `recipients` mix post-quantum and classic types."""
    kinds: dict[bool, set[str]] = {}
    for recipient in recipients:
        kinds.setdefault(recipient.POST_QUANTUM, set()).add(recipient.STANZA_TYPE)
    if len(kinds) > 1:
        raise IncompatibleRecipients(
            f"incompatible recipients: {', '.join(sorted(kinds[True]))} (post-quantum) and "
            f"{', '.join(sorted(kinds[False]))} (classic) cannot share a file; a classic key would undo "
            "the post-quantum protection, so give keys of one kind"
        )


def describe_recipient(recipient: Recipient) -> str:
    """A recipient as a listing shows it: its string (of a post-quantum one's 1,959 characters, the first 24
    and the last 12), then its type and kind, as in `age1pq1…… (mlkem768x25519, post-quantum)`."""
    text = recipient.to_string()
    shown_text = text if len(text) <= 80 else f"{text[:24]}…{text[-12:]}"
    kind = "post-quantum" if recipient.POST_QUANTUM else "classic"
    return f"{shown_text} ({recipient.STANZA_TYPE}, {kind})"


def parse_identity_file(text: str, source: str) -> list[Identity]:
    """Parse an identity file as `age-keygen` (or `age-keygen -pq`) writes it; `source` names the file in errors."""
    identities = []
    for number, line in enumerate(text.splitlines(), start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        try:
            identities.append(parse_identity(line))
        except KeyFormatError as error:
            raise KeyFormatError(f"{source} line {number}: {error}") from None
    if not identities:
        raise KeyFormatError(
            f"{source}: no AGE-SECRET-KEY-1… or AGE-SECRET-KEY-PQ-1… line found: not an age identity file"
        )
    return identities


def _rfc3339(moment: datetime) -> str:
    offset = moment.utcoffset()
    if offset is None:
        raise ValueError("the creation time of an identity file must carry a time zone")
    stamp = moment.strftime("%Y-%m-%dT%H:%M:%S")
    if offset == timedelta(0):
        return stamp + "Z"
    sign = "-" if offset < timedelta(0) else "+"
    minutes = abs(offset) // timedelta(minutes=1)
    return f"{stamp}{sign}{minutes // 60:02d}:{minutes % 60:02d}"


def identity_file_text(identity: Identity, created: datetime) -> str:
    """The identity file `age-keygen` (`-pq`: a post-quantum one) writes: creation time, public key, secret key."""
    return (
        f"# created: {_rfc3339(created)}\n"
        f"# public key: {identity.recipient.to_string()}\n"
        f"{identity.to_string()}\n"
    )
