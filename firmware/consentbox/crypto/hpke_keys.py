"""The age recipient types built on HPKE (RFC 9180): post-quantum `mlkem768x25519`, and `p256tag` for tokens.

C2SP age.md defines both (age v1.3.0 writes and reads them):
- `mlkem768x25519`: recipients `age1pq1…` (an ML-KEM-768 encapsulation key and an X25519 key, 1216
  bytes), identities `AGE-SECRET-KEY-PQ-1…` (a 32-byte seed); the stanza is HPKE SealBase with the
  MLKEM768-X25519 KEM, HKDF-SHA256 and ChaCha20-Poly1305.
- `p256tag`: recipients `age1tag1…`, the compressed P-256 point a hardware token (a YubiKey under
  age-plugin-yubikey 0.6+) holds; its identity lives on the token, so we only encrypt to it.

HPKE and ML-KEM come from pyca/cryptography 47 or later; nothing of either is computed here, this
module only encodes keys and stanzas around cryptography's SealBase and OpenBase. With an older
cryptography (Debian bookworm's 38, trixie's 43) every use fails with UnsupportedKey, which says so
(README: Dependencies). The third type of the spec, `mlkem768p256tag` (`age1tagpq1…`), needs an
MLKEM768-P256 KEM, which no release of cryptography has: `recipients.parse_recipient` refuses it.
"""

import hashlib
import hmac
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

import cryptography
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from consentbox.crypto import bech32
from consentbox.crypto.errors import HeaderError, KeyFormatError, UnsupportedKey
from consentbox.crypto.format import Stanza, encode_base64
from consentbox.crypto.keys import FILE_KEY_SIZE, single_share, x25519_shared_secret

hpke: Any
mlkem: Any
try:
    from cryptography.hazmat.primitives import hpke
    from cryptography.hazmat.primitives.asymmetric import mlkem
except ImportError:  # cryptography before 47
    hpke = mlkem = None

#: The oldest cryptography with `hazmat.primitives.hpke` and ML-KEM (checked in the wheels of 44 to 48).
CRYPTOGRAPHY_FOR_HPKE = "47"

PQ_STANZA_TYPE = "mlkem768x25519"
PQ_RECIPIENT_HRP = "age1pq"
PQ_IDENTITY_HRP = "age-secret-key-pq-"
_PQ_INFO = b"age-encryption.org/mlkem768x25519"
_MLKEM768_PUBLIC_SIZE = 1184
_PQ_RECIPIENT_SIZE = _MLKEM768_PUBLIC_SIZE + 32  # then the X25519 public key
_PQ_ENC_SIZE = 1088 + 32  # the ML-KEM-768 ciphertext, then the X25519 ephemeral share
_PQ_SEED_SIZE = 32

TAG_STANZA_TYPE = "p256tag"
TAG_RECIPIENT_HRP = "age1tag"
_TAG_INFO = b"age-encryption.org/p256tag"
_COMPRESSED_P256_SIZE = 33

_BODY_SIZE = FILE_KEY_SIZE + 16  # the sealed file key and its Poly1305 tag


def _hpke(kind: str) -> Any:
    if hpke is None:
        raise UnsupportedKey(
            f"{kind} keys need cryptography {CRYPTOGRAPHY_FOR_HPKE} or later, which has HPKE and ML-KEM; "
            f"this is cryptography {cryptography.__version__}"
        )
    return hpke


def _suite(kind: str, kem_name: str) -> Any:
    library = _hpke(kind)
    return library.Suite(getattr(library.KEM, kem_name), library.KDF.HKDF_SHA256, library.AEAD.CHACHA20_POLY1305)


def _split_sealed(sealed: bytes) -> tuple[bytes, bytes]:
    """SealBase's output as cryptography returns it, enc || ciphertext, as the stanza's enc and body."""
    return sealed[:-_BODY_SIZE], sealed[-_BODY_SIZE:]


@dataclass(frozen=True)
class MLKEM768X25519Recipient:
    """An age post-quantum hybrid public key (`age1pq1…`): ML-KEM-768 and X25519 together."""

    public_key: bytes
    STANZA_TYPE: ClassVar[str] = PQ_STANZA_TYPE
    POST_QUANTUM: ClassVar[bool] = True

    def __post_init__(self) -> None:
        if len(self.public_key) != _PQ_RECIPIENT_SIZE:
            raise KeyFormatError(
                f"an mlkem768x25519 public key is {_PQ_RECIPIENT_SIZE} bytes, not {len(self.public_key)}"
            )
        self._hpke_key()  # refuses an encapsulation key that is not one

    def _hpke_key(self) -> Any:
        library = _hpke(PQ_STANZA_TYPE)
        mlkem_key, x25519_key = (
            self.public_key[:_MLKEM768_PUBLIC_SIZE], self.public_key[_MLKEM768_PUBLIC_SIZE:]
        )
        try:
            return library.MLKEM768X25519PublicKey(
                mlkem.MLKEM768PublicKey.from_public_bytes(mlkem_key),
                X25519PublicKey.from_public_bytes(x25519_key),
            )
        except ValueError:
            raise KeyFormatError("this mlkem768x25519 public key is not a valid ML-KEM-768 key") from None

    def to_string(self) -> str:
        """The `age1pq1…` form that `age -r` (1.3.0 or later) accepts: about 1,960 characters."""
        return bech32.encode(PQ_RECIPIENT_HRP, self.public_key)

    def wrap(self, file_key: bytes, random_bytes: Callable[[int], bytes] = os.urandom) -> Stanza:
        """Seal `file_key` to this key. HPKE draws its own ephemeral keys: `random_bytes` is not used."""
        suite = _suite(PQ_STANZA_TYPE, "MLKEM768_X25519")
        enc, body = _split_sealed(suite.encrypt(file_key, self._hpke_key(), info=_PQ_INFO))
        return Stanza(PQ_STANZA_TYPE, (encode_base64(enc),), body)


