"""The C2SP CCTV age test vectors, read from the npm package that `make vectors` fetches.

The vectors are never copied into the repository. Each is a few `key: value` lines (expect,
payload, identity, compressed, armored, passphrase, …), a blank line, then the age file.

Mapping of `expect` to our errors, asserted exactly:
  success -> no error, sha256 of the plaintext equals `payload`
  header failure -> HeaderError (also malformed X25519 stanzas and a missing payload nonce)
  no match -> NoIdentityMatch
  HMAC failure -> HeaderMacError
  payload failure -> PayloadError (or its TruncatedPayload), after yielding exactly the
                     plaintext whose sha256 is `payload`
"""

from __future__ import annotations

import base64
import hashlib
import io
import re
import zlib
from dataclasses import dataclass
from pathlib import Path

import pytest

from consentbox.crypto import (
    AgeReader,
    HeaderError,
    HeaderMacError,
    NoIdentityMatch,
    PayloadError,
    X25519Identity,
    parse_identity,
)

CCTV = Path(__file__).resolve().parents[2] / ".cache" / "cctv-age-0.2.0" / "index.js"
# How many vectors of cctv-age 0.2.0 each test runs; a parsing change that loses some fails here.
CONFORMANCE_COUNT = 86
HYBRID_COUNT = 18  # the hybrid_* files: mlkem768x25519 identities (armor_hybrid is among the armored)
ARMORED_COUNT = 33

_ENTRY = re.compile(r'^// \.\./testdata/(\S+)\nvar \w+_default = __toBinary\("([A-Za-z0-9+/=]*)"\);', re.M)
_EXPECTED_ERROR = {
    "header failure": HeaderError,
    "no match": NoIdentityMatch,
    "HMAC failure": HeaderMacError,
    "payload failure": PayloadError,
}


@dataclass(frozen=True)
class Vector:
    name: str
    expect: str
    payload_sha256: str | None
    identities: tuple[str, ...]
    armored: bool
    passphrase: bool
    file: bytes


def _parse(name: str, data: bytes) -> Vector:
    head, _, file = data.partition(b"\n\n")
    fields: dict[str, list[str]] = {}
    for line in head.decode("utf-8").split("\n"):
        key, _, value = line.partition(": ")
        fields.setdefault(key, []).append(value)
    if fields.get("compressed") == ["zlib"]:
        file = zlib.decompress(file)
    return Vector(
        name=name,
        expect=fields["expect"][0],
        payload_sha256=fields.get("payload", [None])[0],
        identities=tuple(fields.get("identity", [])),
        armored=fields.get("armored") == ["yes"],
        passphrase="passphrase" in fields,
        file=file,
    )


def _load() -> list[Vector]:
    if not CCTV.exists():
        return []
    return [_parse(name, base64.b64decode(data)) for name, data in _ENTRY.findall(CCTV.read_text())]


VECTORS = _load()


def _is_conformance(vector: Vector) -> bool:
    # Binary files with X25519 or mlkem768x25519 identities. A passphrase vector counts only when
    # it also has an identity: then it is the "scrypt must not be mixed" rule, which holds whatever
    # the passphrase.
    return not vector.armored and (not vector.passphrase or bool(vector.identities))


CONFORMANCE = [vector for vector in VECTORS if _is_conformance(vector)]
ARMORED = [vector for vector in VECTORS if vector.armored]


def _params(vectors: list[Vector]) -> list:
    # Without the file there is nothing to parametrize over; one placeholder case fails loudly
    # instead of pytest skipping an empty parameter set.
    if not CCTV.exists():
        return [pytest.param(None, id="missing-vectors")]
    return [pytest.param(vector, id=vector.name) for vector in vectors]


def _require(vector: Vector | None) -> Vector:
    if vector is None:
        pytest.fail(f"the CCTV age vectors are missing at {CCTV}: run `make vectors`")
    return vector


def _expected_types(expect: str) -> set[type]:
    expected = _EXPECTED_ERROR[expect]
    # The exact class, or one of its own leaves (TruncatedPayload under PayloadError).
    return {expected, *expected.__subclasses__()}


def test_every_vector_set_is_there():
    if not CCTV.exists():
        pytest.fail(f"the CCTV age vectors are missing at {CCTV}: run `make vectors`")
    assert len(CONFORMANCE) >= CONFORMANCE_COUNT
    assert len(ARMORED) >= ARMORED_COUNT
    assert len(CONFORMANCE) + len(ARMORED) >= 90
    assert sum(vector.name.startswith("hybrid") for vector in CONFORMANCE) == HYBRID_COUNT
    assert "armor_hybrid" in {vector.name for vector in ARMORED}
    assert {vector.expect for vector in CONFORMANCE} == {"success", *_EXPECTED_ERROR}


@pytest.mark.parametrize("vector", _params(CONFORMANCE))
def test_vector(vector: Vector | None):
    vector = _require(vector)
    identities = [parse_identity(text) for text in vector.identities]
    plaintext = hashlib.sha256()
    error: Exception | None = None
    try:
        for chunk in AgeReader(io.BytesIO(vector.file), identities).chunks():
            plaintext.update(chunk)
    except (HeaderError, NoIdentityMatch, HeaderMacError, PayloadError) as caught:
        error = caught

    if vector.expect == "success":
        assert error is None
    else:
        assert type(error) in _expected_types(vector.expect), f"{vector.name}: {error!r}"
    if vector.expect in ("success", "payload failure"):
        assert plaintext.hexdigest() == vector.payload_sha256


@pytest.mark.parametrize("vector", _params(ARMORED))
def test_armored_files_are_refused_as_headers(vector: Vector | None, identity: X25519Identity):
    vector = _require(vector)
    with pytest.raises(HeaderError) as refused:
        AgeReader(io.BytesIO(vector.file), [identity])
    if vector.file.lstrip(b" \t").startswith(b"-----BEGIN AGE ENCRYPTED FILE-----"):
        assert "armored" in str(refused.value)
