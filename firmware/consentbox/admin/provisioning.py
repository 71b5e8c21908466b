"""IT's side of provisioning: the organisation key, signed bundles, and what a bundle would change.

The organisation's private key stays on IT's workstation (ideally an offline one); only its public key
goes to the boxes, as /etc/consentbox/org.pub. docs/provisioning.md walks through the whole procedure.
"""

from __future__ import annotations

import getpass
import os
import time
import tomllib
from collections.abc import Sequence
from pathlib import Path

from consentbox.core.errors import ConsentBoxError, PolicyError
from consentbox.core.policy import Policy
from consentbox.core.provisioning import BundleRefusal, Refused
from consentbox.crypto import Recipient, describe_recipient
from consentbox.crypto.signing import OrgPublicKey, OrgSigningKey
from consentbox.provisioning.bundle import MAX_BUNDLE_BYTES, SUFFIX, Bundle, open_sealed, read_unverified, seal
from consentbox.storage import portable
from consentbox.storage.durable import sync_directory, write_all

ORG_KEY_NAME = "org.key"
ORG_PUBLIC_NAME = "org.pub"


def init_org(out: Path, passphrase: bytes | None) -> OrgSigningKey:
    """Make the organisation key pair in `out`: org.key (0600) and org.pub; never overwrites either."""
    out.mkdir(mode=0o700, parents=True, exist_ok=True)
    public = out / ORG_PUBLIC_NAME
    if public.exists():
        raise ConsentBoxError(f"{public} already exists: an organisation key is made once")
    key = OrgSigningKey.generate()
    key.save(out / ORG_KEY_NAME, passphrase)
    text = ("# ConsentBox organisation public key: install it on each box as /etc/consentbox/org.pub\n"
            f"{key.public_key.to_string()}\n")
    _create(public, text.encode("ascii"), 0o644)
    return key


def read_passphrase(path: Path | None, *, confirm: bool) -> bytes | None:
    """The passphrase in the first line of `path`; or asked on the terminal when `path` is "-"."""
    if path is None:
        return None
    if str(path) == "-":
        first = getpass.getpass("Passphrase for the organisation key: ")
        if confirm and getpass.getpass("The same again: ") != first:
            raise ConsentBoxError("the two passphrases differ")
        text = first
    else:
        text = path.read_text(encoding="utf-8").splitlines()[0] if path.stat().st_size else ""
    if not text:
        raise ConsentBoxError("the passphrase is empty")
    return text.encode("utf-8")


def policy_from_file(path: Path) -> Policy:
    """The policy in a TOML file's [policy] table (the same keys as the box's config.toml), over the defaults."""
    try:
        values = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as error:
        raise PolicyError(f"{path}: not valid TOML: {error}") from None
    extra = set(values) - {"policy"}
    if extra:
        raise PolicyError(f"{path}: a policy file holds only a [policy] table, not {', '.join(sorted(extra))}")
    table = values.get("policy", {})
    if not isinstance(table, dict):
        raise PolicyError(f"{path}: [policy] must be a table")
    return Policy.from_mapping(table, source=str(path))


def check_stick(out: Path) -> None:
    """ConsentBoxError unless `out` is a directory without a bundle: a stick with two is refused by the box."""
    if not out.is_dir():
        raise ConsentBoxError(f"{out} is not a directory (the stick's top directory)")
    others = sorted(p.name for p in out.iterdir() if p.name.lower().endswith(SUFFIX) and not p.name.startswith("."))
    if others:
        raise ConsentBoxError(f"{out} already holds {', '.join(others)}: a stick carries one bundle; remove it first")


#: Why a bundle whose recordings only one key opens is refused unless IT says it means it.
SINGLE_RECIPIENT_RISK = ("the bundle has a single recipient: if that one key is lost, every recording on the box's "
                         "cards is unreadable for ever")


