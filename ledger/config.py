"""Which chain to settle on, parsed once into a frozen config.

``backend`` is "embedded" (in-process py-evm, the default: nothing to install,
state lives and dies with the process), "anvil" (a local anvil process) or
"rpc" (any EVM JSON-RPC URL). For "rpc" the chain id is required and checked
against the endpoint, so a node configured for one chain never signs
vouchers or sends transactions on another.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from web3 import Web3

from ledger.backends import DevChain, connect, embedded
from ledger.errors import ChainMismatch

Backend = Literal["embedded", "anvil", "rpc"]


@dataclass(frozen=True, slots=True)
class ChainConfig:
    backend: Backend = "embedded"
    rpc_url: str = ""
    chain_id: int | None = None
    escrow_address: str = ""  # empty: deploy on a dev chain
    rpc_timeout_s: float = 10.0


def open_chain(config: ChainConfig) -> tuple[Web3, DevChain | None]:
    """The Web3 to use, plus the DevChain when we started one (caller closes it)."""
    if config.backend == "rpc":
        if not config.rpc_url or config.chain_id is None:
            raise ChainMismatch("backend 'rpc' needs both rpc_url and chain_id")
        return connect(config.rpc_url, config.chain_id, config.rpc_timeout_s), None
    if config.backend == "anvil":
        from ledger.anvil import start_anvil

        chain: DevChain = start_anvil()
    else:
        chain = embedded()
    if config.chain_id is not None and chain.chain_id != config.chain_id:
        chain.close()
        raise ChainMismatch(f"{config.backend} chain has id {chain.chain_id}, config says {config.chain_id}")
    return chain.w3, chain
