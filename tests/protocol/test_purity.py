"""protocol/ stays sans-I/O: no clocks, sockets, threads or randomness of its own."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PROTOCOL = Path(__file__).resolve().parents[2] / "protocol"
FORBIDDEN = {
    "trio",
    "asyncio",
    "socket",
    "time",
    "subprocess",
    "threading",
    "web3",
    "httpx",
    "sqlite3",
    "aiosqlite",
    "libp2p",
    "random",
    "os",
    "datetime",
    "selectors",
}


def _imports(tree: ast.AST) -> list[tuple[int, str]]:
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name.split(".")[0]) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.lineno, node.module.split(".")[0]))
    return found


def _module_level_imports(tree: ast.Module) -> set[str]:
    return {name for node in tree.body for _, name in _imports(node)}


SOURCES = sorted(PROTOCOL.rglob("*.py"))


def test_protocol_sources_exist() -> None:
    assert len(SOURCES) >= 5


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(PROTOCOL)))
def test_no_io_imports(path: Path) -> None:
    tree = ast.parse(path.read_text())
    bad = [(line, name) for line, name in _imports(tree) if name in FORBIDDEN - {"random"}]
    assert not bad, f"{path}: sans-I/O module imports {bad}"
    # `random.Random` may be passed in and type-annotated, never imported at module level.
    assert "random" not in _module_level_imports(tree), f"{path} imports random at module level"


def test_the_check_would_catch_a_violation() -> None:
    tree = ast.parse("import os\nfrom trio import sleep\nimport random\n")
    names = {name for _, name in _imports(tree)}
    assert {"os", "trio"} <= names & FORBIDDEN
    assert "random" in _module_level_imports(tree)
