"""Chain backends: in-process py-evm, anvil, or any JSON-RPC endpoint.

All three hand back a synchronous ``Web3``. The dev backends (embedded,
anvil) also hold funded keys and can move block time forward, which tests and
``pictor chain up`` need; a real endpoint can do neither.

The embedded chain is not thread-safe: drive it from one thread at a time
(the trio wrapper gets a CapacityLimiter of 1 for it).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Self

from web3 import Web3
from web3.providers.rpc import HTTPProvider

from ledger.errors import ChainMismatch, ChainUnreachable
from ledger.tx import TRANSIENT_ERRORS


@dataclass
class DevChain:
    """A development chain we control: funded keys and a movable clock."""

    w3: Web3
    funded_keys: tuple[bytes, ...] = field(repr=False)
    rpc_url: str | None = None

    @property
    def chain_id(self) -> int:
        return int(self.w3.eth.chain_id)

    def timestamp_s(self) -> int:
        return int(self.w3.eth.get_block("latest")["timestamp"])

    def advance_time(self, seconds: int) -> None:
        """Mine a block ``seconds`` after the latest one."""
        raise NotImplementedError

    def mine(self, blocks: int = 1) -> None:
        raise NotImplementedError

    def snapshot(self) -> Any:
        raise NotImplementedError

    def revert(self, snapshot_id: Any) -> None:
        raise NotImplementedError

    def close(self) -> None:
        """Release the chain (stop a process); idempotent."""

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@dataclass
class EmbeddedChain(DevChain):
    tester: Any = field(default=None, repr=False)  # eth_tester.EthereumTester

    def _tester(self) -> Any:
        assert self.tester is not None
        return self.tester

    def advance_time(self, seconds: int) -> None:
        # eth-tester mines the travelled-to block one second early; aim one later.
        self._tester().time_travel(self.timestamp_s() + seconds + 1)

    def mine(self, blocks: int = 1) -> None:
        self._tester().mine_blocks(blocks)

    def snapshot(self) -> Any:
        return self._tester().take_snapshot()

    def revert(self, snapshot_id: Any) -> None:
        self._tester().revert_to_snapshot(snapshot_id)


def embedded(accounts: int = 10, genesis_timestamp_s: int | None = None) -> EmbeddedChain:
    """A fresh in-process EVM (eth-tester + py-evm), each account funded with 1M ether.

    py-evm stamps a new block with max(parent + 1 s, wall clock). Tests pass a
    ``genesis_timestamp_s`` far ahead of the wall clock so that block time is
    parent + 1 s only, whatever the machine's speed; nodes leave it to follow
    the wall clock."""
    # Imported here: eth-tester costs a second to import and only dev runs need it.
    from eth_tester import EthereumTester, PyEVMBackend
    from eth_tester.backends.pyevm.main import get_default_account_keys
    from web3.providers.eth_tester import EthereumTesterProvider

    keys = get_default_account_keys(accounts)
    overrides = {} if genesis_timestamp_s is None else {"timestamp": genesis_timestamp_s}
    backend = PyEVMBackend(
        genesis_parameters=PyEVMBackend.generate_genesis_params(overrides=overrides),
        genesis_state=PyEVMBackend.generate_genesis_state(num_accounts=accounts),
    )
    tester = EthereumTester(backend)
    w3 = Web3(EthereumTesterProvider(tester))
    return EmbeddedChain(w3=w3, funded_keys=tuple(k.to_bytes() for k in keys), tester=tester)


def connect(rpc_url: str, expected_chain_id: int | None, timeout_s: float = 10.0) -> Web3:
    """A Web3 on ``rpc_url``; ChainMismatch if it serves another chain id."""
    w3 = Web3(HTTPProvider(rpc_url, request_kwargs={"timeout": timeout_s}))
    try:
        chain_id = int(w3.eth.chain_id)
    except TRANSIENT_ERRORS as exc:
        raise ChainUnreachable(f"cannot reach {rpc_url}: {exc}") from exc
    if expected_chain_id is not None and chain_id != expected_chain_id:
        raise ChainMismatch(
            f"{rpc_url} serves chain id {chain_id}, but the config says {expected_chain_id}"
        )
    return w3
