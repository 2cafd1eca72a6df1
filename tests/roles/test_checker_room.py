"""The node's requester keeps at most ``MarketConfig.checks_per_checker`` of its requests
at a checker (protocol.verification.with_room): a result delivered while the only
checker is busy with ours waits at the requester, journalled (``waits``), and its check
goes out when the verdict comes."""

from __future__ import annotations

from pathlib import Path

import trio

from node.roles import persist
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
        journal = (
            await cluster.members["client"]
            .live()
            .ctx.node.store.call(lambda conn: persist.read_journal(conn, job_id=job_id.hex()))
        )
        kinds = [kind for kind, *_ in journal]
        assert "waits" in kinds  # later results' checks waited for the first verdict
        assigns = [i for i, kind in enumerate(kinds) if kind == "assign"]
        assert len(assigns) >= 4 and assigns[0] < kinds.index("waits") < assigns[1]
        # each request came when the checker held none of ours: never queued behind one
        assert ahead == [0] * len(ahead) and len(ahead) == len(assigns)
