"""The layers of the consentbox package, and the imports that keep them apart (issue 14, point 2).

From the bottom up:

    core          the session machine and policy: pure, no I/O, no clock, standard library only
                  (tests/core/test_purity.py checks which standard-library modules it may use)
    storage       durable writes, atomic replace, canonical and strict JSON, ids
    crypto        age v1 and signing: the only package that touches `cryptography.hazmat`
    state         the box's state directory: its files, the session lock, the clock floor
    hw            ports (Protocols) and errors, the card (standard library), and the gpiozero and
                  ALSA adapters, which only the box and the simulation may see
    recording     manifest, session, journal, recovery, WAV
    ledger        the signed ledger, its extracts, and the card's copies of them
    retention     the retention index, shredding, wiping
    provisioning  bundles and their installation
    box           the daemon;  jobs: one-shot provisioning and wipe;  cli: the `consentbox` command
    admin         the workstation's `consentbox-admin`: never the box's hardware, state or daemon
    sim           the simulation (a product feature);  testing: test doubles
    consentbox    the package's __init__ (__version__, BUILD_DATE), which any layer but core and hw may import

Why: an import drags in everything the imported module imports. A lower layer that imports a
higher one makes the layers one; the admin tool must run on a workstation without gpiozero,
pyalsaaudio or systemd; the core must stay testable without any of them; only crypto may reach into
cryptography's hazmat; and the simulation and test doubles must never be reachable from the box.

MAY_IMPORT is the rule, as data, as strict as today's code allows. Where today's code breaks the
principles, ALLOWED_EXCEPTIONS names the single (module, import) pair, so it stays visible; an
exception the code no longer needs fails the test, so it is removed.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from collections.abc import Iterable, Iterator, Mapping, Set
from dataclasses import dataclass
from pathlib import Path

import pytest

import consentbox

PACKAGE = Path(consentbox.__file__).parent
ROOT = "consentbox"

#: Who may import whom. Names are relative to consentbox ("hw.ports" is consentbox.hw.ports), and
#: "consentbox" is the package's own __init__. A key names a package or a module, and the longest key
#: that covers a module applies; a value allows that package or module and everything beneath it.
#: Imports inside functions and under `if TYPE_CHECKING:` count like any other.
#: Each layer may use what it uses today and no more: an import the principles allow but no code
#: makes yet (say recording -> hw.card) must be added here, on purpose.
MAY_IMPORT: dict[str, frozenset[str]] = {
    "consentbox": frozenset(),
    "core": frozenset({"core"}),
    "storage": frozenset({"consentbox", "storage", "core"}),
    "crypto": frozenset({"consentbox", "crypto", "core", "storage"}),
    "state": frozenset({"consentbox", "state", "core", "storage"}),
    # hw module by module: ports, errors and card see only the core; each adapter the core and the
    # ports or the errors. Never each other otherwise, nor consentbox's __init__.
    "hw": frozenset({"core"}),
    "hw.gpio": frozenset({"core", "hw.ports"}),
    "hw.alsa": frozenset({"core", "hw.errors", "hw.held_audio"}),  # the buffer it holds audio in, zeroed
    "recording": frozenset({"consentbox", "recording", "core", "storage", "state", "crypto", "hw.ports", "hw.errors"}),
    "ledger": frozenset({"consentbox", "ledger", "core", "storage", "crypto", "hw.ports", "recording"}),
    "retention": frozenset({"consentbox", "retention", "core", "storage", "state", "recording", "ledger", "hw.card"}),
    "provisioning": frozenset(
        {"consentbox", "provisioning", "core", "storage", "state", "crypto", "ledger", "retention"}
    ),
    "box": frozenset(
        {"consentbox", "box", "core", "storage", "state", "crypto", "hw", "recording", "ledger", "retention",
         "provisioning"}
    ),
    "jobs": frozenset(
        {"consentbox", "jobs", "box", "core", "state", "hw.ports", "hw.card", "retention", "provisioning"}
    ),
    "cli": frozenset({"consentbox", "cli", "jobs", "box", "core", "crypto", "state", "sim"}),
    "admin": frozenset(
        {"consentbox", "admin", "core", "storage", "crypto", "recording", "ledger", "provisioning.bundle"}
    ),
    # The simulated box runs what systemd runs beside a box: the wipe job when its timer fires (an `advance`).
    "sim": frozenset({"consentbox", "sim", "admin", "box", "core", "storage", "crypto", "state", "hw", "provisioning",
                      "jobs", "retention"}),
    "testing": frozenset({"consentbox", "testing", "core", "hw.ports", "hw.errors"}),
}

#: Imports that break the principles today, one (module, import) pair each, with the reason. Remove
#: a pair when the code no longer needs it (test_every_exception_to_the_matrix_is_still_needed says so).
ALLOWED_EXCEPTIONS: dict[tuple[str, str], str] = {
    # The ALSA adapter may see the core, ports and errors only; its libasound fallback is a module
    # of its own, which it loads. Fold the fallback into hw/alsa.py, or make this a rule.
    ("hw.alsa", "hw.alsa_ctypes"): "pyalsaaudio 0.8.4 cannot read on Python 3.10+ (README, Dependencies)",
}

#: Libraries (not ours) that only some layers may import; a name covers its submodules.
LIBRARIES: dict[str, frozenset[str]] = {
    "cryptography": frozenset({"crypto"}),
    "gpiozero": frozenset({"hw.gpio", "box.daemon", "box.wiring", "sim"}),
    "alsaaudio": frozenset({"hw.alsa"}),
    # hw.alsa_ctypes: bookworm's pyalsaaudio cannot read; storage.file_system_sync: os has no syncfs(2).
    "ctypes": frozenset({"hw.alsa_ctypes", "storage.file_system_sync"}),
    "systemd": frozenset({"box.logs", "box.notify"}),
}

#: What the workstation's admin tool must never load, itself or through what it imports.
ADMIN_NEVER = (
    "gpiozero", "alsaaudio", "systemd", "consentbox.hw", "consentbox.box", "consentbox.sim",
    "consentbox.jobs", "consentbox.cli", "consentbox.testing", "consentbox.state",
)

#: What importing the core must never load, besides the rest of consentbox (the standard-library
#: modules it must not load are in tests/core/test_purity.py).
CORE_NEVER = ("gpiozero", "alsaaudio", "systemd", "cryptography")


@dataclass(frozen=True)
class Import:
    """`module` imports `target` (both dotted) at line `line` of `path` (consentbox/…)."""

    path: Path
    line: int
    module: str
    target: str
    type_checking: bool

    def __str__(self) -> str:
        guarded = " (under TYPE_CHECKING)" if self.type_checking else ""
        return f"{self.path}:{self.line}: {self.module} imports {self.target}{guarded}"


# -- reading the imports ---------------------------------------------------------------------


def module_name(path: Path, package: Path) -> str:
    """consentbox/hw/card.py -> consentbox.hw.card; consentbox/hw/__init__.py -> consentbox.hw."""
    parts = path.relative_to(package.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules_of(package: Path) -> dict[str, Path]:
    """Every module under the package directory, by dotted name."""
    return {module_name(path, package): path for path in sorted(package.rglob("*.py"))}


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _import_nodes(node: ast.AST, guarded: bool = False) -> Iterator[tuple[ast.Import | ast.ImportFrom, bool]]:
    """Every import statement, wherever it is (functions too), and whether `if TYPE_CHECKING:` guards it."""
    if isinstance(node, (ast.Import, ast.ImportFrom)):
        yield node, guarded
    elif isinstance(node, ast.If) and _is_type_checking(node.test):
        for child in node.body:
            yield from _import_nodes(child, True)
        for child in node.orelse:
            yield from _import_nodes(child, guarded)
    else:
        for child in ast.iter_child_nodes(node):
            yield from _import_nodes(child, guarded)


def _from_target(base: str, name: str, modules: Set[str]) -> str:
    """What `from base import name` imports: base.name if that is one of our modules, else base;
    from a library, base.name (so `from cryptography import hazmat` is cryptography.hazmat)."""
    if name == "*" or (f"{base}.{name}" not in modules and base in modules):
        return base
    return f"{base}.{name}"


def imports_of(name: str, path: Path, shown: Path, modules: Set[str]) -> Iterator[Import]:
    """The imports of module `name` (file `path`, named `shown` in messages), relative ones made absolute."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    package = (name if path.name == "__init__.py" else name.rpartition(".")[0]).split(".")
    for node, guarded in _import_nodes(tree):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        else:
            anchor = package[: len(package) - node.level + 1] if node.level else []
            base = ".".join([*anchor, *([node.module] if node.module else [])])
            targets = [_from_target(base, alias.name, modules) for alias in node.names]
        for target in targets:
            yield Import(shown, node.lineno, name, target, guarded)


