"""Power cuts at any instant (issue 5, item 1): a recording killed at a random system call loses at most
one encrypted chunk, the card's manifest is always whole, and the box's next start ends the session.

Each trial forks a child that records one session as the box does (SessionFiles driven one ALSA period
at a time with the position signal, byte for byte what `GeneratedSource` gives; a 1 MiB segment size, so
the first interval's segment rotates) and SIGKILLs itself at the k-th call of os.write, os.fsync,
os.fdatasync or os.replace. Those calls are every step that touches a disk, so the kills land in chunk
writes, segment switches and manifest replaces alike; the first trials take k = 1, 2, … so that every
call is hit once, then k is drawn at random (a k past the last call lets the session end normally).
SIGKILL keeps what the kernel has cached, but a power cut need not, so the dying call leaves a random
part of what was not yet synced: a write keeps a random prefix of its data, a sync cuts its file back
to somewhere between its last synced size and its end. Kills at calls are not kills at random moments
(most of the time no call is under way), so the last trials die instead right after a random period
was handed over: those give the loss to expect from a power cut at a random moment of a recording.

After each kill, as the supervisor and the box would meet it:
- `consentbox-admin export` (the real command) exits 3 (truncated), or 0 if the card had the final
  manifest; the audio of each interval is frames [0, n) of the signal, n being all the frames the
  child had handed to SessionFiles.write (calls that returned) except in the last interval, which
  lacks at most one chunk (65,536 bytes of audio), and nothing at all if the kill was not in a chunk
  write (everything handed over before had been synced); the card's manifest decrypts and is the version
  being written or the one before it, and no temporary file is taken for a manifest;
- no 4 KiB run of the input is on the card or in the box's state directory;
- then recovery runs as at the next start (twice: the second finds nothing to do) and the export
  again gives the same audio, with the session ended `interrupted` and truncated (or as the box
  itself ended it, if the journal already held the final manifest).

What was measured (the trials, where the kills landed, the worst and median loss) is printed as figures
(run with -s to see them); docs/reliability.md quotes them, and the test fails where a quote differs
(bench/figures.py).
"""

from __future__ import annotations

import collections
import io
import json
import mmap
import multiprocessing
import os
import random
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
import wave
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from bench.figures import check_quoted
from consentbox.admin.export import export_card, read_manifest
from consentbox.core.policy import Policy
from consentbox.core.reasons import EndReason
from consentbox.crypto import X25519Identity, identity_file_text
from consentbox.hw.card import CardDirectory
from consentbox.recording import session as session_module
from consentbox.recording.journal import Journal, JournalError
from consentbox.recording.recovery import recover_interrupted
from consentbox.recording.session import SessionFiles
from consentbox.testing.signal import position_pcm
from tests.support.plaintext import files_holding, temp_directories
from tests.support.power_cuts import cut_power_at

