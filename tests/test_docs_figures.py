"""The figures the docs quote agree with the commands that print them (bench/figures.py, `make docs-check`).

The cheap part, run by `make test` as well: the marks themselves; the design constants against the code;
the configuration defaults against the defaults file; BENCHMARKS.md's timings against the committed report
of the `make bench` run it quotes. The figures a test measures (power cuts, card faults, the wipe) are
compared by that test itself, so none of them is measured twice.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from bench.figures import (
    BENCH_BEFORE_REPORT,
    BENCH_REPORT,
    DOCS,
    ROOT,
    SOURCES,
    check_quoted,
    disagreements,
    printed_figures,
    problems,
    quotes,
)
from consentbox.admin import export
from consentbox.box.box import BLOCK_PERIODS, CARD_CHECK_SECONDS, CLOCK_SLACK_SECONDS, LEVEL_BLOCK_PERIODS
from consentbox.box.config import load_config
from consentbox.box.hold_back import HOLD_SLACK_SECONDS
from consentbox.core.level import LEVEL_LIT_DBFS, LEVEL_SHOWN_SECONDS, SILENCE_FLOOR_DBFS
from consentbox.core.policy import MAX_SEGMENT_BYTES
from consentbox.core.provisioning import REMIND_EVERY_SECONDS, REMIND_FOR_SECONDS
from consentbox.core.timekeeping import FLOOR_CEILING_DAYS
from consentbox.crypto.format import MAX_HEADER_BYTES, MAX_LINE_BYTES
from consentbox.crypto.stream import CHUNK_SIZE, SEALED_CHUNK_SIZE, TAG_SIZE
from consentbox.hw.alsa import BUFFER_PERIODS
from consentbox.hw.gpio import FRAME_SECONDS, SEAT_BLINK_FRAMES
from consentbox.ledger.extract import MAX_EXTRACT_BYTES
from consentbox.ledger.lines import MAX_LINE
from consentbox.provisioning.bundle import HEADER_BYTES, MAX_BUNDLE_BYTES
from consentbox.recording.manifest import MAX_SEGMENTS
from consentbox.recording.seal import CHECKPOINT_CHUNKS
from consentbox.recording.wav import HEADER_SIZE
from consentbox.retention import wipe
from consentbox.sim.web import server
from consentbox.state.clock_floor import FLOOR_STEP
from consentbox.storage import shred
from consentbox.storage.card_files import MAX_LISTED

SYSTEMD = ROOT / "systemd"


def design_figures() -> dict[str, str]:
    """The code's constants the docs quote, and what follows from them at the default audio format."""
    policy = load_config().policy
    chunk_seconds = CHUNK_SIZE / policy.frame_bytes / policy.rate
    [watchdog] = re.findall(r"^WatchdogSec=(\d+)s$", (SYSTEMD / "consentbox.service").read_text(encoding="utf-8"),
                            re.MULTILINE)
    [after_boot] = re.findall(r"^OnBootSec=(\d+)min$", (SYSTEMD / "consentbox-wipe.timer").read_text(encoding="utf-8"),
                              re.MULTILINE)
    return {
        "design.chunk-kib": str(CHUNK_SIZE >> 10),
        "design.chunk-bytes": f"{CHUNK_SIZE:,}",
        "design.chunk-seconds": f"{chunk_seconds:.3f}",
        "design.chunk-seconds-rounded": f"{chunk_seconds:.1f}",  # "under 0.7 s", "about 0.7 s"
        "design.tag-bytes": str(TAG_SIZE),
        "design.sealed-chunk-bytes": f"{SEALED_CHUNK_SIZE:,}",
        "design.wav-header-bytes": str(HEADER_SIZE),
        "design.checkpoint-chunks": str(CHECKPOINT_CHUNKS),
        "design.checkpoint-mib": str(CHECKPOINT_CHUNKS * CHUNK_SIZE >> 20),
        "design.checkpoint-seconds": f"{CHECKPOINT_CHUNKS * chunk_seconds:.0f}",
        "design.bundle-kib": str(MAX_BUNDLE_BYTES >> 10),
        "design.bundle-bytes": f"{MAX_BUNDLE_BYTES:,}",
        "design.bundle-header-bytes": str(HEADER_BYTES),
        "design.floor-step-minutes": f"{FLOOR_STEP / 60:g}",
        "design.floor-ceiling-days": str(FLOOR_CEILING_DAYS),
        "design.clock-slack-seconds": f"{CLOCK_SLACK_SECONDS:g}",
        "design.card-check-seconds": f"{CARD_CHECK_SECONDS:g}",
        "design.wipe-chunk-mib": str(shred.CHUNK >> 20),
        "design.wipe-yield-ms": f"{wipe._YIELD_SECONDS * 1000:g}",
        "design.wipe-after-boot-minutes": after_boot,  # the timer's
        "design.capture-buffer-seconds": f"{BUFFER_PERIODS * policy.period_seconds:.2f}",
        "design.remind-every-seconds": f"{REMIND_EVERY_SECONDS:g}",
        "design.remind-for-minutes": f"{REMIND_FOR_SECONDS / 60:g}",
        "design.listed-names": f"{MAX_LISTED:,}",
        "design.max-segments": str(MAX_SEGMENTS),
        "design.segment-max-gib": str(MAX_SEGMENT_BYTES >> 30),
        "design.manifest-read-mib": str(export._MAX_MANIFEST_BYTES >> 20),
        "design.age-header-line-kib": str(MAX_LINE_BYTES >> 10),
        "design.age-header-kib": str(MAX_HEADER_BYTES >> 10),
        "design.ledger-line-kib": str(MAX_LINE >> 10),
        "design.extract-read-mib": str(MAX_EXTRACT_BYTES >> 20),
        "design.watchdog-seconds": watchdog,  # systemd/consentbox.service's, not the code's
        "design.web-connections": str(server.MAX_CONNECTIONS),
        "design.web-event-streams": str(server.MAX_EVENT_STREAMS),
        "design.web-idle-seconds": f"{server.IDLE_SECONDS:g}",
        "design.web-request-seconds": f"{server.REQUEST_SECONDS:g}",
        "design.web-body-bytes": str(server.MAX_BODY),
        "design.hold-slack-seconds": f"{HOLD_SLACK_SECONDS:g}",
        "design.block-periods": str(BLOCK_PERIODS),
        "design.level-block-periods": str(LEVEL_BLOCK_PERIODS),
        # Levels below full scale, quoted after a minus sign ("−60 dBFS"), which a figure cannot begin with.
        "design.silence-floor-dbfs": f"{-SILENCE_FLOOR_DBFS:g}",
        "design.level-lit-dbfs": f"{-LEVEL_LIT_DBFS:g}",
        "design.level-shown-seconds": f"{LEVEL_SHOWN_SECONDS:g}",
        "design.seat-blink-hz": f"{1 / (2 * SEAT_BLINK_FRAMES * FRAME_SECONDS):g}",
    }


