"""A session's extract: the card's copy of one session's ledger entries, signed by the box as a whole.

For each session whose files are on a card, the box keeps `<id>.ledger.age` there
(`recording.manifest.extract_name`): an age file, encrypted to the session's recipients and the
bundle's auditors, whose plaintext is lines, each ending in a newline:

1. the last `boot` entry of the box's ledger at or before the session's first entry (it names the
   device key);
2. every entry of the session, in sequence order, each line exactly as in the box's ledger (so each
   entry's own signature verifies);
3. the trailer, canonical JSON:
   `{"extract":{"entries":N,"format":1,"last_seq":K,"session":ID,"sha256":HEX},"sig":HEX}`, where N
   is the number of lines before it, K the `seq` of the last of them, `sha256` the SHA-256 of those N
   lines (newlines included), and `sig` the device key's Ed25519 signature over SIGNING_CONTEXT and
   the canonical JSON of `{"extract": {...}}`.

A line dropped, moved, edited or brought in from another session's extract breaks the trailer; a
trailer from another session or box does not verify. An older extract of the same session, put back
after a newer one was taken, still verifies: only the newest extract is the whole story.

This module knows the format and nothing of files: `build_extract` and `read_extract` are pure
functions over bytes, and `encrypt_extract`/`decrypt_extract` the age layer around them (the admin
tool reads a file with `decrypt_extract` then `read_extract`). docs/formats.md ("The card's copy of the
ledger") describes it.
"""

from __future__ import annotations

import hashlib
import io
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, BinaryIO

from consentbox.crypto import AgeError, AgeReader, AgeWriter, Identity, NoIdentityMatch, Recipient
from consentbox.crypto.signing import DevicePublicKey, DeviceSigningKey, SignatureError
from consentbox.ledger.entry import Entry, Kind, LedgerError
from consentbox.ledger.lines import MAX_LINE
from consentbox.storage import strict_json
from consentbox.storage.canonical import canonical_json
from consentbox.storage.ids import is_session_id, is_sha256
from consentbox.storage.strict_json import StrictJsonError

#: The extract layout this code writes and reads; its trailer carries it.
FORMAT = 1
#: Prefixed to what the trailer's signature covers, so it can never pass for any other use of the key.
SIGNING_CONTEXT = b"consentbox-ledger/v1 extract\n"
#: The largest extract read (plaintext): a day-long session with a checkpoint every 22 s is under 2 MiB.
MAX_EXTRACT_BYTES = 16 << 20

_TRAILER_FIELDS = frozenset({"entries", "format", "last_seq", "session", "sha256"})
_HEX128 = frozenset("0123456789abcdef")


class ExtractError(LedgerError):
    """An extract is not what the box wrote: cut short, edited, reordered, spliced from another session
    or signed by another key; or it cannot be decrypted. The message names the file and the line."""


@dataclass(frozen=True)
class Extract:
    """A session's extract that verified: its boot entry, the session's entries, and who signed them."""

    session: str
    device_key: DevicePublicKey
    boot: Entry
    entries: tuple[Entry, ...]  # the session's, in sequence order; never empty
    sha256: str  # of the lines before the trailer, as the trailer names it
    # For each entry's seq (the boot's included), the run of the box that wrote it, counted from 0,
    # the boot's: the box's clock (`mono`) starts again at each start, so only entries of one run
    # can be compared by it. A later run shows where `mono` goes back; a restart whose clock had
    # already passed the session's last entry cannot be told from the extract alone.
    run_of: Mapping[int, int] = field(repr=False)

    @property
    def last_seq(self) -> int:
        """The sequence number of the session's last entry in this extract."""
        return self.entries[-1].seq


