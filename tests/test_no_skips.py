"""No test skips: a test that needs root or a tool fails without it (README.md, "Dependencies").

A skipped test passes a run silently: CI would go green without the card, chroot or interop checks it
was meant to make. This finds, in every module under tests/, any use of pytest's skipping (`pytest.skip`,
`pytest.importorskip`, `pytest.mark.skip`, `pytest.mark.skipif`, `pytest.mark.xfail`, and the same names
imported from pytest) and unittest's (`unittest.skip…`, `SkipTest`), read with ast.
"""

from __future__ import annotations

import ast
from pathlib import Path

TESTS = Path(__file__).parent
SKIPPING = frozenset({"skip", "skipif", "importorskip", "xfail", "skipIf", "skipUnless", "SkipTest"})


def skips(source: str, filename: str) -> list[str]:
    """`file:line name` of each use of a skipping name in a module's source."""
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(source, filename)):
        if isinstance(node, ast.Attribute) and node.attr in SKIPPING:
            found.append((node.lineno, node.attr))
        elif isinstance(node, ast.ImportFrom) and node.module in ("pytest", "unittest", "_pytest.outcomes"):
            found += [(node.lineno, alias.name) for alias in node.names if alias.name in SKIPPING]
    return [f"{filename}:{line} {name}" for line, name in sorted(found)]


def test_no_test_skips() -> None:
    found = [hit for path in sorted(TESTS.rglob("*.py")) if path != Path(__file__)
             for hit in skips(path.read_text(encoding="utf-8"), str(path.relative_to(TESTS.parent)))]
    assert found == [], "a test that lacks what it needs must fail, not skip:\n" + "\n".join(found)


def test_each_way_of_skipping_is_found() -> None:
    source = ("import pytest, unittest\nfrom pytest import importorskip\n"
              "pytest.skip('no root')\n@pytest.mark.skipif(True, reason='x')\ndef f(): pass\n"
              "@pytest.mark.xfail\ndef g(): pass\n@unittest.skip('x')\ndef h(): pass\nraise unittest.SkipTest\n"
              "pytest.importorskip('alsaaudio')\n")
    assert skips(source, "t.py") == ["t.py:2 importorskip", "t.py:3 skip", "t.py:4 skipif", "t.py:6 xfail",
                                     "t.py:8 skip", "t.py:10 SkipTest", "t.py:11 importorskip"]
