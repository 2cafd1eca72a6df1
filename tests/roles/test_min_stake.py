"""Issue 17: a requester that requires stake awards only staked workers and asks only
staked checkers (the chain's word, read by the requester itself: adverts are not)."""

from __future__ import annotations

from pathlib import Path

import trio

from protocol.messages import Bid
from tests.roles.cluster import Cluster, Member, client_with_checker, open_cluster, stranger
from tests.roles.fakes import FakeTiles
from tests.roles.test_job_flow import all_paid

MIN_WEI = 10**18


async def test_only_staked_workers_and_checkers_take_part(
    autojump_clock: trio.testing.MockClock, tmp_path: Path
) -> None:
    async with open_cluster(tmp_path) as cluster:
        client, unstaked, staked, lazy, checker = await cheapest_unstaked(cluster)
        cluster.escrow.stakes[unstaked.address] = MIN_WEI - 1
        job_id = await only_staked_worked(cluster, client, staked)
        owed = await all_paid(cluster, "client", job_id)
        assert unstaked.address not in owed and lazy.address not in owed
        assert checker.address in owed
        assert lazy.kit.tiles.rendered == 0  # type: ignore[attr-defined]


async def test_a_worker_whose_stake_is_locked_behind_claims_it_signed_is_not_staked(
    autojump_clock: trio.testing.MockClock, tmp_path: Path
) -> None:
    """Stop 45: locked stake backs nothing. A claim on an account takes only its free
    (and unbonding) stake, so a cheat that signs claims against its own sybils locks its
    stake away from the honest claim on its fake (tests/ledger/test_stake_shields.py). A
    requester that read *active* stake saw it staked the while; it reads free stake now
    (``Chain.free_stake_of``)."""
    async with open_cluster(tmp_path) as cluster:
        client, shielded, staked, _, _ = await cheapest_unstaked(cluster)
        cluster.escrow.stakes[shielded.address] = 3 * MIN_WEI  # active, but mostly locked
        cluster.escrow.locked[shielded.address] = 2 * MIN_WEI + 1
        job_id = await only_staked_worked(cluster, client, staked)
        assert client.live().requester.jobs[job_id].stakes_fed.get(shielded.address) == MIN_WEI - 1


async def cheapest_unstaked(cluster: Cluster) -> tuple[Member, Member, Member, Member, Member]:
    """A client asking ``MIN_WEI``; the cheapest worker (its stake is the test's), a
    worker holding ``MIN_WEI``, an unstaked lazy checker and a staked checker."""
    client = await cluster.add("client", "client", min_stake_wei=MIN_WEI)
    cheapest = await cluster.add("w1", "worker", price_wei_per_ru=1)  # the cheapest ask
    staked = await cluster.add("w2", "worker")
    lazy = await cluster.add("c1", "checker", tiles=FakeTiles())
    checker = await cluster.add("c2", "checker")
    cluster.escrow.stakes[staked.address] = MIN_WEI
    cluster.escrow.register(checker.address, MIN_WEI)
    return client, cheapest, staked, lazy, checker


async def only_staked_worked(cluster: Cluster, client: Member, staked: Member, peers: int = 4,
                             frames: int = 3) -> bytes:  # fmt: skip
    """A job of ``frames`` (once the client knows ``peers``), completed by ``staked``
    alone; its id."""
    await cluster.settle("client", peers)
    job_id = await cluster.submit("client", frames=frames)
    job = client.live().requester.jobs[job_id]
    await job.done.wait()
    assert job.view.outcome == "completed"
    assert job.view.workers == {staked.key.node_id.raw.hex()}
    return job_id


async def test_a_stake_backing_other_jobs_must_hold_the_minimum_for_each(
    autojump_clock: trio.testing.MockClock, tmp_path: Path
) -> None:
    """One stake, many jobs (docs/LEDGER.md): ``spread`` staked the minimum once and
    holds lanes in two other requesters' jobs, so claims there draw on the same stake;
    ``backed`` holds as much again for each job it is open in, and keeps qualifying once
    this job's own lane is counted too (the requester takes its own off: without that,
    no frame would be awarded after it was mined, and the job would not complete)."""
    async with open_cluster(tmp_path) as cluster:
        client, spread, backed = await spread_and_backed(cluster, backed_stakes=2)
        open_elsewhere(cluster, (spread.address, backed.address), (spread.address,))
        assert cluster.escrow.open_lanes_of(spread.address) == 2
        job_id = await only_staked_worked(cluster, client, backed, peers=3, frames=10)
        job = client.live().requester.jobs[job_id]
        assert backed.address in job.lanes_open
        assert cluster.escrow.open_lanes_of(backed.address) == 2  # its lane here counts too
        assert job.lanes_fed[backed.address] == 1