def build_extract(key: DeviceSigningKey, boot: Entry, entries: Sequence[Entry]) -> bytes:
    """The plaintext of the extract of the session of `entries` (all of it, in order), after `boot`,
    signed with `key`. ExtractError if they are not one session's entries after a boot entry of `key`."""
    if boot.kind is not Kind.BOOT or boot.fields["device_key"] != key.public_key.to_string():
        raise ExtractError(f"entry {boot.seq} is not a boot entry of device key {key.public_key}")
    if not entries or entries[0].session is None:
        raise ExtractError("an extract needs at least one entry of a session")
    session = entries[0].session
    before = boot.seq
    for entry in entries:
        if entry.session != session or entry.seq <= before:
            raise ExtractError(f"entry {entry.seq} is not the next entry of session {session} after seq {before}")
        before = entry.seq
    body = b"".join(entry.line + b"\n" for entry in (boot, *entries))
    trailer = {"entries": len(entries) + 1, "format": FORMAT, "last_seq": entries[-1].seq, "session": session,
               "sha256": hashlib.sha256(body).hexdigest()}
    signature = key.sign(SIGNING_CONTEXT + canonical_json({"extract": trailer}))
    return body + canonical_json({"extract": trailer, "sig": signature.hex()}) + b"\n"


def read_extract(plaintext: bytes, where: str, *, session: str | None = None,
                 device_key: DevicePublicKey | None = None) -> Extract:
    """Verify an extract's plaintext; ExtractError (a LedgerError) naming `where` and the line if it is not intact.

    The trailer's signature, line count, last seq and digest are checked, then every entry: parsed
    strictly, signed by the same key, the first a boot entry naming that key, every other one of the
    trailer's session, in increasing seq order. `session`, if given, is the session the extract must be
    (its file name's). Without `device_key` the key the boot entry names is used and reported, so an
    extract wholly made by another box verifies as that box's: compare `Extract.device_key` with the
    key you trust, or pass it.
    """
    if not plaintext.endswith(b"\n"):
        raise ExtractError(f"{where}: does not end with a whole line: the extract was cut short or edited")
    lines = plaintext[:-1].split(b"\n")
    if len(lines) < 3:
        raise ExtractError(f"{where}: holds {len(lines)} line(s); an extract has a boot entry, at least one entry "
                           "of its session and a trailer")
    *body, last = lines
    trailer, signature = _trailer(last, f"{where} trailer (line {len(lines)})")
    boot = _entry(body[0], f"{where} line 1")
    if boot.kind is not Kind.BOOT:
        raise ExtractError(f"{where} line 1 (seq {boot.seq}): an extract begins with a boot entry, not "
                           f"{boot.kind.value}")
    named = DevicePublicKey.parse(boot.fields["device_key"])
    key = named if device_key is None else device_key
    try:
        key.verify(signature, SIGNING_CONTEXT + canonical_json({"extract": trailer}))
    except SignatureError:
        raise ExtractError(f"{where}: the trailer's signature does not verify with device key {key}: the extract "
                           "was edited, or made by another box") from None
    if trailer["entries"] != len(body):
        raise ExtractError(f"{where}: the trailer counts {trailer['entries']} lines, the extract holds "
                           f"{len(body)}: a line was removed or added")
    digest = hashlib.sha256(plaintext[: len(plaintext) - len(last) - 1]).hexdigest()
    if digest != trailer["sha256"]:
        raise ExtractError(f"{where}: the lines do not match the trailer's SHA-256: a line was edited, moved, or "
                           "taken from another extract")
    if session is not None and trailer["session"] != session:
        raise ExtractError(f"{where}: the extract is session {trailer['session']}'s, not {session}'s: it was "
                           "renamed or swapped")
    if named != key:
        raise ExtractError(f"{where} line 1 (seq {boot.seq}): the boot entry names device key {named}, not "
                           f"the trailer's {key}")
    _check_signature(boot, key, f"{where} line 1 (seq {boot.seq})")
    entries = tuple(_entry(line, f"{where} line {number}") for number, line in enumerate(body[1:], start=2))
    before = boot
    for number, entry in enumerate(entries, start=2):
        place = f"{where} line {number} (seq {entry.seq})"
        _check_signature(entry, key, place)
        if entry.session != trailer["session"]:
            raise ExtractError(f"{place}: an entry of {_owner(entry.session)}, not of session {trailer['session']}")
        if entry.seq <= before.seq:
            raise ExtractError(f"{place}: follows seq {before.seq}: the entries are out of order")
        before = entry
    if before.seq != trailer["last_seq"]:
        raise ExtractError(f"{where}: the trailer's last seq is {trailer['last_seq']}, the last entry's "
                           f"{before.seq}")
    return Extract(trailer["session"], key, boot, entries, trailer["sha256"], _runs((boot, *entries)))


