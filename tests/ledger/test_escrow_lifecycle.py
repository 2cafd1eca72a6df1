"""A job from deposit to refund on real EVM execution (py-evm, and anvil when slow tests run)."""

from __future__ import annotations

import os

from tests.ledger.conftest import ETHER, GRACE_S, Env


def balance(env: Env, account: bytes) -> int:
    return int(env.chain.w3.eth.get_balance(env.chain.w3.to_checksum_address(account)))


def test_full_job_lifecycle(env: Env) -> None:
    job_id = os.urandom(32)
    deadline_s = env.deadline_in(3600)
    env.requester.deposit(job_id, 10 * ETHER, deadline_s)
    assert env.requester.job(job_id).remaining_wei == 10 * ETHER
    assert env.requester.job(job_id).unallocated_wei == 10 * ETHER
    assert env.requester.balance_wei() == 10 * ETHER

    worker, checker = env.workers[0], env.checkers[0]
    # Lanes for the worker and the checker in one transaction, carved out of the deposit.
    env.requester.open_lanes(job_id, [(worker.account, 2 * ETHER), (checker.account, ETHER // 10)])
    assert env.requester.job(job_id).unallocated_wei == 10 * ETHER - 2 * ETHER - ETHER // 10
    before_w, before_c = balance(env, worker.account), balance(env, checker.account)
    # Frames accepted one by one; each voucher supersedes the previous.
    for frames in range(1, 6):
        latest = env.voucher(job_id, worker, frames * ETHER // 2)
    env.outsider.redeem(latest)  # anyone may submit; the money goes to the payee
    # 2.5 ETH owed, 2 secured: the lane pays what it holds and remembers the rest.
    assert balance(env, worker.account) - before_w == 2 * ETHER
    env.requester.open_lanes(job_id, [(worker.account, ETHER)])  # top-up
    fee = env.voucher(job_id, checker, ETHER // 10)
    more = env.voucher(job_id, worker, 3 * ETHER)
    env.outsider.redeem_batch([fee, more])
    assert balance(env, checker.account) - before_c == ETHER // 10
    assert balance(env, worker.account) - before_w == 3 * ETHER
    assert env.requester.paid_wei(job_id, worker.account) == 3 * ETHER
    secured = worker.secured(env.requester.account, job_id)
    assert (secured.lane_wei, secured.paid_wei, secured.secured_wei) == (3 * ETHER, 3 * ETHER, 0)
    assert secured.redeem_until_s == deadline_s + GRACE_S

    env.chain.advance_time(deadline_s + GRACE_S + 1 - env.chain.timestamp_s())
    before_r = balance(env, env.requester.account)
    env.outsider.refund(job_id, env.requester.account)
    left_wei = 10 * ETHER - 3 * ETHER - ETHER // 10
    assert balance(env, env.requester.account) - before_r == left_wei
    assert env.requester.job(job_id).refunded
    assert env.requester.balance_wei() == 0


def test_batch_redeem_across_jobs_and_payees(env: Env) -> None:
    jobs = [env.open_job(ETHER, lanes={0: ETHER // 4, 1: ETHER // 4, 2: ETHER // 4})[0]
            for _ in range(2)]  # fmt: skip
    batch = [env.voucher(j, w, ETHER // 4) for j in jobs for w in env.workers]
    receipt = env.outsider.redeem_batch(batch)
    assert receipt["status"] == 1
    for job_id in jobs:
        assert env.requester.job(job_id).remaining_wei == ETHER - 3 * ETHER // 4
    assert env.requester.balance_wei() == 2 * ETHER - 6 * ETHER // 4


def test_top_up_extends_budget_and_deadline(env: Env) -> None:
    job_id = os.urandom(32)
    env.requester.deposit(job_id, ETHER, env.deadline_in(100))
    later_s = env.deadline_in(5000)
    env.requester.deposit(job_id, ETHER, later_s)
    job = env.requester.job(job_id)
    assert (job.remaining_wei, job.deadline_s) == (2 * ETHER, later_s)
