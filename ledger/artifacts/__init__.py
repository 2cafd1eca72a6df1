"""Compiled contract artifacts (ABI + bytecode), written by ``python -m ledger.build``.

Loading them needs no compiler: nodes import only this module, never vyper.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

ARTIFACTS_DIR = Path(__file__).resolve().parent


def load_artifact(name: str) -> dict[str, Any]:
    """The committed artifact of contract ``name`` ("Escrow" or "TestToken")."""
    artifact: dict[str, Any] = json.loads((ARTIFACTS_DIR / f"{name}.json").read_text())
    return artifact
