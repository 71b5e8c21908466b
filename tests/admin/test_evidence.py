"""The attacks of issue 15 on a card's evidence, each against `consentbox-admin export` as a supervisor runs it.

The card is recorded by the real box (`assemble_box`, as `consentbox simulate` assembles it: mock pins,
a directory as the card, virtual time, the position signal as its microphone), whose device key the
supervisor's workstation trusts (`trust-box`). Then an attacker with the card, and the supervisors'
public keys (or, where said, a supervisor's private key), changes it; the export must refuse the session
(exit 1, one line naming the file) or, for a power cut, deliver only what the box sealed (exit 3), and
`--unverified` must still export it, marked. `consent-report` is held to the same verifier in
tests/admin/test_ledger_cli.py.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import wave
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from consentbox.admin.boxes import TrustedBox, accepted_boxes, trust_box
from consentbox.admin.evidence import CardFiles, Verdict, verify_session
from consentbox.core.events import ConsentButton
from consentbox.core.policy import OnWithdrawal, Policy
from consentbox.core.reasons import EndReason
from consentbox.crypto import X25519Identity, decrypt, encrypt
from consentbox.crypto.signing import DeviceSigningKey
from consentbox.ledger import Kind
from consentbox.ledger.entry import Entry
from consentbox.ledger.extract import build_extract, decrypt_extract, encrypt_extract, read_extract
from consentbox.recording.manifest import Manifest, extract_name, manifest_name, segment_name
from consentbox.recording.seal import chunk_frames
from consentbox.recording.wav import streaming_header
from consentbox.state.files import DEVICE_KEY
from consentbox.testing.signal import position_pcm
from tests.support.simulated import BoxRig

BIN = Path(sys.executable).parent
#: 1 MiB segments: a new one every ~10.9 s of audio at 48 kHz 16-bit mono.
POLICY = Policy(segment_bytes=1 << 20)
KEEP = dataclasses.replace(POLICY, on_withdrawal=OnWithdrawal.KEEP)
CHUNK_FRAMES = 64 * 1024 // POLICY.frame_bytes
TIMEOUT = 120  # seconds an admin command may take here: a hang fails instead of stalling the run


@pytest.fixture
def box(tmp_path: Path, identity: X25519Identity) -> Iterator[BoxRig]:
    run = BoxRig(tmp_path / "box", identity.recipient, POLICY)
    yield run
    run.box.shut_down()


@pytest.fixture
def boxes(tmp_path: Path, box: BoxRig) -> Path:
    """The supervisor's trusted boxes file: IT pinned the box's device key."""
    path = tmp_path / "boxes"
    subprocess.run([BIN / "consentbox-admin", "trust-box", box.device_key, "Room 3", "--boxes", path], check=True,
                   capture_output=True)
    return path


@dataclasses.dataclass(frozen=True)
class Exported:
    status: int
    lines: list[str]
    reports: dict[str, dict[str, Any]]
    audio: dict[str, bytes]


def export(key_file: Path, card: Path, out: Path, *options: str | Path) -> Exported:
    done = subprocess.run([BIN / "consentbox-admin", "export", "-i", key_file, "--out", out, *options, card],
                          capture_output=True, text=True, timeout=TIMEOUT)
    reports = {path.stem: json.loads(path.read_text()) for path in sorted(out.glob("*.json"))}
    audio = {}
    for path in sorted(out.glob("*.wav")):
        with wave.open(str(path)) as opened:
            audio[path.stem] = opened.readframes(opened.getnframes())
    return Exported(done.returncode, done.stderr.splitlines(), reports, audio)


def refusal(exported: Exported, session: str) -> str:
    """The line that refused `session`."""
    [line] = [line for line in exported.lines if line.startswith(f"{session}: not exported: ")]
    return line.removeprefix(f"{session}: not exported: ")


def assert_exported_unverified(key_file: Path, card: Path, out: Path, *sessions: str) -> Exported:
    """`--unverified` exports each of `sessions`, each marked, with one warning on stderr."""
    exported = export(key_file, card, out, "--unverified")
    assert exported.lines[0].startswith("consentbox-admin: warning: --unverified: no file is checked")
    for session in sessions:
        [line] = [line for line in exported.lines if line.startswith(f"{session}: recorded ")]
        assert line.endswith(", UNVERIFIED: not checked against the box's seals")
        assert exported.reports[session]["export"]["verified"] is False
        assert exported.reports[session]["export"]["box"] is None
    return exported


def signal(frames: int) -> bytes:
    return position_pcm(0, frames, POLICY)


def _wav(audio: bytes) -> bytes:
    """A segment's plaintext as the box writes it: a streaming WAV header, then the audio."""
    return streaming_header(POLICY) + audio


