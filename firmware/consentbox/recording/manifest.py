"""The session manifest: what happened in one session, as canonical JSON that is encrypted beside its audio.

It records times as offsets in seconds from the set-up's start, seats by number, and digests; it has
no field that could hold a person's name. `Manifest.from_json` is strict: an unknown field, a missing
one or a wrong type is a one-line `ManifestError` that names the field, as in `segments[2].sha256`.
docs/formats.md describes every field.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, NoReturn, TypeVar

from consentbox.core.errors import ConsentBoxError
from consentbox.core.policy import Policy, SampleFormat
from consentbox.core.reasons import EndReason
from consentbox.recording.wav import AudioFormat
from consentbox.storage import strict_json
from consentbox.storage.canonical import canonical_json
from consentbox.storage.ids import is_session_id, is_sha256
from consentbox.storage.strict_json import StrictJsonError

#: The manifest layout this code writes and reads; a reader refuses any other.
FORMAT_VERSION = 1
#: A session has at most this many segment files, numbered 000 to 999: always three digits. The cap
#: bounds every reader of a card (a file named with a 200-digit number must not make an export count
#: that far); the box ends a session that would need a thousandth-and-first segment as if the card were
#: full, which at the default `segment_bytes` (1 GiB) is a terabyte of audio.
MAX_SEGMENTS = 1000
_SEGMENT_SUFFIX = ".wav.age"

_SHOWN = 40  # characters of a bad value an error message quotes

T = TypeVar("T")
Check = Callable[[Any, str], T]


class ManifestError(ConsentBoxError, ValueError):
    """A manifest does not parse or contradicts itself; the message names the field."""


class SegmentNameError(ConsentBoxError, ValueError):
    """A file on the card is named as one of a session's segments, but not as the box names them."""


def policy_digest(policy: Policy) -> str:
    """SHA-256 (hex) of the canonical JSON of the policy a session was recorded under."""
    return hashlib.sha256(canonical_json(policy.to_mapping())).hexdigest()


def segment_name(session: str, index: int) -> str:
    """The file name of segment `index` (0 to `MAX_SEGMENTS` - 1) of `session` on the card."""
    return f"{session}.{index:03d}{_SEGMENT_SUFFIX}"


def segment_index(session: str, name: str) -> int | None:
    """The number of the card file `name` if it is one of `session`'s segments, None if it is not named
    as one; SegmentNameError if it is, but its number is not three digits as the box writes them."""
    prefix = f"{session}."
    if not name.startswith(prefix) or not name.endswith(_SEGMENT_SUFFIX) \
            or len(name) < len(prefix) + len(_SEGMENT_SUFFIX):
        return None
    number = name[len(prefix):len(name) - len(_SEGMENT_SUFFIX)]
    # Three ASCII digits, checked before int(): int() takes other scripts' digits, and any length.
    if len(number) != 3 or not number.isascii() or not number.isdigit():
        shown = name if name.isascii() and name.isprintable() else ascii(name)
        raise SegmentNameError(f"{shown} is named as a segment of session {session}, but the box numbers "
                               f"segments with three digits (000 to {MAX_SEGMENTS - 1}): it did not write this file")
    return int(number)


def manifest_name(session: str) -> str:
    """The file name of the manifest of `session` on the card."""
    return f"{session}.manifest.age"


def extract_name(session: str) -> str:
    """The file name of the card's encrypted copy of `session`'s ledger entries (`consentbox.ledger.extract`).

    It is the session's record, not its recording: it stays on the card when the recording is destroyed.
    """
    return f"{session}.ledger.age"


@dataclass(frozen=True)
class Consent:
    """A seat that consented, and when (seconds after the set-up started)."""

    seat: int
    offset: float


@dataclass(frozen=True)
class Interval:
    """One stretch of capture between a start or resume and a pause or end; open while capturing."""

    start: float
    end: float | None = None
    frames: int | None = None


@dataclass(frozen=True)
class Segment:
    """One encrypted file of audio; its size and digest are known once it is closed."""

    name: str
    interval: int
    plaintext_bytes: int | None = None
    sha256: str | None = None

    @property
    def closed(self) -> bool:
        """Whether the segment was sealed and its digest recorded."""
        return self.sha256 is not None


@dataclass(frozen=True)
class LedgerRange:
    """The session's entries in the box's consent ledger, as far as this manifest version knows them."""

    first: int  # sequence number of its first entry
    last: int  # sequence number of its last entry when this version was written
    head: str  # SHA-256 (hex) of entry `last`'s line: a ledger cut after it cannot hide that

    def __post_init__(self) -> None:
        if self.last < self.first:
            _fail("ledger.last", f"comes before ledger.first ({self.first})", self.last)


