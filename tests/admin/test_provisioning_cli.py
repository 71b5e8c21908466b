"""IT's provisioning commands, run as IT runs them: `consentbox-admin init-org`, `bundle` and `inspect`.

What they write is read back with the box's own code (open_sealed with org.pub), and the period key
with the real `age-keygen`. Every failure is exit 1 with one line that names the file or key, and
leaves no file behind.
"""

from __future__ import annotations

import base64
import json
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from consentbox.core.policy import OnWithdrawal, Policy
from consentbox.core.provisioning import BundleRefusal, Refused
from consentbox.crypto import MLKEM768X25519Identity, X25519Identity, parse_identity_file
from consentbox.crypto.signing import OrgPublicKey, OrgSigningKey
from consentbox.provisioning.bundle import (
    HEADER_BYTES,
    MAX_AUDITORS,
    MAX_BUNDLE_BYTES,
    MAX_RECIPIENTS,
    Bundle,
    open_sealed,
    seal,
)
from tests.support.bundles import signed_bundle

BIN = Path(sys.executable).parent
ADMIN = str(BIN / "consentbox-admin")
PASSPHRASE = "correct horse battery staple"
SECRET = "AGE-SECRET-KEY-1XDW3JMN8TX7PZSADTTXQ0MQGJ8J4KZWUKPK7YHY7GME95PZ5MPKQCF8MU8"