def default_figures() -> dict[str, str]:
    """The shipped defaults (box/defaults.toml, which `load_config` reads first) the docs quote."""
    config = load_config()
    policy = config.policy
    return {
        "defaults.default-parties": str(policy.default_parties),
        "defaults.max-parties": str(policy.max_parties),
        "defaults.consent-timeout-seconds": f"{policy.consent_timeout:g}",
        "defaults.pause-timeout-minutes": f"{policy.pause_timeout / 60:g}",
        "defaults.max-session-hours": f"{policy.max_session / 3600:g}",
        "defaults.max-session-gib": f"{policy.max_session * policy.rate * policy.frame_bytes / (1 << 30):.1f}",
        "defaults.record-hold-seconds": f"{policy.record_hold:g}",
        "defaults.end-hold-seconds": f"{policy.end_hold:g}",
        "defaults.withdraw-hold-seconds": f"{policy.withdraw_hold:g}",
        "defaults.withdraw-window-minutes": f"{policy.withdraw_window / 60:g}",
        "defaults.shared-tap-gap-seconds": f"{policy.shared_tap_gap:g}",
        "defaults.notice-timeout-seconds": f"{policy.notice_timeout:g}",
        "defaults.retention-days": str(policy.retention_days),
        "defaults.bundle-ahead-days": str(policy.bundle_ahead_days),
        "defaults.rate-khz": f"{policy.rate / 1000:g}",
        "defaults.period-frames": str(policy.period_frames),
        "defaults.segment-gib": f"{policy.segment_bytes / (1 << 30):g}",
        "defaults.period-ms": f"{policy.period_seconds * 1000:.0f}",
        "defaults.bounce-ms": f"{config.panel.bounce_time * 1000:g}",
        "defaults.silence-alert-seconds": f"{policy.silence_alert:g}",
    }


def test_every_mark_follows_a_figure_and_names_a_source():
    assert problems() == []


