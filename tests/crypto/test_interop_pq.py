"""Our post-quantum and tag files against typage (npm's age-encryption 0.3.1, by age's author), both ways.

Debian's age 1.1.1 (test_interop.py) predates mlkem768x25519 and p256tag; typage has both. `make test` (or
`make vectors`) installs it in .cache/typage as tests/crypto/typage/package-lock.json pins it, and
tests/crypto/typage/cli.mjs runs it with node. Where typage 0.3.1 cannot answer, the spec (C2SP age.md) does:
it has no p256tag identity (a tag's key lives on a token), so tag stanzas, ours and typage's, are opened
here with cryptography's HPKE and a software P-256 key; and it does not refuse to mix post-quantum and
classic recipients in one file, which we do.
"""

from __future__ import annotations

import hashlib
import hmac
import io
import json
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hpke
from cryptography.hazmat.primitives.asymmetric import ec

from consentbox.crypto import (
    IncompatibleRecipients,
    MLKEM768X25519Identity,
    NoIdentityMatch,
    P256TagRecipient,
    UnsupportedKey,
    parse_identity,
    parse_recipient,
)
from consentbox.crypto.format import Stanza, decode_base64, read_header
from tests.conftest import required_tool
from tests.crypto.test_interop import CHUNK, SIZES, _ours_decrypted, _ours_encrypted, _plaintext
from tests.support.tokens import token_key, token_point

TYPAGE = Path(__file__).parent / "typage"
INSTALLED = Path(__file__).resolve().parents[2] / ".cache" / "typage"
VERSION = json.loads((TYPAGE / "package.json").read_text())["dependencies"]["age-encryption"]

TAG_INFO = b"age-encryption.org/p256tag"
# The examples of C2SP age.md ("The tagged recipient types").
SPEC_TAG_RECIPIENT = "age1tag1qt8lw0ual6avlwmwatk888yqnmdamm7xfd0wak53ut6elz5c4swx2yqdj4e"
SPEC_TAGPQ_RECIPIENT = (
    "age1tagpq1m3e4wvp6hzcrn9exhy0ae3xfx2sjymp594k3tg7j4dpmj922we65vtnmrt2pyallax8669zqkr2pmfchptr4n38kug2xmc"
    "mp3adk2lnjqu00x5kxz5pvhmrltvfh9wuq973pcx35cnq8syn9qd3tzpehgztl4xpzr3tpd67g8af9trnjpc05gh7wu536aq4qt2y8zh"
    "sm4tvrfpsfl36qs5fpzysnk3sp9w77qzeg49357xex40v4s2lvt620swyys7u8yxdcnu4rkkwxdmt55gsuc3h5c5swahnegjgqwc60hn"
    "085ec3sjztwm45l44y3j2at9t6v9zra4ek3kek6waecqm98yaxl37w0d2zra626nz63jdm5sg59w7lyptw83zm6fntd8d0x03a9z6h9p"
    "rfgpygzar6zrxjcrt4cdctk2mhf95s4a6v4zklfd49xhpsaeujm57thx2x3e3hwzc86ftfhmq5mkxxz3d6r8ws24xj4qfn73eyezg2wy"
    "094e3why592pghz27ruq3vkyegrv80eftnw9wqzwgvnwyseaus0yt84fylzrpzp6x2fguxuqjmgudr8xd33qm30evdpxd3jvjg8qh4q6"
    "0kyq80jgff369k7nrepdc38grd2dava520excqp0ey0x39khx8ry03yffcatgv84fsx5j49djpapedsy693zute5xv5g2ewzrlj5se7a"
    "kvkc4g4vmzhputpq8eyj9wz5dz6qtn7g3cfpd95nahw4ytspan0feyye04dcylv24ege7zkaj004gjwcxqxfqu2quawa83sx452jqjn8"
    "t48czp0xspwgnmvjyhttzzy6nhq8xzkdwnvsfefkwva6asrqc93zjn4rly5gnlv93xy3uzmr39szvjnf63426qzyeyvguc4vdcquwgsx"
    "gq236afcpqz866ny4tn7ckc0umefj242rt5vtvwqzzrvfev2mpvqcufp9pqvefyv4ftyuhgausfzuaadsczeykmft5wv3frzgrcp9ztr"
    "93h478ke4t86spp2uhyjkj73mp9g92ddk2fpv7v3njzsqgwhq3789sqrgkskehn0zjscckhwftyq4vet7vrlx2hs5kd9cwnq6t0djffh"
    "h3zquh4j3p0yaj9z2rc9wykg0usqw7983rrgur9jg8rnnqypwcz2lyclnnc705fc5g3an93ps60q6mxqp85u0ewtxdjlqcks84yduft0"
    "a0g6e7naew3v9u2d08knarvajn8q3gq9pgxde3s7nx94lus48wwvw2xjm7k82tvylec2393jdsuvch2xpe77w8hpv9nvsxfsrs270njp"
    "mfvpmgyk2cffl9tjp3qqcc4dfkf5rme2dg0x7ew8g39www5smm705q5da4eqvnqwrkavtq6xje9ss38hnkglz4eddz8f5qruvqmq2ff9"
    "l22gwkv8h432rdkysy0grkul8e2fedvkyyapfxt760udcgu92m54wl9yavmj4ga3ph9r5n99cjrq6wj5v33x33fe5vkjvfwnnt40wuv2"
    "hyexc9f4ylyqv9ldqq9epd4yuv8vrsfx2qy2kqz08kqhnzspy6s0x8fa5c2xkg5y2q0rvz4vnk7rp0acg6eksc3t7cxnn8y7glkjsqja"
    "3p56uz6vvhcw55d3ysad0hvsqxpjnc7svenf2gc5xn5kyr0et2vvyruxlnpqcdpqh9pzplumy5yzjxftyzh9ujfw0jq7ee60zx2x23p0"
    "jzyh9dvmly8p9h9ysptlqu7kwnejd65dnr75a0np2fvke8xen38r57w6z3wz3mycjmmn267wwxndfh9jdps7uxtct2wwfgamkpa5ap8s"
    "96lhfjztpwcm6fguhphu38yunu2v4vz3syzrvgwtqpemkewzp766nyu6texxvjlaemnhyyqutkcy6a42vqfsz49rw5wr4gt70r4vdaas"
    "ehqjg46fnyts4sthrxadfllha3avu49wsj2c4jx"
)

