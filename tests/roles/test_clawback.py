"""Issue 13, problem 1: a requester claws back the budget; the honest worker is paid anyway.

The requester (adversary "clawback") opens a lane for its own second address
with everything unallocated, signs it a voucher for all the escrow still holds
for the job and redeems it before it pays anyone. On the old escrow (no lanes:
any requester-signed voucher paid up to the job's remaining budget) the sock
puppet took the whole budget and the worker's voucher reverted "over budget",
so this test failed; with lanes the worker's pay was set aside before it
rendered.
"""

from __future__ import annotations

from pathlib import Path

import trio

from node.roles.adversary import sock_puppet
from tests.roles.cluster import PRICE_WEI_PER_RU, open_cluster
from tests.roles.test_job_flow import all_paid

FRAMES = 3


async def test_clawback_takes_nothing_from_the_workers_lane(
    autojump_clock: trio.testing.MockClock, tmp_path: Path
) -> None:
    async with open_cluster(tmp_path) as cluster:
        client = await cluster.add("client", "client", adversary="clawback")
        worker = await cluster.add("w1", "worker")
        checker = await cluster.add("c1", "checker")
        await cluster.settle("client", 2)
        job_id = await cluster.submit("client", frames=FRAMES)
        job = client.live().requester.jobs[job_id]
        await job.done.wait()
        # The requester took its own unallocated budget: since lanes are funded ahead
        # only as far as the worker's credit (protocol.market.lanes), the frames its lane
        # no longer covers are declined and the job stalls (before, the first award round
        # funded the worker's whole share and the job completed).
        assert job.view.outcome in ("completed", "expired")
        owed = await all_paid(cluster, "client", job_id)
        taken = cluster.escrow.paid_to(sock_puppet(client.payment_key))
        assert taken > 0  # the attack ran: it took what no lane held
        price_wei = job.spec.ru_per_frame * PRICE_WEI_PER_RU  # the fake scene: 1 RU a frame
        accepted = len(job.view.accepted)
        assert accepted >= 1
        assert cluster.escrow.paid_to(worker.address) == owed[worker.address] == accepted * price_wei
        assert cluster.escrow.paid_to(checker.address) == owed[checker.address] > 0
        budget_wei = job.spec.budget_wei
        assert taken + sum(owed.values()) <= budget_wei
        assert cluster.escrow.conserved()
