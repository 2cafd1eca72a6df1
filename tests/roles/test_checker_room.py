"""The node's requester keeps at most ``MarketConfig.checks_per_checker`` of its requests
at a checker (protocol.verification.with_room): a result delivered while the only
checker is busy with ours waits at the requester, journalled (``waits``), and its check
goes out when the verdict comes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import trio

from node.roles.checker import CheckerRole
from protocol.messages import VerifyRequest
from tests.roles.cluster import open_cluster
from tests.roles.fakes import FakeTiles
from tests.roles.test_job_flow import all_paid


async def test_a_busy_checker_is_sent_one_request_at_a_time_and_the_job_completes(
    autojump_clock: trio.testing.MockClock, tmp_path: Path
) -> None:
    """Four results at once for one checker: three wait. All three wake on each verdict;
    before the pick held its place until its ask was journalled (RequesterRole.holding_room)
    they all went to the checker that had just answered (review of stop 40: three
    requests queued at once, which went stale and were asked again)."""
    async with open_cluster(tmp_path) as cluster:
        await cluster.add("client", "client", checks_per_checker=1)  # (0 by default: no cap)
        for i in range(1, 5):
            await cluster.add(f"w{i}", "worker")
        checker = await cluster.add("c1", "checker", tiles=FakeTiles(delay_s=30.0))
        await cluster.settle("client", 5)
        role = checker.live().checker
        assert isinstance(role, CheckerRole)
        ahead: list[int] = []  # at each request's coming: ours it had not answered yet
        receive = role.receive

        def counting(sender: bytes, request: VerifyRequest) -> bool:
            ahead.append(len(ahead) - role.checked)
            return receive(sender, request)

        role.receive = counting  # type: ignore[method-assign]
        job_id = await cluster.submit("client", frames=4)
        job = cluster.members["client"].live().requester.jobs[job_id]
        await job.done.wait()
        assert job.view.outcome == "completed"
        await all_paid(cluster, "client", job_id)
        journal = await cluster.members["client"].journal(job_id)
        kinds = [kind for kind, *_ in journal]
        assert "waits" in kinds  # later results' checks waited for the first verdict
        assigns = [i for i, kind in enumerate(kinds) if kind == "assign"]
        # the second request only after one waited (the first's journal entry may come
        # after a wait: its pick holds the place across the awaits before it is written,
        # and since stop 44 the four results are fetched side by side, not one by one)
        assert len(assigns) >= 4 and kinds.index("waits") < assigns[1]
        # each request came when the checker held none of ours: never queued behind one
        assert ahead == [0] * len(ahead) and len(ahead) == len(assigns)


async def test_a_lazy_checker_always_free_still_gets_plants_when_checks_wait_for_room(
    autojump_clock: trio.testing.MockClock, tmp_path: Path
) -> None:
    """The attack (stop 40's escape): with checks going to a checker with room, a lazy
    checker answers at once, so it is always the free one and takes the first check of
    nearly every result; picked after the real check, a task's plant never went to it
    (tests/e2e/test_lazy_checker.py failed). The plant picks its checker first, so the
    lazy checker meets plants in proportion to the checks it takes, and is caught."""
    async with open_cluster(tmp_path) as cluster:
        client = await cluster.add("client", "client", checks_per_checker=1,
                                   plant_rate_ppm=1_000_000)  # fmt: skip
        for i in (1, 2):
            await cluster.add(f"w{i}", "worker")
        lazy = await cluster.add("lazy", "checker", adversary="lazy")
        for i in (1, 2):  # honest checkers render for a while: the lazy one is the free one
            await cluster.add(f"c{i}", "checker", tiles=FakeTiles(delay_s=30.0))
        await cluster.settle("client", 5)
        job_id = await cluster.submit("client", frames=6)
        role = client.live().requester
        job = role.jobs[job_id]
        await job.done.wait()
        assert job.view.outcome == "completed"
        lazy_id = lazy.key.node_id.raw
        assert lazy_id in role.struck  # it passed a plant
        assert set(job.machine.plant_misses) == {lazy_id}
        # the mechanism: each task's plant was journalled before its first real check
        journal = await client.journal(job_id)
        planted = [data[:32] for kind, _, data, _ in journal if kind == "plant"]
        first_assign = {}
        for i, (kind, _, data, _) in enumerate(journal):
            if kind in ("plant", "assign"):
                first_assign.setdefault((kind, data[:32]), i)
        assert planted  # (once the lazy one is struck, two checkers leave no room to plant)
        for task_id in planted:
            assert first_assign[("plant", task_id)] < first_assign[("assign", task_id)]


async def _behind_busy_checkers(tmp_path: Path, plant_rate_ppm: int, busy_s: float) -> tuple[list[str], Any]:
    """One frame while every checker holds one of our requests (as in a burst: other jobs'
    checks keep them busy) for ``busy_s``: the requester's journal kinds, and the job."""
    async with open_cluster(tmp_path) as cluster:
        client = await cluster.add("client", "client", checks_per_checker=1,
                                   plant_rate_ppm=plant_rate_ppm)  # fmt: skip
        await cluster.add("w1", "worker")
        checkers = [await cluster.add(f"c{i}", "checker", tiles=FakeTiles(delay_s=5.0))
                    for i in (1, 2, 3)]  # fmt: skip
        await cluster.settle("client", 4)
        role = client.live().requester
        for member in checkers:  # RequesterRole.holding_room's count: a place taken
            role._picking[member.key.node_id.raw] = 1
        job_id = await cluster.submit("client", frames=1)
        job = role.jobs[job_id]
        await trio.sleep(busy_s)
        for member in checkers:
            role._picking.pop(member.key.node_id.raw, None)
        job.notify()
        await job.done.wait()
        journal = await client.journal(job_id)
        return [kind for kind, *_ in journal], job


async def test_a_check_behind_a_plant_waiting_for_room_waits_uncounted(
    autojump_clock: trio.testing.MockClock, tmp_path: Path
) -> None:
    """Review of stop 41: the real check waited for its plant's pick while the plant
    waited for room, untold to the machine, so each verify timeout counted an ask and
    the result was abandoned after ``verify_attempts`` and rendered again (twice in 700 s).
    Now it waits for room itself (``waits``), behind the plant, as a check without a plant
    does; and it goes out once, not once per renewal."""
    kinds, job = await _behind_busy_checkers(tmp_path, 1_000_000, 700.0)
    assert job.view.outcome == "completed"
    assert "waits" in kinds
    assert len(job.machine._tasks) == 1  # never abandoned: one task for the frame
    plant, first = kinds.index("plant"), kinds.index("assign")
    assert plant < first and kinds[first + 1] != "assign"  # one request went out, not two


async def test_a_check_without_a_plant_waits_uncounted_too(
    autojump_clock: trio.testing.MockClock, tmp_path: Path
) -> None:
    kinds, job = await _behind_busy_checkers(tmp_path, 0, 700.0)
    assert job.view.outcome == "completed"
    assert "waits" in kinds and "plant" not in kinds
    assert len(job.machine._tasks) == 1


async def test_with_plants_on_no_request_comes_over_the_cap(
    autojump_clock: trio.testing.MockClock, tmp_path: Path
) -> None:
    """A request that came to a checker already holding one of the requester's would mark
    itself: the review of stop 42 found 42 of 53 such arrivals were plants when a picked
    plant was held uncounted (36b5b1f, reverted). With every result planted and four slow
    checkers at cap 1, every request, plant or check, comes while its checker holds none
    of ours (its place is counted from its pick: RequesterRole.holding_room)."""
    async with open_cluster(tmp_path) as cluster:
        client = await cluster.add("client", "client", checks_per_checker=1,
                                   plant_rate_ppm=1_000_000)  # fmt: skip
        for i in (1, 2, 3):
            await cluster.add(f"w{i}", "worker")
        arrivals: list[tuple[int, str]] = []  # (ours it held unanswered, the frame CID)
        for i in (1, 2, 3, 4):
            member = await cluster.add(f"c{i}", "checker", tiles=FakeTiles(delay_s=30.0))
            role = member.live().checker
            assert isinstance(role, CheckerRole)
            came = [0]

            def counting(sender: bytes, request: VerifyRequest, role: CheckerRole = role,
                         came: list[int] = came) -> bool:  # fmt: skip
                arrivals.append((came[0] - role.checked, request.frame_cid))
                came[0] += 1
                return type(role).receive(role, sender, request)

            role.receive = counting  # type: ignore[method-assign]
        await cluster.settle("client", 5)
        job_id = await cluster.submit("client", frames=12)
        job = client.live().requester.jobs[job_id]
        await job.done.wait()
        assert job.view.outcome == "completed"
        journal = await client.journal(job_id)
        plants = {data[52:].partition(b"\n")[0].decode() for kind, _, data, _ in journal if kind == "plant"}
        assert plants and {cid for _, cid in arrivals} >= plants  # plants went
        assert [held for held, _ in arrivals] == [0] * len(arrivals)  # each came with room
