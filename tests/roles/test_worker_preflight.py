"""Issue 15: a worker preflights every scene it accepts; the requester's client may not have.

On main only the requester's client ran preflight: a modified client that skips
it had a scene with a texture at an absolute host path rendered, verified and
paid. Now the worker inspects the scene itself before its first frame and
declines (``scene refused: ...``) what preflight refuses, rendering nothing.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest
import trio

from node.render.preflight import analyse
from node.roles import service
from node.roles import submit as submit_module
from node.roles.service import Roles
from protocol.messages import RenderSettings
from tests.roles.cluster import open_cluster
from tests.roles.fakes import FakeFrames, fake_inspect

LEAK = {"kind": "images", "name": "leak", "path": "/etc/passwd", "packed": False,
        "absolute": "/etc/passwd"}  # fmt: skip


async def test_a_worker_refuses_a_scene_the_requester_never_preflighted(
    autojump_clock: trio.testing.MockClock,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def skip_preflight(roles: Roles, scene: Path, *_: Any) -> tuple[RenderSettings, int]:
        await trio.lowlevel.checkpoint()  # a modified client: no preflight at all
        return RenderSettings("CYCLES", 32, 24, 4, 0, "PNG_RGBA8"), 1

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


async def test_a_job_priced_below_its_scene_s_render_units_is_refused(
    autojump_clock: trio.testing.MockClock, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    big = RenderSettings("CYCLES", 3200, 2400, 32, 0, "PNG_RGBA8")  # 100 RU a frame

    async def underpriced(roles: Roles, scene: Path, *_: Any) -> tuple[RenderSettings, int]:
        await trio.lowlevel.checkpoint()  # a modified client announcing 1 RU a frame
        return big, 1

    monkeypatch.setattr(submit_module, "preflight", underpriced)
    async with open_cluster(tmp_path) as cluster:
        client = await cluster.add("client", "client")
        worker = await cluster.add("w1", "worker")
        await cluster.settle("client", 1)
        job_id = await cluster.submit("client", frames=2, deadline_s=300.0)
        job = client.live().requester.jobs[job_id]
        assert job.spec.ru_per_frame == 1
        await job.done.wait()
        assert not job.view.accepted and worker.kit.frames.started == 0  # type: ignore[attr-defined]
        assert worker.live().worker.machine.statistics().awards_declined >= 1  # type: ignore[union-attr]


async def test_a_worker_whose_probe_says_it_would_miss_the_deadline_declines(
    autojump_clock: trio.testing.MockClock, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A measured 36 RU/h: a 1 RU frame is priced at 100 s, and the job allows 300 s. The
    # probe (32x24 at 4 samples) takes 20 s where the reference's (120x90 at 16) took 1 s.
    monkeypatch.setattr(service, "cached_benchmark", lambda *_: (36, 1_000))
    async with open_cluster(tmp_path) as cluster:
        client = await cluster.add("client", "client", trial_leases=0)  # counts task renders only
        worker = await cluster.add("w1", "worker", frames=FakeFrames(probe_s=20.0))
        await cluster.settle("client", 1)
        job_id = await cluster.submit("client", frames=2, deadline_s=300.0)
        job = client.live().requester.jobs[job_id]
        await job.done.wait()
        frames = worker.kit.frames
        assert frames.probed == 1 and frames.started == 0  # type: ignore[attr-defined]
        machine = worker.live().worker.machine  # type: ignore[union-attr]
        assert machine.statistics().awards_declined >= 1 and not job.view.accepted


async def test_a_worker_whose_probe_fits_the_deadline_renders(
    autojump_clock: trio.testing.MockClock, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The probe takes 10 ms for 1/56 of the reference probe's work, which took 1 s: 0.56x.
    monkeypatch.setattr(service, "cached_benchmark", lambda *_: (36, 1_000))
    async with open_cluster(tmp_path) as cluster:
        client = await cluster.add("client", "client")
        worker = await cluster.add("w1", "worker")
        await cluster.add("c1", "checker")
        await cluster.settle("client", 2)
        job_id = await cluster.submit("client", frames=2, deadline_s=3600.0)
        job = client.live().requester.jobs[job_id]
        await job.done.wait()
        assert len(job.view.accepted) == 2
        assert worker.kit.frames.probed == 1  # type: ignore[attr-defined]


async def test_the_job_announces_the_render_units_scene_check_prints(
    autojump_clock: trio.testing.MockClock, tmp_path: Path
) -> None:
    """On main `scene check` printed 1.0 RU/frame while every job said 10."""
    async with open_cluster(tmp_path) as cluster:
        client = await cluster.add("client", "client")
        await cluster.add("w1", "worker")
        await cluster.settle("client", 1)
        job_id = await cluster.submit("client", frames=1, resolution=(640, 480), samples=64)
        spec = client.live().requester.jobs[job_id].spec
        scene = next(tmp_path.glob("client-scene-*.json"))
        report = analyse(await fake_inspect(scene), "blender-3.4.1")
        assert spec.ru_per_frame == report.ru_per_frame == 8  # 4x the pixels, 2x the samples
