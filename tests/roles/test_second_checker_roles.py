"""Assurance ``high`` on real nodes: a fresh worker's result needs two checkers.

The plan (``protocol.verification.plan_check``) asks two different checkers of
a fresh worker's result at ``high``, the lever that meets the slip goal
against a colluding checker (docs/VERIFICATION.md, "The slip figure"). The
simulator measured it; here the node drives it: each frame is accepted only
after two different checkers passed it, each on its own ``k`` tiles, and each
is paid its fee.
"""

from __future__ import annotations

from pathlib import Path

import trio

from protocol.market import TaskState
from protocol.market.quote import budget_wei
from protocol.messages import Assurance
from protocol.verification import plan_check
from tests.roles.cluster import PRICE_WEI_PER_RU, open_cluster
from tests.roles.test_check_plan import CountingTiles

FRAMES = 3


async def test_high_assurance_accepts_a_fresh_workers_frame_after_two_checkers_passed_it(
    autojump_clock: trio.testing.MockClock, tmp_path: Path
) -> None:
    async with open_cluster(tmp_path) as cluster:
        client = await cluster.add("client", "client")
        worker = await cluster.add("w1", "worker")
        counts = {name: CountingTiles() for name in ("c1", "c2")}
        for name, tiles in counts.items():
            await cluster.add(name, "checker", tiles=tiles)
        await cluster.settle("client", 3)
        requester = client.live().requester
        assert requester is not None
        job_id = await cluster.submit("client", frames=FRAMES, resolution=(192, 128), assurance="high")
        job = requester.jobs[job_id]
        await job.done.wait()
        assert job.view.outcome == "completed"

        plan = plan_check(Assurance.HIGH, 0.0)
        assert plan.checkers == 2
        tasks = list(job.machine._tasks.values())
        # one task a frame: no result was left waiting for a second checker and abandoned
        assert [t.state for t in tasks] == [TaskState.ACCEPTED] * FRAMES
        assert {t.worker for t in tasks} == {worker.key.node_id.raw}
        checkers = {m.key.node_id.raw for m in (cluster.members["c1"], cluster.members["c2"])}
        for task in tasks:  # both asked; the first passed it (the last one's pass accepts)
            assert task.checkers == checkers and len(task.passed_by) == 1
        for tiles in counts.values():  # each checked every frame on the plan's own k tiles
            assert tiles.counts == [plan.k] * FRAMES


async def test_high_assurance_with_plants_keeps_two_real_checks_within_its_escrow(
    autojump_clock: trio.testing.MockClock, tmp_path: Path
) -> None:
    """Three checkers: a plant (forced error) may take one and the real checks the other
    two. The escrow has room for both checks, the plant and a re-check a frame
    (``protocol.market.quote.budget_wei`` with the plan's ``checks_per_frame``); sized
    for one check, as before, it ran dry and later frames were accepted on one pass."""
    async with open_cluster(tmp_path) as cluster:
        client = await cluster.add("client", "client")
        await cluster.add("w1", "worker")
        for name in ("c1", "c2", "c3"):
            await cluster.add(name, "checker")
        await cluster.settle("client", 4)
        requester = client.live().requester
        assert requester is not None
        # the max price at the worker's ask: the escrow has no slack beyond its fee room
        job_id = await cluster.submit("client", frames=6, resolution=(192, 128), assurance="high",
                                      max_price_wei=PRICE_WEI_PER_RU)  # fmt: skip
        job = requester.jobs[job_id]
        await job.done.wait()
        assert job.view.outcome == "completed"
        machine = job.machine
        assert machine.spec.budget_wei == budget_wei(6, machine.spec.max_price_wei_per_frame,
                                                      machine.spec.checker_fee_bps, 2)  # fmt: skip
        tasks = list(machine._tasks.values())
        assert [t.state for t in tasks] == [TaskState.ACCEPTED] * 6
        for task in tasks:
            assert len(task.checkers) == 2 and len(task.passed_by) == 1
        planted = [t for t in tasks if machine.plant_checker(t.task_id) is not None]
        # how many are planted depends on the budget left at each result (0-4 of 6 seen):
        # a plant leaves the plans' second checks their fees (PlantDesk._checks_owed_wei)
        for task in planted:  # never to a checker of the real result
            assert machine.plant_checker(task.task_id) not in task.checkers
