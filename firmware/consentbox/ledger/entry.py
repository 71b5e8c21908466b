"""One ledger entry: its kinds and their closed sets of fields, its canonical line, its hash and signature.

A ledger is a file of lines, each the canonical JSON of one entry (sorted keys, no spaces, UTF-8)
followed by a newline. An entry names the hash of the entry before it (the first names a genesis
value derived from the device's public key) and is signed by the device key, so an entry cannot be
edited, dropped, moved or brought in from another box without breaking the chain or a signature.
This module knows the format and nothing of files; docs/formats.md ("Consent ledger") describes it.
"""

from __future__ import annotations

import enum
import hashlib
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from types import MappingProxyType
from typing import Any, NoReturn

from consentbox.core.errors import ConsentBoxError
from consentbox.core.provisioning import BundleRefusal
from consentbox.core.reasons import EndReason, Problem, Refusal
from consentbox.crypto.signing import DevicePublicKey, DeviceSigningKey, SignatureError, SigningKeyError
from consentbox.storage import strict_json
from consentbox.storage.canonical import canonical_json
from consentbox.storage.ids import is_session_id
from consentbox.storage.strict_json import StrictJsonError

#: The entry layout this code writes and reads; every entry carries it.
FORMAT_VERSION = 1

#: Prefixed to what is signed, so a ledger signature can never pass for any other use of the key.
SIGNING_CONTEXT = b"consentbox-ledger/v1 entry\n"
_GENESIS_CONTEXT = b"consentbox-ledger/v1 genesis\n"

_HEX64 = re.compile(r"[0-9a-f]{64}")
_HEX128 = re.compile(r"[0-9a-f]{128}")
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_SHOWN = 40


class LedgerError(ConsentBoxError, ValueError):
    """A ledger or an entry is not what the format says: edited, reordered, spliced, signed by
    another key, or malformed. The message names the entry (line and sequence number)."""


class Kind(enum.Enum):
    """What an entry records."""

    BOOT = "boot"
    SHUTDOWN = "shutdown"
    GAP = "gap"
    SETUP = "setup"
    HEADCOUNT = "headcount"
    CONSENT = "consent"
    REFUSED = "refused"
    START = "start"
    PAUSE = "pause"
    RESUME = "resume"
    SEAL = "seal"
    END = "end"
    WITHDRAWAL = "withdrawal"
    DESTRUCTION = "destruction"
    EXPIRY = "expiry"
    FAULT = "fault"
    PROVISIONING = "provisioning"
    PROVISIONING_REFUSED = "provisioning_refused"
    WIPE = "wipe"
    CLOCK_CORRECTION = "clock_correction"
    SILENCE_ENDED = "silence_ended"


class SessionRule(enum.Enum):
    """Whether an entry of a kind belongs to a session."""

    REQUIRED = "a session id"
    NONE = "null"
    OPTIONAL = "a session id or null"


# -- field values: each takes what a caller passes (an enum or the plain value) to its JSON value,
#    and accepts from a file only the JSON value it writes.

Field = Callable[[Any, str], Any]


def _fail(where: str, problem: str, value: Any) -> NoReturn:
    shown = repr(value)
    if len(shown) > _SHOWN:
        shown = shown[:_SHOWN] + "…"
    raise LedgerError(f"{where}: {problem}, got {shown}")


def _count(low: int) -> Field:
    def check(value: Any, where: str) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            _fail(where, f"expected a whole number of at least {low}", value)
        return value
    return check


def _seat_or_null(value: Any, where: str) -> int | None:
    return None if value is None else _count(1)(value, where)


def _count_or_null(value: Any, where: str) -> int | None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
        _fail(where, "expected a whole number of at least 0, or null", value)
    return value


def _flag(value: Any, where: str) -> bool:
    if not isinstance(value, bool):
        _fail(where, "expected true or false", value)
    return value


