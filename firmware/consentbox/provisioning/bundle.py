"""The provisioning bundle: one signed file of our own format, checked before anything in it is parsed.

    consentbox-bundle/v1\n
    signature: <base64 of the 64-byte Ed25519 signature>\n
    \n
    <payload: UTF-8 JSON object>

The header has a fixed length, so a reader checks the size cap and the signature over the exact
payload bytes before it parses a byte of JSON; a bundle not signed by the organisation key is never
parsed at all. The payload is strict: every field known, typed and in range. docs/formats.md
("Provisioning bundle") describes every field.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NoReturn

from consentbox.core.errors import PolicyError
from consentbox.core.policy import Policy
from consentbox.core.provisioning import BundleRefusal, Refused
from consentbox.crypto import KeyFormatError, Recipient, check_compatible, parse_recipient
from consentbox.crypto.exposure import shown
from consentbox.crypto.signing import SIGNATURE_SIZE, OrgPublicKey, OrgSigningKey, SignatureError
from consentbox.storage import strict_json
from consentbox.storage.canonical import canonical_json
from consentbox.storage.strict_json import StrictJsonError

#: The largest bundle a box reads: 64 recipients and 64 auditors, all post-quantum (1,959-character
#: age1pq1… strings), take about 246 KiB; 64 X25519 ones under 6 KiB.
MAX_BUNDLE_BYTES = 512 * 1024
MAX_RECIPIENTS = 64
MAX_AUDITORS = 64
MAX_VERSION = 2**53 - 1  # every JSON reader keeps it exact
#: The name a bundle has on a stick: anything ending in this (any case) at the stick's top level.
SUFFIX = ".cbundle"

_MAGIC = b"consentbox-bundle/v1\n"
_SIGNATURE_LABEL = b"signature: "
_SIGNATURE_TEXT = 88  # base64 of 64 bytes
_HEADER = re.compile(re.escape(_MAGIC + _SIGNATURE_LABEL) + rb"([A-Za-z0-9+/]{86}==)\n\n")
HEADER_BYTES = len(_MAGIC) + len(_SIGNATURE_LABEL) + _SIGNATURE_TEXT + 2
#: Prefixed to what is signed, so a bundle signature can never pass for any other use of the key.
_SIGNING_CONTEXT = b"consentbox-bundle/v1 payload\n"
_FIELDS = {"version", "created", "recipients", "policy", "retention", "auditors"}
_RETENTION_FIELDS = {"existing_days"}
_TIME_FORMAT = "%Y-%m-%dT%H:%M:%SZ"
_UTC_TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ")


@dataclass(frozen=True)
class Bundle:
    """What a bundle installs: its version, creation time (POSIX seconds, UTC), recipients and policy.

    `existing_days`, when given, shortens the retention of recordings already made to at most that
    many days from their start (it never lengthens one); absent, they keep their own expiry unless
    the new policy's `retention_days` is shorter. `auditors` can read each session's ledger extract
    on the card (with the recipients), never its audio; none when absent.
    """

    version: int
    created: int
    recipients: tuple[Recipient, ...]
    policy: Policy
    existing_days: int | None = None
    auditors: tuple[Recipient, ...] = ()

    def payload(self) -> bytes:
        """The canonical JSON payload of this bundle."""
        value: dict[str, Any] = {
            "version": self.version,
            "created": time.strftime(_TIME_FORMAT, time.gmtime(self.created)),
            "recipients": [recipient.to_string() for recipient in self.recipients],
            "policy": self.policy.to_mapping(),
        }
        if self.existing_days is not None:
            value["retention"] = {"existing_days": self.existing_days}
        if self.auditors:
            value["auditors"] = [auditor.to_string() for auditor in self.auditors]
        return canonical_json(value)


@dataclass(frozen=True)
class Verified:
    """A bundle whose signature verified, with the SHA-256 of its exact bytes (for the ledger)."""

    bundle: Bundle
    sha256: str


def seal(bundle: Bundle, key: OrgSigningKey) -> bytes:
    """The signed bundle file's bytes."""
    check_bundle(bundle)
    payload = bundle.payload()
    signature = key.sign(_SIGNING_CONTEXT + payload)
    data = _MAGIC + _SIGNATURE_LABEL + base64.b64encode(signature) + b"\n\n" + payload
    if len(data) > MAX_BUNDLE_BYTES:
        raise PolicyError(f"the bundle would be {len(data)} bytes, over the {MAX_BUNDLE_BYTES}-byte cap")
    return data


def check_bundle(bundle: Bundle) -> None:
    """PolicyError unless `bundle` is one a box would accept (apart from its version and date)."""
    if not 1 <= bundle.version <= MAX_VERSION:
        raise PolicyError(f"bundle version must be 1 to {MAX_VERSION}, got {bundle.version}")
    if not 1 <= len(bundle.recipients) <= MAX_RECIPIENTS:
        raise PolicyError(f"a bundle needs 1 to {MAX_RECIPIENTS} recipients, got {len(bundle.recipients)}")
    if len(set(bundle.recipients)) != len(bundle.recipients):
        raise PolicyError("a bundle names each recipient once")
    if len(bundle.auditors) > MAX_AUDITORS:
        raise PolicyError(f"a bundle has at most {MAX_AUDITORS} auditors, got {len(bundle.auditors)}")
    if len(set(bundle.auditors)) != len(bundle.auditors):
        raise PolicyError("a bundle names each auditor once")
    try:
        # Each session's ledger extract is encrypted to the recipients and the auditors together.
        check_compatible(bundle.recipients + bundle.auditors)
    except KeyFormatError as error:
        raise PolicyError(str(error)) from None
    if bundle.existing_days is not None and not 0 <= bundle.existing_days <= 3650:
        raise PolicyError(f"retention existing_days must be 0 to 3650, got {bundle.existing_days}")


