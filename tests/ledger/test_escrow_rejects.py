"""Vouchers that must not pay, and the order of deadline, grace period and refund."""

from __future__ import annotations

import os
from dataclasses import replace

import pytest

from ledger.errors import ChainRevert
from ledger.vouchers import sign
from tests.ledger.conftest import ETHER, GRACE_S, Env


def open_job(env: Env, budget_wei: int = ETHER, lifetime_s: int = 3600) -> tuple[bytes, int]:
    """A job whose whole budget sits in the lanes of workers 0 and 1, half each."""
    return env.open_job(budget_wei, lifetime_s, lanes={0: budget_wei // 2, 1: budget_wei // 2})


def reverts(reason: str, fn: object, *args: object) -> None:
    with pytest.raises(ChainRevert) as info:
        fn(*args)  # type: ignore[operator]
    assert info.value.reason == reason


def test_forged_voucher_reverts(env: Env) -> None:
    job_id, _ = open_job(env)
    worker = env.workers[0]
    forged = env.voucher(job_id, worker, ETHER // 2, signer=worker)  # self-signed
    reverts("bad signature", env.outsider.redeem, forged)
    tampered = replace(env.voucher(job_id, worker, ETHER // 10), cumulative_wei=ETHER // 2)
    reverts("bad signature", env.outsider.redeem, tampered)
    redirected = replace(env.voucher(job_id, worker, ETHER // 10), payee=env.outsider.account)
    reverts("bad signature", env.outsider.redeem, redirected)


def test_replayed_and_stale_vouchers_pay_nothing(env: Env) -> None:
    job_id, _ = open_job(env)
    worker = env.workers[0]
    old, new = env.voucher(job_id, worker, ETHER // 10), env.voucher(job_id, worker, ETHER // 5)
    env.outsider.redeem(new)
    reverts("nothing owed", env.outsider.redeem, new)
    reverts("nothing owed", env.outsider.redeem, old)
    assert env.requester.paid_wei(job_id, worker.account, env.requester.account) == ETHER // 5


def test_voucher_pays_at_most_its_lane(env: Env) -> None:
    job_id, _ = open_job(env, budget_wei=ETHER)
    worker = env.workers[0]
    env.outsider.redeem(env.voucher(job_id, worker, 2 * ETHER))  # owed 2, lane 0.5
    assert env.requester.paid_wei(job_id, worker.account, env.requester.account) == ETHER // 2
    reverts("lane spent", env.outsider.redeem, env.voucher(job_id, worker, 2 * ETHER))
    reverts("nothing owed", env.outsider.redeem, env.voucher(job_id, worker, ETHER // 2))
    # No lane at all: nothing is secured for this payee.
    reverts("lane spent", env.outsider.redeem, env.voucher(job_id, env.workers[2], 1))


def test_lanes_cannot_exceed_the_deposit(env: Env) -> None:
    job_id, _ = env.open_job(ETHER)
    w = [x.account for x in env.workers]
    reverts("over budget", env.requester.open_lanes, job_id, [(w[0], ETHER // 2), (w[1], ETHER)])
    env.requester.open_lanes(job_id, [(w[0], ETHER // 2), (w[1], ETHER // 2)])
    reverts("over budget", env.requester.open_lanes, job_id, [(w[2], 1)])
    reverts("zero payee", env.requester.open_lanes, job_id, [(bytes(20), 0)])
    # Only the requester funds its job's lanes: anyone else addresses its own (absent) job.
    reverts("no such job", env.outsider.open_lanes, job_id, [(w[0], 0)])


def test_wrong_chain_and_wrong_contract_vouchers_revert(env: Env) -> None:
    job_id, _ = open_job(env)
    worker = env.workers[0]
    other_chain = env.voucher(job_id, worker, ETHER // 2, chain_id=env.chain.chain_id + 1)
    reverts("bad signature", env.outsider.redeem, replace(other_chain, chain_id=env.chain.chain_id))
    unsigned = replace(other_chain, chain_id=env.chain.chain_id, contract=b"\x01" * 20)
    other_contract = sign(unsigned, env.key_of(env.requester))
    reverts(
        "bad signature", env.outsider.redeem, replace(other_contract, contract=env.contract_bytes)
    )




def test_deadline_grace_refund_ordering(env: Env) -> None:
    job_id, deadline_s = open_job(env, lifetime_s=1000)
    worker = env.workers[0]
    reverts("grace not over", env.outsider.refund, job_id, env.requester.account)
    # Past the deadline but inside the grace period: vouchers still pay, no refund yet.
    env.chain.advance_time(deadline_s + GRACE_S - env.chain.timestamp_s() - 1)
    reverts("grace not over", env.outsider.refund, job_id, env.requester.account)
    env.outsider.redeem(env.voucher(job_id, worker, ETHER // 10))  # mined at deadline + grace
    assert env.chain.timestamp_s() == deadline_s + GRACE_S
    # After deadline + grace: vouchers are dead, the refund opens.
    late = env.voucher(job_id, worker, ETHER // 5)
    env.chain.advance_time(1)
    reverts("voucher expired", env.outsider.redeem, late)
    reverts("job expired", env.requester.open_lanes, job_id, [(worker.account, 0)])
    env.outsider.refund(job_id, env.requester.account)
    reverts("refunded", env.outsider.redeem, late)
    reverts("refunded", env.outsider.refund, job_id, env.requester.account)
    reverts("refunded", env.requester.deposit, job_id, ETHER, env.deadline_in(100))
    reverts("refunded", env.requester.open_lanes, job_id, [(worker.account, 0)])


def test_deposit_rules(env: Env) -> None:
    job_id, deadline_s = open_job(env)
    reverts("deadline earlier", env.requester.deposit, job_id, ETHER, deadline_s - 1)
    reverts(
        "deadline passed", env.requester.deposit, os.urandom(32), ETHER, env.chain.timestamp_s()
    )
    reverts("no such job", env.outsider.refund, os.urandom(32), env.requester.account)
    reverts("deadline too far", env.requester.deposit, os.urandom(32), ETHER, 2**64)


def test_high_s_twin_does_not_pay(env: Env) -> None:
    """The malleable twin of a valid signature is refused on chain, singly and in a
    batch (the client refuses to build it, so the calls are made by hand)."""
    job_id, _ = open_job(env)
    v = env.voucher(job_id, env.workers[0], ETHER // 10)
    n = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
    r, s, rec = v.signature[:32], int.from_bytes(v.signature[32:64], "big"), v.signature[64]
    twin_sig = (55 - rec, r, (n - s).to_bytes(32, "big"))  # v 27 <-> 28
    address = env.chain.w3.to_checksum_address
    entry = (address(v.requester), v.job_id, address(v.payee), v.cumulative_wei, twin_sig)
    fns = env.outsider.contract.functions
    with pytest.raises(ChainRevert) as info:
        env.outsider.sender.transact(fns.redeem(*entry))
    assert info.value.reason == "bad signature"
    receipt = env.outsider.sender.transact(fns.redeem_batch([entry]))
    skipped = env.outsider.contract.events.RedeemSkipped().process_receipt(receipt)
    assert [e["args"]["reason"] for e in skipped] == [4]  # SKIP_BAD_SIGNATURE
    assert env.requester.paid_wei(job_id, env.workers[0].account, env.requester.account) == 0
