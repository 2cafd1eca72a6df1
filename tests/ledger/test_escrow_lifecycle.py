"""A job from deposit to refund on real EVM execution (py-evm, and anvil when slow tests run)."""

from __future__ import annotations

import os
from dataclasses import replace

import pytest
from eth_account import Account

from ledger.vouchers import sign
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
    assert env.requester.paid_wei(job_id, worker.account, env.requester.account) == 3 * ETHER
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


def fund(env: Env, address: bytes) -> None:
    """Give ``address`` 1 wei, as a worker that pays its own gas holds coin."""
    sender = env.requester.sender
    tx = {"to": env.chain.w3.to_checksum_address(address), "value": 1, "gas": 21_000,
          "nonce": sender.nonces.allocate(), "chainId": env.chain.chain_id,
          "maxFeePerGas": 10**12, "maxPriorityFeePerGas": 1}  # fmt: skip
    signed = Account.sign_transaction(tx, env.key_of(env.requester))
    env.chain.w3.eth.send_raw_transaction(signed.raw_transaction)


@pytest.mark.parametrize("workers", [1, 10])
def test_gas_per_paid_frame_goal(env_fast: Env, workers: int) -> None:
    """<= 2,500 gas per frame at 100 frames per worker, counting every transaction
    of the job: deposit, one open_lanes for all workers, the redeem(s), refund."""
    env, frames = env_fast, 100 * workers
    payees = [os.urandom(20) for _ in range(workers)]
    for payee in payees:
        fund(env, payee)
    job_id, deadline_s = os.urandom(32), env.deadline_in(3600)
    per_worker_wei = 100 * ETHER // 1000
    gas = env.requester.deposit(job_id, ETHER, deadline_s)["gasUsed"]
    gas += env.requester.open_lanes(job_id, [(p, per_worker_wei) for p in payees])["gasUsed"]
    vouchers = [replace(env.voucher(job_id, env.workers[0], per_worker_wei), payee=p, signature=b"")
                for p in payees]  # fmt: skip
    signed = [sign(v, env.key_of(env.requester)) for v in vouchers]
    if workers == 1:
        gas += env.outsider.redeem(signed[0])["gasUsed"]
    else:
        gas += env.outsider.redeem_batch(signed)["gasUsed"]
    assert sum(env.requester.paid_wei(job_id, p, env.requester.account) for p in payees) == workers * per_worker_wei
    env.chain.advance_time(deadline_s + GRACE_S + 1 - env.chain.timestamp_s())
    gas += env.outsider.refund(job_id, env.requester.account)["gasUsed"]
    assert gas / frames <= 2_500, f"{gas / frames:.0f} gas per frame"