# -- the box's own card ---------------------------------------------------------------------------------


def test_the_box_s_own_card_exports_verified_and_complete(box, boxes, key_file, tmp_path):
    session = box.record(25.0)  # three segments
    exported = export(key_file, box.card, tmp_path / "out", "--boxes", boxes)
    assert exported.status == 0, exported.lines
    length = round(box.microphone.frames_read / POLICY.rate)  # the end's hold records too
    assert exported.lines == [f"{session}: recorded {_started(exported, session)}, 0:00:{length} exported, "
                              "end: ended"]
    report = exported.reports[session]["export"]
    assert report["verified"] and report["box"] == {"label": "Room 3", "device_key": box.device_key}
    assert [s["seal"]["verdict"] for s in report["segments"]] == ["whole"] * 3
    assert exported.audio[session] == signal(box.microphone.frames_read)

    evidence = verify_session(box.card, session, [_identity()], accepted_boxes(None, boxes))
    assert evidence.complete and evidence.box == "Room 3"
    assert [(f.name, f.verdict) for f in evidence.files] == [(manifest_name(session), Verdict.WHOLE)] + [
        (segment_name(session, n), Verdict.WHOLE) for n in range(3)]


def _started(exported: Exported, session: str) -> str:
    return exported.reports[session]["started"][:16] + exported.reports[session]["started"][-6:]


def _identity() -> X25519Identity:
    return X25519Identity.generate(secret=bytes(range(32)))  # tests/conftest.py's `identity`


# -- splices with the card alone ----------------------------------------------------------------------------


def test_splice_a_segment_of_another_session_with_cp(box, boxes, key_file, tmp_path):
    a, b = box.record(5.0), box.record(5.0)  # one segment each
    shutil.copyfile(box.card / segment_name(b, 0), box.card / segment_name(a, 1))  # cp B.000.wav.age A.001.wav.age
    exported = export(key_file, box.card, tmp_path / "out", "--boxes", boxes)
    assert exported.status == 1
    assert refusal(exported, a) == (f"refused: {segment_name(a, 1)}: no seal of the box names segment 1: the box "
                                    "did not write this file (an extra or forged segment)")
    assert sorted(exported.reports) == [b]  # the other session is unharmed; nothing of A is written
    unverified = assert_exported_unverified(key_file, box.card, tmp_path / "unverified", a, b)
    assert len(unverified.audio[a]) > len(unverified.audio[b])  # B's audio inside A's, as before seals


def test_append_an_extra_segment_of_forged_audio(box, boxes, identity, key_file, tmp_path):
    session = box.record(15.0)  # segments 000 and 001
    # Any audio, encrypted to the supervisor's public key: all age needs.
    (box.card / segment_name(session, 2)).write_bytes(_encrypted(_wav(signal(POLICY.rate)), identity))
    exported = export(key_file, box.card, tmp_path / "out", "--boxes", boxes)
    assert exported.status == 1
    assert refusal(exported, session) == (f"refused: {segment_name(session, 2)}: no seal of the box names segment "
                                          "2: the box did not write this file (an extra or forged segment)")
    unverified = assert_exported_unverified(key_file, box.card, tmp_path / "unverified", session)
    assert len(unverified.audio[session]) // POLICY.frame_bytes == box.microphone.frames_read + POLICY.rate


def _exchange(one: Path, other: Path) -> None:
    kept = one.read_bytes()
    one.write_bytes(other.read_bytes())
    other.write_bytes(kept)