def check_recipient_count(bundle: Bundle, *, single_recipient: bool) -> str:
    """A warning for a bundle with one recipient given `single_recipient`; ConsentBoxError without it. Any
    second recipient counts (a second supervisor, an escrow key IT keeps, a --period-key); auditors do not,
    as they never read the audio. "" for two or more recipients."""
    if len(bundle.recipients) > 1:
        return ""
    if not single_recipient:
        raise ConsentBoxError(f"{SINGLE_RECIPIENT_RISK}: add a second supervisor's or an escrow key with another "
                              "--recipient, or give --single-recipient to accept that")
    return f"warning: {SINGLE_RECIPIENT_RISK} (--single-recipient given)"


def write_bundle(bundle: Bundle, key: OrgSigningKey, out: Path) -> Path:
    """Write the signed bundle to `out` (the stick's top directory) as consentbox-v<version>.cbundle."""
    check_stick(out)
    path = out / f"consentbox-v{bundle.version}{SUFFIX}"
    _create(path, seal(bundle, key), 0o644)
    return path


def read_bundle_file(path: Path) -> bytes:
    """A bundle file's bytes, never more than the cap: a larger file is refused by its size, as a box
    refuses it, without being read (a stick can hold a file of any size)."""
    with open(path, "rb") as src:
        size = os.fstat(src.fileno()).st_size
        if size > MAX_BUNDLE_BYTES:
            raise Refused(BundleRefusal.TOO_LARGE, f"{path} is {size} bytes, the cap is {MAX_BUNDLE_BYTES}")
        return src.read(MAX_BUNDLE_BYTES + 1)  # a pipe or device has no size: the cap + 1 is refused too


def describe(data: bytes, org_key: OrgPublicKey | None, installed: bytes | None) -> list[str]:
    """Lines saying what a bundle holds and would change (against an installed bundle, or the defaults)."""
    if org_key is None:
        bundle = read_unverified(data)
        lines = ["signature    NOT CHECKED (give --org-key to verify it as a box would)"]
    else:
        bundle = open_sealed(data, org_key).bundle
        lines = [f"signature    verified with {org_key}"]
    before = None if installed is None else read_unverified(installed)
    lines.append(f"version      {bundle.version}" + ("" if before is None else f" (installed: {before.version}"
                                                      + (", refused: not newer)" if bundle.version <= before.version
                                                         else ")")))
    lines.append("created      " + time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(bundle.created)))
    lines += key_lines("recipient", bundle.recipients, None if before is None else before.recipients)
    lines += key_lines("auditor", bundle.auditors, None if before is None else before.auditors)
    if not bundle.auditors:
        lines.append("auditors     none: each session's ledger extract is for its recipients only")
    old_policy = (Policy() if before is None else before.policy).to_mapping()
    changes = [(k, old_policy[k], v) for k, v in bundle.policy.to_mapping().items() if old_policy[k] != v]
    against = "the defaults" if before is None else "the installed bundle"
    if not changes:
        lines.append(f"policy       as {against}")
    for name, old, new in changes:
        lines.append(f"policy       {name}: {old!r} -> {new!r}")
    if bundle.existing_days is not None:
        lines.append(f"retention    recordings already made are kept at most {bundle.existing_days} day(s) "
                     "from their start")
    return lines


def key_lines(label: str, keys: Sequence[Recipient], before: Sequence[Recipient] | None = None) -> list[str]:
    """A line for each of `keys` (marked new if `before` lacks it), and one for each of `before` that is gone."""
    old = () if before is None else before
    lines = [f"{label:<12} {describe_recipient(key)}" + ("" if before is None or key in old else "  (new)")
             for key in keys]
    lines += [f"{label:<12} {describe_recipient(key)}  (removed)" for key in old if key not in keys]
    return lines


def _create(path: Path, data: bytes, mode: int) -> None:
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | portable.BINARY, mode)
    except FileExistsError:
        raise ConsentBoxError(f"{path} already exists: it is never overwritten") from None
    try:
        write_all(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    sync_directory(path.parent)

