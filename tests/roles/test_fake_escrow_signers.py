"""The fake escrow refuses the claims and rungs the contract refuses (stop 27's review,
L3): the role tests trust it to, and it took 16 claimers, malleable signatures and the
requester's signature (as "worker cannot sign") where Escrow.vy reverts. The contract's
side of each reason is tested on anvil in tests/ledger/test_stake_slash.py."""

from __future__ import annotations

import os
from dataclasses import dataclass, replace

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


@dataclass
class Setup:
    """A fake escrow at a settable clock, one job, a worker's key and ``n`` registered
    checkers' (sorted by address), and a claim on the worker's result."""

    now_s: list[int]
    escrow: FakeEscrow
    worker_key: bytes
    worker: bytes
    keys: list[tuple[bytes, bytes]]
    ref: ResultRef
    claim: FraudClaim


def setup(n: int, deadline_s: int) -> Setup:
    now_s = [NOW_S]
    escrow = FakeEscrow(lambda: now_s[0])
    _, requester = key_and_address()
    worker_key, worker = key_and_address()
    job_id = os.urandom(32)
    escrow.deposit(requester, job_id, STAKE_WEI, deadline_s)
    keys = sorted((key_and_address() for _ in range(n)), key=lambda k: k[1])
    for _, address in keys:
        escrow.register(address, STAKE_WEI)
    ref = ResultRef(escrow.CHAIN_ID, escrow.CONTRACT, requester, job_id, os.urandom(32), 1,
                    os.urandom(32))  # fmt: skip
    claim = FraudClaim(ref, worker, os.urandom(32), escrow.terms.cap_wei)
    return Setup(now_s, escrow, worker_key, worker, keys, ref, claim)


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
    with pytest.raises(ChainRevert, match="signers not ascending"):
        escrow.claim_fraud(claim, worker_sig, [two[0], high_s(two[1])])
    escrow.claim_fraud(claim, worker_sig, two)
    claimers = sorted(a for _, a in keys[:2])
    vote = claim.answer.rung(claimers, 0)
    three = order_signatures(vote, [sign(vote, k) for k, _ in keys[2:5]])
    with pytest.raises(ChainRevert, match="signers not ascending"):
        escrow.answer_claim(claim.answer, claimers, [*three[:2], high_s(three[2])])
    escrow.answer_claim(claim.answer, claimers, three)


def test_the_fake_returns_a_false_claims_stake_where_it_took_it() -> None:
    """Escrow._settle (review L4 of issue 17): an answer that stands returns the part of the
    taken stake that came from the unbonding bucket to the bucket, not to active stake (the
    contract's side: tests/ledger/test_stake_slash.py, the false claim on unbonding stake)."""
    t = setup(5, NOW_S + 3600)
    now_s, escrow, worker_key, worker, keys, ref, claim = (
        t.now_s, t.escrow, t.worker_key, t.worker, t.keys, t.ref, t.claim)  # fmt: skip
    free_wei = escrow.terms.cap_wei // 5
    escrow.stakes[worker], escrow.unbonding[worker] = free_wei, STAKE_WEI - free_wei
    liars, honest = keys[:2], keys[2:]
    escrow.claim_fraud(claim, sign(ref, worker_key),
                       order_signatures(claim, [sign(claim, k) for k, _ in liars]))  # fmt: skip
    assert (escrow.stakes[worker], escrow.unbonding[worker]) == (0, STAKE_WEI - escrow.terms.cap_wei)
    claimers = [a for _, a in liars]
    vote = claim.answer.rung(claimers, 0)
    escrow.answer_claim(claim.answer, claimers, order_signatures(vote, [sign(vote, k) for k, _ in honest]))
    now_s[0] += escrow.terms.challenge_s
    escrow.settle_contest(claim.answer, claimers, [[a for _, a in honest]])
    assert (escrow.stakes[worker], escrow.unbonding[worker]) == (free_wei, STAKE_WEI - free_wei)


def test_the_fake_reopens_an_answered_frame_for_one_window_as_the_contract_does() -> None:
    """Escrow._open_claim's ``reopened``: after an answer stood, a larger quorum may claim
    the frame again for one challenge window, even past the job's window; then not (the
    contract's side: tests/ledger/test_sybil_answer.py). The fake refused it at once once
    the job's window was over, so the role tests never met a late re-claim."""
    t = setup(9, NOW_S + 60)
    now_s, escrow, worker_key, keys, ref, claim = (
        t.now_s, t.escrow, t.worker_key, t.keys, t.ref, t.claim)  # fmt: skip
    escrow.stakes[t.worker] = STAKE_WEI
    escrow.claim_fraud(claim, sign(ref, worker_key),
                       order_signatures(claim, [sign(claim, k) for k, _ in keys[:2]]))  # fmt: skip
    claimers = [a for _, a in keys[:2]]
    vote = claim.answer.rung(claimers, 0)
    escrow.answer_claim(claim.answer, claimers, order_signatures(vote, [sign(vote, k) for k, _ in keys[2:5]]))
    now_s[0] += escrow.terms.challenge_s  # past the job's deadline + grace now
    escrow.settle_contest(claim.answer, claimers, [[a for _, a in keys[2:5]]])
    again = replace(claim, round=3)
    four = order_signatures(again, [sign(again, k) for k, _ in keys[5:9]])
    now_s[0] += escrow.terms.challenge_s + 1  # one second past the reopened window
    with pytest.raises(ChainRevert, match="claim window over"):
        escrow.claim_fraud(claim, sign(ref, worker_key), four)
    now_s[0] -= 1  # its last second
    escrow.claim_fraud(claim, sign(ref, worker_key), four)