def _relisted(card: Path, session: str, identity: X25519Identity) -> None:
    """The session's manifest rewritten, by a supervisor, to list the segment files now on the card (their
    plaintext's size and SHA-256), so that the manifest's digests no longer give them away."""
    path = card / manifest_name(session)
    values = json.loads(_decrypted(path.read_bytes(), identity))
    for listed in values["segments"]:
        plaintext = _decrypted((card / listed["name"]).read_bytes(), identity)
        listed.update(plaintext_bytes=len(plaintext), sha256=hashlib.sha256(plaintext).hexdigest())
    path.write_bytes(_encrypted(Manifest.from_mapping(values).to_json(), identity))


def _decrypted(data: bytes, identity: X25519Identity) -> bytes:
    plain = io.BytesIO()
    decrypt(io.BytesIO(data), plain, [identity])
    return plain.getvalue()


def _encrypted(data: bytes, identity: X25519Identity) -> bytes:
    sealed = io.BytesIO()
    encrypt(io.BytesIO(data), sealed, [identity.recipient])
    return sealed.getvalue()


def test_reorder_two_segments(box, boxes, identity, key_file, tmp_path):
    session = box.record(25.0)
    first, second = box.card / segment_name(session, 0), box.card / segment_name(session, 1)
    _exchange(first, second)
    _relisted(box.card, session, identity)
    exported = export(key_file, box.card, tmp_path / "out", "--boxes", boxes)
    assert exported.status == 1 and exported.reports == {}
    assert refusal(exported, session).startswith(f"refused: {first.name}: its first ")
    assert refusal(exported, session).endswith(" (and 2 more file(s))")  # the second segment, the manifest
    unverified = assert_exported_unverified(key_file, box.card, tmp_path / "unverified", session)
    assert unverified.audio[session] != signal(box.microphone.frames_read)  # what the attack gives, without seals


def test_swap_segments_between_sessions(box, boxes, identity, key_file, tmp_path):
    a, b = box.record(15.0), box.record(15.0)
    ours, theirs = box.card / segment_name(a, 1), box.card / segment_name(b, 1)
    _exchange(ours, theirs)
    for session in (a, b):
        _relisted(box.card, session, identity)
    exported = export(key_file, box.card, tmp_path / "out", "--boxes", boxes)
    assert exported.status == 1 and exported.reports == {}
    assert refusal(exported, a).startswith(f"refused: {ours.name}: its first ")
    assert refusal(exported, b).startswith(f"refused: {theirs.name}: its first ")
    assert_exported_unverified(key_file, box.card, tmp_path / "unverified", a, b)


def test_cut_a_segment_short_or_make_it_longer(box, boxes, key_file, tmp_path):
    session = box.record(15.0)
    last = box.card / segment_name(session, 1)
    whole = last.read_bytes()
    last.write_bytes(whole[:len(whole) - 65_552])  # its final chunk cut off, at a chunk boundary
    cut = export(key_file, box.card, tmp_path / "cut", "--boxes", boxes)
    assert cut.status == 1
    assert refusal(cut, session) == (f"refused: {last.name}: shorter than the box sealed it ({len(whole) - 65_552} "
                                     f"bytes, sealed {len(whole)}): it was cut")
    assert_exported_unverified(key_file, box.card, tmp_path / "unverified", session)
    last.write_bytes(whole + whole[-65_552:])
    longer = export(key_file, box.card, tmp_path / "longer", "--boxes", boxes)
    assert longer.status == 1
    assert refusal(longer, session) == (f"refused: {last.name}: longer than the box sealed it ({len(whole) + 65_552} "
                                        f"bytes, sealed {len(whole)}): bytes were appended")


# -- forgery: sessions the trusted box did not make ----------------------------------------------------


def test_a_session_made_on_another_box_is_refused_as_from_an_unknown_box(box, boxes, identity, key_file, tmp_path):
    ours = box.record(5.0)
    other = BoxRig(tmp_path / "other", identity.recipient, POLICY)  # its own state: its own device key
    forged = other.record(5.0)
    other.box.shut_down()
    for path in other.card.glob(f"{forged}.*"):
        shutil.copyfile(path, box.card / path.name)
    exported = export(key_file, box.card, tmp_path / "out", "--boxes", boxes)
    assert exported.status == 1 and sorted(exported.reports) == [ours]
    assert refusal(exported, forged) == (
        f"card from an unknown box: device key {other.device_key} is not in {boxes}; check it with IT, then "
        f"`consentbox-admin trust-box {other.device_key} LABEL --boxes {boxes}`, or pass --device-key")
    pinned = export(key_file, box.card, tmp_path / "pinned", "--device-key", box.device_key)
    assert refusal(pinned, forged) == (f"card from another box: device key {other.device_key} is not the key given "
                                       f"with --device-key ({box.device_key})")
    assert sorted(pinned.reports) == [ours]
    assert_exported_unverified(key_file, box.card, tmp_path / "unverified", ours, forged)


