"""The box's journal of unfinished sessions: a plaintext copy of each open session's manifest, on the box.

The manifest on the card is encrypted to the supervisors and the box holds no private key, so after a
power cut or a crash it could not read back what it was recording. The journal is how it knows:
`SessionFiles` saves each manifest version here first and then on the card, and removes the entry once
the card holds the final manifest or the session's files are destroyed. Start-up recovery
(`consentbox.recording.recovery`) finishes whatever the journal still lists.

An entry holds exactly what the manifest holds (offsets, seat numbers, digests: no names, no audio)
and whether the session's files were being destroyed. It lives in the box's state directory, mode
0600, never on the card. docs/reliability.md and docs/formats.md describe it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from consentbox.core.errors import ConsentBoxError
from consentbox.recording.manifest import Manifest
from consentbox.state.files import JOURNAL
from consentbox.storage import strict_json
from consentbox.storage.atomic import replace_file, temporary_name
from consentbox.storage.canonical import canonical_json
from consentbox.storage.durable import sync_directory

#: The journal's directory inside the box's state directory.
_SUFFIX = ".json"
_MODE = 0o600  # plaintext metadata: the box's service account only


class JournalError(ConsentBoxError, OSError):
    """The journal could not be written or read; the message names the file."""


@dataclass(frozen=True)
class JournalEntry:
    """An unfinished session: its newest manifest, and whether its files were being destroyed."""

    manifest: Manifest
    destroy: bool


def _name(session: str) -> str:
    return session + _SUFFIX


class Journal:
    """The journal in `state_dir`/journal, created (mode 0700) if missing, for one box process at a time.

    Opening it deletes the temporary files of versions that a crash cut off before they were renamed
    into place: the entry beside one, if any, is the session's newest complete version.

    `save` and `remove` never raise: the card, not the journal, holds the recording, so a box whose own
    storage fails records on. Each failure goes to `on_failure` (the box logs it); what it costs is
    that a crash in that session is reported by the export ("never finalised") but not by recovery.
    """

    def __init__(self, state_dir: Path, *, on_failure: Callable[[JournalError], None]) -> None:
        self.directory = state_dir / JOURNAL
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        self._on_failure = on_failure
        for path in self.directory.glob(temporary_name("*")):
            try:
                path.unlink()
            except OSError as error:
                self._fail(path.name, "(a version cut off by a crash) could not be deleted", error)

    def save(self, manifest: Manifest, *, destroy: bool = False) -> bool:
        """Make `manifest` the session's entry (`destroy`: its files are about to be destroyed); whether
        that worked."""
        data = canonical_json({"destroy": destroy, "manifest": manifest.to_mapping()})
        try:
            replace_file(self.directory, _name(manifest.session), data, _MODE)
        except OSError as error:
            self._fail(_name(manifest.session), "could not be saved", error)
            return False
        return True

    def remove(self, session: str) -> None:
        """Forget `session`: the card holds its final manifest, or its files are gone."""
        try:
            (self.directory / _name(session)).unlink(missing_ok=True)
            sync_directory(self.directory)
        except OSError as error:
            self._fail(_name(session), "could not be removed", error)

    def pending(self) -> list[JournalEntry]:
        """The unfinished sessions, by id; an entry that cannot be read is reported and left alone."""
        try:
            names = sorted(path.name for path in self.directory.iterdir())
        except OSError as error:
            self._fail("", "could not be listed", error)
            return []
        entries = []
        for name in names:
            if name.startswith(".") or not name.endswith(_SUFFIX):
                continue  # a temporary file is a version that was never completed
            try:
                entry = _parse((self.directory / name).read_bytes())
                if _name(entry.manifest.session) != name:
                    raise ValueError(f"it holds session {entry.manifest.session}")
            except (OSError, ValueError) as error:
                self._fail(name, "could not be read", error)
                continue
            entries.append(entry)
        return entries

    def _fail(self, name: str, problem: str, error: Exception) -> None:
        reason = error.strerror if isinstance(error, OSError) and error.strerror else str(error)
        path = self.directory / name if name else self.directory
        self._on_failure(JournalError(f"journal {path} {problem} ({reason}): recording goes on, but the box "
                                      "cannot mark a session interrupted after a crash; check its storage"))


def _parse(data: bytes) -> JournalEntry:
    values = strict_json.loads(data)
    if not isinstance(values, dict) or set(values) != {"destroy", "manifest"} \
            or not isinstance(values["destroy"], bool):
        raise ValueError("expected an object of `destroy` (true or false) and `manifest`")
    return JournalEntry(Manifest.from_mapping(values["manifest"]), values["destroy"])
