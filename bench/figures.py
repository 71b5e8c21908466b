"""Every figure the docs quote, the command that prints it, and whether the two agree (`make docs-check`).

    python -m bench.figures

A figure in README.md, BENCHMARKS.md, docs/*.md, deploy/README.md or systemd/README.md is marked right
after its last character by an HTML comment that names it (a rendered page does not show it):

    kills landed in audio chunks (65<!-- figure: power-cut.kills.audio-chunk -->), ...

The figure is the run of letters, digits and `_.,:/+–-` just before the mark, and holds a digit. The
name's first part is its source, and `SOURCES` says which command prints the figures of each source and
which test holds every quote of them against what it printed, so a quote that stops saying what its
command prints fails a test:

- figures a test measures (power cuts, card faults, the wipe, the ledger's lines, the unit's exposure):
  that test prints them as `figure NAME = VALUE` lines (`pytest -s` shows them) and fails where a quote
  says otherwise;
- design constants and configuration defaults: tests/test_docs_figures.py takes them from the code and
  from the defaults file;
- timings, which no other machine or run reproduces: `make bench` writes what it printed, its figures
  included, to bench/report.txt, committed with BENCHMARKS.md; tests/test_docs_figures.py holds every
  quote against that file, so BENCHMARKS.md says what one named run printed, never a figure by hand.

This command checks that every mark follows a figure and names a source, then runs each source's test
(the slow system tests included); `make test` runs those tests too, each once.
"""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOCS = ("README.md", "BENCHMARKS.md", "docs/*.md", "deploy/README.md", "systemd/README.md")
#: The report of the `make bench` run that BENCHMARKS.md quotes.
BENCH_REPORT = Path("bench/report.txt")
#: The report of the recording benchmark run on main before issue 20 (its commit in the report), which
#: BENCHMARKS.md quotes beside the run after it, its figures named `bench-before.…` there.
BENCH_BEFORE_REPORT = Path("bench/report-before-issue-20.txt")

_MARK = re.compile(r"<!-- figure: (?P<name>\S*) -->")
_FIGURE = re.compile(r"[0-9A-Za-z][0-9A-Za-z_.,:/+–-]*\Z")
_CODE = re.compile(r"`[^`]*`")
_PRINTED = re.compile(r"figure (?P<name>\S+) = (?P<value>\S+)")

_CARD_FAULTS = "tests/system/test_card_faults.py::"
_RETENTION = "tests/system/test_retention.py::"
_DOCS_FIGURES = "tests/test_docs_figures.py::"


@dataclass(frozen=True)
class Source:
    """Who prints a source's figures, and the test that fails when a quote of them says otherwise."""

    command: str
    test: str  # a pytest node id


def _measured_by(test: str) -> Source:
    """A source whose figures the test `test` measures, prints and compares itself."""
    return Source(test, test)


SOURCES: Mapping[str, Source] = {
    "power-cut": _measured_by("tests/system/test_power_cut.py::"
                              "test_a_power_cut_at_any_call_loses_at_most_one_chunk_and_recovery_ends_the_session"),
    "card-full": _measured_by(
        _CARD_FAULTS + "test_a_full_card_loses_exactly_the_chunk_being_filled_and_refuses_until_space_is_freed"),
    **{f"card-{loss}": _measured_by(
        _CARD_FAULTS + "test_a_card_lost_while_recording_stops_capture_and_keeps_what_was_synced")
       for loss in ("turned-read-only", "unmounted", "stops-answering")},
    "wipe-image": _measured_by(
        _RETENTION + "test_the_wipe_destroys_exactly_the_expired_sessions_and_no_block_of_them_is_left_on_the_card"),
    "wipe-killed": _measured_by(
        _RETENTION + "test_a_wipe_killed_at_any_call_is_finished_by_the_next_runs_with_one_receipt_each"),
    "provision-cut": _measured_by("tests/system/test_provisioning.py::"
                                  "test_a_power_cut_during_an_install_leaves_the_old_or_the_new_configuration"),
    "ledger": _measured_by("tests/box/test_seals.py::test_a_session_s_seal_entries_bind_every_file_on_the_card"),
    "units": _measured_by("tests/system/test_units.py::test_the_box_is_exposed_at_most_1_5"),
    "design": _measured_by(_DOCS_FIGURES + "test_the_design_constants_quoted_are_the_code_s"),
    "defaults": _measured_by(_DOCS_FIGURES + "test_the_defaults_quoted_are_the_defaults_file_s"),
    "bench": Source(f"make bench, which writes {BENCH_REPORT}",
                    _DOCS_FIGURES + "test_the_timings_quoted_are_the_committed_bench_report_s"),
    "bench-before": Source(f"the recording benchmark on main before issue 20, kept in {BENCH_BEFORE_REPORT}",
                           _DOCS_FIGURES + "test_the_timings_quoted_from_before_issue_20_are_its_report_s"),
}


