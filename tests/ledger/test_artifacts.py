"""The committed artifacts must be what the committed sources compile to."""

from __future__ import annotations

import pytest

from ledger.artifacts import load_artifact
from ledger.build import CONTRACT_NAMES, compile_contract


@pytest.mark.parametrize("name", CONTRACT_NAMES)
def test_artifact_is_fresh(name: str) -> None:
    fresh, committed = compile_contract(name), load_artifact(name)
    assert committed["abi"] == fresh["abi"], "stale ABI: run `python -m ledger.build`"
    assert committed["bytecode"] == fresh["bytecode"], (
        f"stale {name}.json: run `python -m ledger.build`"
    )
