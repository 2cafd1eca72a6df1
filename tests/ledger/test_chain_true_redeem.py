"""A payee's redemption judged by the chain: lanes and paid amounts read before
each batch, chain time for expiry, nothing in the batch that the chain already paid.

Problem 3 of issue 13: a payee that trusted its local record put a voucher that
someone else had redeemed (or that it redeemed before a restart) into every
batch, and every batch reverted. Now the plan never includes it, and even a
stale entry that slips in is skipped, not fatal."""

from __future__ import annotations

from ledger.voucher_book import RedeemPolicy, VoucherBook
from tests.ledger.conftest import ETHER, GRACE_S, Env

POLICY = RedeemPolicy(profit_factor=10)  # what is paid, not when: redeem mid-job


def test_front_run_and_restart_do_not_freeze_the_payee(env_fast: Env) -> None:
    env, worker = env_fast, env_fast.workers[0]
    job_a, deadline_s = env.open_job(ETHER, lanes={0: ETHER // 2})
    job_b, _ = env.open_job(ETHER, lanes={0: ETHER // 2})
    book = VoucherBook()
    redeem_by_s = worker.secured(env.requester.account, job_a).redeem_until_s
    assert redeem_by_s == deadline_s + GRACE_S
    first_a = env.voucher(job_a, worker, ETHER // 10)
    book.add(first_a, redeem_by_s)
    env.outsider.redeem(first_a)  # someone redeems it for the worker
    book.add(env.voucher(job_b, worker, ETHER // 5), redeem_by_s)
    restarted = VoucherBook.from_rows(book.to_rows())  # paid amounts as stale as can be
    r = worker.readings(restarted.unsettled())
    plan = restarted.plan(r.lanes, r.chain_time_s, r.gas_price_wei, POLICY)
    assert [(x.voucher.job_id, x.amount_wei) for x in plan.redeem] == [(job_b, ETHER // 5)]
    worker.redeem_batch(plan.vouchers)
    assert worker.paid_wei(job_b, worker.account, env.requester.account) == ETHER // 5
    # A newer voucher for job A pays only the difference the chain reports.
    restarted.add(env.voucher(job_a, worker, ETHER // 4), redeem_by_s)
    r = worker.readings(restarted.unsettled())
    plan = restarted.plan(r.lanes, r.chain_time_s, r.gas_price_wei, POLICY)
    assert [x.amount_wei for x in plan.redeem] == [ETHER // 4 - ETHER // 10]


def test_written_off_by_chain_time(env_fast: Env) -> None:
    env, worker = env_fast, env_fast.workers[0]
    job_id, deadline_s = env.open_job(ETHER, lifetime_s=100, lanes={0: ETHER // 2})
    book = VoucherBook()
    book.add(env.voucher(job_id, worker, ETHER), deadline_s + GRACE_S)
    env.chain.advance_time(deadline_s + GRACE_S - env.chain.timestamp_s())
    r = worker.readings(book.unsettled())
    assert r.chain_time_s == deadline_s + GRACE_S  # the chain's clock, not ours
    plan = book.plan(r.lanes, r.chain_time_s, r.gas_price_wei, POLICY)
    assert plan.redeem == []
    assert [(w.unpaid_wei, w.reason) for w in plan.written_off] == [(ETHER, "expired")]