def admin(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([ADMIN, *map(str, args)], capture_output=True, text=True, timeout=30, check=False)


def assert_one_line_error(done: subprocess.CompletedProcess[str], *words: str) -> None:
    assert done.returncode == 1, done.stdout
    assert done.stderr.startswith("consentbox-admin: ") and done.stderr.count("\n") == 1, done.stderr
    assert "Traceback" not in done.stderr
    for word in words:
        assert word in done.stderr, done.stderr


@pytest.fixture
def org_dir(tmp_path: Path) -> Path:
    out = tmp_path / "org"
    done = admin("init-org", "--out", out)
    assert done.returncode == 0, done.stderr
    return out


@pytest.fixture
def policy_file(tmp_path: Path) -> Path:
    path = tmp_path / "policy.toml"
    path.write_text('[policy]\nretention_days = 14\non_withdrawal = "keep"\n')
    return path


@pytest.fixture
def stick(tmp_path: Path) -> Path:
    path = tmp_path / "stick"
    path.mkdir()
    return path


def bundle(org_dir: Path, policy_file: Path, stick: Path, *args: str | Path, version: int = 3,
           recipients: tuple[X25519Identity, ...] = (), single: bool = True) -> subprocess.CompletedProcess[str]:
    """`consentbox-admin bundle`; with `single`, --single-recipient: most tests here mean one supervisor."""
    options = [item for identity in recipients for item in ("--recipient", identity.recipient.to_string())]
    return admin("bundle", "--org-key", org_dir / "org.key", "--policy", policy_file, "--version", str(version),
                 "--out", stick, *options, *(["--single-recipient"] if single else []), *args)


def test_init_org_makes_a_private_key_only_root_reads_and_the_public_key_for_the_boxes(org_dir):
    assert stat.S_IMODE(org_dir.stat().st_mode) == 0o700
    assert stat.S_IMODE((org_dir / "org.key").stat().st_mode) == 0o600
    assert stat.S_IMODE((org_dir / "org.pub").stat().st_mode) == 0o644
    assert (org_dir / "org.key").read_text().startswith("-----BEGIN PRIVATE KEY-----\n")
    lines = (org_dir / "org.pub").read_text().splitlines()
    assert lines[0].startswith("# ") and "/etc/consentbox/org.pub" in lines[0] and len(lines) == 2
    key = OrgSigningKey.load(org_dir / "org.key")
    assert OrgPublicKey.read(org_dir / "org.pub") == key.public_key
    assert lines[1] == key.public_key.to_string()


def test_init_org_prints_where_the_keys_are(tmp_path):
    done = admin("init-org", "--out", tmp_path / "org")
    public = OrgPublicKey.read(tmp_path / "org" / "org.pub")
    assert done.stdout == (f"organisation key  {tmp_path}/org/org.key (private: keep it offline)\n"
                           f"public key        {tmp_path}/org/org.pub: {public}\n")


def test_init_org_never_replaces_an_organisation_key(org_dir):
    before = {p.name: p.read_bytes() for p in org_dir.iterdir()}
    assert_one_line_error(admin("init-org", "--out", org_dir), "already exists", "made once")
    assert {p.name: p.read_bytes() for p in org_dir.iterdir()} == before


def test_a_passphrase_encrypts_the_key_and_only_the_right_one_signs(tmp_path, policy_file, stick, identity):
    passphrase = tmp_path / "passphrase"
    passphrase.write_text(PASSPHRASE + "\n")
    out = tmp_path / "org"
    made = admin("init-org", "--out", out, "--passphrase-file", passphrase)
    assert made.returncode == 0, made.stderr
    assert (out / "org.key").read_text().startswith("-----BEGIN ENCRYPTED PRIVATE KEY-----\n")
    assert stat.S_IMODE((out / "org.key").stat().st_mode) == 0o600
    assert PASSPHRASE.split()[0] not in (out / "org.key").read_text() + made.stdout + made.stderr

    wrong = tmp_path / "wrong"
    wrong.write_text("incorrect horse\n")
    assert_one_line_error(bundle(out, policy_file, stick, "--passphrase-file", wrong, recipients=(identity,)),
                          str(out / "org.key"), "passphrase is wrong")
    assert_one_line_error(bundle(out, policy_file, stick, recipients=(identity,)), "needs a passphrase")
    assert list(stick.iterdir()) == []

    done = bundle(out, policy_file, stick, "--passphrase-file", passphrase, recipients=(identity,))
    assert done.returncode == 0, done.stderr
    open_sealed((stick / "consentbox-v3.cbundle").read_bytes(), OrgPublicKey.read(out / "org.pub"))


def test_a_passphrase_for_a_plain_key_and_an_empty_passphrase_are_one_line_errors(tmp_path, org_dir, policy_file,
                                                                                  stick, identity):
    passphrase = tmp_path / "passphrase"
    passphrase.write_text(PASSPHRASE + "\n")
    assert_one_line_error(bundle(org_dir, policy_file, stick, "--passphrase-file", passphrase, recipients=(identity,)),
                          "is not encrypted")
    empty = tmp_path / "empty"
    empty.write_text("\n")
    assert_one_line_error(admin("init-org", "--out", tmp_path / "org2", "--passphrase-file", empty), "empty")
    assert not (tmp_path / "org2" / "org.key").exists()


def test_an_organisation_key_others_can_read_is_refused(org_dir, policy_file, stick, identity):
    (org_dir / "org.key").chmod(0o644)
    assert_one_line_error(bundle(org_dir, policy_file, stick, recipients=(identity,)), "chmod 600")
    assert list(stick.iterdir()) == []


def test_bundle_signs_the_recipients_auditors_policy_version_and_date(org_dir, policy_file, stick, identity,
                                                                      other_identity):
    began = int(time.time())
    auditor = X25519Identity.generate(secret=bytes(range(100, 132))).recipient
    done = bundle(org_dir, policy_file, stick, "--existing-days", "5", "--auditor", auditor.to_string(), version=7,
                  recipients=(identity, other_identity))
    assert done.returncode == 0, done.stderr
    path = stick / "consentbox-v7.cbundle"
    assert done.stdout.splitlines() == [f"wrote {path}: version 7, 2 recipient(s), 1 auditor(s)",
                                        f"recipient    {identity.recipient.to_string()} (X25519, classic)",
                                        f"recipient    {other_identity.recipient.to_string()} (X25519, classic)",
                                        f"auditor      {auditor.to_string()} (X25519, classic)"]
    assert [p.name for p in stick.iterdir()] == [path.name]
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
    sealed = open_sealed(path.read_bytes(), OrgPublicKey.read(org_dir / "org.pub")).bundle
    assert sealed.version == 7 and sealed.existing_days == 5
    assert sealed.recipients == (identity.recipient, other_identity.recipient)
    assert sealed.auditors == (auditor,)
    assert sealed.policy == Policy(retention_days=14, on_withdrawal=OnWithdrawal.KEEP)  # the rest: defaults
    assert began <= sealed.created <= time.time()


def test_bundle_refuses_to_put_a_second_bundle_on_a_stick(org_dir, policy_file, stick, identity):
    assert bundle(org_dir, policy_file, stick, version=3, recipients=(identity,)).returncode == 0
    first = (stick / "consentbox-v3.cbundle").read_bytes()
    assert_one_line_error(bundle(org_dir, policy_file, stick, version=4, recipients=(identity,)),
                          str(stick), "consentbox-v3.cbundle", "remove it first")
    assert [p.name for p in stick.iterdir()] == ["consentbox-v3.cbundle"]
    assert (stick / "consentbox-v3.cbundle").read_bytes() == first


def test_a_bundle_in_any_case_counts_and_a_dot_file_does_not(org_dir, policy_file, stick, identity):
    (stick / "._consentbox-v2.cbundle").write_bytes(b"\x00\x05\x16\x07")  # what macOS leaves; the box ignores it
    assert bundle(org_dir, policy_file, stick, recipients=(identity,)).returncode == 0
    (stick / "consentbox-v3.cbundle").rename(stick / "OLD.CBUNDLE")
    assert_one_line_error(bundle(org_dir, policy_file, stick, recipients=(identity,)), "OLD.CBUNDLE")


@pytest.mark.parametrize("policy, args, words", [
    ("[policy]\nretention_days = 0\n", (), ("retention_days", "out of range")),
    ("[policy]\nrecord_without_consent = true\n", (), ("unknown key 'record_without_consent'",)),
    ("[policy]\nretention_days = 7\n[keys]\nrecipients = []\n", (), ("only a [policy] table", "keys")),
    ("[policy\nretention_days = 7\n", (), ("not valid TOML",)),
    ("policy = 7\n", (), ("[policy] must be a table",)),
    ("", ("--version", "0"), ("bundle version must be 1",)),
    ("", ("--existing-days", "3651"), ("existing_days must be 0 to 3650",)),
    ("", ("--recipient", "age1notakey"), ("age1notakey", "is not valid")),
    ("", ("--recipient", SECRET), ("a secret key",)),
], ids=["out-of-range", "unknown-key", "another-table", "not-toml", "policy-not-a-table", "version-zero",
        "existing-days-too-long", "bad-recipient", "secret-key-as-recipient"])
def test_a_bundle_that_no_box_would_take_is_never_written(tmp_path, org_dir, stick, identity, policy, args, words):
    path = tmp_path / "policy.toml"
    path.write_text(policy)
    done = bundle(org_dir, path, stick, *args, recipients=(identity,))
    assert_one_line_error(done, *words)
    assert SECRET[17:] not in done.stderr + done.stdout
    assert list(stick.iterdir()) == []


def test_a_single_recipient_is_refused_unless_told_and_then_warned_of(org_dir, policy_file, stick, identity):
    auditor = X25519Identity.generate(secret=bytes(range(100, 132))).recipient.to_string()
    # An auditor reads no audio: it is no second key for the recordings.
    done = bundle(org_dir, policy_file, stick, "--auditor", auditor, recipients=(identity,), single=False)
    assert_one_line_error(done, "single recipient", "unreadable for ever", "--single-recipient")
    assert list(stick.iterdir()) == []

    done = bundle(org_dir, policy_file, stick, recipients=(identity,))
    assert done.returncode == 0, done.stderr
    assert done.stderr == ("consentbox-admin: warning: the bundle has a single recipient: if that one key is lost, "
                           "every recording on the box's cards is unreadable for ever (--single-recipient given)\n")
    assert [p.name for p in stick.iterdir()] == ["consentbox-v3.cbundle"]


def test_two_recipients_or_one_and_a_period_key_need_no_flag(tmp_path, org_dir, policy_file, stick, identity,
                                                             other_identity):
    done = bundle(org_dir, policy_file, stick, recipients=(identity, other_identity), single=False)
    assert done.returncode == 0 and done.stderr == "", done.stderr
    (stick / "consentbox-v3.cbundle").unlink()
    done = bundle(org_dir, policy_file, stick, "--period-key", tmp_path / "period.key", recipients=(identity,),
                  single=False)
    assert done.returncode == 0 and done.stderr == "", done.stderr


def test_a_bundle_needs_a_recipient(org_dir, policy_file, stick):
    assert_one_line_error(bundle(org_dir, policy_file, stick), "1 to 64 recipients, got 0")
    assert list(stick.iterdir()) == []


def test_a_period_key_is_made_and_its_recipient_added(tmp_path, org_dir, policy_file, stick, identity, age_keygen_cli):
    period = tmp_path / "2026-12.key"
    done = bundle(org_dir, policy_file, stick, "--period-key", period, recipients=(identity,))
    assert done.returncode == 0, done.stderr
    assert stat.S_IMODE(period.stat().st_mode) == 0o600
    recipient = subprocess.run([age_keygen_cli, "-y", str(period)], capture_output=True, text=True,
                               check=True).stdout.strip()
    assert done.stdout.splitlines()[0] == f"period key {period}: {recipient}"
    sealed = open_sealed((stick / "consentbox-v3.cbundle").read_bytes(), OrgPublicKey.read(org_dir / "org.pub"))
    assert [r.to_string() for r in sealed.bundle.recipients] == [identity.recipient.to_string(), recipient]


def test_a_period_key_never_replaces_a_key_file(tmp_path, org_dir, policy_file, stick):
    period = tmp_path / "2026-12.key"
    period.write_text("somebody's key\n")
    assert_one_line_error(bundle(org_dir, policy_file, stick, "--period-key", period), "already exists")
    assert period.read_text() == "somebody's key\n" and list(stick.iterdir()) == []


def test_a_refused_bundle_leaves_no_period_key_behind(tmp_path, org_dir, policy_file, stick, identity):
    # A period key whose recipient is in no bundle would be handed to supervisors for nothing, and its
    # file name could not be used again.
    assert bundle(org_dir, policy_file, stick, recipients=(identity,)).returncode == 0
    period = tmp_path / "2026-12.key"
    assert_one_line_error(bundle(org_dir, policy_file, stick, "--period-key", period, version=4), "remove it first")
    assert not period.exists(), "a period key was made for a bundle that was not written"


@pytest.fixture
def bundles(tmp_path, identity, other_identity) -> tuple[Path, Path, Path]:
    """org.pub, an installed version 2 (to `identity`) and a version 3 (to `other_identity`, other policy)."""
    key = OrgSigningKey.generate(secret=bytes(range(64, 96)))
    pub = tmp_path / "org.pub"
    pub.write_text(key.public_key.to_string() + "\n")
    installed, newer = tmp_path / "provisioned.cbundle", tmp_path / "consentbox-v3.cbundle"
    installed.write_bytes(seal(Bundle(2, 1_790_000_000, (identity.recipient,), Policy()), key))
    newer.write_bytes(seal(Bundle(3, 1_795_000_000, (other_identity.recipient,),
                                  Policy(retention_days=7, bundle_ahead_days=30), existing_days=2,
                                  auditors=(identity.recipient,)), key))
    return pub, installed, newer


def test_inspect_shows_a_bundle_unverified_unless_given_the_org_key(bundles, identity, other_identity):
    pub, _, newer = bundles
    done = admin("inspect", newer)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        "signature    NOT CHECKED (give --org-key to verify it as a box would)",
        "version      3",
        "created      2026-11-18 11:06:40 UTC",
        f"recipient    {other_identity.recipient.to_string()} (X25519, classic)",
        f"auditor      {identity.recipient.to_string()} (X25519, classic)",
        "policy       retention_days: 30 -> 7",
        "policy       bundle_ahead_days: 366 -> 30",
        "retention    recordings already made are kept at most 2 day(s) from their start",
    ]
    verified = admin("inspect", "--org-key", pub, newer)
    assert verified.returncode == 0, verified.stderr
    assert verified.stdout.splitlines()[0] == f"signature    verified with {OrgPublicKey.read(pub)}"
    assert verified.stdout.splitlines()[1:] == done.stdout.splitlines()[1:]


