"""Compile the Vyper contracts into JSON artifacts (ABI + bytecode).

``python -m ledger.build`` rewrites ``ledger/artifacts/*.json`` from
``ledger/contracts/*.vy``. The artifacts are committed so that nodes need no
compiler at run time; a test recompiles and fails if an artifact is stale.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ledger.artifacts import ARTIFACTS_DIR

LEDGER_DIR = Path(__file__).resolve().parent
CONTRACTS_DIR = LEDGER_DIR / "contracts"
CONTRACT_NAMES = ("Escrow", "TestToken")


def compile_contract(name: str) -> dict[str, Any]:
    """Compile ``contracts/<name>.vy`` and return its artifact dictionary."""
    # Imported here: the compiler takes seconds to import and only this needs it.
    import vyper
    from vyper.compiler import compile_code

    source_path = CONTRACTS_DIR / f"{name}.vy"
    # A fixed relative contract_path keeps the output independent of the checkout location.
    out = compile_code(
        source_path.read_text(),
        contract_path=f"ledger/contracts/{name}.vy",
        output_formats=["abi", "bytecode", "bytecode_runtime"],
    )
    return {
        "contractName": name,
        "compiler": f"vyper-{vyper.__version__}",
        "abi": out["abi"],
        "bytecode": out["bytecode"],
        "bytecode_runtime": out["bytecode_runtime"],
    }


def write_artifacts() -> list[Path]:
    ARTIFACTS_DIR.mkdir(exist_ok=True)
    written = []
    for name in CONTRACT_NAMES:
        path = ARTIFACTS_DIR / f"{name}.json"
        path.write_text(json.dumps(compile_contract(name), indent=1, sort_keys=True) + "\n")
        written.append(path)
    return written


def main() -> None:
    for path in write_artifacts():
        print(f"wrote {path.relative_to(LEDGER_DIR.parent)}")


if __name__ == "__main__":
    main()
