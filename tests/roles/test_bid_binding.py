"""Review of stop 44: a bid's payment address is the bidder's word; only an advert binds an
address to a node (both keys sign: docs/PROTOCOL.md §8.1). The requester read the stake of
whatever address a bid named, and stake proves a bidder (``protocol.capacity.is_proven``):
fresh keys naming a stranger's staked address skipped the capacity challenge and the trial
cap, and three that never delivered used up a frame's attempts. Now a stake is read only
for the address the bidder's own advert bound when its bid was taken; a bid naming
another is not taken (busy: the sender asks again)."""

from __future__ import annotations

from pathlib import Path

import trio

from protocol import NodeKey
from protocol.messages import Bid
from tests.roles.cluster import client_with_checker, open_cluster, stranger

STAKE_WEI = 10**18


async def test_bids_naming_a_staked_address_they_do_not_bind_are_refused(
    autojump_clock: trio.testing.MockClock, tmp_path: Path
) -> None:
    async with open_cluster(tmp_path) as cluster:
        client = await client_with_checker(cluster)  # trial leases and challenges on
        _, victim = await stranger(client)  # an honest worker's advertised, staked address
        cluster.escrow.stakes[victim] = STAKE_WEI
        job_id = await cluster.submit("client", frames=3)
        role = client.live().requester
        job = role.jobs[job_id]
        sybils = [NodeKey.generate().node_id.raw for _ in range(10)]  # keys are free
        for sybil in sybils:  # no advert: the staked address is not theirs to name
            assert not await role.receive(sybil, Bid(job_id, 3, 1, 1, victim), bytes(32))
        bound, own = await stranger(client)  # its advert binds another address
        assert not await role.receive(bound, Bid(job_id, 3, 1, 1, victim), bytes(32))  # busy
        assert not any(job.machine.has_bidder(s) for s in (*sybils, bound))
        assert victim not in job.stakes_fed
        # a bid from a node we hold no advert of, naming an unstaked address: taken, unproven
        fresh = NodeKey.generate().node_id.raw
        await role.receive(fresh, Bid(job_id, 3, 1, 1, bytes(20 * [7])), bytes(32))
        assert job.machine.has_bidder(fresh) and bytes(20 * [7]) not in job.stakes_fed
        # the binding's owner is read as before
        await role.receive(bound, Bid(job_id, 3, 1, 1, own), bytes(32))
        assert job.machine.has_bidder(bound)


async def test_a_bid_is_read_at_the_address_it_was_taken_with_whatever_its_advert_binds_later(
    autojump_clock: trio.testing.MockClock, tmp_path: Path
) -> None:
    """Review of stop 44's fix: the standing-bid readings read the address a bidder's
    advert binds now, so a worker that bid staked at A and re-advertised binding B (free)
    froze A's reading at bid time: it withdrew A's stake and kept qualifying."""
    async with open_cluster(tmp_path) as cluster:
        client = await client_with_checker(cluster, min_stake_wei=STAKE_WEI)
        job_id = await cluster.submit("client", frames=2)
        role = client.live().requester
        job = role.jobs[job_id]
        key = NodeKey.generate()
        worker, address = await stranger(client, key)
        cluster.escrow.stakes[address] = STAKE_WEI
        assert await role.receive(worker, Bid(job_id, 1, 10**13, 1, address), bytes(32))
        assert job.stakes_fed[address] == STAKE_WEI
        await stranger(client, key)  # re-advertised: its advert binds a fresh address now
        cluster.escrow.stakes[address] = 0  # and the stake it bid with is withdrawn
        await trio.sleep(5 * 60)  # mock time: the job's readings of its standing bids
        assert job.machine.has_bidder(worker) and job.stakes_fed[address] == 0
