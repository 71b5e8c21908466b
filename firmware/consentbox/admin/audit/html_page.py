"""The audit as one self-contained HTML page: each session as a small timeline a reviewer reads at a glance.

The page loads nothing and runs nothing: its style and drawings are inline (CSS, SVG), it has no script,
and its Content-Security-Policy forbids any other resource, so it opens the same from a mail attachment,
a share or a USB stick. Every value is escaped. Nothing is told by colour alone: each mark on a timeline
has its own shape and words beside it, each timeline a text description, and the events follow in words.
"""

from __future__ import annotations

import html
from collections.abc import Iterator

from consentbox import __version__
from consentbox.admin.audit import words
from consentbox.admin.audit.sessions import AuditedSession, Moment, Stretch
from consentbox.admin.audit.sources import FILES_NOT_CHECKED, Audit

# The timeline's geometry, in SVG units: the set-up's run of the box from PLOT_LEFT to PLOT_RIGHT, what
# was written later (after a restart, or by a job) in the zone right of LATER_LEFT; three lanes of marks, the events'
# labels on rows below them, then the time axis.
WIDTH, HEIGHT = 800, 184
PLOT_LEFT, PLOT_RIGHT = 92, 580
LATER_LEFT = 612
LANES = {"consent": 28, "recording": 62, "events": 94}
LABEL_ROWS = (113, 127, 141)
AXIS = 154
_GAP = 18  # the least room between two marks of one lane
_CHAR = 6.6  # about how wide a character of the labels is

_STYLE = """
body{font:15px/1.45 system-ui,sans-serif;color:#1b1b1b;background:#fff;margin:1.5rem auto;max-width:60rem;
padding:0 1rem}
h1{font-size:1.6rem;margin:0 0 .5rem}h2{font-size:1.15rem;margin:0;display:flex;gap:.75rem;align-items:center}
dl.facts{display:grid;grid-template-columns:max-content 1fr;gap:.15rem 1rem;margin:.5rem 0}dt{font-weight:600}
dd{margin:0;overflow-wrap:anywhere}
table{border-collapse:collapse;width:100%;margin:.5rem 0}th,td{border:1px solid #bbb;padding:.25rem .45rem;
text-align:left;vertical-align:top}th{background:#eee}
.badge{white-space:nowrap;font-weight:700;padding:.1rem .5rem;border-radius:.3rem;border:2px solid}
.pass{color:#0b5d1e;border-color:#0b5d1e;background:#e6f4ea}.fail{color:#8a1111;border-color:#8a1111;background:#fdecec}
.result{font-weight:700;font-size:1.1rem;padding:.5rem .75rem;border-left:.5rem solid}
article{border:1px solid #bbb;border-radius:.4rem;padding:.75rem 1rem;margin:1rem 0}
article.failing{border:3px solid #8a1111}
.verdict{font-weight:600}.why li{color:#8a1111}
svg{width:100%;height:auto;display:block;margin:.5rem 0}svg text{font:12px system-ui,sans-serif;fill:#1b1b1b}
svg .lane{font-weight:600}svg .rec-label{fill:#fff;font-weight:700}
code{font-size:.95em}table.sessions td:first-of-type{white-space:nowrap}
ul.legend{display:flex;flex-wrap:wrap;gap:.25rem 1.5rem;list-style:none;padding:0}
"""

_DEFINITIONS = """<defs>
<pattern id="paused" width="6" height="6" patternUnits="userSpaceOnUse" patternTransform="rotate(45)">
<rect width="6" height="6" fill="#e0e0e0"/><line x1="0" y1="0" x2="0" y2="6" stroke="#616161" stroke-width="2"/>
</pattern>
<pattern id="cut" width="8" height="8" patternUnits="userSpaceOnUse" patternTransform="rotate(-45)">
<rect width="8" height="8" fill="#f6c9c9"/><line x1="0" y1="0" x2="0" y2="8" stroke="#b71c1c" stroke-width="4"/>
</pattern>
</defs>"""