def test_inspect_says_what_a_bundle_changes_on_a_box(bundles, identity, other_identity):
    pub, installed, newer = bundles
    done = admin("inspect", "--org-key", pub, "--installed", installed, newer)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[1] == "version      3 (installed: 2)"
    assert f"recipient    {other_identity.recipient.to_string()} (X25519, classic)  (new)" in lines
    assert f"recipient    {identity.recipient.to_string()} (X25519, classic)  (removed)" in lines
    assert f"auditor      {identity.recipient.to_string()} (X25519, classic)  (new)" in lines
    assert "auditors     none: each session's ledger extract is for its recipients only" not in lines
    rollback = admin("inspect", "--org-key", pub, "--installed", newer, installed)
    assert rollback.stdout.splitlines()[1] == "version      2 (installed: 3, refused: not newer)"
    removed = f"auditor      {identity.recipient.to_string()} (X25519, classic)  (removed)"
    assert removed in rollback.stdout.splitlines()
    same = admin("inspect", "--installed", installed, installed)
    assert "policy       as the installed bundle" in same.stdout.splitlines()
    assert "auditors     none: each session's ledger extract is for its recipients only" in same.stdout.splitlines()


def test_inspect_with_the_org_key_fails_a_bundle_a_box_would_refuse(bundles, tmp_path):
    pub, _, newer = bundles
    data = bytearray(newer.read_bytes())
    data[-5] ^= 1
    tampered = tmp_path / "tampered.cbundle"
    tampered.write_bytes(bytes(data))
    assert_one_line_error(admin("inspect", "--org-key", pub, tampered), "signature does not verify")
    other = tmp_path / "other.pub"
    other.write_text(OrgSigningKey.generate(secret=bytes(32)).public_key.to_string() + "\n")
    assert_one_line_error(admin("inspect", "--org-key", other, newer), "signature does not verify")
    unsigned = tmp_path / "unsigned.cbundle"
    unsigned.write_bytes(newer.read_bytes()[HEADER_BYTES:])
    assert_one_line_error(admin("inspect", unsigned), "not a signed bundle")


