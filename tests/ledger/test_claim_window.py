"""The claim window, on the real contract: a result or a pass is claimable only while its
job's vouchers pay (``block.timestamp <= deadline + GRACE_S``), and a top-up cannot reopen
that window once it closed. The attack it stops (review finding, stop 26): the accused's
node watches its signed results for a bounded time; a requester with a colluding quorum
waited for the watch to lapse and claimed an old result, unanswered."""

from __future__ import annotations

import os

from ledger.client import CLAIM_PENDING
from tests.ledger.conftest import ETHER, GRACE_S, SLASH_CAP_WEI, Env
from tests.ledger.test_pass_claims import open_pass_claim, plant_of, signed_pass, staked_checker
from tests.ledger.test_stake_slash import (
    claim_for,
    open_claim,
    register,
    result_of,
    reverts,
)

DEADLINE_S = 3600


def staked_worker_job(env: Env) -> bytes:
    job_id = os.urandom(32)
    env.requester.deposit(job_id, ETHER, env.deadline_in(DEADLINE_S))
    worker = env.workers[0]
    worker.send(worker.calls.stake(SLASH_CAP_WEI))
    register(env.checkers[:3])
    return job_id


def test_an_old_result_cannot_be_claimed_once_its_jobs_vouchers_stopped_paying(env_fast: Env) -> None:
    job_id = staked_worker_job(env_fast)
    claim = claim_for(env_fast, result_of(env_fast, job_id), env_fast.workers[0], SLASH_CAP_WEI)
    env_fast.chain.advance_time(DEADLINE_S + GRACE_S + 2)
    reverts("claim window over", open_claim, env_fast, claim, env_fast.checkers[:3])


def test_a_result_is_claimable_up_to_the_windows_last_second(env_fast: Env) -> None:
    job_id = staked_worker_job(env_fast)
    ref = result_of(env_fast, job_id)
    claim = claim_for(env_fast, ref, env_fast.workers[0], SLASH_CAP_WEI)
    deadline = env_fast.requester.job(job_id).deadline_s
    env_fast.chain.advance_time(deadline + GRACE_S - env_fast.chain.timestamp_s() - 1)
    open_claim(env_fast, claim, env_fast.checkers[:3])  # mined at deadline + GRACE_S at most
    assert env_fast.outsider.claim(ref, env_fast.workers[0].account).status == CLAIM_PENDING


def test_an_old_pass_cannot_be_claimed_either(env_fast: Env) -> None:
    checker = staked_checker(env_fast)
    register(env_fast.checkers[:2])
    job_id = os.urandom(32)
    env_fast.requester.deposit(job_id, ETHER, env_fast.deadline_in(DEADLINE_S))
    judged, pass_sig = signed_pass(env_fast, plant_of(env_fast, job_id), checker)
    env_fast.chain.advance_time(DEADLINE_S + GRACE_S + 2)
    reverts("claim window over", open_pass_claim, env_fast, judged, pass_sig, env_fast.checkers[:2])


def test_a_top_up_cannot_reopen_a_closed_window(env_fast: Env) -> None:
    """Else a requester let the window close, waited for the accused to stop watching,
    topped up with a new deadline and claimed the old result."""
    job_id = staked_worker_job(env_fast)
    env_fast.chain.advance_time(DEADLINE_S + GRACE_S + 2)
    reverts("job expired", env_fast.requester.deposit, job_id, ETHER, env_fast.deadline_in(DEADLINE_S))


def test_a_top_up_inside_the_window_extends_it(env_fast: Env) -> None:
    """What the accused's watch follows (node.roles.claim_watch re-reads the deadline
    before it lets a result go)."""
    job_id = staked_worker_job(env_fast)
    ref = result_of(env_fast, job_id)
    env_fast.chain.advance_time(DEADLINE_S)
    env_fast.requester.deposit(job_id, ETHER, env_fast.deadline_in(DEADLINE_S))
    env_fast.chain.advance_time(DEADLINE_S)  # past the first deadline + grace
    open_claim(env_fast, claim_for(env_fast, ref, env_fast.workers[0], SLASH_CAP_WEI),
               env_fast.checkers[:3])  # fmt: skip
    assert env_fast.outsider.claim(ref, env_fast.workers[0].account).status == CLAIM_PENDING


def test_no_deadline_lies_further_than_max_job_s_after_the_first_deposit(env_fast: Env) -> None:
    """Review (this stop): top-ups inside the window could push a job's deadline on
    without end, so a requester kept its own windows, and the signers' watches of them,
    open for ever. Now every deadline, first or topped up, is at most MAX_JOB_S after
    the first deposit's minute: anything signed for a job is claimable until then plus
    GRACE_S at most."""
    env, max_job_s = env_fast, env_fast.requester.max_job_s()
    job_id = os.urandom(32)
    reverts("deadline too far", env.requester.deposit, job_id, ETHER, env.deadline_in(max_job_s + 60))
    env.requester.deposit(job_id, ETHER, env.deadline_in(DEADLINE_S))
    created_s = env.requester.job_created_s(job_id)
    assert created_s % 60 == 0 and created_s <= env.chain.timestamp_s()
    env.requester.deposit(job_id, ETHER, created_s + max_job_s)  # the furthest: taken
    reverts("deadline too far", env.requester.deposit, job_id, ETHER, created_s + max_job_s + 1)
    assert env.requester.job(job_id).deadline_s == created_s + max_job_s
