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
    assert env.requester.balance_wei() == 10 * ETHER

    worker, checker = env.workers[0], env.checkers[0]
    before_w, before_c = balance(env, worker.account), balance(env, checker.account)
    # Frames accepted one by one; each voucher supersedes the previous.
    for frames in range(1, 6):
        latest = env.voucher(job_id, worker, frames * ETHER // 2)
    env.outsider.redeem(latest)  # anyone may submit; the money goes to the payee
    assert balance(env, worker.account) - before_w == 5 * ETHER // 2

    fee = env.voucher(job_id, checker, ETHER // 10)
    more = env.voucher(job_id, worker, 3 * ETHER)
    env.outsider.redeem_batch([fee, more])
    assert balance(env, checker.account) - before_c == ETHER // 10
    assert balance(env, worker.account) - before_w == 3 * ETHER
    assert env.requester.paid_wei(job_id, worker.account) == 3 * ETHER

    env.chain.advance_time(deadline_s + GRACE_S + 1 - env.chain.timestamp_s())
    before_r = balance(env, env.requester.account)
    env.outsider.refund(job_id)
    left_wei = 10 * ETHER - 3 * ETHER - ETHER // 10
    assert balance(env, env.requester.account) - before_r == left_wei
    assert env.requester.job(job_id).refunded
    assert env.requester.balance_wei() == 0


def test_batch_redeem_across_jobs_and_payees(env: Env) -> None:
    jobs = [os.urandom(32) for _ in range(2)]
    for job_id in jobs:
        env.requester.deposit(job_id, ETHER, env.deadline_in(3600))
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


def test_gas_per_paid_frame_goal(env_fast: Env) -> None:
    """<= 2,000 gas per frame for 100 frames paid to one worker: deposit + redeem + refund."""
    env = env_fast
    job_id, deadline_s = os.urandom(32), env.deadline_in(3600)
    gas = env.requester.deposit(job_id, ETHER, deadline_s)["gasUsed"]
    gas += env.outsider.redeem(env.voucher(job_id, env.workers[0], 100 * ETHER // 1000))["gasUsed"]
    env.chain.advance_time(deadline_s + GRACE_S + 1 - env.chain.timestamp_s())
    gas += env.outsider.refund(job_id)["gasUsed"]
    assert gas / 100 <= 2_000, f"{gas / 100:.0f} gas per frame"