@pytest.mark.parametrize("payload", [b"{", b"[" * 30_000 + b"]" * 30_000, b'{"version":' + b"9" * 5000 + b"}"],
                         ids=["cut-short", "nested-too-deep", "integer-too-long"])
def test_inspect_of_a_malformed_bundle_is_a_one_line_error(tmp_path, payload):
    key = OrgSigningKey.generate(secret=bytes(range(64, 96)))
    path = tmp_path / "hostile.cbundle"
    signature = key.sign(b"consentbox-bundle/v1 payload\n" + payload)
    path.write_bytes(b"consentbox-bundle/v1\nsignature: " + base64.b64encode(signature) + b"\n\n" + payload)
    assert_one_line_error(admin("inspect", path), "invalid contents")


def test_the_help_says_where_the_keys_go():
    assert "/etc/consentbox/org.pub" in admin("init-org", "--help").stdout
    assert "consentbox-v<N>.cbundle" in admin("bundle", "--help").stdout.replace("\n", " ").replace("  ", " ")


def test_bundle_and_inspect_take_post_quantum_keys_and_show_each_type(tmp_path, org_dir, policy_file, stick,
                                                                     pq_identity, other_pq_identity):
    supervisor, auditor = pq_identity, other_pq_identity
    period = tmp_path / "2026-12.key"
    done = bundle(org_dir, policy_file, stick, "--auditor", auditor.recipient.to_string(), "--period-key", period,
                  recipients=(supervisor,), single=False)
    assert done.returncode == 0, done.stderr
    [period_identity] = parse_identity_file(period.read_text(), str(period))
    assert isinstance(period_identity, MLKEM768X25519Identity), "the period key is of the other keys' kind"
    assert done.stdout.count("(mlkem768x25519, post-quantum)") == 3, done.stdout
    path = stick / "consentbox-v3.cbundle"
    sealed = open_sealed(path.read_bytes(), OrgPublicKey.read(org_dir / "org.pub")).bundle
    assert sealed.recipients == (supervisor.recipient, period_identity.recipient)
    assert sealed.auditors == (auditor.recipient,)
    shown = admin("inspect", "--org-key", org_dir / "org.pub", path)
    assert shown.returncode == 0, shown.stderr
    text = supervisor.recipient.to_string()
    assert f"recipient    {text[:24]}…{text[-12:]} (mlkem768x25519, post-quantum)" in shown.stdout.splitlines()
    assert shown.stdout.count("(mlkem768x25519, post-quantum)") == 3


