"""The box's journal of unfinished sessions: each open session's manifest, encrypted under a key of its own.

The manifest on the card is encrypted to the supervisors and the box holds no private key, so after a
power cut or a crash it could not read back what it was recording. The journal is how it knows:
`SessionFiles` saves each manifest version here first and then on the card, and removes the entry once
the card holds the final manifest or the session's files are destroyed. Start-up recovery
(`consentbox.recording.recovery`) finishes whatever the journal still lists.

An entry holds exactly what the manifest holds (offsets, seat numbers, digests: no names, no audio)
and whether the session's files were being destroyed. It lives in the box's state directory, mode
0600, never on the card. Each session's entries are encrypted (`consentbox.crypto.aead`) under a random
key made at its first save and kept beside them; each version is written whole and renamed over the
last, so the disk's free blocks collect old versions, as ciphertext only. Removing a session shreds
its key in place (`consentbox.storage.shred`): every version left anywhere on the disk is then
undecryptable. docs/reliability.md and docs/formats.md describe it, docs/threat-model.md what it
leaves on the box's disk.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from consentbox.core.errors import ConsentBoxError
from consentbox.crypto.aead import KEY_SIZE, MessageAuthenticationError, decrypt_message, encrypt_message
from consentbox.recording.manifest import Manifest
from consentbox.state.files import JOURNAL
from consentbox.storage import strict_json
from consentbox.storage.atomic import replace_file, temporary_name
from consentbox.storage.canonical import canonical_json
from consentbox.storage.durable import sync_directory, write_all
from consentbox.storage.shred import shred

#: A session's entry and its key are named for its id, with these.
_SUFFIX = ".json"
_KEY_SUFFIX = ".key"
_MODE = 0o600  # the box's service account only
#: What every entry starts with, before the nonce and the ciphertext: the layout it has.
ENTRY_HEADER = b"consentbox-journal/v1\n"


class JournalError(ConsentBoxError, OSError):
    """The journal could not be written or read; the message names the file."""


@dataclass(frozen=True)
class JournalEntry:
    """An unfinished session: its newest manifest, and whether its files were being destroyed."""

    manifest: Manifest
    destroy: bool


def _name(session: str) -> str:
    return session + _SUFFIX


def _key_name(session: str) -> str:
    return session + _KEY_SUFFIX


class Journal:
    """The journal in `state_dir`/journal, created (mode 0700) if missing, for one box process at a time.

    Opening it deletes the temporary files of versions that a crash cut off before they were renamed
    into place: the entry beside one, if any, is the session's newest complete version. It also shreds
    every key without an entry: a session cut off between making its key and saving its first entry,
    or while it was being removed.

    `save` and `remove` never raise: the card, not the journal, holds the recording, so a box whose own
    storage fails records on. Each failure goes to `on_failure` (the box logs it); what it costs is
    that a crash in that session is reported by the export ("never finalised") but not by recovery.
    `random_bytes` makes the sessions' keys and the entries' nonces.
    """

    def __init__(self, state_dir: Path, *, on_failure: Callable[[JournalError], None],
                 random_bytes: Callable[[int], bytes] = os.urandom) -> None:
        self.directory = state_dir / JOURNAL
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        self._on_failure = on_failure
        self._random_bytes = random_bytes
        for path in self.directory.glob(temporary_name("*")):
            try:
                path.unlink()
            except OSError as error:
                self._fail(path.name, "(a version cut off by a crash) could not be deleted", error)
        for path in self.directory.glob("[!.]*" + _KEY_SUFFIX):
            if not (self.directory / _name(path.name.removesuffix(_KEY_SUFFIX))).exists():
                try:
                    self._shred_key(path.name)
                except OSError as error:
                    self._fail(path.name, "(the key of a session with no entry) could not be shredded", error)

    def save(self, manifest: Manifest, *, destroy: bool = False) -> bool:
        """Make `manifest` the session's entry (`destroy`: its files are about to be destroyed); whether
        that worked. The session's first save makes its key."""
        session = manifest.session
        data = canonical_json({"destroy": destroy, "manifest": manifest.to_mapping()})
        try:
            key = self._key(session)
        except (OSError, ValueError) as error:
            self._fail(_key_name(session), "could not be made or read", error)
            return False
        entry = ENTRY_HEADER + encrypt_message(key, data, session.encode(), random_bytes=self._random_bytes)
        try:
            replace_file(self.directory, _name(session), entry, _MODE)
        except OSError as error:
            self._fail(_name(session), "could not be saved", error)
            return False
        return True

    def remove(self, session: str) -> None:
        """Forget `session`: the card holds its final manifest, or its files are gone.

        The entry goes first, then the key is shredded in place, so no older version of the entry that
        the disk still holds in its free blocks can be decrypted. A crash in between leaves a key with no
        entry, which the next start shreds; never an entry that can no longer be read.
        """
        try:
            (self.directory / _name(session)).unlink(missing_ok=True)
            sync_directory(self.directory)
        except OSError as error:
            # The key stays: the entry is still readable, and the next start finishes and removes it.
            self._fail(_name(session), "could not be removed", error)
            return
        try:
            self._shred_key(_key_name(session))
        except OSError as error:
            self._fail(_key_name(session), "could not be shredded", error)

    def pending(self) -> list[JournalEntry]:
        """The unfinished sessions, by id; an entry that cannot be read (or whose key is missing, or that
        does not decrypt with it) is reported and left alone."""
        try:
            names = sorted(path.name for path in self.directory.iterdir())
        except OSError as error:
            self._fail("", "could not be listed", error)
            return []
        entries = []
        for name in names:
            if name.startswith(".") or not name.endswith(_SUFFIX):
                continue  # a temporary file is a version that was never completed; a key is read with its entry
            session = name.removesuffix(_SUFFIX)
            try:
                entry = self._read(session)
                if entry.manifest.session != session:
                    raise ValueError(f"it holds session {entry.manifest.session}")
            except (OSError, ValueError) as error:
                self._fail(name, "could not be read", error)
                continue
            entries.append(entry)
        return entries

    def _key(self, session: str) -> bytes:
        """The session's key: read from its file, or made on its first save (O_EXCL, synced, and the
        directory synced, all before the entry it encrypts exists)."""
        path = self.directory / _key_name(session)
        try:
            return _read_key(path)
        except FileNotFoundError:
            pass
        key = self._random_bytes(KEY_SIZE)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, _MODE)
        try:
            try:
                write_all(fd, key)
                os.fsync(fd)
            finally:
                os.close(fd)
            sync_directory(self.directory)
        except OSError:
            with contextlib.suppress(OSError):  # the disk is failing; the first error is the one to report
                path.unlink()
            raise
        return key

    def _read(self, session: str) -> JournalEntry:
        """The entry of `session`, decrypted with its key; OSError or ValueError naming what is wrong."""
        data = (self.directory / _name(session)).read_bytes()
        if not data.startswith(ENTRY_HEADER):
            raise ValueError(f"it does not start with the line {ENTRY_HEADER.decode().strip()}: not an encrypted "
                             "journal entry")
        try:
            key = _read_key(self.directory / _key_name(session))
        except FileNotFoundError:
            raise ValueError(f"its key {_key_name(session)} is missing") from None
        try:
            plaintext = decrypt_message(key, data[len(ENTRY_HEADER):], session.encode())
        except MessageAuthenticationError:
            raise ValueError(f"it does not decrypt with its key {_key_name(session)}: damaged, or not this "
                             "session's entry") from None
        return _parse(plaintext)

    def _shred_key(self, name: str) -> None:
        """Shred the key file `name` (overwritten in place, synced, truncated, unlinked), then sync the directory;
        a key already gone is no error."""
        shred(self.directory / name, lambda: True)
        sync_directory(self.directory)

    def _fail(self, name: str, problem: str, error: Exception) -> None:
        reason = error.strerror if isinstance(error, OSError) and error.strerror else str(error)
        path = self.directory / name if name else self.directory
        self._on_failure(JournalError(f"journal {path} {problem} ({reason}): recording goes on, but the box "
                                      "cannot mark a session interrupted after a crash; check its storage"))


def _read_key(path: Path) -> bytes:
    """The key in `path` (never through a link); FileNotFoundError if there is none, ValueError if it is not
    a key."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    try:
        key = os.read(fd, KEY_SIZE + 1)
    finally:
        os.close(fd)
    if len(key) != KEY_SIZE:
        raise ValueError(f"its key {path.name} holds {len(key)} bytes, not {KEY_SIZE}")
    return key


def _parse(data: bytes) -> JournalEntry:
    values = strict_json.loads(data)
    if not isinstance(values, dict) or set(values) != {"destroy", "manifest"} \
            or not isinstance(values["destroy"], bool):
        raise ValueError("expected an object of `destroy` (true or false) and `manifest`")
    return JournalEntry(Manifest.from_mapping(values["manifest"]), values["destroy"])
