"""A box whose `cryptography` predates HPKE and ML-KEM (Debian bookworm's 38.0.4, the real release): it keeps
working with X25519 keys and refuses post-quantum ones in one line that says why (README: Dependencies).

The code runs in the second virtualenv that `make test` makes with that version, `.cache/bench-crypto38`.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from consentbox.core.policy import Policy
from consentbox.crypto import bech32
from consentbox.crypto.signing import OrgSigningKey
from consentbox.provisioning.bundle import Bundle, seal
from consentbox.state.files import INSTALLED_BUNDLE
from tests.support.tokens import token_point

OLD_PYTHON = Path(__file__).resolve().parents[2] / ".cache" / "bench-crypto38" / "bin" / "python"


def run_old(code: str, *args: str) -> str:
    """Run `code` under cryptography 38.0.4; what it printed (it must exit 0)."""
    if not OLD_PYTHON.exists():
        pytest.fail(f"the cryptography 38 virtualenv is missing at {OLD_PYTHON}: run `make test`")
    done = subprocess.run([str(OLD_PYTHON), "-c", code, *args], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_the_old_virtualenv_has_bookworms_cryptography_and_no_hpke():
    printed = run_old("import cryptography, importlib.util\n"
                      "hpke = importlib.util.find_spec('cryptography.hazmat.primitives.hpke')\n"
                      "print(cryptography.__version__, hpke)")
    assert printed == "38.0.4 None\n"


def test_x25519_keys_still_work_and_post_quantum_and_token_ones_are_refused_in_one_line(pq_identity, identity):
    printed = run_old(
        "import io, sys\n"
        "from consentbox.crypto import UnsupportedKey, parse_identity, parse_recipient, encrypt, decrypt\n"
        "x25519 = parse_identity(sys.argv[2])\n"
        "sealed = io.BytesIO(); encrypt(io.BytesIO(b'notes'), sealed, [x25519.recipient])\n"
        "opened = io.BytesIO(); decrypt(io.BytesIO(sealed.getvalue()), opened, [x25519])\n"
        "print(opened.getvalue().decode())\n"
        "for parse, text in ((parse_recipient, sys.argv[1]), (parse_identity, sys.argv[3]),\n"
        "                    (parse_recipient, sys.argv[4])):\n"
        "    try:\n"
        "        parse(text)\n"
        "    except UnsupportedKey as error:\n"
        "        print(error)\n",
        pq_identity.recipient.to_string(), identity.to_string(), pq_identity.to_string(),
        bech32.encode("age1tag", token_point()),
    )
    refusal = "keys need cryptography 47 or later, which has HPKE and ML-KEM; this is cryptography 38.0.4"
    assert printed.splitlines() == ["notes", f"mlkem768x25519 {refusal}", f"mlkem768x25519 {refusal}",
                                    f"p256tag {refusal}"]


def test_a_post_quantum_bundle_is_refused_as_invalid_and_says_why(pq_identity, other_pq_identity):
    key = OrgSigningKey.generate(secret=bytes(range(64, 96)))
    data = seal(Bundle(1, 1_790_000_000, (pq_identity.recipient, other_pq_identity.recipient), Policy()), key)
    printed = run_old(
        "import sys\n"
        "from consentbox.core.provisioning import Refused\n"
        "from consentbox.crypto.signing import OrgPublicKey\n"
        "from consentbox.provisioning.bundle import open_sealed\n"
        "try:\n"
        "    open_sealed(bytes.fromhex(sys.argv[1]), OrgPublicKey.parse(sys.argv[2]))\n"
        "except Refused as refused:\n"
        "    print(refused.reason.name, refused)\n",
        data.hex(), key.public_key.to_string(),
    )
    assert printed == ("INVALID invalid contents: recipients[0]: mlkem768x25519 keys need cryptography 47 or later, "
                       "which has HPKE and ML-KEM; this is cryptography 38.0.4\n"), json.dumps(printed)


def test_the_provisioning_job_refuses_a_post_quantum_stick_and_keeps_the_installed_bundle(tmp_path, identity,
                                                                                         pq_identity):
    """`consentbox provision` as the box's udev-started job runs it, under cryptography 38.0.4."""
    key = OrgSigningKey.generate(secret=bytes(range(64, 96)))
    (tmp_path / "org.pub").write_text(key.public_key.to_string() + "\n")
    (tmp_path / "card").mkdir()
    config = tmp_path / "config.toml"
    config.write_text(f'[card]\npath = "{tmp_path / "card"}"\nrequire_mount = false\n'
                      f'[box]\nstate_dir = "{tmp_path / "state"}"\n[keys]\norg_key = "{tmp_path / "org.pub"}"\n')
    consentbox = OLD_PYTHON.parent / "consentbox"

    def provision(version: int, recipients: tuple) -> subprocess.CompletedProcess[str]:
        stick = tmp_path / f"stick{version}"
        stick.mkdir()
        (stick / f"consentbox-v{version}.cbundle").write_bytes(
            seal(Bundle(version, 1_790_000_000, recipients, Policy()), key))
        return subprocess.run([str(consentbox), "provision", "--config", str(config), str(stick)],
                              capture_output=True, text=True, timeout=120)

    assert provision(1, (identity.recipient,)).returncode == 0
    installed = (tmp_path / "state" / INSTALLED_BUNDLE).read_bytes()
    refused = provision(2, (pq_identity.recipient,))
    assert (refused.returncode, refused.stderr) == (
        2, "consentbox: provisioning refused (code 4): invalid contents: recipients[0]: mlkem768x25519 keys need "
           "cryptography 47 or later, which has HPKE and ML-KEM; this is cryptography 38.0.4\n")
    assert (tmp_path / "state" / INSTALLED_BUNDLE).read_bytes() == installed, "the box keeps the keys it had"
