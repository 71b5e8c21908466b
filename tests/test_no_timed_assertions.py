"""No test asserts on how long something took: a slow machine must not fail a test, only a hang may.

What it catches, and only this: an `assert` whose condition compares with a number either a difference of
calls to `time.monotonic()`, `time.time()` or `time.perf_counter()` (`time.monotonic() - began < 1`), or a
name assigned such a difference earlier in the same function (`took = time.monotonic() - began`, then
`assert took >= 1.5`), where `began` may be a call or any name. It does not follow values through other
functions, attributes or containers. A deadline in a polling loop (`assert time.monotonic() < deadline`)
is a bounded wait, not a timed assertion, and is allowed.
"""

from __future__ import annotations

import ast
from pathlib import Path

TESTS = Path(__file__).parent
CLOCKS = frozenset({"monotonic", "time", "perf_counter"})


def _is_clock_call(node: ast.expr) -> bool:
    """`time.monotonic()`, `time.time()` or `time.perf_counter()`."""
    return (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in CLOCKS
            and isinstance(node.func.value, ast.Name) and node.func.value.id == "time")


def _is_elapsed(node: ast.expr, elapsed_names: set[str]) -> bool:
    """A clock call minus something, or a name assigned one in the same function."""
    if isinstance(node, ast.Name):
        return node.id in elapsed_names
    return isinstance(node, ast.BinOp) and isinstance(node.op, ast.Sub) and _is_clock_call(node.left)


def _is_number(node: ast.expr) -> bool:
    if isinstance(node, ast.UnaryOp):
        node = node.operand
    return isinstance(node, ast.Constant) and type(node.value) in (int, float)


def _timed_comparisons(test: ast.expr, elapsed_names: set[str]) -> bool:
    for compare in (n for n in ast.walk(test) if isinstance(n, ast.Compare)):
        sides = [compare.left, *compare.comparators]
        if any(_is_elapsed(s, elapsed_names) for s in sides) and any(_is_number(s) for s in sides):
            return True
    return False


def timed_assertions(source: str, filename: str) -> list[str]:
    """`file:line` of each timed assertion (see the module's words) in a module's source."""
    found = []
    scopes = [n for n in ast.walk(ast.parse(source, filename)) if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)]
    for scope in scopes:
        elapsed_names = {target.id for node in ast.walk(scope) if isinstance(node, ast.Assign)
                         and _is_elapsed(node.value, set()) for target in node.targets if isinstance(target, ast.Name)}
        found += [f"{filename}:{node.lineno}" for node in ast.walk(scope)
                  if isinstance(node, ast.Assert) and _timed_comparisons(node.test, elapsed_names)]
    return sorted(set(found))


def test_no_test_asserts_on_elapsed_time():
    modules = sorted(TESTS.rglob("*.py"))
    assert len(modules) > 20, "the test modules were not found"
    found = [hit for path in modules for hit in timed_assertions(path.read_text(), str(path.relative_to(TESTS)))]
    assert found == [], f"timed assertions (bound the wait with a timeout that fails on a hang instead): {found}"


def test_a_planted_timed_assertion_is_found(tmp_path):
    planted = tmp_path / "test_planted.py"
    planted.write_text(
        "import time\n"
        "def test_fast():\n"
        "    began = time.monotonic()\n"
        "    assert time.monotonic() - began < 1\n"
        "def test_slow_enough():\n"
        "    began = time.perf_counter()\n"
        "    took = time.perf_counter() - began\n"
        "    assert took >= 1.5 and True\n"
        "def test_a_deadline_is_a_bounded_wait():\n"
        "    deadline = time.monotonic() + 5\n"
        "    assert time.monotonic() < deadline\n"
        "    assert time.time() > 0\n"
    )
    assert timed_assertions(planted.read_text(), "test_planted.py") == ["test_planted.py:4", "test_planted.py:8"]