async def spread_and_backed(cluster: Cluster, backed_stakes: int) -> tuple[Member, Member, Member]:
    """A client asking ``MIN_WEI`` of its workers; ``spread``, the cheapest, staking it
    once; ``backed`` staking it ``backed_stakes`` times; a checker."""
    client = await cluster.add("client", "client", min_stake_wei=MIN_WEI)
    spread = await cluster.add("w1", "worker", price_wei_per_ru=1)  # the cheapest ask
    backed = await cluster.add("w2", "worker")
    checker = await cluster.add("c1", "checker")
    cluster.escrow.stakes[spread.address] = MIN_WEI
    cluster.escrow.stakes[backed.address] = backed_stakes * MIN_WEI
    cluster.escrow.register(checker.address, MIN_WEI)
    return client, spread, backed


def open_elsewhere(cluster: Cluster, *jobs: tuple[bytes, ...]) -> None:
    """Other requesters' jobs, each with a 1-wei lane for every payee named."""
    deadline_s = cluster.escrow.now_s() + 3600
    for n, payees in enumerate(jobs):
        other, job = bytes([0xA0 + n]) * 20, bytes([n]) * 32
        cluster.escrow.deposit(other, job, 10, deadline_s)
        cluster.escrow.open_lanes(other, job, [(p, 1) for p in payees])


async def test_our_own_earlier_job_counts_at_once(
    autojump_clock: trio.testing.MockClock, tmp_path: Path
) -> None:
    """Review of stop 43: the count was cached for 60 s across a requester's jobs, so a
    worker staked once that worked our job A was awarded our job B right after, its lane
    in A not yet read. A lane of ours being mined now drops that address's cached count."""
    async with open_cluster(tmp_path) as cluster:
        client, spread, backed = await spread_and_backed(cluster, backed_stakes=10)
        await cluster.settle("client", 3)
        first = await cluster.submit("client", frames=2)
        jobs = client.live().requester.jobs
        await jobs[first].done.wait()
        assert spread.key.node_id.raw.hex() in jobs[first].view.workers
        second = await cluster.submit("client", frames=2)
        await jobs[second].done.wait()
        assert jobs[second].view.outcome == "completed"
        assert jobs[second].view.workers == {backed.key.node_id.raw.hex()}


async def test_a_count_that_cannot_be_read_qualifies_nobody(
    autojump_clock: trio.testing.MockClock, tmp_path: Path
) -> None:
    """Review of stop 43: a count the chain did not answer read as 0, so a worker staked
    once and open in five jobs was awarded. Unread, its stake is not fed: no award until
    the count is read."""
    async with open_cluster(tmp_path) as cluster:
        client, spread, backed = await spread_and_backed(cluster, backed_stakes=10)
        open_elsewhere(cluster, *[(spread.address,)] * 5)
        assert client.chain is not None
        client.chain.down_calls.add("open_lanes_of")
        await cluster.settle("client", 3)
        job_id = await cluster.submit("client", frames=2)
        job = client.live().requester.jobs[job_id]
        await client.chain.wait_calls("open_lanes_of", 2)  # both bidders' counts failed
        assert not job.view.workers and not job.stakes_fed
        client.chain.down_calls.clear()
        await job.done.wait()  # read again a minute later (a failed read is cached as long)
        assert job.view.outcome == "completed"
        assert job.view.workers == {backed.key.node_id.raw.hex()}
        # Its stake was fed by the reading a minute later, which awarded at once (the
        # bid stood: no other bid came to carry it).
        journal = await client.journal(job_id)
        fed = [now for kind, peer, _, now in journal if kind == "stake" and peer == backed.address]
        assert fed and fed[0] - journal[0][3] >= 59_000
        backed_id = backed.key.node_id.raw
        results = [now for kind, peer, _, now in journal if kind == "msg" and peer == backed_id]
        assert results and results[0] - fed[0] < 5_000  # its first result: awarded right then