def open_sealed(data: bytes, org_key: OrgPublicKey) -> Verified:
    """Verify `data` with the organisation key, then parse it; `Refused` with the reason otherwise."""
    signature, payload = _split(data)
    try:
        org_key.verify(signature, _SIGNING_CONTEXT + payload)
    except SignatureError:
        raise Refused(BundleRefusal.BAD_SIGNATURE, f"expected {org_key}") from None
    return Verified(_parse_payload(payload), hashlib.sha256(data).hexdigest())


def read_unverified(data: bytes) -> Bundle:
    """Parse `data` WITHOUT checking its signature: only for showing IT what a bundle holds."""
    return _parse_payload(_split(data)[1])


def _split(data: bytes) -> tuple[bytes, bytes]:
    """The signature and the payload of a bundle file, checked for size and header only."""
    if len(data) > MAX_BUNDLE_BYTES:
        raise Refused(BundleRefusal.TOO_LARGE, f"{len(data)} bytes, the cap is {MAX_BUNDLE_BYTES}")
    header = _HEADER.match(data[:HEADER_BYTES])
    if header is None:
        raise Refused(BundleRefusal.NOT_SIGNED, "it does not start with a consentbox-bundle/v1 header")
    try:
        signature = base64.b64decode(header.group(1), validate=True)
    except binascii.Error:
        raise Refused(BundleRefusal.NOT_SIGNED, "its signature is not base64") from None
    # One spelling only: the last base64 digit has bits a lax decoder ignores, and the file's digest
    # (what the ledger records) must name one bundle, not sixteen spellings of it.
    if len(signature) != SIGNATURE_SIZE or base64.b64encode(signature) != header.group(1):
        raise Refused(BundleRefusal.NOT_SIGNED, "its signature is not 64 bytes in canonical base64")
    return signature, data[HEADER_BYTES:]


def _parse_payload(payload: bytes) -> Bundle:
    try:
        value = strict_json.loads(payload)
    except StrictJsonError as error:
        _invalid("payload", str(error), payload)
    if not isinstance(value, dict):
        _invalid("payload", "must be a JSON object", value)
    _closed(value, _FIELDS, "payload", required=_FIELDS - {"retention", "auditors"})
    retention = value.get("retention", {})
    if not isinstance(retention, dict):
        _invalid("retention", "must be an object", retention)
    _closed(retention, _RETENTION_FIELDS, "retention", required=set())
    policy = value["policy"]
    if not isinstance(policy, dict):
        _invalid("policy", "must be an object", policy)
    try:
        parsed_policy = Policy.from_mapping(policy, source="bundle policy")
    except PolicyError as error:
        raise Refused(BundleRefusal.INVALID, str(error)) from None
    recipients = value["recipients"]
    if not isinstance(recipients, list):
        _invalid("recipients", "must be a list", recipients)
    auditors = value.get("auditors", [])
    if not isinstance(auditors, list):
        _invalid("auditors", "must be a list", auditors)
    bundle = Bundle(
        version=_integer(value["version"], "version"),
        created=_time(value["created"], "created"),
        recipients=tuple(_recipient(text, f"recipients[{n}]") for n, text in enumerate(recipients)),
        policy=parsed_policy,
        existing_days=None if "existing_days" not in retention
        else _integer(retention["existing_days"], "retention.existing_days"),
        auditors=tuple(_recipient(text, f"auditors[{n}]") for n, text in enumerate(auditors)),
    )
    try:
        check_bundle(bundle)
    except PolicyError as error:
        raise Refused(BundleRefusal.INVALID, str(error)) from None
    return bundle


def _closed(value: dict[str, Any], known: set[str], where: str, *, required: set[str]) -> None:
    for key in value:
        if key not in known:
            _invalid(where, "has an unknown field", key)
    for key in sorted(required - value.keys()):
        _invalid(where, "lacks a field", key)


def _integer(value: Any, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        _invalid(where, "must be an integer", value)
    return value


def _time(value: Any, where: str) -> int:
    if not isinstance(value, str):
        _invalid(where, "must be a UTC time like 2026-11-23T14:00:00Z", value)
    try:
        if not _UTC_TIME.fullmatch(value):
            raise ValueError(value)
        # fromisoformat, not strptime: strptime imports a module when first used, which a job that
        # has dropped root may no longer be allowed to read.
        return int(datetime.fromisoformat(value).timestamp())
    except ValueError:
        _invalid(where, "must be a UTC time like 2026-11-23T14:00:00Z", value)


def _recipient(value: Any, where: str) -> Recipient:
    if not isinstance(value, str):
        _invalid(where, "must be an age1… string", value)
    try:
        return parse_recipient(value)
    except KeyFormatError as error:
        raise Refused(BundleRefusal.INVALID, f"{where}: {error}") from None


def _invalid(where: str, problem: str, value: Any) -> NoReturn:
    raise Refused(BundleRefusal.INVALID, f"{where} {problem}: {shown(value)}")