@dataclass(frozen=True)
class Quote:
    """One marked figure in the docs."""

    name: str
    figure: str  # empty when the mark follows no figure
    where: str  # `docs/reliability.md:104`

    @property
    def source(self) -> str:
        return self.name.split(".", 1)[0]


def quotes(root: Path = ROOT) -> list[Quote]:
    """Every marked figure in the docs under `root`, page by page, in reading order."""
    found = []
    for pattern in DOCS:
        for page in sorted(root.glob(pattern)):
            text = page.read_text(encoding="utf-8")
            # A mark shown as code (`…`, which may run over a line's end), as README.md shows one, marks
            # nothing: code is blanked out, its line ends kept, before marks are looked for.
            prose = _CODE.sub(lambda code: re.sub(r"[^\n]", " ", code.group()), text)
            for mark in _MARK.finditer(prose):
                line_start = text.rfind("\n", 0, mark.start()) + 1
                before = _FIGURE.search(text, line_start, mark.start())
                figure = before.group() if before and any(c.isdigit() for c in before.group()) else ""
                number = text.count("\n", 0, mark.start()) + 1
                found.append(Quote(mark["name"], figure, f"{page.relative_to(root)}:{number}"))
    return found


def problems(root: Path = ROOT) -> list[str]:
    """What is wrong with the marks themselves: one that follows no figure, or names no known source."""
    found = []
    for quote in quotes(root):
        if not quote.figure:
            found.append(f"{quote.where}: the mark of {quote.name} follows no figure: put it right after one")
        if quote.source not in SOURCES:
            found.append(f"{quote.where}: {quote.name} names no source in bench.figures.SOURCES: "
                         f"name it after the command that prints it")
    return found


def figure_lines(figures: Mapping[str, str]) -> str:
    """`figures` as the lines a command prints: `figure NAME = VALUE`, one a line."""
    return "\n".join(f"figure {name} = {value}" for name, value in figures.items())


def printed_figures(text: str) -> dict[str, str]:
    """The figures in `text` that a command printed (`figure_lines`), by name."""
    return {match["name"]: match["value"] for match in map(_PRINTED.fullmatch, text.splitlines()) if match}


def disagreements(figures: Mapping[str, str], root: Path = ROOT) -> list[str]:
    """Where the docs under `root` quote a figure of the sources of `figures` otherwise than `figures` says,
    or quote one of them that `figures` lacks; one line each, naming the page and its line."""
    sources = {name.split(".", 1)[0] for name in figures}
    found = [f"figure {source} has no source in bench.figures.SOURCES" for source in sorted(sources - set(SOURCES))]
    for quote in quotes(root):
        if quote.source not in sources:
            continue
        command = SOURCES[quote.source].command if quote.source in SOURCES else quote.source
        if quote.name not in figures:
            found.append(f"{quote.where}: quotes {quote.name}, which {command} does not print")
        elif quote.figure != figures[quote.name]:
            found.append(f"{quote.where}: {quote.name} is {quote.figure or 'missing'} here; "
                         f"{command} printed {figures[quote.name]}")
    return found


def check_quoted(figures: Mapping[str, str], root: Path = ROOT) -> None:
    """Print `figures` as a command prints them, then fail (AssertionError, for tests) naming every quote
    in the docs under `root` that disagrees with them."""
    print(figure_lines(figures))
    found = disagreements(figures, root)
    if found:
        raise AssertionError("the docs quote other figures than were measured:\n" + "\n".join(found))


def main() -> int:
    """Check the marks, then run every source's test; the exit status is pytest's, or 1."""
    found = problems()
    if found:
        print("\n".join(found), file=sys.stderr)
        return 1
    tests = sorted({source.test for source in SOURCES.values()})
    return subprocess.run([sys.executable, "-m", "pytest", "-q", *tests], cwd=ROOT, check=False).returncode


if __name__ == "__main__":
    sys.exit(main())
