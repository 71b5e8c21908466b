"""The leak scan: it finds any 4 KiB run of the input, at any offset, and nothing else."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.support.plaintext import RUN_BYTES, files_holding

INPUT = os.urandom(64 * 1024)


@pytest.mark.parametrize("start", [0, 1, 7, 2047, 2048, 40_001, len(INPUT) - RUN_BYTES])
@pytest.mark.parametrize("offset", [0, 3, 4096 + 5])
def test_a_run_of_the_input_is_found_wherever_it_starts_and_wherever_it_lands(
    tmp_path: Path, start: int, offset: int
) -> None:
    leak = tmp_path / "deep" / "leak"
    leak.parent.mkdir()
    leak.write_bytes(os.urandom(offset) + INPUT[start : start + RUN_BYTES] + os.urandom(100))
    assert files_holding(INPUT, [tmp_path]) == [leak]
    assert files_holding(INPUT, [leak]) == [leak]


def test_less_than_half_a_run_and_unrelated_bytes_are_not_found(tmp_path: Path) -> None:
    (tmp_path / "short").write_bytes(os.urandom(5000) + INPUT[1000:3047] + os.urandom(5000))
    (tmp_path / "other").write_bytes(os.urandom(len(INPUT)))
    (tmp_path / "silence").write_bytes(bytes(len(INPUT)))
    assert files_holding(INPUT, [tmp_path]) == []


def test_skipped_paths_and_everything_under_them_are_left_out(tmp_path: Path) -> None:
    for name in ("export/a.wav", "export/deeper/b.wav", "kept.wav"):
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(INPUT)
    assert files_holding(INPUT, [tmp_path], skip=[tmp_path / "export"]) == [tmp_path / "kept.wav"]
    assert files_holding(INPUT, [tmp_path], skip=[tmp_path / "export", tmp_path / "kept.wav"]) == []


def test_files_unchanged_since_the_trial_began_are_left_out(tmp_path: Path) -> None:
    (tmp_path / "new").write_bytes(INPUT)
    assert files_holding(INPUT, [tmp_path], changed_since=os.stat(tmp_path / "new").st_ctime + 5) == []
    assert files_holding(INPUT, [tmp_path], changed_since=os.stat(tmp_path / "new").st_ctime) == [tmp_path / "new"]
