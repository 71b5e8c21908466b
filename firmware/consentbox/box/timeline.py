"""The printed timeline of a run: one JSON-ready dict per thing a person in the room would notice.

Shapes (each also has `t`, seconds from the start): `state`, `led` (the REC LED), `status` (the STATUS LED),
`capture`, `held` (audio held back while a CONSENT button is down, or written after all), `seats` (the seat
LEDs), `setup`, `headcount`, `consent`, `withdrawal` (`after`, with its `id`, when from the session that
ended last), `refused`, `flash`, `tone`, `session`, and from the box
itself `file`, `fault` (`microphone silent` is the silence alert: recording goes on), `silence_ended` (the
alerted silence is over), `recovered` (a session finished at start-up), `journal` (the box's journal failed),
`ledger` (the box's ledger file failed), `card` (the card's id could not be read or written, or a session
withdrawn from after its end is on another card), `foreign` (start-up recovery met an entry on the card that
the box did not write, and left it there), `provisioning` (a stick was installed or refused), `settings`
(the box took up new settings), `clock` (the wall clock was found below the clock floor) and `selftest`
(at start, listening with the REC LED lit, and after each session); and from a simulation, `advance` (a
script step moved the clock on) and `wipe` (the retention job ran meanwhile, as its timer would start it).
"""

from __future__ import annotations

from typing import Any, assert_never

from consentbox.box.selftest import SelfTestResult
from consentbox.box.settings import Settings
from consentbox.core.commands import (
    CloseCapture,
    Command,
    EndSession,
    Flash,
    HoldBackAudio,
    OpenCapture,
    OpenSession,
    PlayTone,
    RecLed,
    RecordConsent,
    RecordWithdrawal,
    Refuse,
    SeatLights,
    SetHeadcount,
    ShowStatus,
    WithdrawFinished,
    WriteHeldAudio,
)
from consentbox.core.table import State
from consentbox.ledger.writer import LedgerWriteError
from consentbox.provisioning.installed import Result
from consentbox.recording.journal import JournalError
from consentbox.recording.recovery import Recovered
from consentbox.storage.card_files import ForeignEntry


def state_entry(at: float, state: State) -> dict[str, Any]:
    """The entry for entering `state`."""
    return {"t": round(at, 6), "event": "state", "state": state.value}


def recovered_entry(at: float, recovered: Recovered) -> dict[str, Any]:
    """The entry for a session that start-up recovery finished."""
    return {"t": round(at, 6), "event": "recovered", "id": recovered.session, "segments": recovered.segments,
            "end": recovered.end_reason.value, "destroyed": recovered.destroyed}


def journal_entry(at: float, error: JournalError) -> dict[str, Any]:
    """The entry for a failure of the box's journal (recording goes on)."""
    return {"t": round(at, 6), "event": "journal", "error": str(error)}


def ledger_entry(at: float, error: LedgerWriteError) -> dict[str, Any]:
    """The entry for a failure of the box's ledger file (recording goes on)."""
    return {"t": round(at, 6), "event": "ledger", "error": str(error)}


def card_entry(at: float, error: Exception) -> dict[str, Any]:
    """The entry for a card whose id could not be read or written (it records all the same)."""
    return {"t": round(at, 6), "event": "card", "error": str(error)}


def foreign_entry(at: float, found: ForeignEntry) -> dict[str, Any]:
    """The entry for an entry on the card that the box did not write, left where it is: its name, quoted and
    escaped as Python's ascii() does (a card's names may hold control characters or bytes that are not
    UTF-8), and what it is."""
    return {"t": round(at, 6), "event": "foreign", "name": ascii(found.name), "what": found.what}


def command_entry(at: float, command: Command, session_id: str) -> dict[str, Any]:
    """The entry for a command performed at `at` in session `session_id`."""
    return {"t": round(at, 6), **_fields(command, session_id)}


def _fields(command: Command, session_id: str) -> dict[str, Any]:
    if isinstance(command, RecLed):
        return {"event": "led", "led": "rec", "on": command.on}
    if isinstance(command, ShowStatus):
        pattern = command.pattern
        return {"event": "status", "colour": pattern.colour.value,
                "rhythm": pattern.rhythm.value, "count": pattern.count}
    if isinstance(command, OpenCapture):
        return {"event": "capture", "open": True, "resume": command.resume}
    if isinstance(command, CloseCapture):
        return {"event": "capture", "open": False, "pause": command.pause}
    if isinstance(command, (HoldBackAudio, WriteHeldAudio)):
        return {"event": "held", "held": isinstance(command, HoldBackAudio)}
    if isinstance(command, SeatLights):
        return {"event": "seats", "lit": sorted(command.lit), "blinking": sorted(command.blinking)}
    if isinstance(command, OpenSession):
        return {"event": "setup", "id": session_id, "headcount": command.headcount}
    if isinstance(command, SetHeadcount):
        return {"event": "headcount", "headcount": command.headcount}
    if isinstance(command, RecordConsent):
        return {"event": "consent", "seat": command.seat}
    if isinstance(command, RecordWithdrawal):
        return {"event": "withdrawal", "seat": command.seat}
    if isinstance(command, WithdrawFinished):
        return {"event": "withdrawal", "id": session_id, "seat": command.seat, "after": True, "kept": command.keep}
    if isinstance(command, Refuse):
        return {"event": "refused", "reason": command.reason.text}
    if isinstance(command, Flash):
        return {"event": "flash", "colour": command.colour.value, "count": command.count}
    if isinstance(command, PlayTone):
        return {"event": "tone", "tone": command.tone.value}
    if isinstance(command, EndSession):
        return {"event": "session", "id": session_id, "end": command.reason.value, "kept": command.keep}
    assert_never(command)  # mypy: a command the core gains needs its entry here


