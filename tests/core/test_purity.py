"""The core is pure: it imports only pure standard-library modules and itself."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import consentbox.core

CORE = Path(consentbox.core.__file__).parent
PURE_STDLIB = {"__future__", "collections.abc", "dataclasses", "enum", "math", "typing"}


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, f"{path.name}: relative import"
            names.add(node.module or "")
    return names


def test_core_modules_import_only_pure_stdlib_and_the_core():
    files = sorted(CORE.glob("*.py"))
    assert len(files) >= 8
    for path in files:
        for name in imported_modules(path):
            assert name in PURE_STDLIB or name.startswith("consentbox.core."), f"{path.name} imports {name}"


def test_core_modules_do_no_io_of_their_own():
    # The import checks miss builtins: print and open need no import. `make diagram` writes the page.
    for path in sorted(CORE.glob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Name):
                assert node.id not in {"print", "open", "input", "__name__"}, f"{path.name}:{node.lineno} {node.id}"


def test_importing_the_core_loads_no_io_or_clock_module():
    # The AST check above misses imports done by what the core imports; ask a fresh interpreter,
    # importing every core module. (tests/test_layers.py checks it loads no third-party library.)
    modules = ", ".join(f"consentbox.core.{path.stem}" for path in sorted(CORE.glob("*.py")) if path.stem != "__init__")
    code = (
        "import sys, json; before = set(sys.modules)\n"
        f"import {modules}\n"
        "print(json.dumps(sorted(set(sys.modules) - before)))"
    )
    loaded = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout
    forbidden = {"time", "datetime", "os", "io", "socket", "threading", "random", "secrets", "subprocess"}
    assert forbidden.isdisjoint(set(__import__("json").loads(loaded)))