def render_html(audit: Audit) -> str:
    """The whole page."""
    failing = [session for session in audit.sessions if not session.intact]
    facts = [("Source", words.source(audit)),
             *((("Box" if n == 0 else ""), f"{key} {label}") for n, (key, label) in enumerate(audit.boxes)),
             ("Period", words.period(audit)),
             ("Made", f"{audit.made.isoformat(sep=' ', timespec='seconds')} by consentbox-admin {__version__}"),
             *(("Note", remark) for remark in audit.remarks)]
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'\">",
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>ConsentBox audit: {_e(audit.source.name or str(audit.source))}</title>",
        f"<style>{_STYLE}</style></head><body>",
        "<header><h1>ConsentBox audit</h1><dl class=\"facts\">",
        *(f"<dt>{_e(name)}</dt><dd>{_e(value)}</dd>" for name, value in facts),
        "</dl>",
        f'<p class="result {"fail" if failing else "pass"}">{"✘" if failing else "✔"} {_e(words.result(audit))}</p>',
        "</header><main>",
        *_summary(audit),
        *_legend(),
        *(part for session in audit.sessions for part in _session(session, audit.files_checked)),
        "</main></body></html>",
    ]
    return "\n".join(parts) + "\n"


def _e(value: object) -> str:
    """Text made safe for an HTML or SVG text node or a quoted attribute."""
    return html.escape(str(value), quote=True)


def _summary(audit: Audit) -> Iterator[str]:
    yield '<section aria-labelledby="summary"><h2 id="summary">Sessions</h2>'
    if not audit.sessions:
        yield "<p>No session to report.</p></section>"
        return
    headings = ("session", *words.SUMMARY, "verdict")
    yield '<table class="sessions"><thead><tr>'
    yield "".join(f'<th scope="col">{_e(heading.capitalize())}</th>' for heading in headings)
    yield "</tr></thead><tbody>"
    for s in audit.sessions:
        yield (f'<tr><th scope="row"><a href="#s-{_e(s.session)}"><code>{_e(s.session)}</code></a></th>'
               + "".join(f"<td>{_e(cell)}</td>" for cell in words.summary(s)) + f"<td>{_badge(s)}</td></tr>")
    yield "</tbody></table></section>"


def _badge(session: AuditedSession) -> str:
    good = session.intact
    mark = "✔" if good else "✘"
    return f'<span class="badge {"pass" if good else "fail"}">{mark} {words.short_verdict(session)}</span>'


def _legend() -> Iterator[str]:
    """What each mark of a timeline means, drawn as it is drawn there."""
    marks = [(_consent_mark(12, 14, 1), "consent (seat number)"), (_rec_bar(0, 24, "REC", 4), "recording"),
             (_bar(0, 24, 4, "url(#paused)", "#616161"), "paused"), (_bar(0, 24, 4, "url(#cut)", "#b71c1c"),
                                                                      "recording cut short by a stop of the box"),
             (_withdrawal_mark(12, 14), "consent withdrawn"), (_fault_mark(12, 14), "fault"),
             (_end_mark(12, 2, 26), "session ended"), (_destruction_mark(12, 14), "recording destroyed")]
    yield ('<section aria-labelledby="legend"><h2 id="legend">How to read a timeline</h2>'
           "<p>Time runs left to right from the set-up, on the box's own clock. What was recorded later, after the "
           "box restarted or by its retention jobs (the end of a session a power cut interrupted, a destruction), "
           "is to the right of the dashed line, in order of date. The same events follow each timeline in words."
           '</p><ul class="legend">')
    for mark, meaning in marks:
        yield (f'<li><svg width="40" height="28" viewBox="0 0 40 28" style="display:inline;width:40px;'
               f'vertical-align:middle" aria-hidden="true">{_DEFINITIONS}{mark}</svg> {_e(meaning)}</li>')
    yield "</ul></section>"