def all_imports(package: Path) -> list[Import]:
    modules = modules_of(package)
    return [
        found
        for name, path in modules.items()
        for found in imports_of(name, path, path.relative_to(package.parent), modules.keys())
    ]


# -- the rules -------------------------------------------------------------------------------


def short(name: str) -> str:
    """consentbox.hw.card -> hw.card; consentbox itself stays consentbox."""
    return name.removeprefix(f"{ROOT}.")


def covers(prefix: str, name: str) -> bool:
    return name == prefix or name.startswith(f"{prefix}.")


def within(name: str, prefixes: Iterable[str]) -> bool:
    return any(covers(prefix, name) for prefix in prefixes)


def rule_for(module: str, matrix: Mapping[str, Set[str]]) -> str | None:
    """The most specific key of the matrix that covers `module` (a short name), or None."""
    return max((key for key in matrix if covers(key, module)), key=len, default=None)


def layer_violations(
    package: Path,
    matrix: Mapping[str, Set[str]] = MAY_IMPORT,
    exceptions: Mapping[tuple[str, str], str] = ALLOWED_EXCEPTIONS,
) -> list[str]:
    """One line per import of a consentbox module that the matrix forbids, and per module in no layer."""
    modules = modules_of(package)
    problems = [f"{name} is in no layer: add it to MAY_IMPORT" for name in modules if not rule_for(short(name), matrix)]
    for found in all_imports(package):
        key = rule_for(short(found.module), matrix)
        if key is None or not covers(ROOT, found.target) or (short(found.module), short(found.target)) in exceptions:
            continue
        if not within(short(found.target), matrix[key]):
            problems.append(f"{found}; {key} may import only {', '.join(sorted(matrix[key])) or 'nothing'}")
    return problems