async def test_two_jobs_at_once_get_a_stake_that_backs_one_in_one_only(
    autojump_clock: trio.testing.MockClock, tmp_path: Path
) -> None:
    """The race between our own jobs (stop 44): a worker staked once bids in two of our
    jobs at once. Both counts were read before either lane was mined, so it was awarded
    in both (one frame each), open in two jobs on one stake. A lane one of our jobs has
    planned for an address and not yet seen mined now counts in every other job of ours
    (``protocol.market.awarding.lanes_elsewhere``'s ``planned_elsewhere``): it works one
    of them, and keeps it once its lane there is mined (the job's own lane is off)."""
    async with open_cluster(tmp_path) as cluster:
        client, spread, _ = await spread_and_backed(cluster, backed_stakes=10)
        await cluster.settle("client", 3)
        jobs = client.live().requester.jobs
        both = [await cluster.submit("client", frames=n) for n in (8, 9)]  # two specs: two jobs
        for job_id in both:
            await jobs[job_id].done.wait()
            assert jobs[job_id].view.outcome == "completed"
        by_spread = {j: [f for f, a in jobs[j].view.accepted.items()
                         if a["worker"] == spread.key.node_id.raw.hex()] for j in both}  # fmt: skip
        assert sum(map(bool, by_spread.values())) == 1, by_spread  # frames in one job only
        assert cluster.escrow.open_lanes_of(spread.address) == 1


async def test_a_flood_of_bids_naming_staked_addresses_costs_no_count_reads(
    autojump_clock: trio.testing.MockClock, tmp_path: Path
) -> None:
    """Review of stop 43: every bid's address used to be read again before every message
    (heartbeats included), and a stranger chose how many: 700 addresses staked 1 wei
    each made a 40 s job take 1,009 s. A stake under the minimum qualifies for nothing
    whatever its count, so its count is never read; the readings are taken in the job's
    own task, not in a message's path."""
    async with open_cluster(tmp_path) as cluster:
        client, _, _ = await spread_and_backed(cluster, backed_stakes=10)
        await cluster.settle("client", 3)
        job_id = await cluster.submit("client", frames=4)
        job = client.live().requester.jobs[job_id]
        for _ in range(300):  # strangers whose adverts bind the addresses they name
            bidder, address = await stranger(client)
            cluster.escrow.stakes[address] = 1
            bid = Bid(job_id, 1, 1, 1, address)  # the cheapest bids, all under the minimum
            await client.live().requester.receive(bidder, bid, bytes(32))
        await job.done.wait()
        assert job.view.outcome == "completed"
        assert client.chain is not None
        assert client.chain.calls.count("open_lanes_of") <= 10  # the two workers' readings


async def test_a_standing_bidders_stake_fed_for_a_check_brings_its_count(
    autojump_clock: trio.testing.MockClock, tmp_path: Path
) -> None:
    """Final review of stop 43: a node works and checks under one payment address. Its
    stake read for a check assignment used to be fed with no count (a checker's), so a
    bidder that bid unstaked, then staked the minimum once while open in two other jobs,
    qualified at the next check's reading. A standing bid's address now brings its count
    whichever path reads it."""
    async with open_cluster(tmp_path) as cluster:
        client, spread, _ = await spread_and_backed(cluster, backed_stakes=10)
        cluster.escrow.stakes[spread.address] = 0  # it bids unstaked
        await cluster.settle("client", 3)
        job_id = await cluster.submit("client", frames=2)
        job = client.live().requester.jobs[job_id]
        while spread.address not in job.machine.bidder_addresses():
            await job.wait_changed()
        cluster.escrow.stakes[spread.address] = MIN_WEI  # then stakes the minimum once
        open_elsewhere(cluster, (spread.address,), (spread.address,))
        client.live().requester._stakes.pop(spread.address, None)  # its stake read again
        await job.feed_stake(spread.address)  # as a check assignment reads a checker's
        assert job.lanes_fed[spread.address] == 2
        assert not job.machine.stake_qualifies(spread.address)


async def test_standing_bids_under_the_minimum_are_read_again_rarely(
    autojump_clock: trio.testing.MockClock, tmp_path: Path
) -> None:
    """A stranger's standing bids, sent once, each cost a stake read a minute for the
    job's life when every standing bid was read again (final review of stop 43): those
    under the minimum are now read every tenth sweep. 200 such bids over ten minutes of a
    job nobody qualifies for."""
    async with open_cluster(tmp_path) as cluster:
        client = await cluster.add("client", "client", min_stake_wei=MIN_WEI)
        await cluster.add("c1", "checker")
        await cluster.settle("client", 1)
        job_id = await cluster.submit("client", frames=1)
        for _ in range(200):  # strangers whose adverts bind the addresses they name
            bidder, address = await stranger(client)
            cluster.escrow.stakes[address] = 1
            bid = Bid(job_id, 1, 1, 1, address)
            await client.live().requester.receive(bidder, bid, bytes(32))
        assert client.chain is not None
        before = client.chain.calls.count("free_stake_of")
        await trio.sleep(600)  # mock time: ten sweeps of the job's reading task
        reads = client.chain.calls.count("free_stake_of") - before
        assert 200 <= reads <= 2 * 200  # at most two sweeps of them, not ten


