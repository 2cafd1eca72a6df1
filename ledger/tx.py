"""Sending contract transactions from a local key, synchronously.

Two steps so that nonces can be handed out by the caller in between:
``prepare`` simulates the call (a revert surfaces here as ``ChainRevert`` with
its reason, before any nonce is spent) and fixes gas; ``send`` signs with the
given nonce, broadcasts with retries on transient RPC errors, and waits for
the receipt with a timeout. Broadcast retries are idempotent because the
transaction hash is known before sending: "already known" is success.

Everything here blocks; the node calls it from ``trio.to_thread.run_sync``.
The private key is held privately and never formatted into a message.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import requests
from eth_account import Account
from eth_utils.exceptions import ValidationError
from hexbytes import HexBytes
from web3 import Web3
from web3.contract.contract import ContractFunction
from web3.exceptions import (
    ContractLogicError,
    ProviderConnectionError,
    RequestTimedOut,
    TimeExhausted,
    TransactionNotFound,
    Web3RPCError,
)
from web3.types import TxParams, TxReceipt, Wei

from ledger.errors import ChainRevert, ChainUnreachable, TxRejected
from ledger.nonces import NonceManager

log = logging.getLogger(__name__)
T = TypeVar("T")

TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (
    ConnectionError,
    TimeoutError,
    requests.exceptions.ConnectionError,
    requests.exceptions.Timeout,
    requests.exceptions.HTTPError,  # 5xx / 429 from a provider
    ProviderConnectionError,
    RequestTimedOut,
)


@dataclass(frozen=True, slots=True)
class TxConfig:
    receipt_timeout_s: float = 120.0
    receipt_poll_s: float = 0.1
    rpc_attempts: int = 3
    retry_backoff_s: float = 0.5
    gas_margin: float = 1.25  # estimate × margin: state may change before inclusion
    max_fee_per_base_fee: int = 2  # maxFeePerGas = base fee × this + tip


@dataclass(frozen=True, slots=True)
class PreparedTx:
    """A simulated call, ready to be signed with a nonce."""

    params: TxParams
    gas: int



def revert_errors() -> tuple[type[BaseException], ...]:
    """JSON-RPC nodes report reverts as ContractLogicError, eth-tester as its own
    TransactionFailed. eth-tester is looked up, not imported: it takes a second
    to import, and if nobody imported it, it cannot be the one raising."""
    failed = getattr(sys.modules.get("eth_tester.exceptions"), "TransactionFailed", None)
    return (ContractLogicError, failed) if failed else (ContractLogicError,)


def revert_reason(exc: BaseException) -> str:
    text = (exc.message if isinstance(exc, ContractLogicError) else None) or str(exc)
    for prefix in ("execution reverted: ", "execution reverted"):
        if text.startswith(prefix):
            text = text[len(prefix) :]
    # eth-tester renders an empty revert payload as "b''".
    return text if text and text != "b''" else "reverted without reason"


def with_retries(fn: Callable[[], T], config: TxConfig, what: str) -> T:
    """Call ``fn``; retry transient RPC failures, then raise ChainUnreachable."""
    for attempt in range(1, config.rpc_attempts + 1):
        try:
            return fn()
        except revert_errors() as exc:
            raise ChainRevert(revert_reason(exc)) from exc
        except TRANSIENT_ERRORS as exc:
            log.warning("%s: RPC attempt %d failed: %s", what, attempt, type(exc).__name__)
            if attempt == config.rpc_attempts:
                raise ChainUnreachable(f"{what}: {exc}") from exc
            time.sleep(config.retry_backoff_s * attempt)
    raise AssertionError("unreachable")


class TxSender:
    """Signs and sends transactions for one account on one chain."""

    def __init__(self, w3: Web3, private_key: bytes, config: TxConfig | None = None) -> None:
        self.w3 = w3
        self._account = Account.from_key(private_key)
        self.address = self._account.address
        self.config = config or TxConfig()
        self.chain_id = with_retries(lambda: w3.eth.chain_id, self.config, "chain_id")
        self.nonces = NonceManager(self.pending_nonce)

    def __repr__(self) -> str:  # never show the key
        return f"TxSender({self.address})"

    def pending_nonce(self) -> int:
        return with_retries(
            lambda: self.w3.eth.get_transaction_count(self.address, "pending"),
            self.config,
            "get_transaction_count",
        )

    def prepare(self, fn: ContractFunction, value_wei: int = 0, tail: bytes = b"") -> PreparedTx:
        """Simulate and build ``fn``'s transaction; ``tail`` is appended to its calldata
        after the ABI-encoded arguments (the contract ignores trailing bytes)."""
        params: TxParams = {"from": self.address, "value": Wei(value_wei), "chainId": self.chain_id}
        if tail:
            data = HexBytes(fn._encode_transaction_data()) + tail
            params = {**params, "to": fn.address, "data": data}
            estimate = with_retries(lambda: self.w3.eth.estimate_gas(params), self.config,
                                    "estimate_gas")  # fmt: skip
            gas = int(estimate * self.config.gas_margin)
            built: TxParams = {**params, "gas": gas, **self._fees()}  # type: ignore[typeddict-item]
            return PreparedTx(params=built, gas=gas)
        estimate = with_retries(lambda: fn.estimate_gas(params), self.config, "estimate_gas")
        gas = int(estimate * self.config.gas_margin)
        built = with_retries(
            lambda: fn.build_transaction({**params, "gas": gas, **self._fees()}),  # type: ignore[arg-type]
            self.config,
            "build_transaction",
        )
        return PreparedTx(params=built, gas=gas)

    def _fees(self) -> dict[str, int]:
        def fetch() -> dict[str, int]:
            base_fee_wei = int(self.w3.eth.get_block("latest").get("baseFeePerGas", 0))
            tip_wei = int(self.w3.eth.max_priority_fee)
            max_fee_wei = base_fee_wei * self.config.max_fee_per_base_fee + tip_wei
            return {"maxFeePerGas": max_fee_wei, "maxPriorityFeePerGas": tip_wei}

        return with_retries(fetch, self.config, "fees")

    def send(self, prepared: PreparedTx, nonce: int) -> TxReceipt:
        """Sign with ``nonce``, broadcast and wait; ChainRevert if it reverted on chain."""
        signed = self._account.sign_transaction({**prepared.params, "nonce": nonce})
        tx_hash = HexBytes(signed.hash)

        def broadcast() -> None:
            try:
                self.w3.eth.send_raw_transaction(signed.raw_transaction)
            except (Web3RPCError, ValidationError) as exc:  # JSON-RPC node, eth-tester
                # A retry after a lost reply finds our own transaction already there.
                if "already known" not in str(exc) and not self._known(tx_hash):
                    raise TxRejected(f"rejected by node: {exc}", tx_hash=tx_hash) from exc

        with_retries(broadcast, self.config, "send_raw_transaction")
        receipt = self.wait_receipt(tx_hash)
        if receipt["status"] != 1:
            raise ChainRevert(self._replay_reason(prepared, receipt), tx_hash=tx_hash)
        return receipt

    def transact(self, fn: ContractFunction, value_wei: int = 0, tail: bytes = b"") -> TxReceipt:
        """prepare + send with a nonce from this sender's own NonceManager."""
        prepared = self.prepare(fn, value_wei, tail)
        nonce = self.nonces.allocate()
        try:
            return self.send(prepared, nonce)
        except (ChainUnreachable, TxRejected):
            self.nonces.resync()
            raise

    def wait_receipt(self, tx_hash: HexBytes) -> TxReceipt:
        try:
            return self.w3.eth.wait_for_transaction_receipt(
                tx_hash,
                timeout=self.config.receipt_timeout_s,
                poll_latency=self.config.receipt_poll_s,
            )
        except TimeExhausted as exc:
            raise ChainUnreachable(f"no receipt for 0x{tx_hash.hex()} in time") from exc
        except TRANSIENT_ERRORS as exc:
            raise ChainUnreachable(f"receipt of 0x{tx_hash.hex()}: {exc}") from exc

    def _known(self, tx_hash: HexBytes) -> bool:
        try:
            self.w3.eth.get_transaction(tx_hash)
        except TransactionNotFound:
            return False
        return True

    def _replay_reason(self, prepared: PreparedTx, receipt: TxReceipt) -> str:
        # Receipts carry no revert string; re-run the call on the parent block for it.
        call: dict[str, Any] = {
            k: prepared.params[k] for k in ("from", "to", "data", "value") if k in prepared.params
        }
        try:
            self.w3.eth.call(call, receipt["blockNumber"] - 1)  # type: ignore[arg-type]
        except revert_errors() as exc:
            return revert_reason(exc)
        except Exception:
            return "reverted on chain (reason unavailable)"
        return "reverted on chain (state changed before inclusion)"
