"""Issue 17: a requester that requires stake awards only staked workers and asks only
staked checkers (the chain's word, read by the requester itself: adverts are not)."""

from __future__ import annotations

from pathlib import Path

import trio

from tests.roles.cluster import open_cluster
from tests.roles.fakes import FakeTiles
from tests.roles.test_job_flow import all_paid

MIN_WEI = 10**18


async def test_only_staked_workers_and_checkers_take_part(
    autojump_clock: trio.testing.MockClock, tmp_path: Path
) -> None:
    async with open_cluster(tmp_path) as cluster:
        client = await cluster.add("client", "client", min_stake_wei=MIN_WEI)
        unstaked = await cluster.add("w1", "worker", price_wei_per_ru=1)  # the cheapest ask
        staked = await cluster.add("w2", "worker")
        lazy = await cluster.add("c1", "checker", tiles=FakeTiles())
        checker = await cluster.add("c2", "checker")
        cluster.escrow.stakes[staked.address] = MIN_WEI
        cluster.escrow.stakes[unstaked.address] = MIN_WEI - 1
        cluster.escrow.register(checker.address, MIN_WEI)
        await cluster.settle("client", 4)
        job_id = await cluster.submit("client", frames=3)
        job = client.live().requester.jobs[job_id]
        await job.done.wait()
        assert job.view.outcome == "completed"
        assert job.view.workers == {staked.key.node_id.raw.hex()}
        owed = await all_paid(cluster, "client", job_id)
        assert unstaked.address not in owed and lazy.address not in owed
        assert checker.address in owed
        assert lazy.kit.tiles.rendered == 0  # type: ignore[attr-defined]


async def test_a_stake_backing_other_jobs_must_hold_the_minimum_for_each(
    autojump_clock: trio.testing.MockClock, tmp_path: Path
) -> None:
    """One stake, many jobs (docs/LEDGER.md): ``spread`` staked the minimum once and
    holds lanes in two other requesters' jobs, so claims there draw on the same stake;
    ``backed`` holds as much again for each job it is open in. Only ``backed`` works."""
    async with open_cluster(tmp_path) as cluster:
        client = await cluster.add("client", "client", min_stake_wei=MIN_WEI)
        spread = await cluster.add("w1", "worker", price_wei_per_ru=1)  # the cheapest ask
        backed = await cluster.add("w2", "worker")
        checker = await cluster.add("c1", "checker")
        cluster.escrow.stakes[spread.address] = MIN_WEI
        cluster.escrow.stakes[backed.address] = 2 * MIN_WEI
        cluster.escrow.register(checker.address, MIN_WEI)
        deadline_s = cluster.escrow.now_s() + 3600
        for n, payees in enumerate(((spread.address, backed.address), (spread.address,))):
            other, job = bytes([0xA0 + n]) * 20, bytes([n]) * 32
            cluster.escrow.deposit(other, job, 10, deadline_s)
            cluster.escrow.open_lanes(other, job, [(p, 1) for p in payees])
        assert cluster.escrow.open_lanes_of(spread.address) == 2
        await cluster.settle("client", 3)
        job_id = await cluster.submit("client", frames=3)
        job = client.live().requester.jobs[job_id]
        await job.done.wait()
        assert job.view.outcome == "completed"
        assert job.view.workers == {backed.key.node_id.raw.hex()}
        # One other job fed: its own job's lane, counted once opened, is never held against it.
        assert cluster.escrow.open_lanes_of(backed.address) == 2
        assert client.live().requester.jobs[job_id].lanes_fed[backed.address] == 1