@dataclass(frozen=True)
class Manifest:
    """Everything the box knows about one session, without a name or a sample of audio in it."""

    session: str
    policy_sha256: str
    headcount: int
    consents: tuple[Consent, ...]
    intervals: tuple[Interval, ...]
    audio: AudioFormat
    segments: tuple[Segment, ...]
    overruns: int
    end_reason: EndReason | None
    ended: float | None
    withdrawn: bool
    expires: date
    started: datetime
    ledger: LedgerRange | None = None  # None only where no ledger was kept (unit tests)

    def __post_init__(self) -> None:
        # The rules that tie fields together; field types are the parser's job.
        if not is_session_id(self.session):
            _fail("session", "expected 16 lowercase hex digits", self.session)
        if self.started.utcoffset() is None:
            _fail("started", "expected a time with its UTC offset", self.started.isoformat())
        for index, interval in enumerate(self.intervals):
            where = f"intervals[{index}]"
            if (interval.end is None) != (interval.frames is None):
                _fail(where, "end and frames must both be set or both be null", interval)
            if interval.end is None and index != len(self.intervals) - 1:
                _fail(f"{where}.end", "only the last interval can be open", None)
            if interval.end is not None and interval.end < interval.start:
                _fail(f"{where}.end", f"ends before it starts ({interval.start})", interval.end)
        if len(self.segments) > MAX_SEGMENTS:
            _fail("segments", f"a session has at most {MAX_SEGMENTS}", len(self.segments))
        last_interval = 0
        for index, segment in enumerate(self.segments):
            where = f"segments[{index}]"
            if segment.name != segment_name(self.session, index):
                _fail(f"{where}.name", f"expected {segment_name(self.session, index)!r}", segment.name)
            if not last_interval <= segment.interval < len(self.intervals):
                _fail(f"{where}.interval", "not an interval of this session, in order", segment.interval)
            last_interval = segment.interval
            if (segment.plaintext_bytes is None) != (segment.sha256 is None):
                _fail(where, "plaintext_bytes and sha256 must both be set or both be null", segment)
        if (self.end_reason is None) != (self.ended is None):
            _fail("ended", "must be set exactly when end_reason is", self.ended)

    def to_mapping(self) -> dict[str, Any]:
        """The manifest as plain JSON values (the inverse of `from_mapping`)."""
        return {
            "format": FORMAT_VERSION,
            "session": self.session,
            "policy_sha256": self.policy_sha256,
            "headcount": self.headcount,
            "consents": [{"seat": c.seat, "offset": c.offset} for c in self.consents],
            "intervals": [{"start": i.start, "end": i.end, "frames": i.frames} for i in self.intervals],
            "audio": {"rate": self.audio.rate, "channels": self.audio.channels,
                      "sample_format": self.audio.sample_format.value},
            "segments": [{"name": s.name, "interval": s.interval, "plaintext_bytes": s.plaintext_bytes,
                          "sha256": s.sha256} for s in self.segments],
            "overruns": self.overruns,
            "end_reason": None if self.end_reason is None else self.end_reason.value,
            "ended": self.ended,
            "withdrawn": self.withdrawn,
            "expires": self.expires.isoformat(),
            "started": self.started.isoformat(),
            "ledger": None if self.ledger is None else {
                "first": self.ledger.first, "last": self.ledger.last, "head": self.ledger.head},
        }

    def to_json(self) -> bytes:
        """The canonical JSON that is encrypted to `<session>.manifest.age`."""
        return canonical_json(self.to_mapping())

    @classmethod
    def from_mapping(cls, values: Any) -> Manifest:
        """Parse JSON values strictly; ManifestError names the first bad field."""
        top = _Fields(values, "")
        version = top.take("format", _integer(0))
        if version != FORMAT_VERSION:
            _fail("format", f"this tool reads format {FORMAT_VERSION}: update consentbox-admin", version)
        manifest = cls(
            session=top.take("session", _text),
            policy_sha256=top.take("policy_sha256", _sha256),
            headcount=top.take("headcount", _integer(1)),
            consents=top.take("consents", _list(_consent)),
            intervals=top.take("intervals", _list(_interval)),
            audio=top.take("audio", _audio),
            segments=top.take("segments", _list(_segment)),
            overruns=top.take("overruns", _integer(0)),
            end_reason=top.take("end_reason", _optional(_end_reason)),
            ended=top.take("ended", _optional(_offset)),
            withdrawn=top.take("withdrawn", _boolean),
            expires=top.take("expires", _date),
            started=top.take("started", _datetime),
            ledger=top.take("ledger", _optional(_ledger_range)),
        )
        top.done()
        return manifest

    @classmethod
    def from_json(cls, data: bytes) -> Manifest:
        """Parse the decrypted bytes of a manifest file."""
        try:
            values = strict_json.loads(data)
        except StrictJsonError as error:
            raise ManifestError(f"manifest {error}") from None
        return cls.from_mapping(values)