Typage = Callable[..., bytes]


@pytest.fixture(scope="session")
def typage() -> Typage:
    """`typage(command, *keys, stdin=b"")` runs cli.mjs (encrypt, decrypt, keygen-pq) and returns its stdout."""
    node = required_tool("node")
    package = INSTALLED / "node_modules" / "age-encryption" / "package.json"
    if not package.exists() or json.loads(package.read_text())["version"] != VERSION:
        pytest.fail(f"typage (age-encryption {VERSION}) is not installed in {INSTALLED}: run `make vectors` "
                    "(`make test` does)")

    def run(command: str, *keys: str, stdin: bytes = b"") -> bytes:
        done = subprocess.run([node, TYPAGE / "cli.mjs", INSTALLED, command, *keys], input=stdin,
                              capture_output=True, check=False)
        assert done.returncode == 0, done.stderr.decode(errors="replace")
        return done.stdout

    return run


@pytest.fixture(scope="session")
def pq_identity() -> MLKEM768X25519Identity:
    """A fixed post-quantum key, so that failures reproduce."""
    return MLKEM768X25519Identity(bytes(range(32)))


def _b64(text: str) -> bytes:
    data = decode_base64(text)
    assert data is not None, f"{text!r} is not canonical unpadded base64"
    return data


def _stanzas(file: bytes) -> tuple[Stanza, ...]:
    return read_header(io.BytesIO(file))[0].stanzas


def _shapes(file: bytes) -> list[tuple[str, list[int], int]]:
    """Each stanza's type, its arguments' decoded lengths and its body's length."""
    return [(stanza.type, [len(_b64(arg)) for arg in stanza.args], len(stanza.body)) for stanza in _stanzas(file)]


def _tag_key() -> tuple[ec.EllipticCurvePrivateKey, P256TagRecipient]:
    """A software P-256 key standing in for a token's, and its recipient."""
    key = token_key()
    return key, P256TagRecipient(token_point(key))


class _SpecTagIdentity:
    """A token's side of p256tag as C2SP age.md gives it, computed here (not with hpke_keys), for our reader.

    Like a token, it passes over a stanza whose tag is another key's.
    """

    def __init__(self, key: ec.EllipticCurvePrivateKey) -> None:
        self.key = key
        self.point = token_point(key)

    def unwrap(self, stanza: Stanza) -> bytes | None:
        if stanza.type != "p256tag":
            return None
        assert len(stanza.args) == 2, "p256tag stanzas have two arguments after the type"
        tag, enc = (_b64(arg) for arg in stanza.args)
        assert len(enc) == 65 and enc[0] == 4, "enc is an uncompressed P-256 point"
        # HKDF-Extract(salt, ikm) is HMAC-SHA-256 keyed with the salt.
        assert len(tag) == 4 and len(stanza.body) == 32
        if tag != hmac.digest(TAG_INFO, enc + hashlib.sha256(self.point).digest()[:4], "sha256")[:4]:
            return None
        suite = hpke.Suite(hpke.KEM.P256, hpke.KDF.HKDF_SHA256, hpke.AEAD.CHACHA20_POLY1305)
        file_key = suite.decrypt(enc + stanza.body, self.key, info=TAG_INFO)
        assert len(file_key) == 16
        return file_key