def test_every_source_names_a_test_that_exists():
    for name, source in SOURCES.items():
        path, test = source.test.split("::")
        assert re.search(rf"^def {test}\(", (ROOT / path).read_text(encoding="utf-8"), re.MULTILINE), \
            f"source {name}: {source.test} is no test"


def test_the_design_constants_quoted_are_the_code_s():
    check_quoted(design_figures())


def test_the_defaults_quoted_are_the_defaults_file_s():
    check_quoted(default_figures())


def test_the_timings_quoted_are_the_committed_bench_report_s():
    check_quoted(printed_figures((ROOT / BENCH_REPORT).read_text(encoding="utf-8")))


def test_the_timings_quoted_from_before_issue_20_are_its_report_s():
    before = printed_figures((ROOT / BENCH_BEFORE_REPORT).read_text(encoding="utf-8"))
    check_quoted({f"bench-before.{name.removeprefix('bench.')}": value for name, value in before.items()})


# --- The check can fail --------------------------------------------------------------------------------------


@pytest.fixture
def docs_copy(tmp_path: Path) -> Path:
    """A copy of every page the check reads, under tmp_path as under the checkout's root."""
    for pattern in DOCS:
        for page in ROOT.glob(pattern):
            copy = tmp_path / page.relative_to(ROOT)
            copy.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(page, copy)
    return tmp_path


def _quoted(root: Path, name: str) -> tuple[Path, str]:
    """The page under `root` of the first quote of `name`, and the text of that quote with its mark."""
    quote = next(quote for quote in quotes(root) if quote.name == name)
    return root / quote.where.split(":")[0], f"{quote.figure}<!-- figure: {name} -->"


def test_a_figure_the_docs_quote_otherwise_fails_the_check_naming_its_line(docs_copy: Path):
    page, quoted = _quoted(docs_copy, "design.chunk-bytes")
    page.write_text(page.read_text(encoding="utf-8").replace(quoted, "65,535<!-- figure: design.chunk-bytes -->", 1),
                    encoding="utf-8")
    found = disagreements(design_figures(), docs_copy)
    assert len(found) == 1 and "design.chunk-bytes is 65,535 here" in found[0] and "65,536" in found[0], found
    with pytest.raises(AssertionError, match="design.chunk-bytes is 65,535 here"):
        check_quoted(design_figures(), docs_copy)
    assert disagreements(design_figures()) == [], "the checkout's own page must be untouched"


def test_a_quote_of_a_figure_its_command_does_not_print_fails_the_check(docs_copy: Path):
    page, quoted = _quoted(docs_copy, "defaults.record-hold-seconds")
    page.write_text(page.read_text(encoding="utf-8").replace(quoted, "1<!-- figure: defaults.record-hold -->", 1),
                    encoding="utf-8")
    [found] = disagreements(default_figures(), docs_copy)
    assert "quotes defaults.record-hold, which" in found


def test_a_mark_after_no_figure_or_of_no_known_source_is_a_problem(docs_copy: Path):
    page = docs_copy / "docs" / "product.md"
    page.write_text(page.read_text(encoding="utf-8") + "\nNo figure here <!-- figure: design.chunk-kib -->, and"
                    " 7<!-- figure: guesswork.days -->.\n", encoding="utf-8")
    found = problems(docs_copy)
    assert len(found) == 2, found
    assert "the mark of design.chunk-kib follows no figure" in found[0]
    assert "guesswork.days names no source" in found[1]


def test_a_figure_is_the_text_right_before_its_mark(tmp_path: Path):
    (tmp_path / "README.md").write_text(
        "a (65<!-- figure: x.a -->), 1.05<!-- figure: x.b -->–1.80<!-- figure: x.c --> MiB, 8.3<!-- figure: x.d -->×\n"
        "shown as code, a mark marks nothing: `7<!-- figure: x.e -->`, and code may run `over\n"
        "a line's end` before 9<!-- figure: x.f -->\n", encoding="utf-8")
    assert [(quote.name, quote.figure, quote.where) for quote in quotes(tmp_path)] == [
        ("x.a", "65", "README.md:1"), ("x.b", "1.05", "README.md:1"), ("x.c", "1.80", "README.md:1"),
        ("x.d", "8.3", "README.md:1"), ("x.f", "9", "README.md:3")]
    assert printed_figures("figure x.a = 65\nnot a figure\nfigure x.b = 1.05") == {"x.a": "65", "x.b": "1.05"}
