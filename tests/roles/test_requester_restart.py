"""The requester's journal: killed at any step of a job, restarted, it finishes with
books that match the chain and nobody paid twice or short."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
import trio

from tests.roles.cluster import open_cluster
from tests.roles.test_job_flow import all_paid

FRAMES = 2
STEPS_OF_A_JOB = 17  # inputs a 2-frame job journals here (test_a_job_takes_about_this_many),
# capacity challenges' outcomes included (node.roles.challenger), and since checkers must
# cover a pass claim by default, that requirement and the checker's stake (13 before;
# a stakeless bidder's 0 is not journalled: 16 steps here, 15 in test_record_crash's;
# the kills are at the steps before the job is done); since checks wait for a checker
# with room (the default since stop 41), the second result's wait for the one checker
# (``waits``), and the second check's ``exhausted`` (one checker, two wanted): 17, every
# run since the checker's stake is journalled once (RequesterJob.feed_stake: 17 to 20
# before, one 'stake' entry per concurrent feed)


async def run_job_killing_requester_at(step: int | None, tmp_path: Path) -> int:
    async with open_cluster(tmp_path) as cluster:
        await cluster.add("client", "client")
        await cluster.add("w1", "worker")
        await cluster.add("w2", "worker")
        await cluster.add("c1", "checker")
        await cluster.settle("client", 3)
        job_id = await cluster.submit("client", frames=FRAMES)
        job = cluster.members["client"].live().requester.jobs[job_id]
        if step is not None:
            while job.steps < step and not job.done.is_set():
                await job.wait_changed()
            await cluster.kill("client")
            client = await cluster.restart("client")
            job = client.live().requester.jobs[job_id]
        await job.done.wait()
        assert job.view.outcome == "completed"
        assert len(list((tmp_path / "client-out").glob("frame_*.png"))) == FRAMES
        owed = await all_paid(cluster, "client", job_id)
        # The books are the chain's: every payee was paid exactly what the job owes it.
        assert {a: w for (j, a), w in cluster.escrow.paid.items() if j == job_id} == owed
        assert cluster.escrow.conserved()
        return job.steps


async def test_a_job_takes_about_this_many_steps(
    autojump_clock: trio.testing.MockClock, tmp_path: Path
) -> None:
    steps = await run_job_killing_requester_at(None, tmp_path)
    assert STEPS_OF_A_JOB - 3 <= steps <= STEPS_OF_A_JOB + 3


@pytest.mark.parametrize("step", range(1, STEPS_OF_A_JOB + 1))
async def test_requester_killed_at_a_step_finishes_the_job(
    autojump_clock: trio.testing.MockClock, tmp_path: Path, step: int
) -> None:
    await run_job_killing_requester_at(step, tmp_path)


async def test_a_job_journalled_under_other_rules_is_cancelled_not_carried_on(
    autojump_clock: trio.testing.MockClock, tmp_path: Path
) -> None:
    """A node upgraded in the middle of a job would replay its journal under new rules
    into a state the job never had (node.roles.rules): the job is cancelled once
    replayed, what it owes is paid, and nothing more is awarded."""
    async with open_cluster(tmp_path) as cluster:
        client = await cluster.add("client", "client")
        await cluster.add("w1", "worker")
        await cluster.add("c1", "checker")
        await cluster.settle("client", 2)
        job_id = await cluster.submit("client", frames=6)
        job = client.live().requester.jobs[job_id]
        while not job.view.accepted:
            await job.wait_changed()
        await cluster.kill("client")
        with sqlite3.connect(client.data_dir / "node.sqlite3") as conn:  # as an older node wrote it
            conn.execute("UPDATE market_journal SET data = ? WHERE job_id = ? AND kind = 'start'",
                         (b"older rules", job_id.hex()))  # fmt: skip
        client = await cluster.restart("client")
        job = client.live().requester.jobs[job_id]
        await job.done.wait()
        assert job.view.outcome == "cancelled"
        assert 1 <= len(job.view.accepted) < 6
        owed = await all_paid(cluster, "client", job_id)
        assert {a: w for (j, a), w in cluster.escrow.paid.items() if j == job_id} == owed
        assert cluster.escrow.conserved()
        # and a restart of the cancelled job stays cancelled
        await cluster.kill("client")
        client = await cluster.restart("client")
        assert client.live().requester.jobs[job_id].view.outcome == "cancelled"