@pytest.mark.parametrize("size", SIZES)
def test_typage_decrypts_our_pq_files(size, typage, pq_identity):
    plaintext = _plaintext(size)
    encrypted = _ours_encrypted(plaintext, [pq_identity.recipient])

    assert typage("decrypt", pq_identity.to_string(), stdin=encrypted) == plaintext


def test_typage_decrypts_our_pq_file_with_each_of_several_recipients(typage):
    identities = [MLKEM768X25519Identity.generate() for _ in range(3)]
    plaintext = _plaintext(2 * CHUNK + 5)
    encrypted = _ours_encrypted(plaintext, [identity.recipient for identity in identities])

    for identity in identities:
        assert typage("decrypt", identity.to_string(), stdin=encrypted) == plaintext


@pytest.mark.parametrize("size", SIZES)
def test_we_decrypt_typage_pq_files(size, typage, pq_identity):
    plaintext = _plaintext(size)
    encrypted = typage("encrypt", pq_identity.recipient.to_string(), stdin=plaintext)

    assert _ours_decrypted(encrypted, [pq_identity]) == plaintext


def test_we_decrypt_with_an_identity_typage_generated(typage, pq_identity):
    # The same seed must give the same ML-KEM-768 and X25519 keys in both implementations.
    secret, public = typage("keygen-pq").decode().split()
    identity = parse_identity(secret)
    plaintext = _plaintext(CHUNK + 99)
    encrypted = typage("encrypt", public, pq_identity.recipient.to_string(), stdin=plaintext)

    assert identity.to_string() == secret
    assert identity.recipient.to_string() == public and parse_recipient(public) == identity.recipient
    assert _ours_decrypted(encrypted, [identity]) == plaintext
    with pytest.raises(NoIdentityMatch):
        _ours_decrypted(encrypted, [MLKEM768X25519Identity.generate()])


def test_our_stanzas_have_the_shape_of_typage_ones(typage, pq_identity):
    # The arguments after the type, decoded: the ML-KEM ciphertext and X25519 share; the tag and the P-256 share.
    for recipient, args in ((pq_identity.recipient, [1120]), (_tag_key()[1], [4, 65])):
        theirs = _shapes(typage("encrypt", recipient.to_string()))
        assert _shapes(_ours_encrypted(b"", [recipient])) == theirs == [(recipient.STANZA_TYPE, args, 32)]


def test_our_p256tag_file_opens_as_the_spec_says():
    key, recipient = _tag_key()
    plaintext = _plaintext(2 * CHUNK + 5)
    encrypted = _ours_encrypted(plaintext, [_tag_key()[1], recipient])

    assert parse_recipient(recipient.to_string()) == recipient
    assert _ours_decrypted(encrypted, [_SpecTagIdentity(key)]) == plaintext


def test_typage_p256tag_file_opens_as_the_spec_says(typage):
    key, recipient = _tag_key()
    plaintext = _plaintext(CHUNK + 1)
    encrypted = typage("encrypt", recipient.to_string(), stdin=plaintext)

    assert _ours_decrypted(encrypted, [_SpecTagIdentity(key)]) == plaintext


def test_the_spec_tag_recipient_round_trips():
    recipient = parse_recipient(SPEC_TAG_RECIPIENT)

    assert isinstance(recipient, P256TagRecipient) and len(recipient.point) == 33
    assert recipient.to_string() == SPEC_TAG_RECIPIENT


def test_we_refuse_an_mlkem768p256tag_recipient_that_typage_encrypts_to(typage):
    assert _shapes(typage("encrypt", SPEC_TAGPQ_RECIPIENT)) == [("mlkem768p256tag", [4, 1153], 32)]

    with pytest.raises(UnsupportedKey) as refused:
        parse_recipient(SPEC_TAGPQ_RECIPIENT)
    assert "mlkem768p256tag" in str(refused.value) and "\n" not in str(refused.value)


def test_we_refuse_to_mix_post_quantum_and_classic_recipients(identity, pq_identity):
    for classic in (identity.recipient, parse_recipient(SPEC_TAG_RECIPIENT)):
        with pytest.raises(IncompatibleRecipients, match="^incompatible recipients"):
            _ours_encrypted(b"", [pq_identity.recipient, classic])


def test_typage_mixes_them_and_we_read_its_file_with_either_key(typage, identity, pq_identity):
    # typage 0.3.1 has no such check (age.md: a file SHOULD NOT mix them); a later version may refuse here.
    plaintext = _plaintext(CHUNK)
    encrypted = typage("encrypt", pq_identity.recipient.to_string(), identity.recipient.to_string(), stdin=plaintext)

    assert [stanza.type for stanza in _stanzas(encrypted)] == ["mlkem768x25519", "X25519"]
    assert _ours_decrypted(encrypted, [identity]) == plaintext
    assert _ours_decrypted(encrypted, [pq_identity]) == plaintext
