"""The node follows the one check plan and its reputation view (issue 16).

A trusted worker's results are checked on the share of frames and with the
``k`` that ``protocol.verification.plan_frame_check`` gives, decided by the
requester's machine and told to the checker; the simulator's requester,
given the same state, decides the same for every one of those results.
Reputation ranks bids, and what the machines judged lands in the node's
stored reputation book.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

import trio

from node.roles import persist
from node.roles.requester_job import check_secret_of
from protocol.market import TaskState
from protocol.messages import Assurance
from protocol.reputation import DAY_MS, WorkerRecord, score
from protocol.verification import plan_check, plan_frame_check
from simulations.requesters import RequesterDriver
from simulations.scenario import Scenario
from simulations.world import World
from tests.roles.cluster import PRICE_WEI_PER_RU, Cluster, open_cluster
from tests.roles.fakes import FakeTiles

FRAMES = 32  # at a trusted worker's ~26 % the chance that none is checked is 6e-5


@dataclass
class CountingTiles(FakeTiles):
    """The checker's renderer, noting how many tiles each check re-rendered."""

    counts: list[int] = field(default_factory=list)

    async def render_tiles(self, scene, settings, frame, tiles, out_dir):  # type: ignore[no-untyped-def]
        self.counts.append(len(tiles))
        return await super().render_tiles(scene, settings, frame, tiles, out_dir)


def trusted(cluster: Cluster) -> WorkerRecord:
    return WorkerRecord(accepted=10**6, first_seen_ms=cluster.wall_ms() - 60 * DAY_MS)


async def test_a_trusted_worker_is_sampled_as_planned_and_the_simulator_agrees(
    autojump_clock: trio.testing.MockClock, tmp_path: Path
) -> None:
    async with open_cluster(tmp_path) as cluster:
        client = await cluster.add("client", "client")
        worker = await cluster.add("w1", "worker")
        tiles = CountingTiles()
        await cluster.add("c1", "checker", tiles=tiles)
        await cluster.settle("client", 2)
        requester = client.live().requester
        assert requester is not None
        w1 = worker.key.node_id.raw
        record = trusted(cluster)
        requester.reputation.load(w1, record)
        # a record counts for the plan only while stake backs it (test_trust_stake.py)
        cluster.escrow.stakes[worker.address] = cluster.escrow.terms.cap_wei
        # 64x48 is 12 cells of 16 px: room for k = 8 (the default 32x24 has only 4)
        job_id = await cluster.submit("client", frames=FRAMES, resolution=(64, 48))
        job = requester.jobs[job_id]
        await job.done.wait()
        assert job.view.outcome == "completed"

        machine = job.machine
        secret = check_secret_of(client.key.seed, job_id)
        results = [t for t in machine._tasks.values() if t.state is TaskState.ACCEPTED]
        assert len(results) == FRAMES and {t.worker for t in results} == {w1}
        plan = plan_check(Assurance.NORMAL, score(record.history(cluster.wall_ms())))
        assert plan.k == 8 and 0.25 <= plan.check_probability < 0.26
        planned = {
            t.task_id: plan_frame_check(Assurance.NORMAL, score(record.history(cluster.wall_ms())),
                                        secret, t.result_digest)
            for t in results
        }  # fmt: skip
        assert {t.task_id: t.tiles for t in results} == planned
        checked = [k for k in planned.values() if k]
        assert 0 < len(checked) < FRAMES  # sampled: never zero, never all
        assert sorted(tiles.counts) == sorted(checked)  # the checker rendered what was asked
        assert job.view.rejected == 0

        # The simulator's requester, in the same state, decides the same for each result.
        world = World(Scenario(), seed=1)
        sim = RequesterDriver(world, world.add_node("requester", "honest"))
        sim.reputation.load(w1, replace(record, first_seen_ms=world.epoch_ms() - 60 * DAY_MS))
        sim._start(job_id, job.spec, check_secret=secret)
        sim_machine = sim.jobs[job_id]
        sim.feed(sim_machine, w1)
        sim_machine.set_pass_claim_stake(machine.pass_claim_wei)
        sim_machine.set_stake(worker.address, cluster.escrow.terms.cap_wei)
        decided = {t.task_id: sim_machine.check_plan(w1, t.result_digest, world.epoch_ms(),
                                                     worker.address)
                   for t in results}  # fmt: skip
        assert decided == planned


