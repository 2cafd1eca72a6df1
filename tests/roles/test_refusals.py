"""A message the receiver refuses for good is sent once: a resend would be refused and
scored again (four sends of one refused message used to cost the sender four penalties)."""

from __future__ import annotations

from pathlib import Path

import trio

from protocol.messages import VerifyRequest
from tests.roles.cluster import open_cluster


def received(member_node: object, message_type: str) -> float:
    metrics = member_node.metrics  # type: ignore[attr-defined]
    return float(metrics.messages_in.labels(message_type)._value.get())


async def test_a_finally_refused_message_is_not_resent(
    autojump_clock: trio.testing.MockClock, tmp_path: Path
) -> None:
    async with open_cluster(tmp_path) as cluster:
        client = await cluster.add("client", "client")
        worker = await cluster.add("w1", "worker")
        await cluster.settle("w1", 1)
        # A client takes no verify requests: its roles refuse the message.
        cid = "bafkreia" + "a" * 52
        request = VerifyRequest(
            job_id=b"\x01" * 32, task_id=b"\x02" * 32, frame=1, worker=worker.key.node_id.raw,
            result_digest=b"\x03" * 32, frame_cid=cid, scene_cid=cid, fee_wei=1, tiles=4,
        )  # fmt: skip
        worker.live().ctx.outbox.send(client.key.node_id.raw, request)
        await trio.sleep(30)  # mock time: longer than every retry's backoff together
        assert client.node is not None
        assert received(client.node, "verify_request") == 1
