"""Test-only contracts (tests/ledger/contracts), compiled on first use with vyper."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

from eth_typing import ChecksumAddress
from web3 import Web3

from ledger.tx import TxSender

CONTRACTS = Path(__file__).resolve().parent / "contracts"


@cache
def compiled(name: str) -> dict[str, Any]:
    from vyper.compiler import compile_code

    source = (CONTRACTS / f"{name}.vy").read_text()
    out: dict[str, Any] = compile_code(source, output_formats=["abi", "bytecode"])
    return out


def deploy_mock(sender: TxSender, name: str) -> ChecksumAddress:
    out = compiled(name)
    factory = sender.w3.eth.contract(abi=out["abi"], bytecode=out["bytecode"])
    receipt = sender.transact(factory.constructor())  # type: ignore[arg-type]
    address = receipt["contractAddress"]
    assert address is not None
    return Web3.to_checksum_address(address)


def mock_contract(sender: TxSender, name: str, address: str) -> Any:
    return sender.w3.eth.contract(address=Web3.to_checksum_address(address), abi=compiled(name)["abi"])
