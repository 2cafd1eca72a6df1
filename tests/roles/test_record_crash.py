"""A requester killed at any step loses neither a judgement nor a public record (issue 16).

Two crash windows were open: a judgement was stored after the journal entry
of the input that caused it (a kill in between, and the replay — which never
judges again — left the worker's record short), and a WorkRecord or JobClosed
was queued for publication only when the input was applied live (a kill
before the queue drained, and no node ever heard of the task). Now the
judgements go into the journal entry's transaction, and a replay publishes
what the public record lacks.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
import trio

from tests.roles.cluster import open_cluster
from tests.roles.test_requester_restart import STEPS_OF_A_JOB

FRAMES = 2


async def run_killing_requester_after(step: int, tmp_path: Path) -> None:
    async with open_cluster(tmp_path) as cluster:
        await cluster.add("client", "client")
        await cluster.add("w1", "worker")
        await cluster.add("w2", "worker")
        await cluster.add("c1", "checker")
        await cluster.settle("client", 3)
        job_id = await cluster.submit("client", frames=FRAMES)
        job = cluster.members["client"].live().requester.jobs[job_id]
        while job.steps < step and not job.done.is_set():
            await job.wait_changed()
        await cluster.kill("client")  # right after the step: before any spawned write ran
        client = await cluster.restart("client")
        job = client.live().requester.jobs[job_id]
        await job.done.wait()
        assert job.view.outcome == "completed"
        workers = [cluster.members[n].key.node_id.raw for n in ("w1", "w2")]

        # The public record has every checked task and the closure, as another node heard it.
        checker = cluster.members["c1"].live().ctx.node
        with trio.fail_after(600):
            await checker.wait_until(lambda: _recorded(checker.record.book, job_id) == FRAMES)
        assert checker.record.book.jobs[job_id].closed is not None

        # Every accepted frame was judged once: in the book, and in the store it reloads.
        await cluster.kill("client")
        requester = (await cluster.restart("client")).live().requester
        records = [requester.reputation.record(w) for w in workers]
        assert sum(r.accepted for r in records if r is not None) == FRAMES, records


def _recorded(book: object, job_id: bytes) -> int:
    tasks = getattr(book, "tasks", {})
    jobs = getattr(book, "jobs", {})
    info = jobs.get(job_id)
    if info is None or info.closed is None:
        return -1
    return sum(1 for t in tasks.values() if t.job_id == job_id)


@pytest.mark.parametrize("step", range(2, STEPS_OF_A_JOB + 1))
async def test_requester_killed_after_a_step_loses_no_judgement_and_no_record(
    autojump_clock: trio.testing.MockClock, tmp_path: Path, step: int
) -> None:
    await run_killing_requester_after(step, tmp_path)


async def test_records_a_crash_kept_from_the_record_are_published_after_the_restart(
    autojump_clock: trio.testing.MockClock, tmp_path: Path
) -> None:
    """The crash window made exact: the job's decisions are journalled, but nothing of
    its record left the node (no store holds any of it: nobody heard it)."""
    async with open_cluster(tmp_path) as cluster:
        await cluster.add("client", "client")
        await cluster.add("w1", "worker")
        await cluster.add("c1", "checker")
        await cluster.settle("client", 2)
        job_id = await cluster.submit("client", frames=FRAMES)
        await cluster.members["client"].live().requester.jobs[job_id].done.wait()
        for name in ("c1", "w1", "client"):  # as if nobody had heard it: gone from every store
            await cluster.kill(name)
            db = sqlite3.connect(tmp_path / name / "node.sqlite3")
            with db:
                db.execute("DELETE FROM work_record WHERE job_id = ?", (job_id,))
            db.close()
        client = await cluster.restart("client")
        fresh = await cluster.add("c2", "checker")  # a peer that never heard of the job
        node, other = client.live().ctx.node, fresh.live().ctx.node
        with trio.fail_after(600):
            await node.wait_until(lambda: _recorded(node.record.book, job_id) == FRAMES)
            await other.wait_until(lambda: _recorded(other.record.book, job_id) == FRAMES)
