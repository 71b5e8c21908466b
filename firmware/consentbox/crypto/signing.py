"""The box's device signing key (Ed25519): it signs every entry of the consent ledger.

The private key lives on the box only, in a PKCS#8 PEM file of mode 0600 that is created once and
never overwritten (`openssl pkey -in FILE -noout -text` reads it). The public key travels as one
line of text, `consentbox-device-ed25519:<base64 of the 32 raw bytes>`, in the ledger's boot entries
and on the `--device-key` option of `consentbox-admin`. Ed25519 signatures are deterministic, so
only key generation needs randomness, and tests can give the secret.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import os
import stat
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import (
    Encoding, NoEncryption, PrivateFormat, PublicFormat, load_pem_private_key,
)

from consentbox.core.errors import ConsentBoxError
from consentbox.durable import sync_directory, write_all

PUBLIC_KEY_PREFIX = "consentbox-device-ed25519:"
KEY_SIZE = 32
SIGNATURE_SIZE = 64
KEY_FILE_MODE = 0o600
# A PKCS#8 PEM Ed25519 key is 119 bytes; anything much larger is not one.
_MAX_KEY_FILE = 4096


class SigningKeyError(ConsentBoxError, ValueError):
    """A device key file or public key string is malformed, unsafe, or not Ed25519."""


class SignatureError(ConsentBoxError, ValueError):
    """A signature does not verify with the device public key."""


@dataclass(frozen=True)
class DevicePublicKey:
    """A box's Ed25519 public key: whoever holds it can check the box's ledger."""

    raw: bytes

    def __post_init__(self) -> None:
        if len(self.raw) != KEY_SIZE:
            raise SigningKeyError(f"an Ed25519 public key is {KEY_SIZE} bytes, not {len(self.raw)}")

    @classmethod
    def parse(cls, text: str) -> DevicePublicKey:
        """Parse the one-line form; only the canonical base64 is accepted, so each key has one spelling."""
        text = text.strip()
        shown = text if len(text) <= 80 else text[:80] + "…"
        if not text.startswith(PUBLIC_KEY_PREFIX):
            raise SigningKeyError(f"device public key {shown!r} does not start with {PUBLIC_KEY_PREFIX}")
        encoded = text.removeprefix(PUBLIC_KEY_PREFIX)
        try:
            raw = base64.b64decode(encoded, validate=True)
        except binascii.Error:
            raise SigningKeyError(f"device public key {shown!r} is not valid base64") from None
        if len(raw) != KEY_SIZE or base64.b64encode(raw).decode("ascii") != encoded:
            raise SigningKeyError(f"device public key {shown!r} is not {KEY_SIZE} bytes in canonical base64")
        return cls(raw)

    def to_string(self) -> str:
        """The one-line text form, `consentbox-device-ed25519:<base64>`."""
        return PUBLIC_KEY_PREFIX + base64.b64encode(self.raw).decode("ascii")

    def verify(self, signature: bytes, message: bytes) -> None:
        """Return if `signature` is this key's over `message`; SignatureError otherwise."""
        try:
            Ed25519PublicKey.from_public_bytes(self.raw).verify(signature, message)
        except (InvalidSignature, ValueError):
            raise SignatureError(f"signature does not verify with {self.to_string()}") from None

    def __str__(self) -> str:
        return self.to_string()


class DeviceSigningKey:
    """A box's Ed25519 private key. It never leaves the box: never write it to the card."""

    def __init__(self, private_key: Ed25519PrivateKey) -> None:
        self._key = private_key
        self.public_key = DevicePublicKey(private_key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw))

    @classmethod
    def generate(cls, *, secret: bytes | None = None) -> DeviceSigningKey:
        """A new key from 32 random bytes, or from `secret` when given (for exact tests)."""
        seed = os.urandom(KEY_SIZE) if secret is None else secret
        if len(seed) != KEY_SIZE:
            raise SigningKeyError(f"an Ed25519 secret is {KEY_SIZE} bytes, not {len(seed)}")
        return cls(Ed25519PrivateKey.from_private_bytes(seed))

    def sign(self, message: bytes) -> bytes:
        """The 64-byte Ed25519 signature of `message`."""
        return self._key.sign(message)

    def pem(self) -> bytes:
        """The key as unencrypted PKCS#8 PEM (the key file's contents)."""
        return self._key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption())

    def save(self, path: Path) -> None:
        """Create `path` (mode 0600) holding the key, synced; SigningKeyError if it exists already."""
        # O_EXCL: an existing key file signed a ledger already; replacing it would orphan that ledger.
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, KEY_FILE_MODE)
        except FileExistsError:
            raise SigningKeyError(f"device key {path} already exists: it is never overwritten") from None
        try:
            try:
                os.fchmod(fd, KEY_FILE_MODE)  # the umask may have narrowed it; it must be exactly 0600
                write_all(fd, self.pem())
                os.fsync(fd)
            finally:
                os.close(fd)
            sync_directory(path.parent)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(path)  # half a key is no key; the next start makes a whole one
            raise

    @classmethod
    def load(cls, path: Path) -> DeviceSigningKey:
        """Read a key file that `save` wrote; refuse one that others can read, as ssh does."""
        fd = os.open(path, os.O_RDONLY)
        with os.fdopen(fd, "rb") as src:
            mode = stat.S_IMODE(os.fstat(src.fileno()).st_mode)
            if mode & 0o077:
                raise SigningKeyError(f"device key {path} is readable or writable by others "
                                      f"(mode {mode:04o}): chmod 600 {path}")
            data = src.read(_MAX_KEY_FILE + 1)
        try:
            key = load_pem_private_key(data, password=None)
        except (ValueError, TypeError, UnsupportedAlgorithm):
            raise SigningKeyError(f"device key {path} is not an unencrypted PKCS#8 PEM private key") from None
        if not isinstance(key, Ed25519PrivateKey):
            raise SigningKeyError(f"device key {path} is not an Ed25519 key")
        return cls(key)

    @classmethod
    def load_or_create(cls, path: Path) -> DeviceSigningKey:
        """The key at `path`, made (and saved, mode 0600) on the box's first start."""
        try:
            return cls.load(path)
        except FileNotFoundError:
            pass
        key = cls.generate()
        try:
            key.save(path)
        except SigningKeyError:
            return cls.load(path)  # another process made it between our look and our create
        return key

    def __repr__(self) -> str:
        return f"DeviceSigningKey({self.public_key.to_string()})"  # never the secret