def _session(session: AuditedSession, files_checked: bool) -> Iterator[str]:
    anchor = f"s-{session.session}"
    yield f'<article id="{_e(anchor)}" class="{"passing" if session.intact else "failing"}">'
    yield f"<h2><code>{_e(session.session)}</code> {_badge(session)}</h2>"
    yield f"<p>Box: {_e(session.box)}. Set up {_e(words.wall(session.setup))}.</p>"
    yield f'<p class="verdict">Verdict: {_e(session.verdict())}</p>'
    if session.findings:
        yield '<ul class="why">' + "".join(f"<li>{_e(f.text)}</li>" for f in session.findings) + "</ul>"
    if session.setup is not None:
        yield from _timeline(session)
        yield "<details open><summary>The timeline in words</summary><ol>"
        yield from (f"<li>{_e(words.when(at))}: {_e(text)}</li>" for at, text in words.events(session))
        yield "</ol></details>"
    yield "<h3>Files</h3>"
    if session.files is None and files_checked:
        yield "<p>Not checked: nothing on the card binds them to a box (see the verdict).</p>"
    elif session.files is None:
        yield f"<p>Files {_e(FILES_NOT_CHECKED)}.</p>"
    elif not session.files:
        yield "<p>None on the card.</p>"
    else:
        yield "<table><thead><tr><th scope=\"col\">File</th><th scope=\"col\">Check against the box's seals</th>"
        yield "</tr></thead><tbody>"
        for line in words.file_lines(session):
            name, _, found = line.partition(": ")
            yield f"<tr><td><code>{_e(name)}</code></td><td>{_e(found)}</td></tr>"
        yield "</tbody></table>"
    if session.notes:
        yield "<h3>Notes</h3><ul>" + "".join(f"<li>{_e(note)}</li>" for note in session.notes) + "</ul>"
    yield "</article>"


def _timeline(session: AuditedSession) -> Iterator[str]:
    """The session's SVG timeline, with its title and text description for assistive technology."""
    ident = f"t-{session.session}"
    happened = words.events(session)
    span = max([at.offset for at, _ in happened if at.offset is not None] + [1.0])
    marked = [e.at for e in session.withdrawals] + [f.at for f in session.faults] + [
        thing.at for thing in (session.ending, session.destruction) if thing is not None]
    scale = Scale(span, [at for at in marked if at.offset is None])
    description = "; ".join(f"{words.when(at)}: {text}" for at, text in happened)
    yield (f'<svg viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-labelledby="{ident}-title {ident}-desc">'
           f'<title id="{ident}-title">Timeline of session {_e(session.session)}</title>'
           f'<desc id="{ident}-desc">{_e(description)}</desc>{_DEFINITIONS}')
    for lane, y in LANES.items():
        yield f'<text class="lane" x="4" y="{y + 4}">{lane}</text>'
        yield f'<line x1="{PLOT_LEFT}" y1="{y}" x2="{PLOT_RIGHT}" y2="{y}" stroke="#ccc"/>'
    yield from _axis(scale)
    for stretch in session.pauses:
        yield _stretch(stretch, scale, paused=True)
    for stretch in session.recordings:
        yield _stretch(stretch, scale, paused=False)
    consents = Lane()
    for event in session.consents:
        x = consents.mark(scale.x(event.at))
        yield _titled(_consent_mark(x, LANES["consent"], event.seat),
                      f"consent, seat {event.seat}, {words.when(event.at)}")
    events, y = Lane(), LANES["events"]
    for withdrawal in session.withdrawals:
        who = "a party" if withdrawal.seat is None else f"seat {withdrawal.seat}"
        x = events.mark(scale.x(withdrawal.at))
        yield _titled(_withdrawal_mark(x, y) + events.label(x, f"withdrawn ({who})"),
                      f"consent withdrawn by {who}, {words.when(withdrawal.at)}")
    for fault in session.faults:
        x = events.mark(scale.x(fault.at))
        yield _titled(_fault_mark(x, y) + events.label(x, fault.problem),
                      f"fault: {fault.problem}, {words.when(fault.at)}")
    if session.ending is not None:  # a line across the lanes, its words at the top beside its flag
        x = scale.x(session.ending.at)
        top = LANES["consent"] - 18
        text = f"end: {session.ending.reason}"
        right = x + 14 + _CHAR * len(text) > WIDTH - 4
        anchor = "end" if right else "start"
        label = f'<text x="{x - 4 if right else x + 14:.1f}" y="{top + 8}" text-anchor="{anchor}">{_e(text)}</text>'
        yield _titled(_end_mark(x, top, y + 8) + label,
                      f"session ended: {words.ending(session)}, {words.when(session.ending.at)}")
    if session.destruction is not None:
        d = session.destruction
        x = events.mark(scale.x(d.at))
        yield _titled(_destruction_mark(x, y) + events.label(x, f"destroyed ({d.cause.replace('_', '-')}) "
                                                                f"{d.at.wall.date().isoformat()}"),
                      f"destruction receipt, cause {d.cause}, due {d.due.isoformat()}, {words.when(d.at)}")
    yield "</svg>"


