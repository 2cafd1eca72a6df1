"""Issue 13, ledger half: the attacks a review demonstrated on the escrow, each
replayed against the real contract (py-evm; anvil too when slow tests run).

On the escrow before lanes each of these failed: the requester's voucher to
itself emptied the budget and the worker's voucher reverted "over budget"; a
stranger who deposited a job id first owned it; one stale entry reverted a
whole batch; a fee-on-transfer token was credited at face value."""

from __future__ import annotations

import os
from dataclasses import replace
from typing import Any

import pytest
from web3.logs import DISCARD

from ledger.errors import ChainRevert
from ledger.fraud import FraudClaim, ResultRef, order_signatures, sign_claim
from ledger.fraud import sign as sign_message
from ledger.vouchers import sign
from protocol.slashing import slash_split
from tests.ledger.conftest import (
    CHALLENGE_S,
    CHECKER_MIN_STAKE_WEI,
    ETHER,
    GRACE_S,
    SLASH_CAP_WEI,
    Env,
)
from tests.ledger.mocks import deploy_mock, mock_contract

# RedeemSkipped.reason codes (Escrow.vy SKIP_*).
EXPIRED, BAD_SIGNATURE, NOTHING_OWED, LANE_SPENT, PAYMENT_FAILED = 3, 4, 5, 6, 7


def balance(env: Env, account: bytes | str) -> int:
    address = account if isinstance(account, str) else env.chain.w3.to_checksum_address(account)
    return int(env.chain.w3.eth.get_balance(address))


def events(env: Env, receipt: Any, name: str) -> list[dict[str, Any]]:
    event = getattr(env.requester.contract.events, name)()
    return [dict(e["args"]) for e in event.process_receipt(receipt, errors=DISCARD)]


