"""Issue 15: a worker preflights every scene it accepts; the requester's client may not have.

On main only the requester's client ran preflight: a modified client that skips
it had a scene with a texture at an absolute host path rendered, verified and
paid. Now the worker inspects the scene itself before its first frame and
declines (``scene refused: ...``) what preflight refuses, rendering nothing.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
import trio

from node.roles import submit as submit_module
from node.roles.service import Roles
from protocol.messages import RenderSettings
from tests.roles.cluster import open_cluster

LEAK = {"kind": "images", "name": "leak", "path": "/etc/passwd", "packed": False,
        "absolute": "/etc/passwd"}  # fmt: skip


async def test_a_worker_refuses_a_scene_the_requester_never_preflighted(
    autojump_clock: trio.testing.MockClock,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def skip_preflight(roles: Roles, scene: Path) -> RenderSettings:
        await trio.lowlevel.checkpoint()  # a modified client: no preflight at all
        return RenderSettings("CYCLES", 32, 24, 4, 0, "PNG_RGBA8")

    monkeypatch.setattr(submit_module, "preflight", skip_preflight)
    caplog.set_level(logging.WARNING, logger="node.roles.scene_gate")
    async with open_cluster(tmp_path) as cluster:
        client = await cluster.add("client", "client")
        worker = await cluster.add("w1", "worker")
        await cluster.add("c1", "checker")
        await cluster.settle("client", 2)
        job_id = await cluster.submit("client", frames=3, deadline_s=300.0,
                                      external_files=[LEAK])  # fmt: skip
        job = client.live().requester.jobs[job_id]
        await job.done.wait()
        assert job.view.outcome == "expired" and not job.view.accepted
        assert worker.kit.frames.started == 0  # type: ignore[attr-defined]
        stats = worker.live().worker.machine.statistics()  # type: ignore[union-attr]
        assert stats.awards_declined >= 1 and stats.tasks_submitted == 0
        assert job.machine.statistics().awards >= 1
        assert cluster.escrow.paid == {}
    reasons = [getattr(r, "fields", {}).get("reason", "") for r in caplog.records
               if r.getMessage() == "scene refused"]  # fmt: skip
    assert reasons and "/etc/passwd" in reasons[0] and "not packed" in reasons[0]


async def test_a_clean_scene_is_inspected_once_per_worker_and_rendered(
    autojump_clock: trio.testing.MockClock, tmp_path: Path
) -> None:
    async with open_cluster(tmp_path) as cluster:
        client = await cluster.add("client", "client")
        worker = await cluster.add("w1", "worker")
        await cluster.add("c1", "checker")
        await cluster.settle("client", 2)
        gate = worker.live().worker.scene_gate  # type: ignore[union-attr]
        job_id = await cluster.submit("client", frames=3)
        job = client.live().requester.jobs[job_id]
        await job.done.wait()
        assert job.view.outcome == "completed" and len(job.view.accepted) == 3
        assert len(gate._scenes) == 1  # one inspection for the job's three frames
