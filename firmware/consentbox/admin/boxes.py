"""The trusted boxes: the device keys whose cards this workstation accepts (issue 15, item 2).

A card's ledger names the key that signed it, and anyone can make a key and sign a forged ledger with
it. So the key must come from somewhere other than the card: IT reads each box's device key when it
deploys the box (`consentbox device-key`) and pins it here with `consentbox-admin trust-box`. The file
is text, one box a line, `<device public key> <label>`; `#` comments and blank lines are allowed
(docs/formats.md). A missing file trusts no box.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path, PurePath, PurePosixPath, PureWindowsPath

from consentbox.core.errors import ConsentBoxError
from consentbox.crypto.exposure import SECRET_KEY, holds_secret, shown
from consentbox.crypto.signing import DevicePublicKey, SigningKeyError
from consentbox.storage.durable import write_all

#: The file's size limit: a box's line is about 80 bytes, so this holds thousands of boxes.
MAX_FILE = 1 << 20
FILE_MODE = 0o600
#: The label shown for the key a verifier was given on the command line instead of the file.
GIVEN_LABEL = "given with --device-key"


class TrustedBoxesError(ConsentBoxError, ValueError):
    """The trusted boxes file, or a box to add to it, is malformed; the message names the file and line."""


class UnknownBoxError(ConsentBoxError, ValueError):
    """A card's ledger is signed by a device key that is not trusted."""


@dataclass(frozen=True)
class TrustedBox:
    """One box IT deployed: its device public key and a label saying which box it is."""

    key: DevicePublicKey
    label: str

    def __post_init__(self) -> None:
        # The label is the rest of its line and is printed in reports: no line breaks, no terminal controls,
        # and never a key pasted into the wrong place.
        if holds_secret(self.label):
            raise TrustedBoxesError(f"the label is {SECRET_KEY}: a label says which box it is")
        if not self.label or self.label != self.label.strip():
            raise TrustedBoxesError(f"label {shown(self.label)} is empty or starts or ends with a space")
        if not self.label.isprintable():
            raise TrustedBoxesError(f"label {shown(self.label)} has a control character or line break: "
                                    "use printable text only")

    def line(self) -> str:
        """The box's line in the file, newline included."""
        return f"{self.key} {self.label}\n"


@dataclass(frozen=True)
class TrustedBoxes:
    """The boxes of a trusted boxes file, in file order."""

    path: Path
    boxes: tuple[TrustedBox, ...]

    @classmethod
    def load(cls, path: Path) -> TrustedBoxes:
        """The boxes in `path` (none if it does not exist); TrustedBoxesError naming the line at fault."""
        try:
            with open(path, "rb") as src:
                mode = stat.S_IMODE(os.fstat(src.fileno()).st_mode)
                data = src.read(MAX_FILE + 1)
        except FileNotFoundError:
            return cls(path, ())
        # Whoever can write the file can make this workstation trust a forger's box (as ssh refuses
        # an authorized_keys file others can write). Windows keeps its permissions in ACLs instead.
        if os.name == "posix" and mode & 0o022:
            raise TrustedBoxesError(f"{path} is writable by others (mode {mode:04o}): chmod 600 {path}")
        if len(data) > MAX_FILE:
            raise TrustedBoxesError(f"{path} is larger than {MAX_FILE // (1 << 20)} MiB: "
                                    "it is not a trusted boxes file")
        try:
            text = data.decode("utf-8-sig")  # Notepad may begin the file with a byte order mark
        except UnicodeDecodeError as error:
            raise TrustedBoxesError(f"{path} is not UTF-8 text (byte {error.start})") from None
        return cls(path, _parse(path, text))

    def label_of(self, key: DevicePublicKey) -> str | None:
        """The label of the box whose device key is `key`, or None if it is not trusted."""
        return next((box.label for box in self.boxes if box.key == key), None)

    def accept(self, key: DevicePublicKey) -> str:
        """The label of `key`'s box; UnknownBoxError, saying how to trust it, if it is not in the file."""
        label = self.label_of(key)
        if label is None:
            option = "" if self.path == default_boxes_path() else f" --boxes {self.path}"
            raise UnknownBoxError(
                f"card from an unknown box: device key {key} is not in {self.path}; check it with IT, then "
                f"`consentbox-admin trust-box {key} LABEL{option}`, or pass --device-key")
        return label