def test_requester_cannot_claw_back_a_workers_secured_pay(env: Env) -> None:
    """Problem 1: a voucher to itself (or a sock puppet) for the whole budget
    takes nothing from the worker's lane; the worker is paid in full."""
    worker, puppet = env.workers[0], env.workers[2]
    job_id, _ = env.open_job(ETHER, lanes={0: ETHER // 2})
    before = balance(env, worker.account)
    greedy = [env.voucher(job_id, who, ETHER) for who in (env.requester, puppet)]
    # The unallocated half can only go to a lane the requester opens, never the worker's.
    env.requester.open_lanes(job_id, [(puppet.account, ETHER // 2)])
    env.outsider.redeem_batch(greedy)
    assert env.requester.paid_wei(job_id, puppet.account, env.requester.account) == ETHER // 2
    env.outsider.redeem(env.voucher(job_id, worker, ETHER // 2))
    assert balance(env, worker.account) - before == ETHER // 2
    assert env.requester.job(job_id).remaining_wei == 0


def test_promises_beyond_the_budget_are_impossible(env: Env) -> None:
    """Problem 1: lanes are carved out of the deposit, so two payees cannot race
    for the same wei: every opened lane is paid in full, whatever the order."""
    job_id, _ = env.open_job(ETHER, lanes={0: 3 * ETHER // 5})
    with pytest.raises(ChainRevert, match="over budget"):
        env.requester.open_lanes(job_id, [(env.workers[1].account, 3 * ETHER // 5)])
    env.requester.open_lanes(job_id, [(env.workers[1].account, 2 * ETHER // 5)])
    env.outsider.redeem(env.voucher(job_id, env.workers[1], ETHER))
    env.outsider.redeem(env.voucher(job_id, env.workers[0], ETHER))
    assert [env.requester.paid_wei(job_id, w.account, env.requester.account) for w in env.workers[:2]] == [
        3 * ETHER // 5, 2 * ETHER // 5]  # fmt: skip


def test_lane_funds_stay_until_deadline_plus_grace(env: Env) -> None:
    """Problem 1/7: the requester's only way back to its money is the refund, and
    it opens strictly after the last second a voucher pays."""
    worker = env.workers[0]
    job_id, deadline_s = env.open_job(ETHER, lifetime_s=100, lanes={0: ETHER // 4})
    env.chain.advance_time(deadline_s + GRACE_S - 1 - env.chain.timestamp_s())
    with pytest.raises(ChainRevert, match="grace not over"):
        env.requester.refund(job_id)
    env.outsider.redeem(env.voucher(job_id, worker, ETHER // 4))  # at deadline + grace
    env.chain.advance_time(1)
    before = balance(env, env.requester.account)
    receipt = env.outsider.refund(job_id, env.requester.account)  # anyone may trigger it
    assert balance(env, env.requester.account) - before == 3 * ETHER // 4
    assert events(env, receipt, "Refunded")[0]["amount"] == 3 * ETHER // 4


def test_unpaid_lane_balance_is_refunded(env: Env) -> None:
    """Problem 7: after deadline + grace the requester gets unallocated funds and
    what lanes never paid; `pictor job refund` needs only the job id."""
    job_id, deadline_s = env.open_job(ETHER, lifetime_s=100, lanes={0: ETHER // 2, 1: ETHER // 4})
    env.outsider.redeem(env.voucher(job_id, env.workers[0], ETHER // 10))
    job = env.requester.job(job_id)
    assert (job.remaining_wei, job.unallocated_wei) == (ETHER - ETHER // 10, ETHER // 4)
    env.chain.advance_time(deadline_s + GRACE_S + 1 - env.chain.timestamp_s())
    before = balance(env, env.requester.account)
    receipt = env.requester.refund(job_id)
    gas_wei = receipt["gasUsed"] * receipt["effectiveGasPrice"]
    assert balance(env, env.requester.account) - before + gas_wei == ETHER - ETHER // 10
    assert env.requester.balance_wei() == 0
    assert env.workers[0].secured(env.requester.account, job_id).secured_wei == 0


def test_worker_reads_everything_it_needs_before_bidding(env: Env) -> None:
    """Problem 2: one view answers "does the job exist, whose, which token, until
    when, and how much of my pay is secured?"."""
    worker = env.workers[0]
    never = worker.secured(env.requester.account, os.urandom(32))
    assert not never.exists and never.secured_wei == 0
    job_id, deadline_s = env.open_job(ETHER)
    unfunded = worker.secured(env.requester.account, job_id)
    assert unfunded.exists and unfunded.secured_wei == 0
    env.requester.open_lanes(job_id, [(worker.account, ETHER // 10)])
    env.requester.open_lanes(job_id, [(worker.account, ETHER // 10)])  # top-up
    s = worker.secured(env.requester.account, job_id)
    assert (s.exists, s.token, s.deadline_s, s.redeem_until_s, s.refunded) == (
        True, bytes(20), deadline_s, deadline_s + GRACE_S, False)  # fmt: skip
    assert s.secured_wei == ETHER // 5
    env.outsider.redeem(env.voucher(job_id, worker, ETHER // 20))
    assert worker.secured(env.requester.account, job_id).secured_wei == ETHER // 5 - ETHER // 20
    # Someone else's job with the same id is another job: nothing secured there.
    assert not worker.secured(env.outsider.account, job_id).exists
    s = worker.secured(env.requester.account, job_id)
    done_s = deadline_s  # the work is done and redeemed by the deadline
    assert s.problem(token=bytes(20), cumulative_wei=ETHER // 5, redeem_by_s=done_s) is None
    assert s.problem(token=bytes(20), cumulative_wei=ETHER // 5 + 1, redeem_by_s=done_s) == (
        f"{ETHER // 5} wei secured, {ETHER // 5 + 1} wei needed")  # fmt: skip
    assert "stop paying" in str(s.problem(token=bytes(20), cumulative_wei=1,
                                          redeem_by_s=deadline_s + GRACE_S + 1))  # fmt: skip
    assert s.problem(token=b"\x01" * 20, cumulative_wei=1, redeem_by_s=done_s) == (
        "job pays in another token")  # fmt: skip
    assert never.problem(token=bytes(20), cumulative_wei=1, redeem_by_s=0) == "no such job on chain"


def test_job_ids_cannot_be_squatted(env: Env) -> None:
    """Problem 8: a stranger that deposits an id first gets its own job, not ours."""
    job_id, worker = os.urandom(32), env.workers[0]
    squatter = env.outsider
    squatter.deposit(job_id, ETHER // 100, env.deadline_in(60))
    env.requester.deposit(job_id, ETHER, env.deadline_in(3600))  # not "not requester"
    env.requester.open_lanes(job_id, [(worker.account, ETHER // 2)])
    assert env.requester.job(job_id).remaining_wei == ETHER
    assert squatter.job(job_id).remaining_wei == ETHER // 100
    # The squatter's vouchers name the squatter's job, never ours.
    mine = env.voucher(job_id, worker, ETHER // 2, requester=squatter)
    with pytest.raises(ChainRevert, match="lane spent"):
        env.outsider.redeem(mine)
    env.outsider.redeem(env.voucher(job_id, worker, ETHER // 2))
    assert env.requester.paid_wei(job_id, worker.account, env.requester.account) == ETHER // 2


def test_fraud_signatures_name_the_requester(env: Env) -> None:
    """Problem 8: checkers' fraud proof for our job cannot be replayed on a sock
    puppet's job with the same id (whose requester would pocket half the slash)."""
    job_id, worker, puppet = os.urandom(32), env.workers[0], env.outsider
    env.requester.deposit(job_id, ETHER, env.deadline_in(3600))
    puppet.deposit(job_id, ETHER, env.deadline_in(3600))
    worker.send(worker.calls.stake(ETHER))
    for c in env.checkers[:2]:
        c.send(c.calls.stake(CHECKER_MIN_STAKE_WEI))
        c.send(c.calls.register_checker())
    ref = ResultRef(env.chain.chain_id, env.contract_bytes, env.requester.account, job_id,
                    bytes(32), 0, b"\x01" * 32)  # fmt: skip
    claim = FraudClaim(ref, worker.account, bytes(32), SLASH_CAP_WEI)
    sigs = order_signatures(claim, [sign_claim(claim, env.key_of(c)) for c in env.checkers[:2]])
    replayed = FraudClaim(replace(ref, requester=puppet.account), worker.account, bytes(32),
                          SLASH_CAP_WEI)  # fmt: skip
    # Even with the worker's signed result for the puppet's job, our proof does not transfer.
    replayed_result = sign_message(replayed.ref, env.key_of(worker))
    with pytest.raises(ChainRevert):
        puppet.send(puppet.calls.claim_fraud(replayed, replayed_result, sigs))
    puppet.send(puppet.calls.claim_fraud(claim, sign_message(ref, env.key_of(worker)), sigs))
    env.chain.advance_time(CHALLENGE_S)
    claimers = sorted(c.account for c in env.checkers[:2])
    puppet.send(puppet.calls.execute_slash(claim, claimers))
    assert env.requester.credit_wei(env.requester.account) == slash_split(SLASH_CAP_WEI, 2).requester_wei
    assert puppet.credit_wei(puppet.account) == 0


def test_batch_skips_what_cannot_pay_and_pays_the_rest(env: Env) -> None:
    """Problems 3/7: a front-run (already paid) entry, a forged one, a spent lane
    and a duplicate are skipped with RedeemSkipped; the honest entries pay."""
    w = env.workers
    job_id, _ = env.open_job(ETHER, lanes={0: ETHER // 4, 1: ETHER // 4, 2: ETHER // 4})
    front_run = env.voucher(job_id, w[0], ETHER // 4)
    env.outsider.redeem(front_run)  # someone redeemed it for w0 first
    honest = env.voucher(job_id, w[1], ETHER // 5)
    forged = env.voucher(job_id, w[2], ETHER // 4, signer=w[2])
    beyond = env.voucher(job_id, w[0], ETHER // 2)  # owed, but w0's lane is spent
    before = balance(env, w[1].account)
    receipt = env.outsider.redeem_batch([front_run, honest, forged, beyond, honest])
    assert balance(env, w[1].account) - before == ETHER // 5
    skipped = [(e["payee"], e["reason"]) for e in events(env, receipt, "RedeemSkipped")]
    address = env.chain.w3.to_checksum_address
    assert skipped == [(address(w[0].account), NOTHING_OWED), (address(w[2].account), BAD_SIGNATURE),
                       (address(w[0].account), LANE_SPENT), (address(w[1].account), NOTHING_OWED)]  # fmt: skip
    assert [e["amount"] for e in events(env, receipt, "Redeemed")] == [ETHER // 5]


@pytest.mark.parametrize("payee_kind", ["RejectsPayment", "BurnsGas"])
def test_a_payee_that_refuses_payment_is_skipped(env: Env, payee_kind: str) -> None:
    """Problem 7: a payee contract that rejects native coin (or burns the gas it is
    given) does not sink the batch; its lane stays unpaid for a later redeem."""
    bad = bytes.fromhex(deploy_mock(env.requester.sender, payee_kind)[2:])
    worker = env.workers[0]
    job_id, _ = env.open_job(ETHER, lanes={0: ETHER // 4})
    env.requester.open_lanes(job_id, [(bad, ETHER // 4)])
    unsigned = replace(env.voucher(job_id, worker, ETHER // 4), payee=bad, signature=b"")
    bad_voucher = sign(unsigned, env.key_of(env.requester))
    before = balance(env, worker.account)
    receipt = env.outsider.redeem_batch([bad_voucher, env.voucher(job_id, worker, ETHER // 4)])
    assert balance(env, worker.account) - before == ETHER // 4
    assert [e["reason"] for e in events(env, receipt, "RedeemSkipped")] == [PAYMENT_FAILED]
    assert receipt["gasUsed"] < 300_000  # the burner got 100k gas, not 63/64 of the batch's
    assert env.requester.lane(job_id, bad, env.requester.account).paid_wei == 0
    assert env.requester.job(job_id).remaining_wei == 3 * ETHER // 4
    assert env.requester.balance_wei() == 3 * ETHER // 4
    with pytest.raises(ChainRevert):
        env.outsider.redeem(bad_voucher)  # the single redeem reports the failure


def test_expired_entries_are_skipped(env: Env) -> None:
    job_id, deadline_s = env.open_job(ETHER, lifetime_s=100, lanes={0: ETHER // 4})
    late = env.voucher(job_id, env.workers[0], ETHER // 4)
    env.chain.advance_time(deadline_s + GRACE_S + 1 - env.chain.timestamp_s())
    receipt = env.outsider.redeem_batch([late])
    assert [e["reason"] for e in events(env, receipt, "RedeemSkipped")] == [EXPIRED]


def test_fee_on_transfer_token_is_credited_what_arrived(env: Env) -> None:
    """Problem 9: the job is credited the balance the escrow actually received, so
    lanes and payouts never spend other jobs' tokens."""
    req, worker = env.requester, env.workers[0]
    address = deploy_mock(req.sender, "FeeToken")
    token = mock_contract(req.sender, "FeeToken", address)
    req.sender.transact(token.functions.mint(req.sender.address, 10 * ETHER))
    req.sender.transact(token.functions.approve(env.escrow, 10 * ETHER))
    job_id, deadline_s = os.urandom(32), env.deadline_in(3600)
    receipt = req.deposit(job_id, 10 * ETHER, deadline_s, token=address)
    received = 10 * ETHER * 99 // 100
    assert events(env, receipt, "Deposited")[0]["amount"] == received
    assert req.job(job_id).remaining_wei == received
    with pytest.raises(ChainRevert, match="over budget"):
        req.open_lanes(job_id, [(worker.account, 10 * ETHER)])
    req.open_lanes(job_id, [(worker.account, received)])
    env.outsider.redeem(env.voucher(job_id, worker, received))
    assert token.functions.balanceOf(env.escrow).call() == 0  # solvent: nothing owed, nothing left


def test_token_that_refuses_a_payee_is_skipped_in_a_batch(env: Env) -> None:
    req, w = env.requester, env.workers
    address = deploy_mock(req.sender, "FeeToken")
    token = mock_contract(req.sender, "FeeToken", address)
    req.sender.transact(token.functions.mint(req.sender.address, ETHER))
    req.sender.transact(token.functions.approve(env.escrow, ETHER))
    job_id = os.urandom(32)
    req.deposit(job_id, ETHER, env.deadline_in(3600), token=address)
    req.open_lanes(job_id, [(w[0].account, ETHER // 4), (w[1].account, ETHER // 4)])
    req.sender.transact(token.functions.refuse(w[0].sender.address))  # a blocklisted payee
    receipt = env.outsider.redeem_batch([env.voucher(job_id, x, ETHER // 4) for x in w[:2]])
    assert [e["reason"] for e in events(env, receipt, "RedeemSkipped")] == [PAYMENT_FAILED]
    assert token.functions.balanceOf(w[1].sender.address).call() == ETHER // 4 * 99 // 100
    assert req.lane(job_id, w[0].account, env.requester.account).paid_wei == 0