def encrypt_extract(plaintext: bytes, readers: Sequence[Recipient], *,
                    random_bytes: Callable[[int], bytes] = os.urandom) -> bytes:
    """The age file of an extract's plaintext, for `readers` (the recipients and the auditors)."""
    sealed = io.BytesIO()
    with AgeWriter(sealed, readers, random_bytes=random_bytes) as writer:
        writer.write(plaintext)
    return sealed.getvalue()


def decrypt_extract(src: BinaryIO, identities: Sequence[Identity], where: str) -> bytes:
    """The plaintext of the extract file read from `src`; ExtractError naming `where` if it cannot be
    decrypted with `identities` (cut short, edited, not for them) or holds over MAX_EXTRACT_BYTES."""
    plaintext = bytearray()
    try:
        for chunk in AgeReader(src, identities).chunks():
            plaintext += chunk
            if len(plaintext) > MAX_EXTRACT_BYTES:
                raise ExtractError(f"{where}: over {MAX_EXTRACT_BYTES} bytes decrypted: not an extract")
    except NoIdentityMatch:
        raise ExtractError(f"{where}: none of the identities given can decrypt it: give a supervisor's or an "
                           "auditor's key with -i") from None
    except AgeError as error:
        raise ExtractError(f"{where}: cannot be decrypted: {error}") from None
    return bytes(plaintext)


def _trailer(line: bytes, where: str) -> tuple[dict[str, Any], bytes]:
    """The trailer's `extract` object and signature, checked for form only."""
    try:
        value = strict_json.loads(line)
    except StrictJsonError:
        raise ExtractError(f"{where}: not JSON: the trailer is missing or was edited") from None
    if not isinstance(value, dict) or set(value) != {"extract", "sig"} or not isinstance(value["extract"], dict):
        raise ExtractError(f"{where}: not an extract's trailer (an object of `extract` and `sig`): the trailer is "
                           "missing or was edited")
    trailer = value["extract"]
    if set(trailer) != _TRAILER_FIELDS:
        odd = sorted(set(trailer) ^ _TRAILER_FIELDS)[0]
        raise ExtractError(f"{where}: {'unknown' if odd in trailer else 'missing'} field {odd!r}")
    if canonical_json(value) != line:
        raise ExtractError(f"{where}: not in canonical form: the trailer was edited")
    if type(trailer["format"]) is not int or trailer["format"] != FORMAT:
        raise ExtractError(f"{where}: format {trailer['format']!r}: this tool reads format {FORMAT}; update "
                           "consentbox-admin")
    for name in ("entries", "last_seq"):
        if type(trailer[name]) is not int or trailer[name] < 0:
            raise ExtractError(f"{where}: {name} is not a whole number")
    if not is_session_id(trailer["session"]):
        raise ExtractError(f"{where}: session is not a session id (16 lowercase hex digits)")
    if not is_sha256(trailer["sha256"]):
        raise ExtractError(f"{where}: sha256 is not 64 lowercase hex digits")
    sig = value["sig"]
    if not isinstance(sig, str) or len(sig) != 128 or not set(sig) <= _HEX128:
        raise ExtractError(f"{where}: sig is not a 64-byte signature in lowercase hex")
    return trailer, bytes.fromhex(sig)


def _entry(line: bytes, where: str) -> Entry:
    """One line of the extract as a ledger entry; an ExtractError, as every error of an extract is."""
    if len(line) > MAX_LINE:
        raise ExtractError(f"{where}: over {MAX_LINE} bytes: not a ledger entry")
    try:
        return Entry.parse(line, where)
    except LedgerError as error:
        raise ExtractError(str(error)) from None


def _check_signature(entry: Entry, key: DevicePublicKey, where: str) -> None:
    try:
        entry.check_signature(key, where)
    except LedgerError as error:
        raise ExtractError(str(error)) from None


def _owner(session: str | None) -> str:
    return "no session" if session is None else f"session {session}"


def _runs(entries: Sequence[Entry]) -> Mapping[int, int]:
    """The run of each entry (see `Extract.run_of`): a new one wherever the box's clock went back."""
    runs: dict[int, int] = {}
    run, clock = 0, entries[0].mono
    for entry in entries:
        if entry.mono < clock:
            run += 1
        clock = entry.mono
        runs[entry.seq] = run
    return MappingProxyType(runs)
