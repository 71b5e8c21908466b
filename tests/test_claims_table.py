"""docs/claims.md, the table of every promise in the documents and what backs it (issue 22, part G).

Every row of a claims table (a table whose header is `| promise | backed by | status |`) must:
- name only tests that exist: each `tests/….py::name` in it is a file under tests/ that defines `name` (a
  function, or `Class::method`), read with ast, never by running pytest; a `[case]` after it is not checked;
- have a status of STATUSES, and a `partly` or `VM` one must say after a colon what is missing;
- back a `backed` row with a test or a `make` command;
- be `pending` exactly when its backing names a `PENDING-<part>` marker (parts A to F of issue 22).
The counts line at the end of the page must be the table's, and every document the page covers must have
its table. While PENDING_ALLOWED is here, pending rows are allowed; delete it (or set it False) once the
parts of issue 22 have landed, and a pending row or a `PENDING-` marker left anywhere fails the test.
"""

from __future__ import annotations

import ast
import functools
import re
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

PENDING_ALLOWED = False

REPO = Path(__file__).resolve().parents[1]
CLAIMS = REPO / "docs" / "claims.md"
HEADER = ("promise", "backed by", "status")
STATUSES = ("backed", "partly", "VM", "open", "pending")
#: Statuses that must say, after a colon, what is missing or where it is to be shown.
EXPLAINED = ("partly", "VM")
#: A test node id in backticks: the file, then `::Class::name` parts, then an optional `[case]`.
NODE = re.compile(r"`(tests/[\w/]+\.py)((?:::\w+)*)(?:\[[^\]`]*\])?`")
MARKER = re.compile(r"PENDING-[A-F]\b")
#: The documents whose promises the page lists, each under a heading of its own path.
DOCUMENTS = ("README.md", "BENCHMARKS.md", "deploy/README.md", "systemd/README.md", "packaging/README.md")


def pending_allowed() -> bool:
    """Whether pending rows may stand: until PENDING_ALLOWED is deleted from this module (or set False)."""
    return bool(globals().get("PENDING_ALLOWED", False))


def cells(line: str) -> list[str]:
    """The cells of a table line, split at the pipes that are not escaped (`\\|` stays inside a cell)."""
    return [cell.strip() for cell in re.split(r"(?<!\\)\|", line.strip())[1:-1]]


def claim_rows(text: str) -> Iterator[tuple[int, list[str]]]:
    """(line number, cells) of every body row of every claims table in `text`."""
    in_claims = False
    for number, line in enumerate(text.splitlines(), 1):
        if not line.startswith("|"):
            in_claims = False
            continue
        row = cells(line)
        if tuple(row) == HEADER:
            in_claims = True
        elif in_claims and not set("".join(row)) <= set("-: "):  # not the line under the header
            yield number, row


def status_of(row: list[str]) -> str:
    """The status word of a row: its last cell up to a colon."""
    return row[-1].split(":", 1)[0].strip()


@functools.cache
def defined_tests(path: Path) -> frozenset[str]:
    """`name` for each function of the module at `path`, `Class::name` for each method of its classes."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    names: set[str] = set()

    def collect(body: list[ast.stmt], prefix: str) -> None:
        for node in body:
            if isinstance(node, ast.ClassDef):
                collect(node.body, f"{prefix}{node.name}::")
            elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                names.add(prefix + node.name)

    collect(tree.body, "")
    return frozenset(names)


def missing_tests(text: str, repo: Path) -> Iterator[str]:
    """Each node id in `text` whose file is not under `repo`, or whose file does not define it."""
    for path, names in NODE.findall(text):
        module = repo / path
        if not module.is_file():
            yield f"{path} does not exist"
        elif names and names.removeprefix("::") not in defined_tests(module):
            yield f"{path} defines no {names.removeprefix('::')}"


def row_problems(number: int, row: list[str], repo: Path, *, pending: bool) -> list[str]:
    """What is wrong with one row of the table (line `number`); `pending`: whether pending rows may stand."""
    where = f"docs/claims.md line {number}"
    if len(row) != len(HEADER):
        return [f"{where}: {len(row)} cells, not {len(HEADER)} (write a | inside a cell as \\|)"]
    backing, status = row[1], row[2]
    kind = status_of(row)
    problems = [f"{where}: {missing}" for missing in missing_tests(" ".join(row), repo)]
    if kind not in STATUSES:
        problems.append(f"{where}: status {kind!r} is not one of {', '.join(STATUSES)}")
    if kind in EXPLAINED and not status.partition(":")[2].strip():
        problems.append(f"{where}: a {kind} row says after a colon what is missing")
    if kind == "backed" and not (NODE.search(backing) or "`make " in backing):
        problems.append(f"{where}: a backed row names the test or the `make` command that backs it")
    if (kind == "pending") != bool(MARKER.search(backing)):
        problems.append(f"{where}: a pending row, and only a pending row, names PENDING-<part> where its test goes")
    if kind == "pending" and not pending:
        problems.append(f"{where}: still pending: name the test its part of issue 22 added, and its status")
    return problems


def table_problems(text: str, repo: Path, *, pending: bool) -> list[str]:
    """What is wrong with the claims tables of `text`, row by row; and any PENDING- marker once none may stand."""
    problems = [problem for number, row in claim_rows(text)
                for problem in row_problems(number, row, repo, pending=pending)]
    if not pending and MARKER.search(text):
        problems.append("docs/claims.md still holds a PENDING- marker")
    return problems


def counts_line(text: str) -> str:
    """The page's last line as it must read: how many rows have each status."""
    counts = Counter(status_of(row) for _, row in claim_rows(text))
    each = ", ".join(f"{counts[status]} {status}" for status in STATUSES)
    return f"Counts: {sum(counts.values())} promises: {each}."