def unused_exceptions(package: Path, exceptions: Mapping[tuple[str, str], str] = ALLOWED_EXCEPTIONS) -> list[str]:
    made = {(short(found.module), short(found.target)) for found in all_imports(package)}
    return [f"{module} no longer imports {target}: remove the exception" for module, target in exceptions.keys() - made]


def importers_outside(package: Path, imported: str, allowed: Set[str]) -> list[str]:
    """Imports of `imported` (a dotted name, and what is beneath it) by modules outside the `allowed` layers."""
    return [
        str(found)
        for found in all_imports(package)
        if covers(imported, found.target) and not within(short(found.module), allowed)
    ]


def library_violations(package: Path, libraries: Mapping[str, Set[str]] = LIBRARIES) -> list[str]:
    return [
        f"{problem}; only {', '.join(sorted(allowed))} may import {library}"
        for library, allowed in libraries.items()
        for problem in importers_outside(package, library, allowed)
    ]


# -- what a fresh interpreter loads ------------------------------------------------------------

#: Run by a fresh interpreter: puts argv[1] first on the path, imports the modules named after it,
#: and prints {each module this loaded: the module whose import statement first asked for it}.
_WITNESS = """
import importlib, json, sys

sys.path.insert(0, sys.argv[1])
asked_by = {}

class Witness:
    @staticmethod
    def find_spec(name, path=None, target=None):
        frame = sys._getframe(1)
        while frame is not None and frame.f_globals.get("__name__", "").startswith(("importlib", "_frozen_importlib")):
            frame = frame.f_back
        asked_by.setdefault(name, "?" if frame is None else frame.f_globals.get("__name__", "?"))
        return None

sys.meta_path.insert(0, Witness)
before = set(sys.modules)
for name in sys.argv[2:]:
    importlib.import_module(name)
print(json.dumps({name: asked_by.get(name, "?") for name in sorted(set(sys.modules) - before)}))
"""


