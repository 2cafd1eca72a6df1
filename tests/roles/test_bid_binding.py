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
from eth_account import Account

from node.roles.requester_job import PARK_S, PARKED_BIDS, RequesterJob
from protocol import NodeKey
from protocol.messages import Bid
from tests.roles.cluster import Cluster, Member, client_with_checker, open_cluster, stranger

STAKE_WEI = 10**18


async def job_asking_stake(cluster: Cluster) -> tuple[Member, RequesterJob]:
    """A client asking ``STAKE_WEI`` of its workers and its job of two frames."""
    client = await client_with_checker(cluster, min_stake_wei=STAKE_WEI)
    job_id = await cluster.submit("client", frames=2)
    return client, client.live().requester.jobs[job_id]


async def test_bids_naming_a_staked_address_they_do_not_bind_are_not_taken(
    autojump_clock: trio.testing.MockClock, tmp_path: Path
) -> None:
    async with open_cluster(tmp_path) as cluster:
        client = await client_with_checker(cluster)  # trial leases and challenges on
        _, victim = await stranger(client)  # an honest worker's advertised, staked address
        cluster.escrow.stakes[victim] = STAKE_WEI
        job_id = await cluster.submit("client", frames=3)
        role = client.live().requester
        job = role.jobs[job_id]
        sybils = [NodeKey.generate() for _ in range(10)]  # keys are free
        for sybil in sybils:  # no advert: held, waiting for one
            assert await role.receive(sybil.node_id.raw, Bid(job_id, 3, 1, 1, victim), bytes(32))
        bound, own = await stranger(client)  # its advert binds another address
        assert not await role.receive(bound, Bid(job_id, 3, 1, 1, victim), bytes(32))  # busy
        await stranger(client, sybils[0])  # one advertises: its own address, not the victim's
        await trio.sleep(PARK_S)  # mock time: held bids are taken, or dropped unadvertised
        assert not any(job.machine.has_bidder(s) for s in (*(k.node_id.raw for k in sybils), bound))
        assert victim not in job.stakes_fed
        # the binding's owner is read as before
        cluster.escrow.stakes[own] = STAKE_WEI
        assert await role.receive(bound, Bid(job_id, 3, 1, 1, own), bytes(32))
        assert job.machine.has_bidder(bound) and own in job.stakes_fed


async def test_a_bid_that_comes_before_its_advert_is_held_and_taken_once_it_comes(
    autojump_clock: trio.testing.MockClock, tmp_path: Path
) -> None:
    """Second and third reviews of stop 44: a bid whose advert had not reached us was
    refused, then answered busy, and its sender's outbox gave up after about 3 s. Workers
    bid once a job: an honest worker lost the job. Now the bid is held until the advert
    comes (at most ``PARK_S``)."""
    async with open_cluster(tmp_path) as cluster:
        client, job = await job_asking_stake(cluster)
        role, job_id, key = client.live().requester, job.job_id, NodeKey.generate()
        address = bytes.fromhex(Account.from_key(payment := bytes(Account.create().key)).address[2:])
        cluster.escrow.stakes[address] = STAKE_WEI
        assert await role.receive(key.node_id.raw, Bid(job_id, 1, 10**13, 1, address), bytes(32))
        assert not job.machine.has_bidder(key.node_id.raw)
        await trio.sleep(10)  # mock time: the advert is on its way
        await stranger(client, key, payment)
        await trio.sleep(1)  # mock time: the advert woke the held bids
        assert job.stakes_fed.get(address) == STAKE_WEI  # taken, bound: its stake read
        assert job.machine.lanes_wei().get(address, 0) > 0  # and awarded
        assert not job._parked
        # a full holding area answers busy; it does not push out bids held already
        for _ in range(PARKED_BIDS):
            assert await role.receive(NodeKey.generate().node_id.raw,
                                      Bid(job_id, 1, 10**13, 1, address), bytes(32))  # fmt: skip
        assert not await role.receive(NodeKey.generate().node_id.raw,
                                      Bid(job_id, 1, 10**13, 1, address), bytes(32))  # fmt: skip
        assert len(job._parked) == PARKED_BIDS


async def test_a_bid_is_read_at_the_address_it_was_taken_with_whatever_its_advert_binds_later(
    autojump_clock: trio.testing.MockClock, tmp_path: Path
) -> None:
    """Review of stop 44's fix: the standing-bid readings read the address a bidder's
    advert binds now, so a worker that bid staked at A and re-advertised binding B (free)
    froze A's reading at bid time: it withdrew A's stake and kept qualifying."""
    async with open_cluster(tmp_path) as cluster:
        client, job = await job_asking_stake(cluster)
        role, job_id, key = client.live().requester, job.job_id, NodeKey.generate()
        worker, address = await stranger(client, key)
        cluster.escrow.stakes[address] = STAKE_WEI
        assert await role.receive(worker, Bid(job_id, 1, 10**13, 1, address), bytes(32))
        assert job.stakes_fed[address] == STAKE_WEI
        await stranger(client, key)  # re-advertised: its advert binds a fresh address now
        cluster.escrow.stakes[address] = 0  # and the stake it bid with is withdrawn
        await trio.sleep(5 * 60)  # mock time: the job's readings of its standing bids
        assert job.machine.has_bidder(worker) and job.stakes_fed[address] == 0


async def test_the_requester_spares_the_adverts_of_the_nodes_it_deals_with(
    autojump_clock: trio.testing.MockClock, tmp_path: Path
) -> None:
    """A flood of fresh adverts pushed out the oldest (review of stop 44): a standing
    bidder's advert could go, and its next bid waited for the advert again. The node now
    evicts first the adverts of nodes the requester has no dealings with
    (``RequesterRole.keeps_advert``; tests/node/test_node_bounded.py -k spares)."""
    async with open_cluster(tmp_path) as cluster:
        client, job = await job_asking_stake(cluster)
        role = client.live().requester
        bidder, address = await stranger(client)
        idle, _ = await stranger(client)
        cluster.escrow.stakes[address] = STAKE_WEI
        assert not role.keeps_advert(bidder)
        assert await role.receive(bidder, Bid(job.job_id, 1, 10**13, 1, address), bytes(32))
        assert job.machine.has_bidder(bidder)
        assert role.keeps_advert(bidder) and not role.keeps_advert(idle)