def uncovered_documents(text: str, repo: Path) -> list[str]:
    """The documents the page must cover that have no `## <path>` heading in `text`."""
    documents = [*DOCUMENTS, *(str(path.relative_to(repo)) for path in sorted((repo / "docs").glob("*.md"))
                               if path.name != "claims.md")]
    headings = set(re.findall(r"^## (\S+)$", text, flags=re.MULTILINE))
    return [document for document in documents if document not in headings]


# -- the page as it is ----------------------------------------------------------------------------


def test_every_row_names_tests_that_exist_and_a_status_it_may_have():
    text = CLAIMS.read_text(encoding="utf-8")
    assert len(list(claim_rows(text))) > 200, "the claims tables were not found"
    assert not (problems := table_problems(text, REPO, pending=pending_allowed())), "\n".join(problems)


def test_the_counts_line_is_the_tables():
    text = CLAIMS.read_text(encoding="utf-8")
    assert counts_line(text) in text.splitlines(), f"the counts line should read: {counts_line(text)}"


def test_every_document_has_its_table():
    assert not (missing := uncovered_documents(CLAIMS.read_text(encoding="utf-8"), REPO)), missing


# -- the checks can fail: one planted fault at a time ----------------------------------------------

HEAD = "## docs/x.md\n\n| promise | backed by | status |\n|---|---|---|\n"
REAL = "`tests/test_claims_table.py::test_the_counts_line_is_the_tables`"


def planted(*rows: str, pending: bool = True) -> list[str]:
    return table_problems(HEAD + "".join(f"{row}\n" for row in rows), REPO, pending=pending)


def test_a_good_row_of_each_status_passes():
    assert planted(f"| a | {REAL} | backed |", "| a | `make bench` | backed |", f"| a | {REAL} | partly: half |",
                   "| a | — | VM: issue 18 |", "| a | — | open |", "| a | PENDING-A | pending |",
                   "| a `\\|` b | — | open |") == []


@pytest.mark.parametrize(("row", "problem"), [
    ("| a | `tests/no_such_file.py::test_x` | backed |", "tests/no_such_file.py does not exist"),
    ("| a | `tests/test_claims_table.py::test_no_such_test` | backed |",
     "tests/test_claims_table.py defines no test_no_such_test"),
    ("| a | `tests/test_claims_table.py::Nothing::test_x[case]` | backed |",
     "tests/test_claims_table.py defines no Nothing::test_x"),
    (f"| a | {REAL} | proven |", "status 'proven' is not one of"),
    (f"| a | {REAL} | partly |", "a partly row says after a colon what is missing"),
    ("| a | — | backed |", "a backed row names the test"),
    ("| a | — | pending |", "a pending row, and only a pending row"),
    (f"| a | {REAL}, PENDING-C | backed |", "a pending row, and only a pending row"),
    ("| a | b | c | open |", "4 cells, not 3"),
], ids=["no-file", "no-function", "no-method", "bad-status", "partly-unexplained", "backed-by-nothing",
        "pending-without-marker", "marker-not-pending", "unescaped-pipe"])
def test_a_planted_fault_is_reported(row: str, problem: str):
    [found] = planted(row)
    assert found.startswith("docs/claims.md line 5: ") and problem in found, found


def test_pending_rows_and_markers_fail_once_pending_is_no_longer_allowed():
    assert planted("| a | PENDING-B | pending |", pending=False) == [
        "docs/claims.md line 5: still pending: name the test its part of issue 22 added, and its status",
        "docs/claims.md still holds a PENDING- marker",
    ]


def test_the_counts_line_counts_each_status():
    text = HEAD + f"| a | {REAL} | backed |\n| b | — | open |\n| c | — | open |\n"
    assert counts_line(text) == "Counts: 3 promises: 1 backed, 0 partly, 0 VM, 2 open, 0 pending."


def test_a_document_without_its_heading_is_reported():
    assert "BENCHMARKS.md" in uncovered_documents("## README.md\n", REPO)
    assert "docs/product.md" in uncovered_documents("## README.md\n", REPO)
    assert "docs/claims.md" not in uncovered_documents("", REPO)