def loaded_by_importing(package: Path, modules: list[str]) -> dict[str, str]:
    """{each module newly loaded: the module that asked for it} after importing `modules` in a fresh interpreter."""
    command = [sys.executable, "-I", "-c", _WITNESS, str(package.parent), *modules]
    result = subprocess.run(command, capture_output=True, text=True, cwd=package.parent, timeout=120)
    assert result.returncode == 0, f"importing {' '.join(modules)} failed:\n{result.stderr}"
    return json.loads(result.stdout)


def chain(name: str, asked_by: Mapping[str, str]) -> str:
    """consentbox.admin.cli -> consentbox.ledger -> consentbox.ledger.mirror -> consentbox.hw.card"""
    links = [name]
    while asked_by.get(links[-1], "?") not in ("__main__", "?") and len(links) < 50:
        links.append(asked_by[links[-1]])
    return " -> ".join(reversed(links))


def forbidden_loads(package: Path, modules: list[str], never: tuple[str, ...]) -> list[str]:
    """One line per forbidden module that importing `modules` loads, with the chain of imports that loads
    it; the forbidden modules that those load in turn are only named, on one last line."""
    asked_by = loaded_by_importing(package, modules)
    forbidden = sorted(name for name in asked_by if name.startswith(never))
    first = [name for name in forbidden if asked_by[name] not in forbidden]
    problems = [f"{name} is loaded: {chain(name, asked_by)}" for name in first]
    if beneath := [name for name in forbidden if name not in first]:
        problems.append(f"and, loaded by those: {', '.join(beneath)}")
    return problems


def reachable_imports(package: Path, modules: list[str]) -> dict[str, str]:
    """{each module that importing `modules` may load, ours or a library's: the module that imports it first},
    following every import statement of ours that runs (in functions too: a command imports what it needs
    when it runs), but not those under TYPE_CHECKING; a module also loads the packages above it."""
    imported: dict[str, list[str]] = {}
    for found in all_imports(package):
        if not found.type_checking:
            parts = found.target.split(".")
            parents = [".".join(parts[:n]) for n in range(1, len(parts) + 1)] if covers(ROOT, found.target) else []
            imported.setdefault(found.module, []).extend(parents or [found.target])
    asked_by: dict[str, str] = {}
    todo = list(modules)
    while todo:
        module = todo.pop()
        for target in imported.get(module, []):
            if target not in asked_by and target not in modules:
                asked_by[target] = module
                todo.append(target)
    return asked_by


def unreachable_violations(package: Path, modules: list[str], never: tuple[str, ...]) -> list[str]:
    """One line per forbidden module that some import statement reachable from `modules` may load, with its chain."""
    asked_by = reachable_imports(package, modules)
    return [f"{name} is reachable: {chain(name, asked_by)}" for name in sorted(asked_by) if name.startswith(never)]


def modules_in(package: Path, layer: str) -> list[str]:
    return [name for name in modules_of(package) if covers(f"{ROOT}.{layer}", name)]


# -- the rules hold for consentbox -------------------------------------------------------------


def test_every_import_of_consentbox_follows_the_layer_matrix():
    assert not (problems := layer_violations(PACKAGE)), "\n".join(problems)


def test_every_exception_to_the_matrix_is_still_needed():
    assert not (problems := unused_exceptions(PACKAGE)), "\n".join(problems)


def test_nothing_but_sim_and_cli_imports_the_simulation_or_the_test_doubles():
    problems = importers_outside(PACKAGE, "consentbox.sim", {"sim", "cli"})
    problems += importers_outside(PACKAGE, "consentbox.testing", {"sim", "cli", "testing"})
    assert not problems, "\n".join(problems)


def test_only_crypto_uses_cryptography_hazmat():
    assert not (problems := importers_outside(PACKAGE, "cryptography.hazmat", {"crypto"})), "\n".join(problems)


def test_libraries_stay_in_their_layers():
    # Today no module outside crypto imports even cryptography's top level (cryptography.exceptions).
    assert not (problems := library_violations(PACKAGE)), "\n".join(problems)


def test_admin_imports_nothing_of_the_box_side():
    admin = [found for found in all_imports(PACKAGE) if covers("consentbox.admin", found.module)]
    problems = [str(found) for found in admin if found.target.startswith(ADMIN_NEVER)]
    assert not problems, "\n".join(problems)


def test_importing_every_admin_module_loads_nothing_of_the_box_side():
    admin = modules_in(PACKAGE, "admin")
    assert len(admin) >= 6
    assert not (problems := forbidden_loads(PACKAGE, admin, ADMIN_NEVER)), "\n".join(problems)


