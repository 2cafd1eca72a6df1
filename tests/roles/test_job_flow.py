"""A job through the real role drivers: submit, bid, render, check, pay, collect."""

from __future__ import annotations

from pathlib import Path

import trio

from tests.roles.cluster import Cluster, open_cluster


def owed_by(cluster: Cluster, client: str, job_id: bytes) -> dict[bytes, int]:
    """What the requester's books say it owes each payment address for the job."""
    return cluster.members[client].live().requester.jobs[job_id].machine.due_wei_by_payee()


async def all_paid(cluster: Cluster, client: str, job_id: bytes) -> dict[bytes, int]:
    owed = owed_by(cluster, client, job_id)
    await cluster.escrow.wait_until(
        lambda: all(cluster.escrow.paid.get((job_id, a), 0) == w for a, w in owed.items())
    )
    return owed


async def test_job_is_rendered_checked_paid_and_collected(
    autojump_clock: trio.testing.MockClock, tmp_path: Path
) -> None:
    async with open_cluster(tmp_path) as cluster:
        client = await cluster.add("client", "client")
        await cluster.add("w1", "worker")
        await cluster.add("w2", "worker")
        checker = await cluster.add("c1", "checker")
        await cluster.settle("client", 3)
        job_id = await cluster.submit("client", frames=4)
        job = cluster.members["client"].live().requester.jobs[job_id]
        await job.done.wait()
        assert job.view.outcome == "completed"
        assert sorted(p.name for p in (tmp_path / "client-out").iterdir()) == [
            f"frame_{i:04d}.png" for i in (1, 2, 3, 4)
        ]
        owed = await all_paid(cluster, "client", job_id)
        assert checker.address in owed and len(owed) >= 2
        assert sum(owed.values()) == sum(cluster.escrow.balances.values())
        assert cluster.escrow.conserved()
        assert checker.live().checker is not None and checker.live().checker.checked >= 4
        # /metrics mirrors the roles (docs/grafana/pictor-node.json charts these)
        checked = checker.live().checker.checked
        assert checker.node is not None and client.node is not None
        assert f"pictor_checks_done {checked}.0" in checker.node.metrics.render().decode()
        assert 'pictor_jobs{state="completed"} 1.0' in client.node.metrics.render().decode()


async def test_client_without_chain_survives_verdicts(
    autojump_clock: trio.testing.MockClock, tmp_path: Path
) -> None:
    """Nobody can be paid without a chain, but the job still runs (it used to crash the
    client on the first verdict: "chain_id must be positive")."""
    async with open_cluster(tmp_path) as cluster:
        await cluster.add("client", "client", chain=False)
        await cluster.add("w1", "worker", chain=False)
        await cluster.add("c1", "checker", chain=False)
        await cluster.settle("client", 2)
        job_id = await cluster.submit("client", frames=2)
        job = cluster.members["client"].live().requester.jobs[job_id]
        await job.done.wait()
        assert job.view.outcome == "completed"
        assert cluster.members["client"].node is not None  # still running
        assert cluster.escrow.log == []
        # Nothing was escrowed, so the job is settled: a restart does not resume it.
        await cluster.kill("client")
        client = await cluster.restart("client")
        assert job_id not in client.live().requester.jobs
