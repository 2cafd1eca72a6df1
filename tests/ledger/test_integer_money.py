"""Money is integers (wei), never floats: a scan of the code that handles amounts.

An expression is flagged when it mentions an amount (a name containing one of
AMOUNT_WORDS) and does float arithmetic: true division ``/``, a float literal,
or ``float(...)``. Display code may format wei as ETH only through integer
helpers; anything else is a bug (1.76 ETH as a float is 1760000000000000256 wei).
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
# Whole words of an identifier (split at "_" and camelCase) that name an amount.
AMOUNT_WORDS = {"wei", "budget", "price", "fee", "fees", "amount", "paid", "owed", "cost",
                "balance", "payment", "stake", "eth"}  # fmt: skip
FOLDERS = ["ledger", "protocol", "node/roles", "node/cli", "explorer"]


def _names(node: ast.AST) -> list[str]:
    out = []
    for n in ast.walk(node):
        if isinstance(n, ast.Name):
            out.append(n.id)
        elif isinstance(n, ast.Attribute):
            out.append(n.attr)
        elif isinstance(n, ast.keyword) and n.arg:
            out.append(n.arg)
    return out


def _is_amount(name: str) -> bool:
    words = re.sub(r"([a-z])([A-Z])", r"\1_\2", name).lower().split("_")
    return any(word in AMOUNT_WORDS for word in words)


def _is_float_op(node: ast.AST) -> bool:
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Div):
        # `path / "name"` joins paths; it is not arithmetic.
        return not any(isinstance(side, ast.Constant) and isinstance(side.value, str)
                       for side in (node.left, node.right))  # fmt: skip
    if isinstance(node, ast.Constant) and isinstance(node.value, float):
        return True
    return (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
            and node.func.id == "float")  # fmt: skip


def float_money(source: str) -> list[int]:
    """Line numbers of statements doing float arithmetic on amounts."""
    lines = set()
    for stmt in ast.walk(ast.parse(source)):
        if not isinstance(stmt, ast.stmt) or isinstance(
            stmt, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef | ast.If | ast.For
            | ast.While | ast.With | ast.AsyncWith | ast.Try | ast.AsyncFor):  # fmt: skip
            continue
        if any(_is_float_op(n) for n in ast.walk(stmt)):
            if any(_is_amount(name) for name in _names(stmt)):
                lines.add(stmt.lineno)
    return sorted(lines)


def offenders(folder: str) -> list[str]:
    found = []
    for path in sorted((ROOT / folder).rglob("*.py")):
        source = path.read_text()
        for line in float_money(source):
            text = source.splitlines()[line - 1].strip()
            found.append(f"{path.relative_to(ROOT)}:{line}: {text}")
    return found


def test_the_scan_catches_float_money() -> None:
    assert float_money("budget_wei = int(1.76 * 10**18)\n") == [1]
    assert float_money("x = spec.price_wei / frames\n") == [1]
    assert float_money("fee = float(total)\n") == [1]
    assert float_money("share_wei = total_wei * 10 // 100\nratio = a / b\n") == []


@pytest.mark.parametrize("folder", FOLDERS)
def test_no_float_money(folder: str) -> None:
    assert offenders(folder) == []