def test_no_import_the_admin_tool_can_run_reaches_the_box_side():
    # Importing admin's modules (above) does not run the imports inside functions; this follows those too, so
    # no command of `consentbox-admin` can need gpiozero, pyalsaaudio or systemd-python (issue 19, point 2).
    admin = modules_in(PACKAGE, "admin")
    assert not (problems := unreachable_violations(PACKAGE, admin, ADMIN_NEVER)), "\n".join(problems)


def test_importing_every_core_module_loads_no_library_and_nothing_else_of_consentbox():
    core = modules_in(PACKAGE, "core")
    assert len(core) >= 8
    others = [f"{ROOT}.{layer}" for layer in MAY_IMPORT if "." not in layer and layer not in (ROOT, "core")]
    never = (*CORE_NEVER, *others)
    assert not (problems := forbidden_loads(PACKAGE, core, never)), "\n".join(problems)


# -- the checks can fail: a small consentbox, and one forbidden import at a time --------------

SMALL = {
    "__init__.py": '__version__ = "0"\n',
    "core/__init__.py": "",
    "core/policy.py": "import dataclasses\n",
    "crypto/__init__.py": "",
    "crypto/age.py": "from cryptography.hazmat.primitives import hashes\nfrom consentbox.core import policy\n",
    "hw/__init__.py": "",
    "hw/ports.py": "from consentbox.core import policy\n",
    "hw/card.py": "from consentbox.core import policy\n",
    "hw/gpio.py": "from .card import Card\n",  # forbidden (hw.gpio -> hw.card), on purpose
    "ledger/__init__.py": "from consentbox.ledger.mirror import NAME\n",
    "ledger/mirror.py": "from consentbox.hw import ports\nNAME = 'ledger'\n",
    "admin/__init__.py": "",
    "admin/output.py": "from consentbox import __version__\nfrom consentbox.crypto import age\n",
    "sim/__init__.py": "",
    "sim/pins.py": "",
    "cli/__init__.py": "",
    "cli/main.py": "from consentbox.sim import pins\n",
}


def small_package(tmp_path: Path, added: Mapping[str, str] | None = None) -> Path:
    """SMALL written under tmp_path/consentbox, with the `added` lines at the end of their files."""
    package = tmp_path / ROOT
    added = added or {}
    for relative in SMALL.keys() | added.keys():
        (package / relative).parent.mkdir(parents=True, exist_ok=True)
        (package / relative).write_text(SMALL.get(relative, "") + added.get(relative, ""), encoding="utf-8")
    return package


def test_the_small_package_breaks_one_rule(tmp_path: Path):
    package = small_package(tmp_path)
    [problem] = layer_violations(package)
    assert problem.startswith("consentbox/hw/gpio.py:1: consentbox.hw.gpio imports consentbox.hw.card; hw.gpio may")
    assert layer_violations(package, exceptions={("hw.gpio", "hw.card"): "allowed"}) == []
    assert unused_exceptions(package, {("hw.gpio", "hw.card"): "allowed"}) == []
    assert unused_exceptions(package, {("admin.output", "sim.pins"): "allowed"}) == [
        "admin.output no longer imports sim.pins: remove the exception"
    ]
    assert importers_outside(package, "consentbox.sim", {"sim", "cli"}) == []
    assert importers_outside(package, "cryptography.hazmat", {"crypto"}) == []
    assert library_violations(package) == []


@pytest.mark.parametrize(
    ("line", "imported"),
    [
        ("from consentbox.sim import pins\n", "consentbox.sim.pins"),
        ("import consentbox.sim.pins\n", "consentbox.sim.pins"),
        ("from ..sim import pins\n", "consentbox.sim.pins"),
        ("from ..sim.pins import drive\n", "consentbox.sim.pins"),
        ("def late():\n    from consentbox.hw.card import Card\n", "consentbox.hw.card"),
        ("import typing\nif typing.TYPE_CHECKING:\n    from consentbox.hw import gpio\n", "consentbox.hw.gpio"),
    ],
)
def test_the_matrix_reports_a_forbidden_import(tmp_path: Path, line: str, imported: str):
    package = small_package(tmp_path, {"admin/output.py": line})
    problems = [problem for problem in layer_violations(package) if "admin/output.py" in problem]
    assert len(problems) == 1 and f": consentbox.admin.output imports {imported}" in problems[0], problems
    assert "; admin may import only admin, consentbox, core, crypto, ledger, " in problems[0]


