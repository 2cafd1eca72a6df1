"""Redeem policy vs gas, through the real roles (issue 13): payees batch.

Each 0.1 ETH voucher of the demo was redeemed the moment it came (~51k gas
each, 16 redeems for 8 frames). A lane secures the pay until the redeem-by
time, so a payee now waits while the job runs (unless gas is a tiny share of
what it holds) and redeems once, when the requester tells it the job is over.
"""

from __future__ import annotations

from pathlib import Path

import trio

from tests.roles.cluster import open_cluster
from tests.roles.test_job_flow import all_paid

GAS_PRICE_WEI = 10**6  # a redeem (60k gas) costs 6e10 wei: 10,000x that, 6e14, is more
# than the job pays anyone (4 frames at most 1e14 each), while a frame's price or fee
# (1e13, 1e12 at the cluster's asks) is worth far more than one redeem


async def test_payees_redeem_once_when_the_job_is_over(
    autojump_clock: trio.testing.MockClock, tmp_path: Path
) -> None:
    async with open_cluster(tmp_path) as cluster:
        client = await cluster.add("client", "client")
        worker = await cluster.add("w1", "worker")
        checker = await cluster.add("c1", "checker")
        for member in (worker, checker):
            assert member.chain is not None
            member.chain.gas_price = GAS_PRICE_WEI
        await cluster.settle("client", 2)
        job_id = await cluster.submit("client", frames=4, deadline_s=6 * 3600.0)
        job = client.live().requester.jobs[job_id]
        await job.done.wait()
        assert job.view.outcome == "completed"
        done_s = trio.current_time()
        owed = await all_paid(cluster, "client", job_id)
        assert trio.current_time() - done_s < 60  # told the job is over: not at redeem-by
        assert owed[worker.address] > owed[checker.address] > 10 * GAS_PRICE_WEI * 60_000
        for member in (worker, checker):
            redeems = [t for t in member.chain.transactions if t.what == "redeem"]  # type: ignore[union-attr]
            assert len(redeems) == 1, f"{member.name} redeemed {len(redeems)} times"
        assert cluster.escrow.conserved()