class MLKEM768X25519Identity:
    """An age post-quantum hybrid secret key (`AGE-SECRET-KEY-PQ-1…`). Its repr shows only the public key."""

    __slots__ = ("_private_key", "_seed", "_x25519_key", "recipient")

    def __init__(self, seed: bytes) -> None:
        if len(seed) != _PQ_SEED_SIZE:
            raise KeyFormatError(f"an mlkem768x25519 secret key is {_PQ_SEED_SIZE} bytes, not {len(seed)}")
        library = _hpke(PQ_STANZA_TYPE)
        # The spec's expansion: SHAKE256 of the seed gives ML-KEM-768's 64-byte seed, then X25519's key.
        expanded = hashlib.shake_256(seed).digest(96)
        mlkem_key = mlkem.MLKEM768PrivateKey.from_seed_bytes(expanded[:64])
        x25519_key = X25519PrivateKey.from_private_bytes(expanded[64:])
        self._seed = seed
        self._x25519_key = x25519_key
        self._private_key = library.MLKEM768X25519PrivateKey(mlkem_key, x25519_key)
        self.recipient = MLKEM768X25519Recipient(
            mlkem_key.public_key().public_bytes_raw()
            + x25519_key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        )

    def __repr__(self) -> str:
        return f"MLKEM768X25519Identity(recipient={self.recipient.to_string()[:40]!r}…)"

    @classmethod
    def generate(cls) -> "MLKEM768X25519Identity":
        """A new identity from 32 random bytes, as `age-keygen -pq` makes one."""
        return cls(os.urandom(_PQ_SEED_SIZE))

    def to_string(self) -> str:
        """The `AGE-SECRET-KEY-PQ-1…` form that `age -i` (1.3.0 or later) accepts."""
        return bech32.encode(PQ_IDENTITY_HRP, self._seed, upper=True)

    def unwrap(self, stanza: Stanza) -> bytes | None:
        """The file key if `stanza` is addressed to this identity; None if it is not ours.

        Raises HeaderError for a malformed mlkem768x25519 stanza, which the spec says must fail the file.
        """
        if stanza.type != PQ_STANZA_TYPE:
            return None
        enc = single_share(stanza, _PQ_ENC_SIZE)
        # The spec says abort on an all-zero X25519 secret; cryptography's hybrid KEM would go on with it.
        if x25519_shared_secret(self._x25519_key, enc[-32:]) is None:
            raise HeaderError("mlkem768x25519 stanza share is a low-order X25519 point (all-zero shared secret)")
        suite = _suite(PQ_STANZA_TYPE, "MLKEM768_X25519")
        try:
            return bytes(suite.decrypt(enc + stanza.body, self._private_key, info=_PQ_INFO))
        except InvalidTag:
            return None


@dataclass(frozen=True)
class P256TagRecipient:
    """A hardware token's P-256 key (`age1tag1…`): files to it decrypt only with the token present."""

    point: bytes  # compressed (SEC 1), as the recipient string carries it
    STANZA_TYPE: ClassVar[str] = TAG_STANZA_TYPE
    POST_QUANTUM: ClassVar[bool] = False

    def __post_init__(self) -> None:
        if len(self.point) != _COMPRESSED_P256_SIZE:
            raise KeyFormatError(
                f"a p256tag public key is a compressed P-256 point of {_COMPRESSED_P256_SIZE} bytes, "
                f"not {len(self.point)}"
            )
        self._public_key()  # refuses bytes that are not a point on the curve
        _hpke(TAG_STANZA_TYPE)  # and a key this installation could not encrypt to, when it is read

    def _public_key(self) -> ec.EllipticCurvePublicKey:
        try:
            return ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), self.point)
        except ValueError:
            raise KeyFormatError("this p256tag public key is not a point on the P-256 curve") from None

    def to_string(self) -> str:
        """The `age1tag1…` form that `age -r` (1.3.0 or later) accepts."""
        return bech32.encode(TAG_RECIPIENT_HRP, self.point)

    def wrap(self, file_key: bytes, random_bytes: Callable[[int], bytes] = os.urandom) -> Stanza:
        """Seal `file_key` to the token's key, with the tag that lets the token see the stanza is its own.

        HPKE draws its own ephemeral key: `random_bytes` is not used.
        """
        suite = _suite(TAG_STANZA_TYPE, "P256")
        enc, body = _split_sealed(suite.encrypt(file_key, self._public_key(), info=_TAG_INFO))
        return Stanza(TAG_STANZA_TYPE, (encode_base64(p256_tag(enc, self.point)), encode_base64(enc)), body)


def p256_tag(enc: bytes, point: bytes) -> bytes:
    """The p256tag stanza's tag: HKDF-Extract(salt = info, ikm = enc || SHA-256(point)[:4])[:4]."""
    # HKDF-Extract is one HMAC keyed with the salt.
    return hmac.digest(_TAG_INFO, enc + hashlib.sha256(point).digest()[:4], "sha256")[:4]