def _seconds(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        _fail(where, "expected a number of seconds", value)
    return float(value)


def _sha256(value: Any, where: str) -> str:
    if not isinstance(value, str) or not _HEX64.fullmatch(value):
        _fail(where, "expected 64 lowercase hex digits (SHA-256)", value)
    return value


def _sha256_or_null(value: Any, where: str) -> str | None:
    return None if value is None else _sha256(value, where)


def _one_of(words: tuple[str, ...]) -> Field:
    def check(value: Any, where: str) -> str:
        if isinstance(value, enum.Enum):
            value = value.text if isinstance(value, (Problem, Refusal, BundleRefusal)) else value.value
        if value not in words:
            _fail(where, "expected one of " + ", ".join(repr(w) for w in words), value)
        return value
    return check


def _destruction_cause(value: Any, where: str) -> str:
    # An old ledger's entry is signed as written, with its old word; what reads it sees the word of today.
    return _one_of(DESTRUCTION_CAUSES)(FORMER_CAUSES.get(value, value) if isinstance(value, str) else value, where)


def _date(value: Any, where: str) -> str:
    if isinstance(value, date):
        value = value.isoformat()
    if not isinstance(value, str) or not _DATE.fullmatch(value):
        _fail(where, "expected a date, YYYY-MM-DD", value)
    try:
        date.fromisoformat(value)
    except ValueError:
        _fail(where, "expected a date, YYYY-MM-DD", value)
    return value


def _problem_code(value: Any, where: str) -> int:
    if isinstance(value, Problem):
        return value.code
    if isinstance(value, bool) or not isinstance(value, int) or value not in [p.code for p in Problem]:
        _fail(where, "expected a STATUS blink code (docs/status-codes.md)", value)
    return value


def _device_key(value: Any, where: str) -> str:
    if isinstance(value, DevicePublicKey):
        return value.to_string()
    if not isinstance(value, str):
        _fail(where, "expected a device public key", value)
    try:
        return DevicePublicKey.parse(value).to_string()
    except SigningKeyError as error:
        _fail(where, str(error), value)


def _version(value: Any, where: str) -> str:
    if not isinstance(value, str) or not re.fullmatch(r"[0-9A-Za-z.+-]{1,32}", value):
        _fail(where, "expected a version number", value)
    return value


#: The refusal words an entry can hold: the refusals of a ready box, and the not-ready problems.
REFUSAL_WORDS = tuple(r.value for r in Refusal) + tuple(p.text for p in Problem)
END_REASONS = tuple(r.value for r in EndReason)
DESTRUCTION_CAUSES = ("withdrawn", "retention", "absent", "off_box")
#: A cause word ledgers written before issue 17 used, and the word it is read as.
FORMER_CAUSES = MappingProxyType({"withdrawal": "withdrawn"})
EXPIRY_REASONS = ("recorded", "bundle", "policy")
BUNDLE_REFUSALS = tuple(r.text for r in BundleRefusal)


@dataclass(frozen=True)
class KindRule:
    """Whether a kind of entry has a session, and its fields: always all of them, never any other."""

    session: SessionRule
    fields: Mapping[str, Field]


#: The closed set of fields of each kind (docs/formats.md lists the same; a test holds them equal).
#: Nothing here can hold a name, free text or audio: counts, seats, digests, and words from fixed lists.
RULES: Mapping[Kind, KindRule] = MappingProxyType({
    Kind.BOOT: KindRule(SessionRule.NONE, {"device_key": _device_key, "version": _version}),
    Kind.SHUTDOWN: KindRule(SessionRule.NONE, {}),
    Kind.GAP: KindRule(SessionRule.NONE, {"cut_bytes": _count(1)}),
    Kind.SETUP: KindRule(SessionRule.REQUIRED, {"headcount": _count(1), "policy_sha256": _sha256}),
    Kind.HEADCOUNT: KindRule(SessionRule.REQUIRED, {"headcount": _count(1)}),
    Kind.CONSENT: KindRule(SessionRule.REQUIRED, {"seat": _count(1)}),
    Kind.REFUSED: KindRule(SessionRule.OPTIONAL, {"reason": _one_of(REFUSAL_WORDS)}),
    Kind.START: KindRule(SessionRule.REQUIRED, {}),
    Kind.PAUSE: KindRule(SessionRule.REQUIRED, {}),
    Kind.RESUME: KindRule(SessionRule.REQUIRED, {}),
    # `segment` and `frames` are null for the session's manifest (docs/formats.md, "Seals").
    Kind.SEAL: KindRule(SessionRule.REQUIRED, {"segment": _count_or_null, "bytes": _count(0), "sha256": _sha256,
                                               "frames": _count_or_null, "final": _flag}),
    Kind.END: KindRule(SessionRule.REQUIRED, {"reason": _one_of(END_REASONS), "kept": _flag}),
    Kind.WITHDRAWAL: KindRule(SessionRule.REQUIRED, {"seat": _seat_or_null}),
    Kind.DESTRUCTION: KindRule(SessionRule.REQUIRED, {"files": _count(0), "cause": _destruction_cause,
                                                      "due": _date}),
    Kind.EXPIRY: KindRule(SessionRule.REQUIRED, {"expires": _date, "reason": _one_of(EXPIRY_REASONS)}),
    Kind.FAULT: KindRule(SessionRule.OPTIONAL, {"problem": _problem_code}),
    Kind.PROVISIONING: KindRule(SessionRule.NONE, {"bundle_version": _count(1), "recipients": _count(1),
                                                   "bundle_sha256": _sha256}),
    Kind.PROVISIONING_REFUSED: KindRule(SessionRule.NONE, {"reason": _one_of(BUNDLE_REFUSALS),
                                                           "bundle_sha256": _sha256_or_null}),
    Kind.WIPE: KindRule(SessionRule.NONE, {"files": _count(0)}),
    Kind.CLOCK_CORRECTION: KindRule(SessionRule.NONE, {"delta": _seconds}),
    # The end of a silence the box alerted (a `fault` of problem 11): how long it lasted, and whether sound
    # came back (false: capture closed while it was still silent).
    Kind.SILENCE_ENDED: KindRule(SessionRule.REQUIRED, {"seconds": _seconds, "heard": _flag}),
})

#: The keys of every entry, whatever its kind.
ENVELOPE = frozenset({"format", "seq", "kind", "wall", "mono", "session", "fields", "prev", "sig"})


def check_fields(kind: Kind, session: str | None, fields: Mapping[str, Any], where: str) -> dict[str, Any]:
    """The JSON values of `fields` for an entry of `kind`; LedgerError unless they are exactly its set."""
    rule = RULES[kind]
    if session is not None and not is_session_id(session):
        _fail(f"{where} session", "expected 16 lowercase hex digits", session)
    if rule.session is SessionRule.REQUIRED and session is None:
        raise LedgerError(f"{where}: a {kind.value} entry belongs to a session, but none was given")
    if rule.session is SessionRule.NONE and session is not None:
        raise LedgerError(f"{where}: a {kind.value} entry belongs to no session, but got {session!r}")
    unknown = sorted(set(fields) - set(rule.fields))
    if unknown:
        raise LedgerError(f"{where}: {unknown[0]!r} is not a field of a {kind.value} entry "
                          f"(its fields: {', '.join(rule.fields) or 'none'})")
    missing = sorted(set(rule.fields) - set(fields))
    if missing:
        raise LedgerError(f"{where}: a {kind.value} entry needs field {missing[0]!r}")
    return {name: check(fields[name], f"{where} field {name}") for name, check in rule.fields.items()}


def genesis(device_key: DevicePublicKey) -> str:
    """What the first entry of a ledger written by `device_key` names as its previous entry's hash."""
    return hashlib.sha256(_GENESIS_CONTEXT + device_key.raw).hexdigest()


@dataclass(frozen=True)
class Entry:
    """One signed ledger entry, as written: `line` is its canonical JSON, without the newline."""

    seq: int
    kind: Kind
    wall: datetime
    mono: float
    session: str | None
    fields: Mapping[str, Any]
    prev: str
    signature: bytes = field(repr=False)
    line: bytes = field(repr=False)

    @property
    def digest(self) -> str:
        """SHA-256 (hex) of the line: what the next entry names as `prev`."""
        return hashlib.sha256(self.line).hexdigest()

    @classmethod
    def create(
        cls,
        key: DeviceSigningKey,
        *,
        seq: int,
        kind: Kind,
        wall: datetime,
        mono: float,
        session: str | None,
        fields: Mapping[str, Any],
        prev: str,
    ) -> Entry:
        """A new entry, its fields checked against its kind's set and signed by `key`."""
        where = f"ledger entry {seq} ({kind.value})"
        if wall.utcoffset() is None:
            raise LedgerError(f"{where}: the wall-clock time needs its UTC offset")
        # Milliseconds: a reader compares times with a tolerance; more digits would only be noise.
        wall_text = wall.isoformat(timespec="milliseconds")
        mono = round(_seconds(mono, f"{where} mono"), 6)
        checked = check_fields(kind, session, fields, where)
        body = {
            "format": FORMAT_VERSION,
            "seq": seq,
            "kind": kind.value,
            "wall": wall_text,
            "mono": mono,
            "session": session,
            "fields": checked,
            "prev": prev,
        }
        signature = key.sign(SIGNING_CONTEXT + canonical_json(body))
        line = canonical_json({**body, "sig": signature.hex()})
        return cls(seq, kind, datetime.fromisoformat(wall_text), mono, session,
                   MappingProxyType(checked), prev, signature, line)

    @classmethod
    def parse(cls, line: bytes, where: str) -> Entry:
        """Parse one line (without its newline) strictly: canonical JSON, the envelope, its kind's fields.

        The signature is not checked here (see `check_signature`); `where` begins every error.
        """
        try:
            values = strict_json.loads(line)
        except StrictJsonError:
            raise LedgerError(f"{where}: not a JSON entry: the line was edited or damaged") from None
        if not isinstance(values, dict):
            raise LedgerError(f"{where}: not a JSON object: the line was edited")
        if set(values) != ENVELOPE:
            odd = sorted(set(values) ^ ENVELOPE)[0]
            raise LedgerError(f"{where}: {'unknown' if odd in values else 'missing'} key {odd!r}")
        try:
            canonical = canonical_json(values)
        except ValueError:
            canonical = b""
        if canonical != line:
            # One spelling per entry: a byte changed anywhere is a changed entry, even if it parses the same.
            raise LedgerError(f"{where}: not in canonical form: the line was edited")
        if type(values["format"]) is not int or values["format"] != FORMAT_VERSION:
            raise LedgerError(f"{where}: format {values['format']!r}: this tool reads format "
                              f"{FORMAT_VERSION}; update consentbox-admin")
        seq = _count(0)(values["seq"], f"{where} seq")
        try:
            kind = Kind(values["kind"])
        except (ValueError, TypeError):
            _fail(f"{where} kind", "not a kind of entry", values["kind"])
        wall = _wall(values["wall"], f"{where} wall")
        mono = _seconds(values["mono"], f"{where} mono")
        if not isinstance(values["fields"], dict):
            _fail(f"{where} fields", "expected an object", values["fields"])
        fields = check_fields(kind, values["session"], values["fields"], where)
        prev = _sha256(values["prev"], f"{where} prev")
        if not isinstance(values["sig"], str) or not _HEX128.fullmatch(values["sig"]):
            _fail(f"{where} sig", "expected a 64-byte signature in lowercase hex", values["sig"])
        return cls(seq, kind, wall, mono, values["session"], MappingProxyType(fields), prev,
                   bytes.fromhex(values["sig"]), line)

    def signed_bytes(self) -> bytes:
        """What the signature covers: the context string and the canonical entry without `sig`."""
        body = strict_json.loads(self.line)
        del body["sig"]
        return SIGNING_CONTEXT + canonical_json(body)

    def check_signature(self, device_key: DevicePublicKey, where: str) -> None:
        """Return if `device_key` signed this entry; LedgerError naming `where` otherwise."""
        try:
            device_key.verify(self.signature, self.signed_bytes())
        except SignatureError:
            raise LedgerError(f"{where}: signature does not verify with device key {device_key}: "
                              "the entry was edited, or comes from another box's ledger") from None


def _wall(value: Any, where: str) -> datetime:
    if not isinstance(value, str):
        _fail(where, "expected an ISO 8601 time", value)
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        _fail(where, "expected an ISO 8601 time", value)
    if moment.utcoffset() is None:
        _fail(where, "expected a time with its UTC offset", value)
    return moment


@dataclass(frozen=True)
class SessionRange:
    """Where a session's entries sit in the ledger: for its manifest, which names them."""

    session: str
    first: int  # sequence number of its first entry
    last: int  # sequence number of its last entry so far
    head: str  # SHA-256 (hex) of the line of entry `last`

    def extended(self, entry: Entry) -> SessionRange:
        """This range grown by `entry`, a later entry of the same session."""
        return SessionRange(self.session, self.first, entry.seq, entry.digest)

    @classmethod
    def starting(cls, entry: Entry) -> SessionRange:
        """The range of a session whose first entry is `entry`."""
        assert entry.session is not None
        return cls(entry.session, entry.seq, entry.seq, entry.digest)

    def to_mapping(self) -> dict[str, Any]:
        """The range as plain JSON values, `{"first", "last", "head"}`."""
        return {"first": self.first, "last": self.last, "head": self.head}