def test_a_package_in_no_layer_is_reported(tmp_path: Path):
    package = small_package(tmp_path, {"service/__init__.py": ""})
    assert "consentbox.service is in no layer: add it to MAY_IMPORT" in layer_violations(package)


def test_an_import_of_the_simulation_outside_sim_and_cli_is_reported(tmp_path: Path):
    package = small_package(tmp_path, {"ledger/mirror.py": "from consentbox.sim.pins import drive\n"})
    assert importers_outside(package, "consentbox.sim", {"sim", "cli"}) == [
        "consentbox/ledger/mirror.py:3: consentbox.ledger.mirror imports consentbox.sim.pins"
    ]


@pytest.mark.parametrize(
    "line",
    [
        "from cryptography.hazmat.primitives import hashes\n",
        "import cryptography.hazmat.primitives\n",
        "from cryptography import hazmat\n",
    ],
)
def test_hazmat_outside_crypto_is_reported(tmp_path: Path, line: str):
    package = small_package(tmp_path, {"ledger/mirror.py": line})
    [problem] = importers_outside(package, "cryptography.hazmat", {"crypto"})
    assert problem.startswith("consentbox/ledger/mirror.py:3: consentbox.ledger.mirror imports cryptography.hazmat")


def test_gpiozero_in_admin_is_reported(tmp_path: Path):
    package = small_package(tmp_path, {"admin/output.py": "import gpiozero\n"})
    assert library_violations(package) == [
        "consentbox/admin/output.py:3: consentbox.admin.output imports gpiozero;"
        " only box.daemon, box.wiring, hw.gpio, sim may import gpiozero"
    ]


def test_what_admin_loads_through_another_layer_is_reported_with_its_chain(tmp_path: Path):
    package = small_package(tmp_path, {"admin/output.py": "from consentbox.ledger import NAME\n"})
    assert forbidden_loads(package, ["consentbox.admin.output"], ADMIN_NEVER) == [
        "consentbox.hw is loaded: consentbox.admin.output -> consentbox.ledger -> consentbox.ledger.mirror"
        " -> consentbox.hw",
        "consentbox.hw.ports is loaded: consentbox.admin.output -> consentbox.ledger -> consentbox.ledger.mirror"
        " -> consentbox.hw.ports",
    ]
    assert forbidden_loads(package, ["consentbox.core.policy"], CORE_NEVER) == []


def test_what_admin_may_import_inside_a_function_is_reported_with_its_chain(tmp_path: Path):
    package = small_package(tmp_path, {"admin/output.py": "def late():\n    from consentbox.ledger import NAME\n",
                                       "ledger/mirror.py": "def later():\n    import gpiozero\n"})
    assert forbidden_loads(package, ["consentbox.admin.output"], ADMIN_NEVER) == []
    assert unreachable_violations(package, ["consentbox.admin.output"], ADMIN_NEVER) == [
        "consentbox.hw is reachable: consentbox.admin.output -> consentbox.ledger -> consentbox.ledger.mirror"
        " -> consentbox.hw",
        "consentbox.hw.ports is reachable: consentbox.admin.output -> consentbox.ledger -> consentbox.ledger.mirror"
        " -> consentbox.hw.ports",
        "gpiozero is reachable: consentbox.admin.output -> consentbox.ledger -> consentbox.ledger.mirror -> gpiozero",
    ]
    assert unreachable_violations(small_package(tmp_path / "plain"), ["consentbox.admin.output"], ADMIN_NEVER) == []


if __name__ == "__main__":
    # Who imports whom today, layer by layer: .venv/bin/python tests/test_layers.py
    made: dict[str, set[str]] = {}
    for found in all_imports(PACKAGE):
        if covers(ROOT, found.target):
            made.setdefault(rule_for(short(found.module), MAY_IMPORT) or found.module, set()).add(short(found.target))
    for layer, imported in sorted(made.items()):
        print(f"{layer:13} {' '.join(sorted(imported))}")