class Scale:
    """Where a moment goes across the timeline: by its offset in the set-up's run, else (written later) in
    the later zone, in the order of its wall-clock time."""

    def __init__(self, span: float, later: list[Moment]) -> None:
        self.span = span
        self._later = sorted({at.wall for at in later})

    def x(self, at: Moment) -> float:
        """The moment's place across the drawing."""
        if at.offset is not None:
            return PLOT_LEFT + (PLOT_RIGHT - PLOT_LEFT) * min(at.offset, self.span) / self.span
        step = (WIDTH - 24 - LATER_LEFT) / len(self._later)
        return LATER_LEFT + step * (self._later.index(at.wall) + 0.5)

    @property
    def has_later(self) -> bool:
        """Whether anything is drawn in the later zone."""
        return bool(self._later)


class Lane:
    """The marks and labels placed so far in one lane: a mark too close to the one before is moved along (its
    exact time is in the words), and a label goes on the first of the label rows where it overlaps none."""

    def __init__(self) -> None:
        self._last_mark: float | None = None
        self._rows: list[list[tuple[float, float]]] = [[] for _ in LABEL_ROWS]

    def mark(self, x: float) -> float:
        """Where to draw a mark meant for `x`."""
        if self._last_mark is not None and x < self._last_mark + _GAP:
            x = min(self._last_mark + _GAP, WIDTH - 10.0)
        self._last_mark = x
        return x

    def label(self, x: float, text: str) -> str:
        """`text` under the mark at `x`."""
        width = _CHAR * len(text)
        right_aligned = x - 6 + width > WIDTH - 4
        extent = (x + 6 - width, x + 6) if right_aligned else (x - 6, x - 6 + width)
        row = next((n for n, taken in enumerate(self._rows)
                    if all(extent[1] < left or extent[0] > right for left, right in taken)), len(self._rows) - 1)
        self._rows[row].append(extent)
        anchor = "end" if right_aligned else "start"
        return f'<text x="{extent[0] if not right_aligned else extent[1]:.1f}" y="{LABEL_ROWS[row]}" ' \
               f'text-anchor="{anchor}">{_e(text)}</text>'


def _axis(scale: Scale) -> Iterator[str]:
    yield f'<line x1="{PLOT_LEFT}" y1="{AXIS}" x2="{PLOT_RIGHT}" y2="{AXIS}" stroke="#1b1b1b"/>'
    for fraction in (0.0, 0.25, 0.5, 0.75, 1.0):
        x = PLOT_LEFT + (PLOT_RIGHT - PLOT_LEFT) * fraction
        anchor = "start" if fraction == 0 else "end" if fraction == 1 else "middle"
        yield f'<line x1="{x:.1f}" y1="{AXIS}" x2="{x:.1f}" y2="{AXIS + 5}" stroke="#1b1b1b"/>'
        tick = words.duration(scale.span * fraction)
        yield f'<text x="{x:.1f}" y="{AXIS + 18}" text-anchor="{anchor}">{_e(tick)}</text>'
    if scale.has_later:
        middle = (LATER_LEFT + WIDTH) / 2 - 10
        yield (f'<line x1="{LATER_LEFT - 12}" y1="8" x2="{LATER_LEFT - 12}" y2="{AXIS + 6}" stroke="#1b1b1b" '
               'stroke-dasharray="4 3"/>')
        yield f'<text x="{middle:.1f}" y="{AXIS + 18}" text-anchor="middle">later, by date</text>'


