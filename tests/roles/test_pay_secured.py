"""Issue 13, problem 2: the worker renders only what the chain has secured for it.

On the old node the worker checked nothing but voucher signatures: it bid on
a job that was never deposited and rendered frames whose pay no lane held.
Now it reads the escrow before it bids and before each frame, and declines.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
import trio

from ledger.client import Secured
from node.roles import lanes
from node.roles.ports import Chain
from tests.roles.cluster import open_cluster
from tests.roles.fakes import FakeChain, FakeFrames, FakeTiles
from tests.roles.test_job_flow import all_paid

DEADLINE_S = 300.0


async def test_no_bid_on_a_job_that_was_never_deposited(
    autojump_clock: trio.testing.MockClock, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def no_deposit(self: FakeChain, job_id: bytes, budget_wei: int, deadline_s: int) -> None:
        await trio.lowlevel.checkpoint()  # a requester announcing a job it never paid for

    monkeypatch.setattr(FakeChain, "deposit", no_deposit)
    async with open_cluster(tmp_path) as cluster:
        client = await cluster.add("client", "client")
        worker = await cluster.add("w1", "worker")
        await cluster.settle("client", 1)
        job_id = await cluster.submit("client", frames=2, deadline_s=DEADLINE_S)
        job = client.live().requester.jobs[job_id]
        await job.done.wait()
        assert job.view.outcome == "expired" and not job.view.accepted
        assert worker.kit.frames.started == 0  # type: ignore[attr-defined]
        assert "secured" in worker.chain.calls  # type: ignore[union-attr]
        assert job.machine.statistics().awards == 0  # it never bid


async def test_an_award_whose_lane_was_not_funded_is_declined_not_rendered(
    autojump_clock: trio.testing.MockClock, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def no_lanes(chain: Chain, job_id: bytes, totals: dict[bytes, int]) -> set[bytes]:
        await trio.lowlevel.checkpoint()  # a requester that awards without securing the pay
        return set()  # no lane holds funds

    monkeypatch.setattr(lanes, "fund_lanes", no_lanes)
    async with open_cluster(tmp_path) as cluster:
        client = await cluster.add("client", "client", trial_leases=0)  # counts task renders only
        worker = await cluster.add("w1", "worker")
        await cluster.add("c1", "checker")
        await cluster.settle("client", 2)
        job_id = await cluster.submit("client", frames=2, deadline_s=DEADLINE_S)
        job = client.live().requester.jobs[job_id]
        await job.done.wait()
        assert job.view.outcome == "expired" and not job.view.accepted
        assert worker.kit.frames.started == 0  # type: ignore[attr-defined]
        assert worker.live().worker is not None
        assert worker.live().worker.machine.statistics().awards_declined >= 1
        assert job.machine.statistics().awards >= 1
        assert cluster.escrow.paid == {}


async def test_a_worker_that_declined_an_unsecured_award_bids_again_and_gets_the_frame(
    autojump_clock: trio.testing.MockClock, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The worker's chain reading lags the requester's funding (another RPC node, a
    block behind): it declines its first award. It used to lose its bid for the job
    for good (the job expired unrendered); now it bids again and renders the job."""
    async with open_cluster(tmp_path) as cluster:
        client = await cluster.add("client", "client", trial_leases=0)  # counts task renders only
        worker = await cluster.add("w1", "worker")
        await cluster.add("c1", "checker")
        chain = worker.chain
        assert chain is not None
        real_secured, reads = chain.secured, 0

        async def lagging(requester: bytes, job_id: bytes) -> Secured:
            nonlocal reads
            reads += 1
            reading = await real_secured(requester, job_id)
            return replace(reading, lane_wei=0) if reads <= 2 else reading  # bid + 1st award

        monkeypatch.setattr(chain, "secured", lagging)
        await cluster.settle("client", 2)
        job_id = await cluster.submit("client", frames=2, deadline_s=DEADLINE_S)
        job = client.live().requester.jobs[job_id]
        await job.done.wait()
        assert job.view.outcome == "completed"
        machine = worker.live().worker.machine  # type: ignore[union-attr]
        assert machine.statistics().awards_declined == 1
        assert worker.kit.frames.started == 2  # type: ignore[attr-defined]
        owed = await all_paid(cluster, "client", job_id)
        assert owed[worker.address] == cluster.escrow.paid[(job_id, worker.address)] > 0


async def test_a_checker_does_not_check_what_its_lane_does_not_secure(
    autojump_clock: trio.testing.MockClock, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A requester that funds its workers' lanes but never its checker's: the checker
    used to verify anyway (for a fee no lane held); now it reads its lane first."""
    real_fund = lanes.fund_lanes
    async with open_cluster(tmp_path) as cluster:
        client = await cluster.add("client", "client")
        await cluster.add("w1", "worker")
        checker = await cluster.add("c1", "checker")

        async def workers_only(chain: Chain, job_id: bytes, totals: dict[bytes, int]) -> set[bytes]:
            totals = {a: w for a, w in totals.items() if a != checker.address}
            return await real_fund(chain, job_id, totals)

        monkeypatch.setattr(lanes, "fund_lanes", workers_only)
        await cluster.settle("client", 2)
        job_id = await cluster.submit("client", frames=1, deadline_s=DEADLINE_S)
        job = client.live().requester.jobs[job_id]
        await job.done.wait()
        assert job.view.outcome == "expired" and not job.view.accepted
        role = checker.live().checker
        assert role is not None and role.refused >= 1
        assert role.checked == 0 and checker.kit.tiles.rendered == 0  # type: ignore[attr-defined]
        assert "secured" in checker.chain.calls  # type: ignore[union-attr]
        assert (job_id, checker.address) not in cluster.escrow.paid


async def test_a_check_asked_again_counts_once_against_the_checkers_lane(
    autojump_clock: trio.testing.MockClock, tmp_path: Path
) -> None:
    """A slow check (70 s) outlives the requester's verify timeout (60 s), so the
    checker is asked about the same task again. Counting that fee twice, it found its
    lane short for the next frame's check, refused it for good, and the job stalled."""
    async with open_cluster(tmp_path) as cluster:
        client = await cluster.add("client", "client")
        await cluster.add("w1", "worker", frames=FakeFrames(delay_s=65.0))
        checker = await cluster.add("c1", "checker", tiles=FakeTiles(delay_s=70.0))
        await cluster.settle("client", 2)
        job_id = await cluster.submit("client", frames=2)
        job = client.live().requester.jobs[job_id]
        await job.done.wait()
        role = checker.live().checker
        assert role is not None and role.checked >= 3  # the first frame twice
        assert role.refused == 0
        assert job.view.outcome == "completed"
