"""Ed25519 keys: the box's device key, which signs its consent ledger, and the organisation's key,
which signs provisioning bundles.

A private key lives in a PKCS#8 PEM file of mode 0600 that is created once and never overwritten
(`openssl pkey -in FILE -noout -text` reads it); the organisation's may be encrypted with a
passphrase, the device's never is (the box starts unattended). A public key travels as one line of
text, `<prefix><base64 of the 32 raw bytes>`: `consentbox-device-ed25519:` in the ledger's boot entries
and on `--device-key`, `consentbox-org-ed25519:` in the file IT installs on each box. Ed25519
signatures are deterministic, so only key generation needs randomness, and tests can give the secret.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import os
import stat
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar, TypeVar

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import (
    BestAvailableEncryption,
    Encoding,
    KeySerializationEncryption,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
    load_pem_private_key,
)

from consentbox.core.errors import ConsentBoxError
from consentbox.crypto.exposure import shown
from consentbox.storage import portable
from consentbox.storage.durable import sync_directory, write_all

PUBLIC_KEY_PREFIX = "consentbox-device-ed25519:"
ORG_KEY_PREFIX = "consentbox-org-ed25519:"
KEY_SIZE = 32
SIGNATURE_SIZE = 64
KEY_FILE_MODE = 0o600
# A PKCS#8 PEM Ed25519 key is 119 bytes (about 300 encrypted); anything much larger is not one.
_MAX_KEY_FILE = 4096


class SigningKeyError(ConsentBoxError, ValueError):
    """A key file or public key string is malformed, unsafe, or not Ed25519."""


class SignatureError(ConsentBoxError, ValueError):
    """A signature does not verify with the public key."""


_Public = TypeVar("_Public", bound="PublicKey")


@dataclass(frozen=True)
class PublicKey:
    """An Ed25519 public key, whose text form starts with the `prefix` that says whose key it is."""

    prefix: ClassVar[str]
    role: ClassVar[str]
    raw: bytes

    def __post_init__(self) -> None:
        if len(self.raw) != KEY_SIZE:
            raise SigningKeyError(f"an Ed25519 public key is {KEY_SIZE} bytes, not {len(self.raw)}")

    @classmethod
    def parse(cls: type[_Public], text: str) -> _Public:
        """Parse the one-line form; only the canonical base64 is accepted, so each key has one spelling."""
        text = text.strip()
        given = shown(text)  # the private key's file or text, given by mistake, is never shown
        if not text.startswith(cls.prefix):
            raise SigningKeyError(f"{cls.role} public key {given} does not start with {cls.prefix}")
        encoded = text.removeprefix(cls.prefix)
        try:
            raw = base64.b64decode(encoded, validate=True)
        except binascii.Error:
            raise SigningKeyError(f"{cls.role} public key {given} is not valid base64") from None
        if len(raw) != KEY_SIZE or base64.b64encode(raw).decode("ascii") != encoded:
            raise SigningKeyError(f"{cls.role} public key {given} is not {KEY_SIZE} bytes in canonical base64")
        return cls(raw)

    def to_string(self) -> str:
        """The one-line text form, `<prefix><base64>`."""
        return self.prefix + base64.b64encode(self.raw).decode("ascii")

    def verify(self, signature: bytes, message: bytes) -> None:
        """Return if `signature` is this key's over `message`; SignatureError otherwise."""
        try:
            Ed25519PublicKey.from_public_bytes(self.raw).verify(signature, message)
        except (InvalidSignature, ValueError):
            raise SignatureError(f"signature does not verify with {self.to_string()}") from None

    def __str__(self) -> str:
        return self.to_string()


@dataclass(frozen=True)
class DevicePublicKey(PublicKey):
    """A box's Ed25519 public key: whoever holds it can check the box's ledger."""

    prefix: ClassVar[str] = PUBLIC_KEY_PREFIX
    role: ClassVar[str] = "device"


@dataclass(frozen=True)
class OrgPublicKey(PublicKey):
    """The organisation's Ed25519 public key: a box installs only bundles it verifies."""

    prefix: ClassVar[str] = ORG_KEY_PREFIX
    role: ClassVar[str] = "organisation"

    @classmethod
    def read(cls, path: Path) -> OrgPublicKey:
        """The key in `path`: its first line that is neither blank nor a `#` comment."""
        try:
            with open(path, "rb") as src:
                data = src.read(_MAX_KEY_FILE + 1)
            lines = data[:_MAX_KEY_FILE].decode("utf-8").splitlines()
        except UnicodeDecodeError:
            raise SigningKeyError(f"organisation key {path} is not text") from None
        text = next((line for line in lines if line.strip() and not line.startswith("#")), "")
        try:
            return cls.parse(text)
        except SigningKeyError as error:
            raise SigningKeyError(f"{path}: {error}") from None


