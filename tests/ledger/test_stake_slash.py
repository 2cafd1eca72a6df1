"""Stake, unbonding delay, checker registration and slashing by quorum."""

from __future__ import annotations

import os

import pytest

from ledger.client import EscrowClient
from ledger.errors import ChainRevert
from ledger.fraud import FraudClaim, order_signatures, sign_claim
from tests.ledger.conftest import CHECKER_MIN_STAKE_WEI, ETHER, UNBONDING_S, Env


def reverts(reason: str, fn: object, *args: object) -> None:
    with pytest.raises(ChainRevert) as info:
        fn(*args)  # type: ignore[operator]
    assert info.value.reason == reason


def register(checkers: list[EscrowClient]) -> None:
    for c in checkers:
        c.send(c.calls.stake(CHECKER_MIN_STAKE_WEI))
        c.send(c.calls.register_checker())


def claim_for(env: Env, job_id: bytes, worker: EscrowClient, amount_wei: int) -> FraudClaim:
    return FraudClaim(env.chain.chain_id, env.contract_bytes, env.requester.account, job_id,
                      worker.account, amount_wei)  # fmt: skip


def signed(env: Env, claim: FraudClaim, signers: list[EscrowClient]) -> list[bytes]:
    return order_signatures(claim, [sign_claim(claim, env.key_of(s)) for s in signers])


def test_unbonding_delay(env: Env) -> None:
    worker = env.workers[0]
    worker.send(worker.calls.stake(3 * ETHER))
    reverts("bad amount", worker.send, worker.calls.request_unbond(4 * ETHER))
    reverts("nothing unbonding", worker.send, worker.calls.withdraw_stake())
    worker.send(worker.calls.request_unbond(2 * ETHER))
    st = worker.stake_of(worker.account)
    assert (st.active_wei, st.unbonding_wei) == (ETHER, 2 * ETHER)
    assert st.unbond_at_s == env.chain.timestamp_s() + UNBONDING_S
    env.chain.advance_time(UNBONDING_S - 2)
    reverts(
        "still unbonding", worker.send, worker.calls.withdraw_stake()
    )  # simulated at unbond_at - 1
    env.chain.advance_time(2)  # a block at unbond_at: simulation and inclusion both allowed
    before = worker.balance_wei()  # the escrow's balance
    worker.send(worker.calls.withdraw_stake())
    assert before - worker.balance_wei() == 2 * ETHER
    assert worker.stake_of(worker.account).unbonding_wei == 0


def test_checker_registration_needs_stake(env: Env) -> None:
    checker = env.checkers[0]
    reverts("stake too low", checker.send, checker.calls.register_checker())
    register([checker])
    assert checker.is_checker(checker.account)


def test_slash_by_quorum_splits_between_requester_and_checkers(env: Env) -> None:
    job_id, worker = os.urandom(32), env.workers[0]
    env.requester.deposit(job_id, ETHER, env.deadline_in(3600))
    worker.send(worker.calls.stake(4 * ETHER))
    register(env.checkers[:2])
    claim = claim_for(env, job_id, worker, 2 * ETHER)
    env.outsider.send(env.outsider.calls.slash(claim, signed(env, claim, env.checkers[:2])))
    assert worker.stake_of(worker.account).active_wei == 2 * ETHER
    assert env.requester.credit_wei(env.requester.account) == ETHER
    for c in env.checkers[:2]:
        assert c.credit_wei(c.account) == ETHER // 2
    before = env.outsider.balance_wei()
    checker = env.checkers[0]
    checker.send(checker.calls.withdraw_credit())
    assert checker.credit_wei(checker.account) == 0
    assert before - env.outsider.balance_wei() == ETHER // 2  # left the escrow
    reverts(
        "already slashed",
        env.outsider.send,
        env.outsider.calls.slash(claim, signed(env, claim, env.checkers[:2])),
    )


def test_slash_rejects_weak_proofs(env: Env) -> None:
    job_id, worker = os.urandom(32), env.workers[0]
    env.requester.deposit(job_id, ETHER, env.deadline_in(3600))
    worker.send(worker.calls.stake(ETHER))
    register(env.checkers[:2])
    claim = claim_for(env, job_id, worker, ETHER)
    slash = env.outsider.calls.slash
    send = env.outsider.send
    reverts("below quorum", send, slash(claim, signed(env, claim, env.checkers[:1])))
    one = sign_claim(claim, env.key_of(env.checkers[0]))
    reverts("signers not ascending", send, slash(claim, [one, one]))
    reverts("signers not ascending", send, slash(claim, signed(env, claim, env.checkers[:2])[::-1]))
    reverts(
        "not a checker", send, slash(claim, signed(env, claim, [env.checkers[0], env.checkers[3]]))
    )
    worker.send(worker.calls.stake(CHECKER_MIN_STAKE_WEI))
    worker.send(worker.calls.register_checker())
    reverts("worker cannot sign", send, slash(claim, signed(env, claim, [env.checkers[0], worker])))
    register([env.requester])
    reverts("requester cannot sign", send, slash(claim, signed(env, claim, [env.checkers[0], env.requester])))
    other_amount = claim_for(env, job_id, worker, ETHER // 2)
    reverts("not a checker", send, slash(claim, signed(env, other_amount, env.checkers[:2])))


def test_unbonding_stake_stays_slashable(env: Env) -> None:
    job_id, worker = os.urandom(32), env.workers[0]
    env.requester.deposit(job_id, ETHER, env.deadline_in(3600))
    worker.send(worker.calls.stake(2 * ETHER))
    worker.send(worker.calls.request_unbond(2 * ETHER))
    register(env.checkers[:2])
    claim = claim_for(env, job_id, worker, 5 * ETHER)  # more than the stake: capped
    env.outsider.send(env.outsider.calls.slash(claim, signed(env, claim, env.checkers[:2])))
    st = worker.stake_of(worker.account)
    assert (st.active_wei, st.unbonding_wei) == (0, 0)
    assert env.requester.credit_wei(env.requester.account) == ETHER
    env.chain.advance_time(UNBONDING_S)
    reverts("nothing unbonding", worker.send, worker.calls.withdraw_stake())


def test_checker_that_unbonded_no_longer_counts(env: Env) -> None:
    job_id, worker = os.urandom(32), env.workers[0]
    env.requester.deposit(job_id, ETHER, env.deadline_in(3600))
    worker.send(worker.calls.stake(ETHER))
    register(env.checkers[:2])
    quitter = env.checkers[1]
    quitter.send(quitter.calls.request_unbond(CHECKER_MIN_STAKE_WEI))
    claim = claim_for(env, job_id, worker, ETHER)
    reverts("checker stake too low", env.outsider.send,
            env.outsider.calls.slash(claim, signed(env, claim, env.checkers[:2])))  # fmt: skip
