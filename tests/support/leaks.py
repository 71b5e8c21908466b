"""Looking for audio or key material in what a box printed or journaled.

The box logs events, ids, codes and words only: nothing from the audio, never a key (docs/cli.md,
`consentbox run`). `Secrets` holds what a box must never show: the age identities a test made, the
box's device signing key, the samples its microphone gave it. `Secrets.leaks` says which of them a
piece of output holds, as it is, in hex or in base64 (standard or URL-safe), wherever it starts.

Bytes are found the way plaintext.py finds audio on a disk, scaled down to log lines: the 8 bytes at
every `stride`th offset of a secret are probes, and every 8 bytes of the output, at every offset and in
each decoding, are looked up among them in one C loop. A key's probes are 4 bytes apart, so any 11 bytes
of it are found; the audio's 64 bytes apart (150 s of input make about 225,000 probes, made once per
input), so any 71 bytes of it in a row are found: 35 samples, under a millisecond at 48 kHz. All-zero
probes are left out: silence in the input is no secret, and a log line may well hold 8 zero bytes.

Text is found too: any age secret key (`AGE-SECRET-KEY-1` and key data), any 15 characters in a row of
the data of an identity the test made, in either case, and any PEM private key. These patterns are the
test's own, not `consentbox.crypto.exposure`'s: the scan must not share a blind spot with the box.
"""

from __future__ import annotations

import base64
import binascii
import re
import sys
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass

_PROBE = 8  # bytes: one unsigned 64-bit word, as memoryview.cast("Q") reads them
KEY_STRIDE = 4
AUDIO_STRIDE = 64
#: How much of an identity's key data, in characters, is looked for as text (a window every 3 finds any 15).
_IDENTITY_WINDOW, _IDENTITY_STRIDE = 12, 3
#: Runs of output that may encode 11 bytes or more.
_HEX = re.compile(rb"[0-9a-fA-F]{22,}")
_BASE64 = re.compile(rb"[A-Za-z0-9+/_-]{15,}")
_URL_SAFE = bytes.maketrans(b"-_", b"+/")
_AGE_SECRET_KEY = re.compile(rb"AGE-SECRET-KEY-(?:PQ-)?1[qpzry9x8gf2tvdw0s3jn54khce6mua7l]", re.IGNORECASE)
_PEM_PRIVATE_KEY = re.compile(rb"-----BEGIN [A-Z ]*PRIVATE KEY-----")
#: An unencrypted Ed25519 private key in PKCS#8 DER (the device key's PEM body) is this, then its 32 bytes.
_ED25519_PKCS8 = bytes.fromhex("302e020100300506032b657004220420")

#: Probes of one or more secrets: each 8-byte word (a native-order integer) and what it is part of.
Probes = Mapping[int, str]


def probes(secret: bytes, what: str, stride: int) -> Probes:
    """The 8 bytes at every `stride`th offset of `secret`, each naming it `what`; any run of `stride` + 7
    bytes of `secret` holds one."""
    words = {int.from_bytes(secret[start : start + _PROBE], sys.byteorder)
             for start in range(0, len(secret) - _PROBE + 1, stride)}
    words.discard(0)
    return dict.fromkeys(words, what)


def device_key_bytes(pem: str) -> bytes:
    """The 32 secret bytes of an Ed25519 private key file (PKCS#8 PEM, unencrypted), as the box saves it."""
    body = "".join(line for line in pem.splitlines() if line and not line.startswith("-----"))
    der = base64.b64decode(body)
    if not der.startswith(_ED25519_PKCS8):
        raise ValueError("not an unencrypted Ed25519 PKCS#8 key: the box's device key file has changed form")
    return der[len(_ED25519_PKCS8) :]


@dataclass(frozen=True)
class Secrets:
    """What a box must never print or journal: byte probes (`probes`) and age identities as text."""

    probes: tuple[Probes, ...] = ()
    identities: tuple[str, ...] = ()

    def leaks(self, output: bytes, where: str) -> list[str]:
        """One line for each kind of secret that `output` (from `where`) holds, naming both; none when clean."""
        found = []
        if _AGE_SECRET_KEY.search(output):
            found.append("an age secret key (AGE-SECRET-KEY-1…)")
        lowered = output.lower()
        if any(window in lowered for window in self._identity_windows()):
            found.append("the key data of an age identity the test made")
        if _PEM_PRIVATE_KEY.search(output):
            found.append("a PEM private key")
        for encoding, decoded in _decodings(output):
            found += [f"{what}, {encoding}" for what in _probed(decoded, self.probes)]
        return [f"{where} holds {what}" for what in dict.fromkeys(found)]

    def _identity_windows(self) -> Iterator[bytes]:
        for identity in self.identities:
            data = identity.lower().rpartition("1")[2].encode()
            yield from (data[start : start + _IDENTITY_WINDOW]
                        for start in range(0, len(data) - _IDENTITY_WINDOW + 1, _IDENTITY_STRIDE))


def _decodings(output: bytes) -> Iterator[tuple[str, bytes]]:
    """`output` as it is, then every run in it that may be hex or base64, decoded from each possible start."""
    yield "as is", output
    for run in _HEX.findall(output):
        for start in (0, 1):
            part = run[start:]
            yield "in hex", binascii.unhexlify(part[: len(part) // 2 * 2])
    for run in _BASE64.findall(output):
        standard = run.translate(_URL_SAFE)
        for start in range(4):
            part = standard[start:]
            part = part[:-1] if len(part) % 4 == 1 else part  # one character alone holds no whole byte
            yield "in base64", base64.b64decode(part + b"=" * (-len(part) % 4))  # its padding is not in the run


def _probed(data: bytes, every: Iterable[Probes]) -> list[str]:
    """What the probes found in `data` (8 bytes at any offset) are part of."""
    view = memoryview(data)
    found: list[str] = []
    for offset in range(_PROBE):
        usable = (len(data) - offset) // _PROBE * _PROBE
        if not usable:
            break
        words = view[offset : offset + usable].cast("Q")
        for probed in every:
            if not probed.keys().isdisjoint(words):
                found += {probed[word] for word in words if word in probed}
    return found