_Signing = TypeVar("_Signing", bound="SigningKey")


class SigningKey:
    """An Ed25519 private key and its public key of type `public_type`."""

    public_type: ClassVar[type[PublicKey]]

    def __init__(self, private_key: Ed25519PrivateKey) -> None:
        self._key = private_key
        self.public_key = self.public_type(private_key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw))

    @classmethod
    def generate(cls: type[_Signing], *, secret: bytes | None = None) -> _Signing:
        """A new key from 32 random bytes, or from `secret` when given (for exact tests)."""
        seed = os.urandom(KEY_SIZE) if secret is None else secret
        if len(seed) != KEY_SIZE:
            raise SigningKeyError(f"an Ed25519 secret is {KEY_SIZE} bytes, not {len(seed)}")
        return cls(Ed25519PrivateKey.from_private_bytes(seed))

    def sign(self, message: bytes) -> bytes:
        """The 64-byte Ed25519 signature of `message`."""
        return self._key.sign(message)

    def pem(self, passphrase: bytes | None = None) -> bytes:
        """The key as PKCS#8 PEM (the key file's contents), encrypted if a passphrase is given."""
        encryption: KeySerializationEncryption = (
            NoEncryption() if passphrase is None else BestAvailableEncryption(passphrase)
        )
        return self._key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, encryption)

    def save(self, path: Path, passphrase: bytes | None = None) -> None:
        """Create `path` (mode 0600) holding the key, synced; SigningKeyError if it exists already.

        The key is written whole to a temporary file first and linked into place, so a power cut
        leaves no key file or a whole one, never a torn one that would stop the box for good.
        """
        role = self.public_type.role
        fd, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        try:
            portable.restrict_mode(fd, KEY_FILE_MODE)  # mkstemp makes it 0600 already; the umask cannot widen it
            write_all(fd, self.pem(passphrase))
            os.fsync(fd)
            os.close(fd)
            fd = -1
            # link, not rename: an existing key file signed a ledger or bundles already, and
            # replacing it would orphan them.
            try:
                os.link(temporary, path)
            except FileExistsError:
                raise SigningKeyError(f"{role} key {path} already exists: it is never overwritten") from None
        finally:
            if fd >= 0:
                os.close(fd)
            with contextlib.suppress(OSError):
                os.unlink(temporary)
        sync_directory(path.parent)

    @classmethod
    def load(cls: type[_Signing], path: Path, passphrase: bytes | None = None) -> _Signing:
        """Read a key file that `save` wrote; refuse one that others can read, as ssh does."""
        role = cls.public_type.role
        fd = os.open(path, os.O_RDONLY | portable.BINARY)
        with os.fdopen(fd, "rb") as src:
            mode = stat.S_IMODE(os.fstat(src.fileno()).st_mode)
            if portable.POSIX_MODES and mode & 0o077:  # Windows keeps who may read it in the file's ACL
                raise SigningKeyError(f"{role} key {path} is readable or writable by others "
                                      f"(mode {mode:04o}): chmod 600 {path}")
            data = src.read(_MAX_KEY_FILE + 1)
        try:
            key = load_pem_private_key(data, password=passphrase)
        except TypeError:  # encrypted without a passphrase given, or a passphrase for a plain key
            needs = "needs a passphrase" if passphrase is None else "is not encrypted: give no passphrase"
            raise SigningKeyError(f"{role} key {path} {needs}") from None
        except (ValueError, UnsupportedAlgorithm):
            wrong = "" if passphrase is None else " (or the passphrase is wrong)"
            raise SigningKeyError(f"{role} key {path} is not a PKCS#8 PEM private key{wrong}") from None
        if not isinstance(key, Ed25519PrivateKey):
            raise SigningKeyError(f"{role} key {path} is not an Ed25519 key")
        return cls(key)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.public_key.to_string()})"  # never the secret


class DeviceSigningKey(SigningKey):
    """A box's Ed25519 private key. It never leaves the box: never write it to the card."""

    public_type = DevicePublicKey
    public_key: DevicePublicKey

    @classmethod
    def load_or_create(cls, path: Path) -> DeviceSigningKey:
        """The key at `path`, made (and saved, mode 0600) on the box's first start."""
        for stale in path.parent.glob(f".{path.name}.*.tmp"):  # a save a power cut interrupted
            stale.unlink(missing_ok=True)
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


class OrgSigningKey(SigningKey):
    """The organisation's Ed25519 private key: it signs provisioning bundles, on IT's workstation only."""

    public_type = OrgPublicKey
    public_key: OrgPublicKey

