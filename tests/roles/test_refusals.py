"""A message the receiver refuses for good is sent once: a resend would be refused and
scored again (four sends of one refused message used to cost the sender four penalties)."""

from __future__ import annotations

from pathlib import Path

import pytest
import trio

from protocol import NodeKey
from protocol.messages import JobAnnounce, VerifyRequest
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
            tile_secret=b"\x04" * 32,
        )  # fmt: skip
        worker.live().ctx.outbox.send(client.key.node_id.raw, request)
        await trio.sleep(30)  # mock time: longer than every retry's backoff together
        assert client.node is not None
        assert received(client.node, "verify_request") == 1


async def test_a_checker_takes_a_job_announce_only_from_its_requester_and_keeps_a_bounded_few(
    autojump_clock: trio.testing.MockClock, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A requester introduces its job to a checker directly (one that joined after the
    announce knew nothing of it and refused its checks); anyone else's announce is
    refused, and a stranger's flood of genuine announces stays bounded."""
    from dataclasses import replace

    from node.roles import checker as checker_module
    from protocol.messages import job_id_of
    from tests.protocol.vectors_samples import sample_spec

    monkeypatch.setattr(checker_module, "MAX_SPECS", 2)
    async with open_cluster(tmp_path) as cluster:
        checker = await cluster.add("c1", "checker")
        sender = await cluster.add("w1", "worker")
        await cluster.settle("w1", 1)
        outbox, to = sender.live().ctx.outbox, checker.key.node_id.raw
        specs = checker.live().checker.specs  # type: ignore[union-attr]
        forged = sample_spec()  # names another requester than its sender
        assert not await outbox.deliver(to, JobAnnounce(job_id_of(forged), forged))
        assert not specs
        mine = [replace(forged, requester=sender.key.node_id.raw, created_ms=forged.created_ms + i)
                for i in range(3)]  # fmt: skip
        for spec in mine:
            assert await outbox.deliver(to, JobAnnounce(job_id_of(spec), spec))
        assert list(specs) == [job_id_of(spec) for spec in mine[1:]]  # the oldest forgotten


async def test_a_workers_remembered_announces_stay_bounded_and_keep_its_jobs(
    autojump_clock: trio.testing.MockClock, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every announce a stranger signs was kept forever (a slash17 review finding); the
    oldest are forgotten, never one of a job the worker's machine still knows."""
    from dataclasses import replace

    from node.roles import worker as worker_module
    from protocol.messages import job_id_of
    from tests.protocol.vectors_samples import sample_spec

    monkeypatch.setattr(worker_module, "MAX_SPECS", 2)
    async with open_cluster(tmp_path) as cluster:
        await cluster.add("client", "client")
        worker = await cluster.add("w1", "worker")
        await cluster.settle("client", 1)
        job_id = await cluster.submit("client", frames=1)
        role = worker.live().worker
        assert role is not None
        await worker.live().ctx.node.wait_until(lambda: role.machine.knows_job(job_id))
        stranger = sample_spec()
        for i in range(5):
            spec = replace(stranger, created_ms=stranger.created_ms + i)
            role.on_announce(spec.requester, JobAnnounce(job_id_of(spec), spec))
        assert job_id in role.specs and len(role.specs) == 2


async def test_one_requesters_announce_flood_evicts_only_its_own_jobs(
    autojump_clock: trio.testing.MockClock, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Review finding: 4,096 junk announces from one identity evicted every real job a
    checker knew (its checks then refused, its fee vouchers dropped)."""
    from dataclasses import replace

    from node.roles import checker as checker_module
    from protocol.messages import job_id_of
    from tests.protocol.vectors_samples import sample_spec

    monkeypatch.setattr(checker_module, "MAX_SPECS_PER_REQUESTER", 3)
    async with open_cluster(tmp_path) as cluster:
        checker = await cluster.add("c1", "checker")
        await cluster.settle("c1", 0)
        role = checker.live().checker
        assert role is not None
        real = sample_spec()
        role.on_announce(JobAnnounce(job_id_of(real), real))
        flooder = NodeKey.generate().node_id.raw
        for i in range(10):
            junk = replace(real, requester=flooder, created_ms=real.created_ms + i + 1)
            role.on_announce(JobAnnounce(job_id_of(junk), junk))
        assert job_id_of(real) in role.specs and len(role.specs) == 4