def describe(entry: dict[str, Any]) -> str:
    """One readable line for a timeline entry, for people watching a demo or a training run."""
    kind = entry["event"]
    words = {
        "state": lambda e: f"-> {e['state']}",
        "led": lambda e: f"REC LED {'on' if e['on'] else 'off'}",
        "status": lambda e: f"STATUS LED {e['colour']} {e['rhythm']}" + (f" x{e['count']}" if e["count"] else ""),
        "capture": lambda e: "capture " + ("opened" if e["open"] else "closed"),
        "setup": lambda e: f"session {e['id']} set up for {e['headcount']} parties",
        "headcount": lambda e: f"headcount now {e['headcount']}",
        "consent": lambda e: f"seat {e['seat']} consents",
        "withdrawal": lambda e: "consent withdrawn" + (f" at seat {e['seat']}" if e["seat"] else "")
        + ((" from the session that ended last: " + ("kept, marked" if e["kept"] else "destroyed"))
           if e.get("after") else ""),
        "held": lambda e: "audio held back while a CONSENT button is down" if e["held"]
        else "held-back audio written (no withdrawal)",
        "seats": lambda e: f"seat LEDs lit {e['lit'] or 'none'}"
        + (f", blinking {e['blinking']}" if e["blinking"] else ""),
        "refused": lambda e: f"refused: {e['reason']}",
        "flash": lambda e: f"STATUS flashes {e['colour']} x{e['count']}",
        "tone": lambda e: f"buzzer: {e['tone']}",
        "file": lambda e: f"card: {e['path']}",
        "fault": lambda e: f"FAULT: {e['problem']} ({e['detail']})",
        "silence_ended": lambda e: f"silence over after {e['seconds']:.0f} s: "
        + ("the microphone hears sound again" if e["heard"] else "capture closed"),
        "session": lambda e: f"session {e['id']} ended ({e['end']}), recording "
        + ("kept" if e["kept"] else "destroyed"),
        "recovered": lambda e: f"session {e['id']} left unfinished by the last run: "
        + ("its destruction completed" if e["destroyed"] else f"ended ({e['end']}), {e['segments']} segment(s)"),
        "journal": lambda e: f"JOURNAL: {e['error']}",
        "ledger": lambda e: f"LEDGER: {e['error']}",
        "card": lambda e: f"CARD: {e['error']}",
        "foreign": lambda e: f"CARD: {e['name']} is {e['what']}, which the box did not put there: left as it is; "
        "remove it from the card",
        "settings": lambda e: (f"settings: provisioning bundle version {e['bundle_version']}" if e["bundle_version"]
                               else "settings: the configuration's (not provisioned by USB)")
        + f", {e['recipients']} recipient(s)" + (f"; {e['problem']}" if "problem" in e else ""),
        "provisioning": lambda e: (
            "USB stick installed: " if e["installed"] else f"USB stick refused (code {e['code']}): ") + e["detail"],
        "selftest": lambda e: ("self-test passed" if e["ok"] else "SELF-TEST FAILED: " + "; ".join(e["details"]))
        + (" (listened to the microphone: REC LED lit)" if e["listened"] else ""),
        "clock": lambda e: f"CLOCK: {e['behind']} s behind the clock floor; the floor is used"
        + ("" if e["trusted"] else " (never had a trustworthy time: recording refused)"),
        "script": lambda e: "the script starts (its time 0)",
        "advance": lambda e: f"time advanced {_length(e['seconds'])}, from {e['from']} to {e['to']}",
        "wipe": lambda e: f"wipe at {e['wall']}: " + "; ".join(e["lines"]),
    }
    text = words[kind](entry) if kind in words else str(entry)
    return f"{entry['t']:9.2f} s  {text}"

def _length(seconds: int) -> str:
    """An `advance` step's length in the largest unit it is a whole number of (it is whole minutes)."""
    unit, size = next((unit, size) for unit, size in (("day", 86_400), ("hour", 3_600), ("minute", 60))
                      if seconds % size == 0)
    count = seconds // size
    return f"{count} {unit}" + ("" if count == 1 else "s")


def values(timeline: list[dict[str, Any]], event: str, key: str) -> list[Any]:
    """The values of `key` in the entries of kind `event`, in order."""
    return [entry[key] for entry in timeline if entry["event"] == event]


def first(timeline: list[dict[str, Any]], event: str, **match: Any) -> dict[str, Any]:
    """The first entry of kind `event` whose fields equal `match`; AssertionError if there is none."""
    for entry in timeline:
        if entry["event"] == event and all(entry.get(key) == value for key, value in match.items()):
            return entry
    raise AssertionError(f"no {event} entry with {match} in the timeline")


def provisioning_entry(at: float, result: Result) -> dict[str, Any]:
    """The entry for a provisioning attempt's result, as the box saw it."""
    return {"t": round(at, 6), "event": "provisioning",
            "installed": result.refusal is None, "code": None if result.refusal is None else result.refusal.code,
            "detail": result.detail}


def selftest_entry(at: float, result: SelfTestResult) -> dict[str, Any]:
    """The entry for a self-test: passed or not, whether it listened (REC LED lit), the codes and why."""
    return {"t": round(at, 6), "event": "selftest", "ok": not result.problems, "listened": result.listened,
            "codes": sorted(problem.code for problem in result.problems), "details": list(result.details)}


def settings_entry(at: float, settings: Settings) -> dict[str, Any]:
    """The entry for the box taking up new settings (at start, or after provisioning)."""
    entry: dict[str, Any] = {"t": round(at, 6), "event": "settings", "bundle_version": settings.version,
                             "recipients": len(settings.recipients)}
    if settings.problem:
        entry["problem"] = settings.problem
    return entry
