"""The fake escrow refuses the claims and rungs the contract refuses (stop 27's review,
L3): the role tests trust it to, and it took 16 claimers, malleable signatures and the
requester's signature (as "worker cannot sign") where Escrow.vy reverts. The contract's
side of each reason is tested on anvil in tests/ledger/test_stake_slash.py."""

from __future__ import annotations

import os

import pytest
from eth_account import Account

from ledger.errors import ChainRevert
from ledger.fraud import FraudClaim, ResultRef, order_signatures, sign
from ledger.vouchers import SECP256K1_HALF_N
from tests.roles.fakes import FakeEscrow

NOW_S = 1_000_000
STAKE_WEI = 10**18


def key_and_address() -> tuple[bytes, bytes]:
    account = Account.create()
    return bytes(account.key), bytes.fromhex(account.address[2:])


def high_s(signature: bytes) -> bytes:
    """The same signature with s' = n - s (valid for ecrecover, malleable)."""
    n = 2 * SECP256K1_HALF_N + 1
    s = int.from_bytes(signature[32:64], "big")
    return signature[:32] + (n - s).to_bytes(32, "big") + bytes([55 - signature[64]])


def test_the_fake_refuses_what_the_contract_refuses() -> None:
    escrow = FakeEscrow(lambda: NOW_S)
    requester_key, requester = key_and_address()
    worker_key, worker = key_and_address()
    job_id = os.urandom(32)
    escrow.deposit(requester, job_id, STAKE_WEI, NOW_S + 3600)
    escrow.stakes[worker] = STAKE_WEI
    keys = [key_and_address() for _ in range(16)]
    for _, address in keys:
        escrow.register(address, STAKE_WEI)
    escrow.register(requester, STAKE_WEI)
    ref = ResultRef(escrow.CHAIN_ID, escrow.CONTRACT, requester, job_id, os.urandom(32), 1,
                    os.urandom(32))  # fmt: skip
    claim = FraudClaim(ref, worker, os.urandom(32), escrow.terms.cap_wei)
    worker_sig = sign(ref, worker_key)

    def signed(signing: list[bytes]) -> list[bytes]:
        return order_signatures(claim, [sign(claim, k) for k in signing])

    with pytest.raises(ChainRevert, match="too many claimers"):
        escrow.claim_fraud(claim, worker_sig, signed([k for k, _ in keys]))
    with pytest.raises(ChainRevert, match="requester cannot sign"):
        escrow.claim_fraud(claim, worker_sig, signed([keys[0][0], requester_key]))
    two = signed([k for k, _ in keys[:2]])
    with pytest.raises(ChainRevert, match="malleable signature"):
        escrow.claim_fraud(claim, worker_sig, [two[0], high_s(two[1])])
    escrow.claim_fraud(claim, worker_sig, two)
    claimers = sorted(a for _, a in keys[:2])
    vote = claim.answer.rung(claimers, 0)
    three = order_signatures(vote, [sign(vote, k) for k, _ in keys[2:5]])
    with pytest.raises(ChainRevert, match="malleable signature"):
        escrow.answer_claim(claim.answer, claimers, [*three[:2], high_s(three[2])])
    escrow.answer_claim(claim.answer, claimers, three)