def test_bundle_refuses_post_quantum_recipients_with_a_classic_auditor(tmp_path, org_dir, policy_file, stick,
                                                                       pq_identity, other_pq_identity, identity):
    done = bundle(org_dir, policy_file, stick, "--auditor", identity.recipient.to_string(),
                  recipients=(pq_identity, other_pq_identity), single=False)
    assert_one_line_error(done, "incompatible recipients")
    assert list(stick.iterdir()) == []


def test_a_signed_bundle_mixing_kinds_is_refused_by_inspect_and_the_box(tmp_path, pq_identity, identity):
    key = OrgSigningKey.generate(secret=bytes(range(64, 96)))
    payload = json.dumps({"version": 3, "created": "2026-11-18T11:06:40Z", "policy": {},
                          "recipients": [pq_identity.recipient.to_string(), identity.recipient.to_string()]})
    path = tmp_path / "mixed.cbundle"
    path.write_bytes(signed_bundle(payload.encode(), key))
    pub = tmp_path / "org.pub"
    pub.write_text(key.public_key.to_string() + "\n")
    assert_one_line_error(admin("inspect", "--org-key", pub, path), "invalid contents", "incompatible recipients")
    with pytest.raises(Refused, match="incompatible recipients") as refused:
        open_sealed(path.read_bytes(), key.public_key)  # as the box opens a stick's bundle
    assert refused.value.reason is BundleRefusal.INVALID


def test_the_bundle_cap_holds_the_most_keys_a_bundle_may_name_all_post_quantum():
    recipients = tuple(MLKEM768X25519Identity.generate().recipient for _ in range(MAX_RECIPIENTS))
    auditors = tuple(MLKEM768X25519Identity.generate().recipient for _ in range(MAX_AUDITORS))
    data = seal(Bundle(3, 1_795_000_000, recipients, Policy(), auditors=auditors),
                OrgSigningKey.generate(secret=bytes(32)))
    assert len(data) <= MAX_BUNDLE_BYTES // 2, "the cap keeps twice the room the largest bundle takes"