def test_a_session_made_with_consentbox_simulate_is_refused(box, boxes, identity, key_file, tmp_path):
    microphone = tmp_path / "microphone.wav"
    with wave.open(str(microphone), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(POLICY.rate)
        out.writeframes(signal(20 * POLICY.rate))
    script = tmp_path / "forgery.txt"
    script.write_text("0 tap record\n1 tap consent 1\n2 tap consent 2\n3 hold record 1.5\n12 hold record 2.5\n20 end\n")
    # Anyone with the supervisor's public key can do this: no state, so a device key of its own.
    subprocess.run([BIN / "consentbox", "simulate", "--script", script, "--audio", microphone, "--card", box.card,
                    "--recipient", identity.recipient.to_string()], check=True, capture_output=True, timeout=TIMEOUT)
    [forged] = {path.name[:16] for path in box.card.glob("*.manifest.age")}
    exported = export(key_file, box.card, tmp_path / "out", "--boxes", boxes)
    assert exported.status == 1 and exported.reports == {}
    assert refusal(exported, forged).startswith("card from an unknown box: device key consentbox-device-ed25519:")
    assert_exported_unverified(key_file, box.card, tmp_path / "unverified", forged)


def test_the_extract_replaced_by_one_another_box_signed(box, boxes, identity, key_file, tmp_path):
    """A forger re-signs the session's entries, seals and all, with a key of their own: every file matches
    the seals, but the box that signed them is not the trusted one."""
    session = box.record(15.0)
    path = box.card / extract_name(session)
    genuine = read_extract(decrypt_extract(io.BytesIO(path.read_bytes()), [identity], "extract"), "extract")
    forger = DeviceSigningKey.generate()
    entries, prev = [], "00" * 32
    boot = Entry.create(forger, seq=0, kind=Kind.BOOT, wall=genuine.boot.wall, mono=0.0, session=None,
                        fields={"device_key": forger.public_key, "version": genuine.boot.fields["version"]}, prev=prev)
    prev = boot.digest
    for entry in genuine.entries:
        entries.append(Entry.create(forger, seq=entry.seq, kind=entry.kind, wall=entry.wall, mono=entry.mono,
                                    session=entry.session, fields=entry.fields, prev=prev))
        prev = entries[-1].digest
    path.write_bytes(encrypt_extract(build_extract(forger, boot, entries), [identity.recipient]))
    exported = export(key_file, box.card, tmp_path / "out", "--boxes", boxes)
    assert exported.status == 1 and exported.reports == {}
    assert refusal(exported, session).startswith(f"card from an unknown box: device key {forger.public_key} is not "
                                                 f"in {boxes}")


# -- erasing a withdrawal (on_withdrawal = keep) ------------------------------------------------------------


@pytest.fixture
def withdrawn(tmp_path: Path, identity: X25519Identity) -> Iterator[tuple[BoxRig, str]]:
    """A box that keeps a withdrawn recording, and a session withdrawn 20 s into recording."""
    run = BoxRig(tmp_path / "keeping-box", identity.recipient, KEEP)
    session = run.start_recording()
    run.wait(20.0)
    run.hold(ConsentButton(2), 2.5)
    assert [entry["end"] for entry in run.timeline if entry["event"] == "session"] == ["withdrawn"]
    yield run, session
    run.box.shut_down()


def _trusted(tmp_path: Path, run: BoxRig) -> Path:
    path = tmp_path / "boxes"
    trust_box(path, TrustedBox(DeviceSigningKey.load(run.state / DEVICE_KEY).public_key, "Room 3"))
    return path


def test_a_kept_withdrawal_exports_marked_withdrawn(withdrawn, key_file, tmp_path):
    run, session = withdrawn
    exported = export(key_file, run.card, tmp_path / "out", "--boxes", _trusted(tmp_path, run))
    assert exported.status == 0, exported.lines
    assert exported.lines[0].endswith("exported, end: withdrawn, consent was withdrawn")


def _without_the_withdrawal(path: Path, identity: X25519Identity) -> bytes:
    """The extract at `path` cut before its withdrawal entry, its signed trailer kept, encrypted again."""
    lines = decrypt_extract(io.BytesIO(path.read_bytes()), [identity], "extract").splitlines(keepends=True)
    cut = next(n for n, line in enumerate(lines) if b'"kind":"withdrawal"' in line)
    return encrypt_extract(b"".join(lines[:cut] + lines[-1:]), [identity.recipient])


def _interrupted_manifest(path: Path, identity: X25519Identity) -> bytes:
    """The manifest at `path` rewritten as start-up recovery would write it after a power cut."""
    values = json.loads(_decrypted(path.read_bytes(), identity))
    values.update(end_reason=EndReason.INTERRUPTED.value, withdrawn=False)
    return _encrypted(Manifest.from_mapping(values).to_json(), identity)


@pytest.mark.parametrize("erased", ["extract cut", "interrupted manifest", "both"])
def test_erase_a_kept_withdrawal(withdrawn, identity, key_file, tmp_path, erased):
    run, session = withdrawn
    extract, manifest = run.card / extract_name(session), run.card / manifest_name(session)
    if erased != "interrupted manifest":
        extract.write_bytes(_without_the_withdrawal(extract, identity))
    if erased != "extract cut":
        manifest.write_bytes(_interrupted_manifest(manifest, identity))
    exported = export(key_file, run.card, tmp_path / "out", "--boxes", _trusted(tmp_path, run))
    assert exported.status == 1 and exported.reports == {}
    if erased == "interrupted manifest":
        assert refusal(exported, session) == (f"refused: {manifest.name}: the manifest is not the one the box last "
                                              "wrote: it was replaced or edited")
    else:
        assert refusal(exported, session).startswith(f"{extract}: the trailer counts ")
        assert refusal(exported, session).endswith(f" lines, the extract holds {_lines(extract, identity)}: a line "
                                                   "was removed or added")
    assert_exported_unverified(key_file, run.card, tmp_path / "unverified", session)


def _lines(path: Path, identity: X25519Identity) -> int:
    """Lines before the trailer of the extract at `path`."""
    return len(decrypt_extract(io.BytesIO(path.read_bytes()), [identity], "extract").splitlines()) - 1


# -- rollback: older versions put back ----------------------------------------------------------------------


def test_an_older_manifest_or_extract_put_back_after_the_session(box, boxes, key_file, tmp_path):
    session = box.start_recording()
    box.wait(12.0)  # segment 0 sealed, segment 1 begun
    older = {name: (box.card / name).read_bytes() for name in (manifest_name(session), extract_name(session))}
    box.wait(13.0)  # segment 2 begun
    box.end()

    (box.card / manifest_name(session)).write_bytes(older[manifest_name(session)])
    exported = export(key_file, box.card, tmp_path / "manifest", "--boxes", boxes)
    assert exported.status == 1
    assert refusal(exported, session) == (f"refused: {manifest_name(session)}: an older version of the manifest "
                                          "than the box's last: it was put back (rolled back)")

    (box.card / extract_name(session)).write_bytes(older[extract_name(session)])
    exported = export(key_file, box.card, tmp_path / "both", "--boxes", boxes)
    assert exported.status == 1
    assert refusal(exported, session).startswith(f"refused: {segment_name(session, 2)}: no seal of the box names "
                                                 "segment 2")
    assert_exported_unverified(key_file, box.card, tmp_path / "unverified", session)


def test_a_rollback_with_the_same_files_is_never_exported_as_complete(box, boxes, key_file, tmp_path):
    """The limit the docs state: an older extract that names every file still verifies, but as what it
    was then, a session not yet ended: truncated, never complete."""
    session = box.start_recording()
    box.wait(24.0)  # all three segments begun
    older = {name: (box.card / name).read_bytes() for name in (manifest_name(session), extract_name(session))}
    box.wait(1.0)
    box.end()
    for name, data in older.items():
        (box.card / name).write_bytes(data)
    exported = export(key_file, box.card, tmp_path / "out", "--boxes", boxes)
    assert exported.status == 3
    assert "end: not recorded, TRUNCATED" in exported.lines[0]
    assert exported.reports[session]["export"]["frames"] < box.microphone.frames_read


# -- power cuts -----------------------------------------------------------------------------------------------


def _cut_power(root: Path, identity: X25519Identity, seconds: float, policy: Policy = POLICY) -> tuple[str, int]:
    """A box (state under `root`, card `root`/card) that loses its power `seconds` into recording a session: a
    child process records, then dies without a word. The session's id, and the frames the box captured."""
    said = root / "child"
    root.mkdir(parents=True, exist_ok=True)
    pid = os.fork()
    if pid == 0:
        try:
            run = BoxRig(root, identity.recipient, policy)
            session = run.start_recording()
            run.wait(seconds)
            said.write_text(json.dumps([session, run.microphone.frames_read]))
        finally:
            os._exit(0)  # no shutdown, no finalising: the power went
    _, status = os.waitpid(pid, 0)
    assert os.WIFEXITED(status) and said.exists(), "the recording child failed"
    session, frames = json.loads(said.read_text())
    return session, frames


def _trust(path: Path, state: Path) -> Path:
    trust_box(path, TrustedBox(DeviceSigningKey.load(state / DEVICE_KEY).public_key, "Room 3"))
    return path


def test_a_power_cut_exports_only_what_the_box_sealed_and_after_recovery_at_most_a_chunk_less(identity, key_file,
                                                                                             tmp_path):
    root = tmp_path / "box"
    session, captured = _cut_power(root, identity, 30.0, Policy())  # one segment; a checkpoint at 32 chunks
    boxes = _trust(tmp_path / "boxes", root / "state")
    card = root / "card"

    never_recovered = export(key_file, card, tmp_path / "unrecovered", "--boxes", boxes)
    assert never_recovered.status == 3, never_recovered.lines
    assert "end: not recorded, TRUNCATED" in never_recovered.lines[0]
    bound = chunk_frames(32, POLICY.frame_bytes)  # the checkpoint, ~22 s in: nothing after it
    assert never_recovered.audio[session] == signal(bound)
    assert captured - bound > 5 * POLICY.rate
    salvaged = export(key_file, card, tmp_path / "salvaged", "--unverified")  # more, but unbound
    assert len(salvaged.audio[session]) > len(never_recovered.audio[session])

    # The box starts again: recovery seals what the card holds, and ends the session as interrupted.
    BoxRig(root, identity.recipient, Policy()).box.shut_down()
    recovered = export(key_file, card, tmp_path / "recovered", "--boxes", boxes)
    assert recovered.status == 3, recovered.lines
    assert "end: interrupted, TRUNCATED" in recovered.lines[0]
    frames = len(recovered.audio[session]) // POLICY.frame_bytes
    assert recovered.audio[session] == signal(frames) and 0 <= captured - frames <= CHUNK_FRAMES


def test_a_young_segment_swapped_before_the_box_recovers_is_refused(box, boxes, identity, key_file, tmp_path):
    """A segment begun less than a checkpoint before a power cut is bound by its header's seal alone; the
    box's recovery then seals whatever the card holds, so every seal of it is checked, not the last."""
    other = box.record(5.0)
    root = tmp_path / "cut"
    shutil.copytree(box.state, root / "state")  # the same box, its power cut later
    shutil.copytree(box.card, root / "card")
    box.box.shut_down()
    session, _ = _cut_power(root, identity, 15.0)  # segment 1 is ~4 s old: no checkpoint yet
    young = root / "card" / segment_name(session, 1)
    young.write_bytes((root / "card" / segment_name(other, 0)).read_bytes())
    BoxRig(root, identity.recipient, POLICY).box.shut_down()  # recovery binds the swapped file as found
    exported = export(key_file, root / "card", tmp_path / "out", "--boxes", boxes)
    assert exported.status == 1 and sorted(exported.reports) == [other]
    assert refusal(exported, session).startswith(f"refused: {young.name}: its first ")
    files = CardFiles.read(root / "card")
    evidence = verify_session(root / "card", session, [identity], accepted_boxes(None, boxes), files=files)
    [failed] = evidence.failures
    assert failed.verdict is Verdict.MISMATCH and failed.seal is not None and not failed.seal.final