def _fail(field: str, problem: str, value: Any) -> NoReturn:
    shown = repr(value)
    if len(shown) > _SHOWN:
        shown = shown[:_SHOWN] + "…"
    raise ManifestError(f"manifest field {field}: {problem}, got {shown}") from None


class _Fields:
    """One JSON object being read: each field is taken once, and any left over is unknown."""

    def __init__(self, value: Any, where: str) -> None:
        if not isinstance(value, dict):
            _fail(where or "(top level)", "expected an object", value)
        self._values = dict(value)
        self._where = where

    def take(self, key: str, check: Check[T]) -> T:
        """The checked value of field `key`, which must be present."""
        field = f"{self._where}.{key}" if self._where else key
        if key not in self._values:
            raise ManifestError(f"manifest field {field} is missing")
        return check(self._values.pop(key), field)

    def done(self) -> None:
        """Fail on the first field no `take` asked for."""
        if self._values:
            key = min(self._values)
            field = f"{self._where}.{key}" if self._where else key
            raise ManifestError(f"manifest field {field}: unknown field")


def _integer(low: int) -> Check[int]:
    def check(value: Any, field: str) -> int:
        # bool is an int subclass; `true` is never a count.
        if isinstance(value, bool) or not isinstance(value, int):
            _fail(field, "expected a whole number", value)
        if value < low:
            _fail(field, f"expected at least {low}", value)
        return value
    return check


def _offset(value: Any, field: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        _fail(field, "expected a number of seconds", value)
    if value < 0:
        _fail(field, "expected seconds after the set-up started (not negative)", value)
    return float(value)


def _text(value: Any, field: str) -> str:
    if not isinstance(value, str):
        _fail(field, "expected a string", value)
    return value


def _sha256(value: Any, field: str) -> str:
    if not is_sha256(value):
        _fail(field, "expected 64 lowercase hex digits (SHA-256)", value)
    return value


def _boolean(value: Any, field: str) -> bool:
    if not isinstance(value, bool):
        _fail(field, "expected true or false", value)
    return value


def _date(value: Any, field: str) -> date:
    try:
        return date.fromisoformat(_text(value, field))
    except ValueError:
        _fail(field, "expected a date YYYY-MM-DD", value)


def _datetime(value: Any, field: str) -> datetime:
    try:
        moment = datetime.fromisoformat(_text(value, field))
    except ValueError:
        _fail(field, "expected an ISO 8601 time", value)
    if moment.utcoffset() is None:
        _fail(field, "expected a time with its UTC offset", value)
    return moment


def _end_reason(value: Any, field: str) -> EndReason:
    try:
        return EndReason(value)
    except ValueError:
        _fail(field, "expected one of " + ", ".join(repr(r.value) for r in EndReason), value)


def _optional(check: Check[T]) -> Check[T | None]:
    def optional(value: Any, field: str) -> T | None:
        return None if value is None else check(value, field)
    return optional


def _list(check: Check[T]) -> Check[tuple[T, ...]]:
    def items(value: Any, field: str) -> tuple[T, ...]:
        if not isinstance(value, list):
            _fail(field, "expected a list", value)
        return tuple(check(item, f"{field}[{index}]") for index, item in enumerate(value))
    return items


def _consent(value: Any, field: str) -> Consent:
    fields = _Fields(value, field)
    consent = Consent(seat=fields.take("seat", _integer(1)), offset=fields.take("offset", _offset))
    fields.done()
    return consent


def _interval(value: Any, field: str) -> Interval:
    fields = _Fields(value, field)
    interval = Interval(start=fields.take("start", _offset), end=fields.take("end", _optional(_offset)),
                        frames=fields.take("frames", _optional(_integer(0))))
    fields.done()
    return interval


def _segment(value: Any, field: str) -> Segment:
    fields = _Fields(value, field)
    segment = Segment(name=fields.take("name", _text), interval=fields.take("interval", _integer(0)),
                      plaintext_bytes=fields.take("plaintext_bytes", _optional(_integer(0))),
                      sha256=fields.take("sha256", _optional(_sha256)))
    fields.done()
    return segment


def _ledger_range(value: Any, field: str) -> LedgerRange:
    fields = _Fields(value, field)
    found = LedgerRange(first=fields.take("first", _integer(0)), last=fields.take("last", _integer(0)),
                        head=fields.take("head", _sha256))
    fields.done()
    return found


def _audio(value: Any, field: str) -> AudioFormat:
    fields = _Fields(value, field)
    rate = fields.take("rate", _integer(1))
    channels = fields.take("channels", _integer(1))
    raw_format = fields.take("sample_format", _text)
    try:
        sample_format = SampleFormat(raw_format)
    except ValueError:
        _fail(f"{field}.sample_format", "expected " + " or ".join(repr(f.value) for f in SampleFormat),
              raw_format)
    fields.done()
    return AudioFormat(rate, channels, sample_format)

