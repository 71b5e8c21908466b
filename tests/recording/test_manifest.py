"""The manifest: canonical JSON that round-trips exactly, and a parser that names the first bad field."""

from __future__ import annotations

import hashlib
import json
import re
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import pytest

from consentbox.core.policy import Policy, SampleFormat
from consentbox.core.reasons import EndReason
from consentbox.recording.manifest import (
    Consent,
    Interval,
    Manifest,
    ManifestError,
    Segment,
    canonical_json,
    policy_digest,
    segment_name,
)
from consentbox.recording.wav import AudioFormat

SESSION = "0123456789abcdef"
FORMATS_DOC = Path(__file__).resolve().parents[2] / "docs" / "formats.md"


def _manifest(**changes) -> Manifest:
    values = dict(
        session=SESSION,
        policy_sha256=policy_digest(Policy()),
        headcount=2,
        consents=(Consent(1, 12.5), Consent(2, 20.0)),
        intervals=(Interval(30.0, 90.25, 2_892_000), Interval(120.0)),
        audio=AudioFormat(48_000, 1, SampleFormat.S16_LE),
        segments=(Segment(segment_name(SESSION, 0), 0, 5_784_044, "ab" * 32),
                  Segment(segment_name(SESSION, 1), 1)),
        overruns=3,
        end_reason=None,
        ended=None,
        withdrawn=False,
        expires=date(2026, 4, 3),
        started=datetime(2026, 3, 4, 9, 30, tzinfo=timezone(timedelta(hours=1))),
    )
    values.update(changes)
    return Manifest(**values)


RECORDING = _manifest()
ENDED = _manifest(intervals=(Interval(30.0, 90.25, 2_892_000),), segments=RECORDING.segments[:1],
                  end_reason=EndReason.WITHDRAWN, ended=95.0, withdrawn=True)


@pytest.mark.parametrize("manifest", [RECORDING, ENDED], ids=["recording", "ended"])
def test_round_trip_is_exact_and_canonical(manifest):
    data = manifest.to_json()
    assert Manifest.from_json(data) == manifest
    assert Manifest.from_json(data).to_json() == data
    assert data == json.dumps(json.loads(data), sort_keys=True, separators=(",", ":")).encode()


def test_canonical_json_is_sorted_compact_utf8():
    assert canonical_json({"b": 1, "a": ["é", 1.5]}) == '{"a":["é",1.5],"b":1}'.encode()
    with pytest.raises(ValueError):
        canonical_json({"a": float("nan")})


def test_policy_digest_is_the_sha256_of_the_canonical_policy():
    policy = Policy(retention_days=7)
    assert policy_digest(policy) == hashlib.sha256(canonical_json(policy.to_mapping())).hexdigest()
    assert policy_digest(policy) != policy_digest(Policy())


def _edited(path: str, value) -> bytes:
    """RECORDING's JSON with the field at `path` (dots and [indexes]) set to `value`, or removed if `...`."""
    values = json.loads(RECORDING.to_json())
    *parents, last = re.findall(r"\w+", path)
    target = values
    for key in parents:
        target = target[int(key)] if key.isdigit() else target[key]
    if value is ...:
        del target[last]
    else:
        target[int(last) if last.isdigit() else last] = value
    return json.dumps(values).encode()


@pytest.mark.parametrize(("path", "value", "field"), [
    ("therapist", "Dr Who", "therapist"),
    ("consents[0].name", "Alice", "consents[0].name"),
    ("headcount", ..., "headcount"),
    ("headcount", "2", "headcount"),
    ("headcount", True, "headcount"),
    ("headcount", 0, "headcount"),
    ("format", 2, "format"),
    ("session", "Alice-2026-03-04", "session"),
    ("policy_sha256", "ab", "policy_sha256"),
    ("consents", {}, "consents"),
    ("consents[1].offset", -1, "consents[1].offset"),
    ("consents[1].seat", 1.0, "consents[1].seat"),
    ("intervals[0].end", None, "intervals[0]"),
    ("intervals[0].start", 100.0, "intervals[0].end"),
    ("intervals[1].frames", 5, "intervals[1]"),
    ("audio.sample_format", "S24_LE", "audio.sample_format"),
    ("audio.rate", 48_000.0, "audio.rate"),
    ("segments[0].sha256", "AB" * 32, "segments[0].sha256"),
    ("segments[0].sha256", None, "segments[0]"),
    ("segments[1].name", "other.001.wav.age", "segments[1].name"),
    ("segments[1].interval", 2, "segments[1].interval"),
    ("overruns", -1, "overruns"),
    ("end_reason", "bored", "end_reason"),
    ("end_reason", "ended", "ended"),
    ("withdrawn", 0, "withdrawn"),
    ("expires", "next month", "expires"),
    ("started", "2026-03-04T09:30:00", "started"),
])
def test_strict_parsing_names_the_field_in_one_line(path, value, field):
    with pytest.raises(ManifestError) as raised:
        Manifest.from_json(_edited(path, value))
    message = str(raised.value)
    assert message.startswith(f"manifest field {field}") and "\n" not in message


@pytest.mark.parametrize("data", [b"\xff", b"[1, 2", b'{"overruns": NaN}', b"[]"])
def test_what_is_not_a_json_object_is_refused(data):
    with pytest.raises(ManifestError):
        Manifest.from_json(data)


def _keys(value):
    if isinstance(value, dict):
        for key, inner in value.items():
            yield key
            yield from _keys(inner)
    elif isinstance(value, list):
        for inner in value:
            yield from _keys(inner)


def test_every_manifest_field_is_documented():
    documented = FORMATS_DOC.read_text(encoding="utf-8")
    for key in set(_keys(json.loads(RECORDING.to_json()))):
        assert f"`{key}`" in documented, f"docs/formats.md does not describe manifest field {key}"