@dataclass(frozen=True)
class GivenDeviceKey:
    """The one device key given on the command line (`--device-key`): no other box is accepted."""

    key: DevicePublicKey

    def accept(self, key: DevicePublicKey) -> str:
        """GIVEN_LABEL if `key` is the key given; UnknownBoxError otherwise."""
        if key != self.key:
            raise UnknownBoxError(f"card from another box: device key {key} is not the key given with "
                                  f"--device-key ({self.key})")
        return GIVEN_LABEL


#: What a verifier checks each card's device key with: `.accept(key)` gives its label or refuses it.
AcceptedBoxes = TrustedBoxes | GivenDeviceKey


def accepted_boxes(device_key: DevicePublicKey | None, boxes_file: Path | None) -> AcceptedBoxes:
    """The keys to accept: only `device_key` if given (the file is then not read), else the boxes of
    `boxes_file` (default: `default_boxes_path()`)."""
    if device_key is not None:
        return GivenDeviceKey(device_key)
    return TrustedBoxes.load(boxes_file or default_boxes_path())


def trust_box(path: Path, box: TrustedBox) -> bool:
    """Add `box` to the file at `path` (made, with its directory, if missing); False if it was there already.

    TrustedBoxesError if the file holds the key under another label: which box a key is must not
    change quietly.
    """
    known = TrustedBoxes.load(path).label_of(box.key)
    if known == box.label:
        return False
    if known is not None:
        raise TrustedBoxesError(f"device key {box.key} is already in {path} as {known!r}: "
                                "edit or remove that line first")
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    # O_BINARY: Windows would otherwise write "\r\n"; the file is the same bytes on every workstation.
    flags = os.O_RDWR | os.O_APPEND | os.O_CREAT | getattr(os, "O_BINARY", 0)
    fd = os.open(path, flags, FILE_MODE)
    try:
        if os.fstat(fd).st_size:
            os.lseek(fd, -1, os.SEEK_END)
            if os.read(fd, 1) != b"\n":  # a last line typed in an editor, without its newline
                write_all(fd, b"\n")
        write_all(fd, box.line().encode("utf-8"))
        os.fsync(fd)
    finally:
        os.close(fd)
    return True


def boxes_path_for(os_name: str, environ: Mapping[str, str], home: PurePath) -> PurePath:
    """Where the trusted boxes file is by default, for an OS (`os.name`), its environment and home.

    Linux and macOS: $XDG_CONFIG_HOME/consentbox/boxes, else ~/.config/consentbox/boxes (the XDG
    base directory rules: a relative $XDG_CONFIG_HOME is ignored). Windows: %APPDATA%\\consentbox\\boxes.
    """
    if os_name == "nt":
        appdata = PureWindowsPath(environ.get("APPDATA", ""))
        roaming = appdata if appdata.is_absolute() else PureWindowsPath(home, "AppData", "Roaming")
        return roaming / "consentbox" / "boxes"
    xdg = PurePosixPath(environ.get("XDG_CONFIG_HOME", ""))
    config = xdg if xdg.is_absolute() else PurePosixPath(home, ".config")
    return config / "consentbox" / "boxes"


def default_boxes_path() -> Path:
    """This workstation's default trusted boxes file (`boxes_path_for` with this OS's facts)."""
    return Path(boxes_path_for(os.name, os.environ, Path.home()))


def _parse(path: Path, text: str) -> tuple[TrustedBox, ...]:
    boxes: dict[DevicePublicKey, int] = {}
    found = []
    # Lines end in "\n" ("\r\n" where an editor wrote them so: strip takes the "\r"); other line
    # breaks are not line ends, so they cannot shift the line numbers an error names.
    for number, raw in enumerate(text.split("\n"), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        key_text, *label = line.split(maxsplit=1)
        try:
            box = TrustedBox(DevicePublicKey.parse(key_text), "".join(label))
        except (SigningKeyError, TrustedBoxesError) as error:
            raise TrustedBoxesError(f"{path}, line {number}: {error}: write `<device key> <label>`") from None
        if box.key in boxes:
            raise TrustedBoxesError(f"{path}, line {number}: device key {box.key} is already on line "
                                    f"{boxes[box.key]}: remove one of the two")
        boxes[box.key] = number
        found.append(box)
    return tuple(found)
