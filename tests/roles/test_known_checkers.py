"""A further check waits for a checker the requester could still ask only while that
checker is connected or likely to come back: one whose advert was heard within
``KNOWN_ADVERT_S`` (RequesterRole.known_checkers). Adverts are kept until evicted, and a checker gone for
good made every fresh worker's second check wait CHECKER_WAIT_S before the machine was
told no checker was left (issue 17's notes: known_checkers included stale adverts).

(Written, this test found the cluster's killed members still connected to the others:
the memory network's close awaited under a cancelled scope and unlinked nobody, so a
killed checker stayed a candidate, was asked, and the result was abandoned again and
again until the job expired; node.net.memory now unlinks without an await.)"""

from __future__ import annotations

from pathlib import Path

import trio

from node.roles.requester import KNOWN_ADVERT_S
from node.roles.requester_job import CHECKER_WAIT_S
from tests.roles.cluster import open_cluster


async def test_a_checker_gone_for_good_is_not_waited_for(
    autojump_clock: trio.testing.MockClock, tmp_path: Path
) -> None:
    async with open_cluster(tmp_path) as cluster:
        client = await cluster.add("client", "client")
        await cluster.add("w1", "worker")
        await cluster.add("c1", "checker")
        gone = await cluster.add("c2", "checker")
        await cluster.settle("client", 3)
        await cluster.kill("c2")
        await trio.sleep(KNOWN_ADVERT_S + 60)  # its advert is kept, unrefreshed
        role = client.live().requester
        assert gone.key.node_id.raw not in role.known_checkers(b"")
        job_id = await cluster.submit("client", frames=1)
        job = role.jobs[job_id]
        await job.done.wait()
        journal = await client.journal(job_id)
        kinds = [kind for kind, *_ in journal]
        assert job.view.outcome == "completed"
        # a fresh worker's result wants two checkers at normal: c1 passed it, and nobody
        # else is left to ask; the machine is told so at once after that verdict
        exhausted = kinds.index("exhausted")
        verdict = max(i for i in range(exhausted) if kinds[i] == "msg")
        waited_ms = journal[exhausted][3] - journal[verdict][3]
        assert waited_ms < CHECKER_WAIT_S * 1000 / 2


async def test_a_checker_heard_lately_is_still_known_while_disconnected(
    autojump_clock: trio.testing.MockClock, tmp_path: Path
) -> None:
    async with open_cluster(tmp_path) as cluster:
        client = await cluster.add("client", "client")
        away = await cluster.add("c1", "checker")
        await cluster.settle("client", 1)
        await cluster.kill("c1")
        role = client.live().requester
        assert role.known_checkers(b"") == [away.key.node_id.raw]  # a reconnect may come
        await trio.sleep(KNOWN_ADVERT_S / 2)
        assert role.known_checkers(b"") == [away.key.node_id.raw]
        await trio.sleep(KNOWN_ADVERT_S)
        assert role.known_checkers(b"") == []


async def test_a_connected_checker_advertising_less_often_than_we_do_is_asked(
    autojump_clock: trio.testing.MockClock, tmp_path: Path
) -> None:
    """Review of stop 41: freshness measured in the requester's own advert intervals
    (5 s here, the checkers' 30 s) dropped a connected checker whose last advert was 17 s
    old; after the first pass nobody was asked, and the result was abandoned and rendered
    again until the job's deadline. A connected checker is always known."""
    async with open_cluster(tmp_path) as cluster:
        client = await cluster.add("client", "client", advert_interval_s=5.0)
        await cluster.add("w1", "worker")
        for name in ("c1", "c2"):
            await cluster.add(name, "checker", advert_interval_s=30.0)
        await cluster.settle("client", 3)
        await trio.sleep(17.0)
        job_id = await cluster.submit("client", frames=1)
        job = client.live().requester.jobs[job_id]
        await job.done.wait()
        assert job.view.outcome == "completed"
        journal = await client.journal(job_id)
        kinds = [kind for kind, *_ in journal]
        assert "exhausted" not in kinds and kinds.count("assign") == 2  # both checkers asked


async def test_adverts_restored_at_a_restart_count_as_heard_then(
    autojump_clock: trio.testing.MockClock, tmp_path: Path
) -> None:
    """Review of stop 41: after a restart longer than the window every stored advert
    looked stale, and a renewed further check was cut on one pass before the honest
    second checker reconnected. Restored adverts count as heard at the start."""
    async with open_cluster(tmp_path) as cluster:
        client = await cluster.add("client", "client")
        checker = await cluster.add("c1", "checker")
        await cluster.settle("client", 1)
        await cluster.kill("c1")
        await cluster.kill("client")
        await trio.sleep(KNOWN_ADVERT_S * 2)
        client = await cluster.restart("client")
        role = client.live().requester
        assert role.known_checkers(b"") == [checker.key.node_id.raw]  # restored, not connected
        await trio.sleep(KNOWN_ADVERT_S + 1)
        assert role.known_checkers(b"") == []