async def late_bids(cluster: Cluster) -> tuple[Member, list[bytes], bytes, bytes]:
    """Two of our jobs past their bid windows with no bid yet, and a worker staked the
    minimum once: (client, jobs, its node id, its payment address)."""
    client = await client_with_checker(cluster, min_stake_wei=MIN_WEI)
    jobs = [await cluster.submit("client", frames=n) for n in (3, 4)]  # two specs: two jobs
    window_s = client.live().requester.jobs[jobs[0]].machine.config.bid_window_ms / 1000
    await trio.sleep(2 * window_s)  # mock time: both windows close, a late bid awards at once
    worker, address = await stranger(client)
    cluster.escrow.stakes[address] = MIN_WEI
    return client, jobs, worker, address


def jobs_with_lanes(client: Member, jobs: list[bytes], address: bytes) -> int:
    role = client.live().requester
    return sum(role.jobs[j].machine.lanes_wei().get(address, 0) > 0 for j in jobs)


async def test_late_bids_in_two_jobs_at_once_get_a_lane_in_one(
    autojump_clock: trio.testing.MockClock, tmp_path: Path
) -> None:
    """Review of stop 44: a bid after the window awards at once, and its stake is fed
    before the bid stands; a restatement skipped addresses without a standing bid, so
    two late bids sent at once took a lane in each job."""
    async with open_cluster(tmp_path) as cluster:
        client, jobs, worker, address = await late_bids(cluster)
        role = client.live().requester
        async with trio.open_nursery() as nursery:
            for job_id in jobs:
                nursery.start_soon(role.receive, worker, Bid(job_id, 1, 10**13, 1, address), b"")
        assert jobs_with_lanes(client, jobs, address) == 1


async def test_a_count_read_while_our_other_lane_is_mined_is_not_used(
    autojump_clock: trio.testing.MockClock, tmp_path: Path
) -> None:
    """Review of stop 44: a count read while our lane in the other job was mined may miss
    it, and that job no longer plans it: 0 + 0, a lane in each job. Such a read is unread."""
    async with open_cluster(tmp_path) as cluster:
        client, jobs, worker, address = await late_bids(cluster)
        role, chain = client.live().requester, client.chain
        assert chain is not None

        async def behind(account: bytes) -> int:  # answers as the chain was when asked
            count = cluster.escrow.open_lanes_of(account)
            await trio.sleep(2)
            return count

        chain.open_lanes_of = behind  # type: ignore[method-assign]

        async def bid(job_id: bytes, after_s: float) -> None:
            await trio.sleep(after_s)  # mock time: the second read starts before the lane is mined
            await role.receive(worker, Bid(job_id, 1, 10**13, 1, address), b"")

        async with trio.open_nursery() as nursery:
            nursery.start_soon(bid, jobs[0], 0)
            nursery.start_soon(bid, jobs[1], 1)
        assert jobs_with_lanes(client, jobs, address) == 1


async def test_a_resumed_job_reads_its_standing_bids_before_it_awards(
    autojump_clock: trio.testing.MockClock, tmp_path: Path
) -> None:
    """Review of stop 44: after a restart a job's readings are its journal's, from before
    it (a lane opened elsewhere while we were down), and no job of ours has fed a count
    to restate. Its first reading came a minute later: the bid window's close awarded on
    the old one. Now the standing bids are read before the job's timer runs. (The bidder
    is no member: it does not bid again after the restart, which would read it anew.)"""
    async with open_cluster(tmp_path) as cluster:
        client = await client_with_checker(cluster, min_stake_wei=MIN_WEI)
        job_id = await cluster.submit("client", frames=2)
        worker, address = await stranger(client)
        cluster.escrow.stakes[address] = MIN_WEI  # the minimum once, open nowhere
        job = client.live().requester.jobs[job_id]
        await client.live().requester.receive(worker, Bid(job_id, 1, 10**13, 1, address), b"")
        assert job.stakes_fed[address] == MIN_WEI and not job.machine.lanes_wei()
        await cluster.kill("client")  # before the window closes
        open_elsewhere(cluster, (address,))  # while we are down: it backs a job now
        await cluster.restart("client")
        resumed = client.live().requester.jobs[job_id]
        window_s = resumed.machine.config.bid_window_ms / 1000
        await trio.sleep(2 * window_s)  # mock time: the window closes, its awards go out
        assert resumed.lanes_fed.get(address) == 1
        assert resumed.machine.lanes_wei().get(address, 0) == 0  # not awarded