def _stretch(stretch: Stretch, scale: Scale, *, paused: bool) -> str:
    """A stretch of recording or pause in the recording lane; nothing for one that begins later (it has
    no place on the set-up's clock; the words list it)."""
    if stretch.start.offset is None:
        return ""
    start = scale.x(stretch.start)
    end = PLOT_RIGHT if stretch.end is None or stretch.end.offset is None else max(scale.x(stretch.end), start + 3)
    y = LANES["recording"]
    if paused:
        shape, label = _bar(start, end, y, "url(#paused)", "#616161"), "paused"
    elif stretch.cut_short:
        shape = _rec_bar(start, end, "REC", y) + _bar(end, end + 18, y, "url(#cut)", "#b71c1c")
        label = "recording, cut short when the box stopped"
    else:
        shape, label = _rec_bar(start, end, "REC", y), "recording"
    return _titled(shape, f"{label}: {words.when(stretch.start)} to {words.when(stretch.end)}")


def _bar(x1: float, x2: float, y: int, fill: str, stroke: str) -> str:
    return (f'<rect x="{x1:.1f}" y="{y - 9}" width="{max(x2 - x1, 2):.1f}" height="18" fill="{fill}" '
            f'stroke="{stroke}"/>')


def _rec_bar(x1: float, x2: float, text: str, y: int) -> str:
    bar = _bar(x1, x2, y, "#c62828", "#7f0000")
    if x2 - x1 >= 34:
        bar += f'<text class="rec-label" x="{(x1 + x2) / 2:.1f}" y="{y + 4}" text-anchor="middle">{_e(text)}</text>'
    return bar


def _consent_mark(x: float, y: int, seat: int | None) -> str:
    return (f'<circle cx="{x:.1f}" cy="{y}" r="7.5" fill="#0d47a1"/>'
            f'<text x="{x:.1f}" y="{y + 4}" text-anchor="middle" style="fill:#fff;font-weight:700;font-size:10px">'
            f"{_e('' if seat is None else seat)}</text>")


def _withdrawal_mark(x: float, y: int) -> str:
    return (f'<path d="M{x - 6:.1f} {y - 6}L{x + 6:.1f} {y + 6}M{x + 6:.1f} {y - 6}L{x - 6:.1f} {y + 6}" '
            'stroke="#1b1b1b" stroke-width="3.5"/>')


def _fault_mark(x: float, y: int) -> str:
    return (f'<path d="M{x:.1f} {y - 8}L{x + 8:.1f} {y}L{x:.1f} {y + 8}L{x - 8:.1f} {y}Z" fill="#f9a825" '
            f'stroke="#1b1b1b"/><text x="{x:.1f}" y="{y + 4}" text-anchor="middle" style="font-weight:700">!</text>')


def _end_mark(x: float, top: int, bottom: int) -> str:
    return (f'<line x1="{x:.1f}" y1="{top}" x2="{x:.1f}" y2="{bottom}" stroke="#1b1b1b" stroke-width="2.5"/>'
            f'<path d="M{x:.1f} {top}l9 4l-9 4z" fill="#1b1b1b"/>')


def _destruction_mark(x: float, y: int) -> str:
    return (f'<rect x="{x - 6:.1f}" y="{y - 6}" width="12" height="12" fill="#1b1b1b"/>'
            f'<path d="M{x - 4:.1f} {y - 4}L{x + 4:.1f} {y + 4}" stroke="#fff" stroke-width="2"/>')


def _titled(shape: str, title: str) -> str:
    """`shape` with a tooltip (an SVG title), which assistive technology reads too."""
    return f"<g><title>{_e(title)}</title>{shape}</g>"