async def test_a_trusted_worker_without_stake_has_every_result_checked_from_the_first(
    autojump_clock: trio.testing.MockClock, tmp_path: Path
) -> None:
    """The node told its job machine what a claim takes only at the first check, so the
    results before it were planned on the unbacked record (review of stop 36); it now
    does so at the job's start, and an unstaked record is checked as a fresh key's."""
    async with open_cluster(tmp_path) as cluster:
        client = await cluster.add("client", "client")
        worker = await cluster.add("w1", "worker")
        await cluster.add("c1", "checker")
        await cluster.settle("client", 2)
        requester = client.live().requester
        requester.reputation.load(worker.key.node_id.raw, trusted(cluster))
        job_id = await cluster.submit("client", frames=8, resolution=(64, 48))
        job = requester.jobs[job_id]
        await job.done.wait()
        assert job.view.outcome == "completed"
        results = [t for t in job.machine._tasks.values() if t.state is TaskState.ACCEPTED]
        fresh = plan_check(Assurance.NORMAL, 0.0)
        assert len(results) == 8 and all(t.tiles == fresh.k for t in results)  # a fresh key's
        # plan wants two checkers; with one in the network each frame was accepted on its
        # pass (JobMachine.checkers_exhausted, asked by the node)
        assert job.machine.statistics().frames_short_checked == 8 and fresh.checkers == 2


async def test_reputation_changes_an_award_and_verdicts_feed_the_stored_book(
    autojump_clock: trio.testing.MockClock, tmp_path: Path
) -> None:
    async with open_cluster(tmp_path) as cluster:
        client = await cluster.add("client", "client")
        cheap = await cluster.add("cheap", "worker", price_wei_per_ru=PRICE_WEI_PER_RU)
        dear = await cluster.add("dear", "worker", price_wei_per_ru=3 * PRICE_WEI_PER_RU // 2)
        await cluster.add("c1", "checker")
        await cluster.settle("client", 3)
        requester = client.live().requester
        assert requester is not None
        requester.reputation.load(dear.key.node_id.raw, trusted(cluster))
        job_id = await cluster.submit("client", frames=1, max_price_wei=2 * 10**14)
        job = requester.jobs[job_id]
        await job.done.wait()
        # The fresh worker bid a third less, yet the trusted one was awarded the frame.
        assert job.view.workers == {dear.key.node_id.raw.hex()}
        dear_price_wei = 3 * PRICE_WEI_PER_RU // 2 * job.spec.ru_per_frame  # pay-as-bid
        assert {int(str(i["price_wei"])) for i in job.view.accepted.values()} == {dear_price_wei}

        # Without the record, the cheaper bid wins: the record made the difference.
        requester.reputation.load(dear.key.node_id.raw, WorkerRecord(first_seen_ms=0))
        second = requester.jobs[await cluster.submit("client", frames=1)]
        await second.done.wait()
        assert second.view.workers == {cheap.key.node_id.raw.hex()}

        # The fresh worker's checked frame was judged: its record is in the book and stored.
        await trio.testing.wait_all_tasks_blocked()
        record = requester.reputation.record(cheap.key.node_id.raw)
        assert record is not None and record.accepted == 1 and record.rejected == 0
        stored = dict(await client.live().ctx.node.store.call(
            lambda conn: persist.load_worker_records(conn, limit=100)
        ))  # fmt: skip
        assert stored[cheap.key.node_id.raw] == record