ADMIN = str(Path(sys.executable).parent / "consentbox-admin")
POLICY = Policy(segment_bytes=1 << 20)  # 48 kHz 16-bit mono: a new segment every ~10.9 s of audio
PLAN = (12.0, 3.0)  # seconds of each capture interval, with a pause between
CALL_TRIALS = 170  # killed at a call
MOMENT_TRIALS = 60  # killed between calls, after a random period
WORKERS = 2  # the CI machine's cores
CHUNK = 64 * 1024
IDENTITY = X25519Identity.generate(secret=bytes(range(32)))
STARTED = datetime(2026, 5, 6, 14, 0, tzinfo=UTC)
PERIODS_IN = [-(-round(seconds * POLICY.rate) // POLICY.period_frames) for seconds in PLAN]  # per interval
SIGNAL = position_pcm(0, max(PERIODS_IN) * POLICY.period_frames, POLICY)
WRAPPED = ("write", "fsync", "fdatasync", "replace")
PHASES = ("create", "start", "write", "stop", "finalise")
PLACES = ("segment header", "audio chunk", "card manifest", "journal", "between calls")
NEVER = 1 << 62

# Slots of the memory the child shares with its parent (plain stores: no system call to count).
CALLS, PERIODS, PHASE, PLACE, IN_PROGRESS, INTERVALS, FRAMES = range(7)  # FRAMES: one slot per interval


@dataclass(frozen=True)
class Trial:
    number: int
    call: int  # the wrapped call to die at (1 is the first), or NEVER
    period: int  # the period to die after (1 is the first), or NEVER
    seed: int
    root: Path
    key_file: Path


@dataclass(frozen=True)
class Result:
    killed: bool
    at_a_moment: bool  # killed after a random period rather than at a call
    phase: str
    place: str
    lost_frames: int | None  # None when no audio had been handed over yet


def _place_of(name: str, args: tuple, card: Path) -> str:
    """What the call at hand was writing: a segment's header or a chunk, the card's manifest, the journal."""
    target = Path(args[1] if name == "replace" else os.readlink(f"/proc/self/fd/{args[0]}"))
    if target.name.endswith(".wav.age"):
        size = os.stat(target).st_size  # the header is written to an empty file, then synced
        return PLACES[0] if (size == 0 if name == "write" else size < 1024) else PLACES[1]
    # A replace names its file in an open directory (storage.atomic): the card's is the manifest.
    return PLACES[2] if card in (target, target.parent) or target.name.endswith(".manifest.age") else PLACES[3]


def _child(trial: Trial, card: Path, state: Path, shared: memoryview) -> None:
    """Record the session, dying where `trial` says; never returns."""
    try:
        real_write = os.write
        versions = os.open(trial.root / f"{trial.number:03d}" / "versions", os.O_WRONLY | os.O_CREAT | os.O_APPEND)

        def note_place(name: str, args: tuple) -> None:
            shared[PLACE] = PLACES.index(_place_of(name, args, card))

        real_write_manifest = session_module.write_manifest

        def write_manifest(card, manifest, recipients, random_bytes):
            real_write(versions, manifest.to_json() + b"\n")  # what the card may hold, for the parent
            return real_write_manifest(card, manifest, recipients, random_bytes)

        def journal_failed(error: JournalError) -> None:
            raise AssertionError(f"journal failed: {error}")

        journal = Journal(state, on_failure=journal_failed)
        session_module.write_manifest = write_manifest
        cut_power_at(trial.call, shared, rng=random.Random(trial.seed), names=WRAPPED, on_cut=note_place)
        _record(card, journal, shared, trial)
        os._exit(0)
    except BaseException:
        (trial.root / f"{trial.number:03d}" / "child-error").write_text(traceback.format_exc())
        os._exit(1)


def _record(card: Path, journal: Journal, shared: memoryview, trial: Trial) -> None:
    """One session, as the box drives SessionFiles: create, capture intervals period by period, end."""
    period, frame_bytes = POLICY.period_frames, POLICY.frame_bytes
    shared[PHASE] = PHASES.index("create")
    files = SessionFiles.create(card, _session_id(trial.number), [IDENTITY.recipient], POLICY, headcount=2,
                                consents=[(1, 2.0), (2, 3.0)], started=STARTED, journal=journal)
    offset = 6.0
    for interval, periods in enumerate(PERIODS_IN):
        shared[PHASE] = PHASES.index("start")
        shared[INTERVALS] = interval + 1
        files.start_interval(offset)
        shared[PHASE] = PHASES.index("write")
        frames = 0
        while frames < periods * period:
            shared[IN_PROGRESS] = period
            files.write(SIGNAL[frames * frame_bytes:(frames + period) * frame_bytes])
            frames += period
            shared[FRAMES + interval], shared[IN_PROGRESS] = frames, 0
            offset += POLICY.period_seconds
            shared[PERIODS] += 1
            if shared[PERIODS] == trial.period:
                shared[PLACE] = PLACES.index("between calls")
                os.kill(os.getpid(), signal.SIGKILL)
        shared[PHASE] = PHASES.index("stop")
        files.note_overruns(0)
        files.stop_interval(offset, frames)
        offset += 4.0
    shared[PHASE] = PHASES.index("finalise")
    files.finalise(EndReason.ENDED, offset, withdrawn=False)


def _session_id(number: int) -> str:
    return f"{number:016x}"


def _export(trial: Trial, card: Path, out: Path, *, command: bool) -> tuple[int, dict | None, bytes]:
    """Export the card, with `consentbox-admin export` or (quicker) the function it runs; returns the
    exit status, the session's report and its audio (if any).

    Unverified: the child records with SessionFiles alone, without the box's ledger, so nothing is sealed;
    what is measured here is what authenticates. The seals of a power cut, and the verified export of
    it, are tested in tests/admin/test_evidence.py."""
    if command:
        done = subprocess.run([ADMIN, "export", "-i", str(trial.key_file), "--out", str(out), "--unverified",
                               str(card)], capture_output=True, text=True, check=False)
        status, messages = done.returncode, done.stderr
    else:
        said = io.StringIO()
        status, messages = export_card(card, out, [IDENTITY], None, messages=said).value, said.getvalue()
    messages = "".join(line for line in messages.splitlines(keepends=True)
                       if not line.startswith("consentbox-admin: warning: --unverified"))
    session = _session_id(trial.number)
    names = sorted(path.name for path in out.iterdir()) if out.exists() else []
    if not names:
        assert status == 0 and "no sessions" in messages, messages
        return 0, None, b""
    # One session, one line: a half-written manifest (a dot file) is never taken for one.
    assert names == [f"{session}.json", f"{session}.wav"] and messages.count("\n") == 1, messages
    with wave.open(str(out / f"{session}.wav")) as wav:
        audio = wav.readframes(wav.getnframes())
    return status, json.loads((out / f"{session}.json").read_text()), audio


def _lost_frames(audio: bytes, shared: memoryview) -> int | None:
    """Check the audio against what the child handed over; the frames missing from its last interval."""
    intervals = shared[INTERVALS]
    handed = [shared[FRAMES + n] for n in range(intervals)]
    frame_bytes = POLICY.frame_bytes
    expected = b"".join(SIGNAL[:frames * frame_bytes] for frames in handed[:-1])
    assert audio[:len(expected)] == expected, "an interval that was closed lost audio"
    last = audio[len(expected):]
    if not intervals:
        assert last == b""
        return None
    assert SIGNAL.startswith(last), "the last interval is not the start of the input"
    recovered = len(last) // frame_bytes
    assert recovered <= handed[-1] + shared[IN_PROGRESS]
    lost = max(0, handed[-1] - recovered)
    assert lost * frame_bytes <= CHUNK, f"lost {lost} frames, more than one chunk"
    return lost


def _run_trial(trial: Trial) -> Result:
    base = trial.root / f"{trial.number:03d}"
    card, state = base / "card", base / "state"
    card.mkdir(parents=True)
    memory = mmap.mmap(-1, 8 * (FRAMES + len(PLAN)))
    shared = memoryview(memory).cast("q")
    pid = os.fork()
    if pid == 0:
        _child(trial, card, state, shared)
    _, status = os.waitpid(pid, 0)
    killed = os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL
    error = base / "child-error"
    assert not error.exists(), error.read_text()
    assert killed or (os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0 and shared[CALLS] < trial.call)

    # The card's manifest: whole, and the version being written or the one before.
    versions = (base / "versions").read_bytes().splitlines() if (base / "versions").exists() else []
    manifest_path = card / f"{_session_id(trial.number)}.manifest.age"
    on_card = read_manifest(manifest_path, [IDENTITY]) if manifest_path.exists() else None
    if on_card is None:
        assert shared[INTERVALS] == 0, "audio was recorded with no manifest on the card"
    else:
        assert on_card.to_json() in versions[-2:]

    status_before, report_before, audio = _export(trial, card, base / "export", command=True)
    final = on_card is not None and on_card.end_reason is not None
    assert status_before == (0 if on_card is None or final else 3)
    if report_before is not None:
        assert report_before["export"]["truncated"] is not final
    lost = _lost_frames(audio, shared)
    if killed and PLACES[shared[PLACE]] in ("segment header", "card manifest", "journal"):
        assert not lost, "a kill outside a chunk write lost audio: something was not synced in time"
    assert files_holding(SIGNAL, [base], skip=[base / "export"]) == []  # the card, the state directory

    # The next start: recovery, from the journal alone, then the supervisor's export again.
    def journal_failed(error: JournalError) -> None:
        raise AssertionError(f"journal failed: {error}")

    journal = Journal(state, on_failure=journal_failed)
    entries = journal.pending()
    recovered = recover_interrupted(CardDirectory(card, POLICY), journal, [IDENTITY.recipient])
    assert recover_interrupted(CardDirectory(card, POLICY), journal, [IDENTITY.recipient]) == []
    assert journal.pending() == []
    assert not [path for path in [*card.iterdir(), *journal.directory.iterdir()] if path.name.startswith(".")]
    status_after, report_after, audio_after = _export(trial, card, base / "export-after-recovery", command=False)
    assert audio_after == audio
    if report_after is not None:
        entry_end = entries[0].manifest.end_reason if entries else None
        end = report_after["end_reason"]
        if recovered:
            assert end == (entry_end or EndReason.INTERRUPTED).value
        else:
            assert end == on_card.end_reason.value
        assert report_after["export"]["truncated"] is (end == "interrupted")
        assert status_after == (3 if end == "interrupted" else 0)
    shutil.rmtree(base)
    return Result(killed, trial.period != NEVER, PHASES[shared[PHASE]], PLACES[shared[PLACE]] if killed else "-",
                  lost)


def _ranges(results: list[Result]) -> dict[str, str]:
    """For each place a kill landed, the least and the most audio lost there, in seconds."""
    lost: dict[str, list[float]] = collections.defaultdict(list)
    for result in results:
        lost[result.place].append(result.lost_frames / POLICY.rate)
    return {place: f"{min(seconds):.3f}-{max(seconds):.3f}" for place, seconds in sorted(lost.items())}


def _calls_in_a_whole_session(root: Path, key_file: Path) -> int:
    """How many wrapped calls an uninterrupted session makes (a trial that never dies)."""
    memory = mmap.mmap(-1, 8 * (FRAMES + len(PLAN)))
    shared = memoryview(memory).cast("q")
    trial = Trial(999, NEVER, NEVER, 0, root, key_file)
    base = root / "999"
    (base / "card").mkdir(parents=True)
    pid = os.fork()
    if pid == 0:
        _child(trial, base / "card", base / "state", shared)
    _, status = os.waitpid(pid, 0)
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0, (base / "child-error").read_text()
    shutil.rmtree(base)
    return shared[CALLS]


def test_a_power_cut_at_any_call_loses_at_most_one_chunk_and_recovery_ends_the_session(tmp_path, monkeypatch):
    began = time.time()
    # A temp directory of the test's own, for the box's code and the export command alike, so that
    # the search below is not misled by other programs' files in /tmp.
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    monkeypatch.setenv("TMPDIR", str(scratch))
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    key_file = tmp_path / "supervisor.key"
    key_file.write_text(identity_file_text(IDENTITY, STARTED))
    root = tmp_path / "trials"
    calls = _calls_in_a_whole_session(root, key_file)
    assert calls < CALL_TRIALS, "too few trials to hit every call once"
    draw = random.Random(5)
    at_calls = list(range(1, calls + 1)) + [draw.randint(1, calls + 3) for _ in range(CALL_TRIALS - calls)]
    points = [(call, NEVER) for call in at_calls]
    points += [(NEVER, draw.randint(1, sum(PERIODS_IN))) for _ in range(MOMENT_TRIALS)]
    trials = [Trial(number, call, period, draw.randrange(1 << 32), root, key_file)
              for number, (call, period) in enumerate(points)]
    with multiprocessing.get_context("fork").Pool(WORKERS) as pool:
        results = pool.map(_run_trial, trials, chunksize=4)
    print(f"\n{time.time() - began:.1f} s for the trials")

    # The trials' own directories were searched one by one; they hold the exports, plaintext by design.
    assert files_holding(SIGNAL, temp_directories(), changed_since=began, skip=[root]) == []
    during_capture = [r for r in results if r.killed and r.lost_frames is not None]
    losses = [r.lost_frames / POLICY.rate for r in during_capture]
    moments = [r.lost_frames / POLICY.rate for r in during_capture if r.at_a_moment]
    places = collections.Counter(f"{r.phase}/{r.place}" for r in results if r.killed)
    print(f"{len(results)} trials, {calls} calls in a whole session, {sum(r.killed for r in results)} killed. "
          f"Loss over the {len(losses)} killed after capture began: worst {max(losses):.3f} s, median "
          f"{statistics.median(losses):.3f} s; over the {len(moments)} killed at a random moment: worst "
          f"{max(moments):.3f} s, median {statistics.median(moments):.3f} s. "
          f"Kills by phase/place: {dict(sorted(places.items()))}; lost by place: {_ranges(during_capture)}")
    assert len(results) >= 200 and max(losses) * POLICY.rate * POLICY.frame_bytes <= CHUNK
    assert places["write/card manifest"] and places["write/journal"] and places["write/segment header"]
    check_quoted(_figures(results, calls, losses, moments))


def _figures(results: list[Result], calls: int, losses: list[float], moments: list[float]) -> dict[str, str]:
    """What docs/reliability.md quotes of the trials: how many, where the kills landed, what they lost (the
    seconds lost by each kill after capture began, and by each of those at a random moment)."""
    killed = collections.Counter(r.place for r in results if r.killed)
    in_chunks = [r.lost_frames / POLICY.rate for r in results if r.place == "audio chunk" and r.lost_frames is not None]
    return {
        "power-cut.trials": str(len(results)),
        "power-cut.call-trials": str(CALL_TRIALS),
        "power-cut.moment-trials": str(MOMENT_TRIALS),
        "power-cut.segment-mib": str(POLICY.segment_bytes >> 20),
        "power-cut.interval.first": f"{PLAN[0]:g}",
        "power-cut.interval.second": f"{PLAN[1]:g}",
        "power-cut.calls": str(calls),
        **{f"power-cut.kills.{place.replace(' ', '-')}": str(killed[place]) for place in PLACES},
        "power-cut.lost.after-capture.kills": str(len(losses)),
        "power-cut.lost.after-capture.worst": f"{max(losses):.3f}",
        "power-cut.lost.after-capture.median": f"{statistics.median(losses):.3f}",
        "power-cut.lost.moment.kills": str(len(moments)),
        "power-cut.lost.moment.worst": f"{max(moments):.3f}",
        "power-cut.lost.moment.median": f"{statistics.median(moments):.3f}",
        "power-cut.lost.in-a-chunk.least": f"{min(in_chunks):.2f}",
        "power-cut.lost.in-a-chunk.most": f"{max(in_chunks):.2f}",
    }
