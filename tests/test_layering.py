"""The packages form layers; no import goes upward, so no package cycle can exist.

    protocol  <-  ledger  <-  node  <-  coordinator, explorer
         ^            ^
         +------  simulations

A package may import the packages listed for it in ``MAY_IMPORT`` (and itself).
The command line lives in node/cli and reaches explorer/, simulations/ and
coordinator/ only from inside the command functions that need them (or under
``if TYPE_CHECKING:``), so importing the node never imports them. Anywhere
else an upward import fails this test, wherever it stands in the module.
docs/ARCHITECTURE.md explains the layers.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
MAY_IMPORT: dict[str, set[str]] = {
    "protocol": set(),
    "ledger": {"protocol"},
    "simulations": {"protocol", "ledger"},
    "node": {"protocol", "ledger"},
    "coordinator": {"protocol", "ledger", "node"},
    "explorer": {"protocol", "ledger", "node"},
}
CLI_MAY_REACH = {"explorer", "simulations", "coordinator"}  # inside commands only
FIRST_PARTY = set(MAY_IMPORT)


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def imports(tree: ast.Module) -> list[tuple[int, str, bool]]:
    """(line, first-party package, at import time?) for every import in the module.

    "At import time" means module level, outside ``if TYPE_CHECKING:``.
    """
    found: list[tuple[int, str, bool]] = []

    def visit(node: ast.AST, eager: bool) -> None:
        if isinstance(node, ast.Import):
            for alias in node.names:
                found.append((node.lineno, alias.name.split(".")[0], eager))
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.lineno, node.module.split(".")[0], eager))
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
            for child in ast.iter_child_nodes(node):
                visit(child, False)
            return
        elif isinstance(node, ast.If) and _is_type_checking(node.test):
            for child in node.body:
                visit(child, False)
            for child in node.orelse:
                visit(child, eager)
            return
        for child in ast.iter_child_nodes(node):
            visit(child, eager)

    visit(tree, True)
    return [(line, name, eager) for line, name, eager in found if name in FIRST_PARTY]


def violations(package: str, relative: Path, tree: ast.Module) -> list[str]:
    allowed = MAY_IMPORT[package] | {package}
    in_cli = package == "node" and relative.parts[:1] == ("cli",)
    bad = []
    for line, name, eager in imports(tree):
        if name in allowed:
            continue
        if in_cli and name in CLI_MAY_REACH and not eager:
            continue
        where = "at import time" if eager else "inside a function"
        bad.append(f"{package}/{relative}:{line} imports {name} {where}")
    return bad


SOURCES = [
    (package, path)
    for package in sorted(MAY_IMPORT)
    for path in sorted((ROOT / package).rglob("*.py"))
]


def test_every_package_is_scanned() -> None:
    scanned = {package for package, _ in SOURCES}
    assert scanned >= {"protocol", "ledger", "node", "explorer", "simulations"}
    assert len(SOURCES) > 150


@pytest.mark.parametrize("package", sorted(MAY_IMPORT))
def test_no_upward_imports(package: str) -> None:
    bad: list[str] = []
    for pkg, path in SOURCES:
        if pkg == package:
            tree = ast.parse(path.read_text(), str(path))
            bad += violations(pkg, path.relative_to(ROOT / pkg), tree)
    assert not bad, "upward imports:\n" + "\n".join(bad)


TYPE_CHECKING_ONLY = "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import explorer\n"


@pytest.mark.parametrize(
    ("package", "relative", "source", "caught"),
    [
        ("node", "roles/x.py", "from explorer.service import Explorer\n", True),
        ("node", "cli/x.py", "import simulations.runner\n", True),
        ("node", "cli/x.py", "def f():\n    from simulations.runner import run\n", False),
        ("node", "cli/x.py", TYPE_CHECKING_ONLY, False),
        ("node", "roles/x.py", "def f():\n    import explorer\n", True),
        ("ledger", "x.py", "from node.runtime import Node\n", True),
        ("protocol", "x.py", "class A:\n    def f(self):\n        from ledger import x\n", True),
        ("simulations", "x.py", "from ledger.vouchers import sign\n", False),
        ("explorer", "x.py", "from node.log import log_event\n", False),
    ],
)
def test_the_check_would_catch_a_violation(
    package: str, relative: str, source: str, caught: bool
) -> None:
    assert bool(violations(package, Path(relative), ast.parse(source))) is caught
