"""The dashboard's document from real role drivers (in-memory hub, fake renderer and
escrow, mock clock): what each of the four views reads while a job runs and once paid."""

from __future__ import annotations

from pathlib import Path

import trio

from node.ui.snapshot import MAX_VERDICTS, Snapshots, UiLimits
from protocol.money import format_eth
from tests.roles.cluster import open_cluster
from tests.roles.conftest import inline_threads  # noqa: F401  (blocking calls inline: the mock clock)
from tests.roles.fakes import FakeFrames


async def test_each_view_reads_the_roles_live_and_after_payment(
    autojump_clock: trio.testing.MockClock, tmp_path: Path
) -> None:
    gate = trio.Event()
    frames = FakeFrames(gate=gate)
    async with open_cluster(tmp_path) as cluster:
        client = await cluster.add("client", "client")
        worker = await cluster.add("w1", "worker", frames=frames)
        checker = await cluster.add("c1", "checker")
        await cluster.settle("client", 2)
        job_id = await cluster.submit("client", frames=2)
        w1 = worker.live()
        while w1.worker is None or not w1.worker.machine.rendering_tasks():
            await trio.sleep(0.1)  # mock time: the award arrives within the bid window
        live = await Snapshots(w1, UiLimits()).build()
        (task,) = live["worker"]["tasks"]
        assert task["job_id"] == job_id.hex() and task["frame"] in (1, 2)
        assert task["price"]["eth"].endswith("ETH") and live["worker"]["rendering"] == 1
        running = await Snapshots(client.live(), UiLimits()).build()
        (row,) = running["jobs"]
        assert row["outcome"] is None and row["ready"] == [] and row["frames_total"] == 2
        assert running["network"]["workers"] == 1 and running["network"]["checkers"] == 1

        gate.set()
        job = client.live().requester.jobs[job_id]
        await job.done.wait()
        owed = job.machine.due_wei_by_payee()
        await cluster.escrow.wait_until(
            lambda: all(cluster.escrow.paid.get((job_id, a), 0) == w for a, w in owed.items())
        )
        viewer = Snapshots(client.live(), UiLimits())
        done = await viewer.build()
        (row,) = done["jobs"]
        assert (await viewer.build())["jobs"][0] is row  # an ended job is described once
        assert row["outcome"] == "completed" and row["ready"] == [1, 2]
        assert row["spent"]["wei"] == str(sum(owed.values())) and row["stalled"] == []

        checker_node = checker.live().ctx.node
        await checker_node.wait_until(
            lambda: checker_node.record.history(worker.key.node_id.raw).accepted == 2
        )
        for member, address in ((worker, worker.address), (checker, checker.address)):
            payee = member.live().payee
            assert payee is not None
            while payee.paid_wei < owed[address]:
                await trio.sleep(0.5)  # mock time: the payee reads the chain on its own period
            doc = await Snapshots(member.live(), UiLimits()).build()
            earnings = doc["earnings"]
            assert earnings["paid"] == {"wei": str(owed[address]), "eth": format_eth(owed[address])}
            (voucher,) = earnings["jobs"]
            assert voucher["job_id"] == job_id.hex()
            assert voucher["promised"]["wei"] == str(owed[address])
        doc = await Snapshots(checker.live(), UiLimits()).build()
        verdicts = doc["checker"]["verdicts"]
        assert sorted(v["frame"] for v in verdicts) == [1, 2]
        assert all(v["passed"] and v["job_id"] == job_id.hex() for v in verdicts)
        assert len(verdicts) <= MAX_VERDICTS
        assert doc["checker"]["checked"] >= 2
        # the worker's own document has no verdicts list: it checks nothing
        assert (await Snapshots(worker.live(), UiLimits()).build())["checker"] is None


async def test_documents_are_shared_not_rebuilt_per_viewer(
    autojump_clock: trio.testing.MockClock, tmp_path: Path
) -> None:
    async with open_cluster(tmp_path) as cluster:
        client = await cluster.add("client", "client")
        snapshots = Snapshots(client.live(), UiLimits(min_interval_s=1.0))
        first = await snapshots.get()
        assert await snapshots.get() is first  # a second viewer within the interval
        await trio.sleep(1.0)
        assert await snapshots.get() is not first
