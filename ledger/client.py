"""Synchronous escrow client: call builders, views and transacting methods.

``EscrowCalls`` turns domain values (vouchers, fraud claims, amounts) into
contract calls without sending anything; ``EscrowClient`` reads state and
sends those calls from one account through a ``TxSender``. The trio wrapper
reuses ``EscrowCalls`` and does its own nonce hand-out.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from eth_typing import ChecksumAddress
from eth_utils.address import to_canonical_address
from web3 import Web3
from web3.contract import Contract
from web3.contract.contract import ContractFunction
from web3.types import TxReceipt

from ledger.artifacts import load_artifact
from ledger.errors import ChainMismatch
from ledger.fraud import FraudClaim
from ledger.tx import TxSender, with_retries
from ledger.vouchers import Voucher, split_signature

NATIVE = "0x0000000000000000000000000000000000000000"


@dataclass(frozen=True, slots=True)
class Call:
    """A contract call plus the native value it carries."""

    fn: ContractFunction
    value_wei: int = 0


@dataclass(frozen=True, slots=True)
class JobState:
    requester: bytes
    token: bytes
    remaining_wei: int
    deadline_s: int
    refunded: bool


@dataclass(frozen=True, slots=True)
class StakeState:
    active_wei: int
    unbonding_wei: int
    unbond_at_s: int


def voucher_arg(v: Voucher) -> tuple[Any, ...]:
    """The contract's ``Voucher`` struct for ``v``."""
    return (
        v.job_id,
        Web3.to_checksum_address(v.payee),
        v.cumulative_wei,
        split_signature(v.signature),
    )


class EscrowCalls:
    def __init__(self, contract: Contract) -> None:
        self.contract = contract

    def deposit(self, job_id: bytes, amount_wei: int, deadline_s: int, token: str = NATIVE) -> Call:
        fn = self.contract.functions.deposit(job_id, deadline_s, token, amount_wei)
        return Call(fn, amount_wei if token == NATIVE else 0)

    def redeem(self, v: Voucher) -> Call:
        job_id, payee, cumulative, sig = voucher_arg(v)
        return Call(self.contract.functions.redeem(job_id, payee, cumulative, sig))

    def redeem_batch(self, vouchers: list[Voucher]) -> Call:
        return Call(self.contract.functions.redeem_batch([voucher_arg(v) for v in vouchers]))

    def refund(self, job_id: bytes) -> Call:
        return Call(self.contract.functions.refund(job_id))

    def stake(self, amount_wei: int) -> Call:
        return Call(self.contract.functions.stake(), amount_wei)

    def request_unbond(self, amount_wei: int) -> Call:
        return Call(self.contract.functions.request_unbond(amount_wei))

    def withdraw_stake(self) -> Call:
        return Call(self.contract.functions.withdraw_stake())

    def register_checker(self) -> Call:
        return Call(self.contract.functions.register_checker())

    def slash(self, claim: FraudClaim, ordered_signatures: list[bytes]) -> Call:
        sigs = [split_signature(s) for s in ordered_signatures]
        worker = Web3.to_checksum_address(claim.worker)
        return Call(self.contract.functions.slash(claim.job_id, worker, claim.amount_wei, sigs))

    def withdraw_credit(self) -> Call:
        return Call(self.contract.functions.withdraw_credit())


class EscrowClient:
    """One account's view of, and transactions against, one escrow contract."""

    def __init__(self, sender: TxSender, address: str) -> None:
        self.sender = sender
        self.w3 = sender.w3
        self.address: ChecksumAddress = Web3.to_checksum_address(address)
        if not with_retries(lambda: self.w3.eth.get_code(self.address), sender.config, "get_code"):
            raise ChainMismatch(f"no contract at {self.address} on chain {sender.chain_id}")
        self.contract = self.w3.eth.contract(
            address=self.address, abi=load_artifact("Escrow")["abi"]
        )
        self.calls = EscrowCalls(self.contract)

    @property
    def account(self) -> bytes:
        return to_canonical_address(self.sender.address)

    def send(self, call: Call) -> TxReceipt:
        return self.sender.transact(call.fn, call.value_wei)

    def _view(self, name: str, *args: Any) -> Any:
        fn = getattr(self.contract.functions, name)(*args)
        return with_retries(fn.call, self.sender.config, name)

    def job(self, job_id: bytes) -> JobState:
        requester, token, remaining, deadline, refunded = self._view("jobs", job_id)
        return JobState(to_canonical_address(requester), to_canonical_address(token),
                        remaining, deadline, refunded)  # fmt: skip

    def paid_wei(self, job_id: bytes, payee: bytes) -> int:
        return int(self._view("paid", job_id, Web3.to_checksum_address(payee)))

    def stake_of(self, account: bytes) -> StakeState:
        active, unbonding, unbond_at = self._view("stakes", Web3.to_checksum_address(account))
        return StakeState(active, unbonding, unbond_at)

    def credit_wei(self, account: bytes) -> int:
        return int(self._view("credit", Web3.to_checksum_address(account)))

    def is_checker(self, account: bytes) -> bool:
        return bool(self._view("is_checker", Web3.to_checksum_address(account)))

    def grace_s(self) -> int:
        return int(self._view("GRACE_S"))

    def balance_wei(self) -> int:
        return int(
            with_retries(
                lambda: self.w3.eth.get_balance(self.address), self.sender.config, "balance"
            )
        )

    # Transacting shorthands for synchronous callers.
    def deposit(
        self, job_id: bytes, amount_wei: int, deadline_s: int, token: str = NATIVE
    ) -> TxReceipt:
        return self.send(self.calls.deposit(job_id, amount_wei, deadline_s, token))

    def redeem(self, v: Voucher) -> TxReceipt:
        return self.send(self.calls.redeem(v))

    def redeem_batch(self, vouchers: list[Voucher]) -> TxReceipt:
        return self.send(self.calls.redeem_batch(vouchers))

    def refund(self, job_id: bytes) -> TxReceipt:
        return self.send(self.calls.refund(job_id))
