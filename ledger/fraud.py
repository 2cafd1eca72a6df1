"""Fraud proofs: checkers' EIP-712 signatures that let the escrow slash a worker.

Typed data ``Fraud(address requester,bytes32 jobId,address worker,uint256 amount)`` in the same
"Pictor Escrow" domain as vouchers. Each checker signs the same (job, worker,
amount) on its own; whoever submits the proof orders the signatures by
ascending signer address, which is how the contract proves they are distinct.
"""

from __future__ import annotations

from dataclasses import dataclass

from eth_account import Account
from eth_account.messages import SignableMessage, encode_typed_data
from eth_utils.address import to_canonical_address, to_checksum_address

from ledger.vouchers import escrow_domain, split_signature

FRAUD_TYPE = [
    {"name": "requester", "type": "address"},
    {"name": "jobId", "type": "bytes32"},
    {"name": "worker", "type": "address"},
    {"name": "amount", "type": "uint256"},
]


@dataclass(frozen=True, slots=True)
class FraudClaim:
    chain_id: int
    contract: bytes  # 20-byte escrow address
    requester: bytes  # 20-byte requester: jobs are keyed by (requester, job_id)
    job_id: bytes  # 32 bytes
    worker: bytes  # 20-byte address of the worker to slash
    amount_wei: int


def signable(claim: FraudClaim) -> SignableMessage:
    return encode_typed_data(
        domain_data=escrow_domain(claim.chain_id, claim.contract),
        message_types={"Fraud": FRAUD_TYPE},
        message_data={
            "requester": to_checksum_address(claim.requester),
            "jobId": claim.job_id,
            "worker": to_checksum_address(claim.worker),
            "amount": claim.amount_wei,
        },
    )


def sign_claim(claim: FraudClaim, checker_key: bytes) -> bytes:
    """One checker's 65-byte signature over ``claim``."""
    return bytes(Account.sign_message(signable(claim), checker_key).signature)


def recover_checker(claim: FraudClaim, signature: bytes) -> bytes:
    split_signature(signature)
    return to_canonical_address(Account.recover_message(signable(claim), signature=signature))


def order_signatures(claim: FraudClaim, signatures: list[bytes]) -> list[bytes]:
    """Signatures sorted by ascending signer, duplicates (same signer) dropped."""
    by_signer = {recover_checker(claim, sig): sig for sig in signatures}
    return [by_signer[signer] for signer in sorted(by_signer)]
