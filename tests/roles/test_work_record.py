"""The public work record through real nodes: a fresh node learns a worker's reputation."""

from __future__ import annotations

from pathlib import Path

import trio

from protocol import NodeKey, encode_envelope
from protocol.messages import WorkRecord
from protocol.record import Added
from protocol.topics import RECORD_TOPIC
from tests.roles.cluster import open_cluster


async def test_a_fresh_node_learns_a_workers_reputation_from_its_peers(
    autojump_clock: trio.testing.MockClock, tmp_path: Path
) -> None:
    async with open_cluster(tmp_path) as cluster:
        client = await cluster.add("client", "client")
        worker = await cluster.add("w1", "worker")
        await cluster.add("c1", "checker")
        await cluster.settle("client", 2)
        job_id = await cluster.submit("client", frames=4)
        job = client.live().requester.jobs[job_id]
        await job.done.wait()
        w1 = worker.key.node_id.raw
        # the checker heard the records on gossip
        checker_node = cluster.members["c1"].live().ctx.node
        await checker_node.wait_until(
            lambda: checker_node.record.book.jobs[job_id].closed is not None
        )
        assert checker_node.record.history(w1).accepted == 4

        fresh = await cluster.add("fresh", "client")  # was not listening when it happened
        node = fresh.live().ctx.node
        await node.wait_until(lambda: node.record.history(w1).accepted == 4)
        history = node.record.history(w1)
        assert (history.accepted, history.rejected) == (4, 0)
        info = node.record.book.jobs[job_id]
        assert info.closed is not None and info.closed.frames_accepted == 4
        assert {t.checker for t in node.record.book.tasks_of(w1)} == {
            cluster.members["c1"].key.node_id.raw
        }
        # its API shows the worker's public record next to its advert
        from node.api.views import NodeApiView

        await node.wait_until(lambda: worker.peer in node.capacity)
        entry = next(e for e in NodeApiView(node).network_capacity() if e["peer_id"] == worker.peer)
        assert entry["record"] == {"accepted": 4, "rejected": 0}
        # and it keeps it: a restart rebuilds the book from its own store
        await node.wait_until(lambda: node.record.persisted >= 6)  # announce, 4 tasks, closure
        await cluster.kill("fresh")
        await cluster.restart("fresh")
        assert fresh.live().ctx.node.record.history(w1).accepted == 4


async def test_a_stranger_cannot_defame_a_worker_on_the_record_topic(
    autojump_clock: trio.testing.MockClock, tmp_path: Path
) -> None:
    """A stranger re-wraps the worker's real, public result and a puppet checker's
    rejection into a record for the client's job: refused, blamed on the signer."""
    async with open_cluster(tmp_path) as cluster:
        client = await cluster.add("client", "client")
        worker = await cluster.add("w1", "worker")
        await cluster.add("c1", "checker")
        observer = await cluster.add("obs", "client")
        await cluster.settle("client", 3)
        job_id = await cluster.submit("client", frames=2)
        await client.live().requester.jobs[job_id].done.wait()
        node = observer.live().ctx.node
        await node.wait_until(lambda: node.record.book.jobs[job_id].closed is not None)
        w1 = worker.key.node_id.raw
        real = node.record.book.tasks_of(w1)[0]
        stored = client.live().requester.jobs[job_id].record.results[real.task_id]

        from protocol import decode_envelope
        from protocol.messages import Verdict

        puppet, stranger = NodeKey.generate(), NodeKey.generate()
        result = decode_envelope(stored)
        rejection = Verdict(job_id, real.task_id, real.frame, w1, result.digest, False, bytes(32),
                            (), "blender-3.4.1", "cpu", ())  # fmt: skip
        verdict_wire = encode_envelope(puppet, rejection, nonce=1, now_ms=cluster.wall_ms())
        forged = WorkRecord(job_id, False, stored, verdict_wire)
        data = encode_envelope(stranger, forged, nonce=2, now_ms=cluster.wall_ms())
        verdict = node._on_gossip(RECORD_TOPIC, stranger.node_id.text, data, worker.peer)
        assert verdict.name == "IGNORE"
        assert node.scorer.score(stranger.node_id.text, trio.current_time()) > 0
        assert node.record.history(w1).rejected == 0 and node.record.history(w1).accepted == 2
        # the client itself cannot record the same task twice (a second, rejecting verdict)
        env = decode_envelope(
            encode_envelope(client.key, forged, nonce=3, now_ms=cluster.wall_ms())
        )
        assert node.record.book.add(env, cluster.wall_ms()) is Added.DUPLICATE


async def test_a_hostile_history_server_is_blamed_and_cannot_stall_a_fresh_node(
    autojump_clock: trio.testing.MockClock, tmp_path: Path
) -> None:
    """A peer answers record-sync with a page that never advances, then with a forged
    record: the fresh node penalises it, stops asking it, and syncs from honest peers."""
    from node.net.reqresp import serve_requests
    from node.record.sync import SYNC_LIMITS, encode_response
    from protocol.topics import RECORD_SYNC_PROTOCOL

    async with open_cluster(tmp_path) as cluster:
        client = await cluster.add("client", "client")
        worker = await cluster.add("w1", "worker")
        await cluster.add("c1", "checker")
        await cluster.settle("client", 2)
        job_id = await cluster.submit("client", frames=2)
        await client.live().requester.jobs[job_id].done.wait()
        stored = client.live().requester.jobs[job_id].record.results
        liar = NodeKey.generate()
        asked: list[int] = []

        async def lie(peer: str, request: bytes) -> bytes:
            asked.append(len(request))
            if len(asked) == 1:  # a page whose cursor does not move: would loop forever
                return encode_response(0, [stored[next(iter(stored))]])
            return encode_response(
                10**6,
                [
                    encode_envelope(
                        liar, WorkRecord(job_id, False, b"", b""), nonce=1, now_ms=cluster.wall_ms()
                    )
                ],
            )

        async with cluster.hub.open(liar.node_id.text) as net:
            net.set_stream_handler(
                RECORD_SYNC_PROTOCOL, serve_requests(lie, SYNC_LIMITS, lambda *_: None)
            )
            fresh = await cluster.add("fresh", "client")
            node = fresh.live().ctx.node
            await node.network.connect(f"/memory/{liar.node_id.text}/p2p/{liar.node_id.text}")
            for _ in range(2):
                assert await node.record.sync_from(liar.node_id.text) == 0
            assert len(asked) == 2
            assert node.scorer.score(liar.node_id.text, trio.current_time()) > 0
            await node.wait_until(lambda: node.record.history(worker.key.node_id.raw).accepted == 2)
