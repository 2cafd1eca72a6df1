"""One stake, many jobs: the escrow counts each payee's open lanes (``open_lanes_of``).

The attack: a worker stakes a requester's minimum once and takes frames in many jobs at
once; every requester reads the same stake and believes it backs its job, though claims
on all of them together can take it only once. The escrow now counts, per payee, the lanes
opened for it whose job's claim window has not ended (by UTC day), so a requester can ask
``min_stake x (lanes elsewhere + 1)`` (protocol.market.awarding.stake_qualifies).
"""

from __future__ import annotations

import os

import pytest

from ledger.client import EscrowClient
from ledger.deploy import EscrowParams, deploy_escrow
from ledger.errors import ChainRevert
from ledger.tx import TxSender
from tests.ledger.conftest import ETHER, FAST_TX, GRACE_S, Deployed, Env

DAY_S = 86_400


def test_a_worker_in_many_jobs_is_counted_once_per_job(env: Env) -> None:
    worker, other = env.workers[0], env.workers[1]
    assert env.requester.open_lanes_of(worker.account) == 0
    jobs = [env.open_job(lanes={0: ETHER // 10})[0] for _ in range(3)]
    assert env.requester.open_lanes_of(worker.account) == 3
    # A top-up of a lane is the same job: not counted again.
    env.requester.open_lanes(jobs[0], [(worker.account, ETHER // 10)])
    assert env.requester.open_lanes_of(worker.account) == 3
    # Another requester's job counts too: the stake backs it as well.
    job_id = os.urandom(32)
    other.deposit(job_id, ETHER, env.deadline_in(3600))
    other.open_lanes(job_id, [(worker.account, ETHER // 10)])
    assert env.requester.open_lanes_of(worker.account) == 4
    assert env.requester.open_lanes_of(env.workers[2].account) == 0


def test_a_lane_without_funds_is_not_counted(env: Env) -> None:
    """Else anyone could raise a payee's count for the gas alone, again and again in
    one job (a zero funding leaves the lane new)."""
    worker = env.workers[0]
    job_id, _ = env.open_job()
    for _ in range(3):
        env.requester.open_lanes(job_id, [(worker.account, 0)])
    assert env.requester.open_lanes_of(worker.account) == 0
    env.requester.open_lanes(job_id, [(worker.account, 1)])
    assert env.requester.open_lanes_of(worker.account) == 1


def start_of_next_day(env: Env, plus_s: int = 3600) -> None:
    """Move the chain to ``plus_s`` into the next UTC day: anvil's clock is the wall's,
    and a test near midnight would see its lanes' days move (review of stop 43)."""
    env.chain.advance_time((env.chain.timestamp_s() // DAY_S + 1) * DAY_S + plus_s - env.chain.timestamp_s())


def test_a_lane_stops_counting_after_the_day_its_claim_window_ends(env: Env) -> None:
    start_of_next_day(env)
    worker = env.workers[0]
    _, deadline_s = env.open_job(lifetime_s=3600, lanes={0: ETHER // 10})
    ends_s = deadline_s + GRACE_S
    env.chain.advance_time(ends_s - env.chain.timestamp_s())  # the window's last second
    assert env.requester.open_lanes_of(worker.account) == 1
    end_of_day_s = (ends_s // DAY_S + 1) * DAY_S
    # Counted to the end of that day (the count's grain), and not a second longer.
    env.chain.advance_time(end_of_day_s - 1 - env.chain.timestamp_s())
    assert env.requester.open_lanes_of(worker.account) == 1
    env.chain.advance_time(end_of_day_s - env.chain.timestamp_s())
    assert env.requester.open_lanes_of(worker.account) == 0


def test_a_window_that_ends_the_next_day_counts_that_day(env: Env) -> None:
    """The day is the window's end (deadline + GRACE_S), not the deadline's."""
    start_of_next_day(env, DAY_S - GRACE_S)  # the deadline falls before midnight, + grace after
    env.open_job(lifetime_s=GRACE_S // 2, lanes={0: ETHER // 10})
    start_of_next_day(env, 60)
    assert env.requester.open_lanes_of(env.workers[0].account) == 1


def test_a_job_at_its_longest_is_counted(env: Env) -> None:
    """The furthest day a window can end on: a deadline at MAX_JOB_S after a first deposit
    made just before midnight, its window ending one day further than MAX_JOB_S + GRACE_S
    whole days (the view reads that day too)."""
    sender = TxSender(env.chain.w3, env.key_of(env.requester), FAST_TX)
    escrow = EscrowClient(sender, deploy_escrow(sender, EscrowParams(
        grace_s=GRACE_S, max_job_s=2 * DAY_S)))  # fmt: skip
    start_of_next_day(env, DAY_S - 100)
    job_id = os.urandom(32)
    created_s = env.chain.timestamp_s() // 60 * 60  # the escrow keeps the first deposit's minute
    escrow.deposit(job_id, ETHER, created_s + 2 * DAY_S)
    escrow.open_lanes(job_id, [(env.workers[0].account, 1)])
    ends_day = (created_s + 2 * DAY_S + GRACE_S) // DAY_S
    assert ends_day == env.chain.timestamp_s() // DAY_S + 3  # (2 days + grace) // 1 day + 1
    assert escrow.open_lanes_of(env.workers[0].account) == 1


def test_lanes_ending_on_later_days_count_until_theirs(env: Env) -> None:
    start_of_next_day(env)
    worker = env.workers[0]
    env.open_job(lifetime_s=3600, lanes={0: ETHER // 10})
    env.open_job(lifetime_s=5 * DAY_S, lanes={0: ETHER // 10})
    assert env.requester.open_lanes_of(worker.account) == 2
    env.chain.advance_time(2 * DAY_S)
    assert env.requester.open_lanes_of(worker.account) == 1
    env.chain.advance_time(4 * DAY_S)
    assert env.requester.open_lanes_of(worker.account) == 0


def test_a_refund_does_not_lower_the_count_before_its_day_ends(env: Env) -> None:
    """A refund comes only after the window: the lane counts to the end of that day
    whether or not anyone refunds (the contract cannot name a job's payees then)."""
    start_of_next_day(env)
    worker = env.workers[0]
    job_id, deadline_s = env.open_job(lifetime_s=60, lanes={0: ETHER // 10})
    env.chain.advance_time(deadline_s + GRACE_S + 1 - env.chain.timestamp_s())
    assert env.requester.open_lanes_of(worker.account) == 1  # the window's day goes on
    env.requester.refund(job_id)
    assert env.requester.open_lanes_of(worker.account) == 1


def test_the_escrow_refuses_a_job_length_it_cannot_count(embedded_only: Deployed) -> None:
    sender = TxSender(embedded_only.chain.w3, embedded_only.chain.funded_keys[0], FAST_TX)
    with pytest.raises(ChainRevert, match="job too long to count"):
        deploy_escrow(sender, EscrowParams(grace_s=DAY_S, max_job_s=62 * DAY_S))
    deploy_escrow(sender, EscrowParams(grace_s=DAY_S, max_job_s=61 * DAY_S))
