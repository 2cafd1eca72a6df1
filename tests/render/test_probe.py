"""The worker's probe render (node/render/probe.py) with real Blender: small, timed, honest."""

from __future__ import annotations

from pathlib import Path

import pytest
import trio

from node.render.blender import BlenderBackend, BlenderConfig
from node.render.probe import probe_of, probe_render
from node.render.sandbox import SandboxInfo
from protocol.cost import REFERENCE_PATHS, frame_work
from protocol.messages import RenderSettings
from tests.render.conftest import needs_blender

pytestmark = [needs_blender, pytest.mark.slow]


async def test_a_probe_renders_the_job_small_and_times_it(
    small_scene: Path, sandbox_info: SandboxInfo, work_root: Path
) -> None:
    job = RenderSettings("CYCLES", 1920, 1080, 128, 7, "PNG_RGBA8")
    small = probe_of(job)
    assert (small.resolution_x, small.resolution_y, small.samples) == (138, 78, 16)
    backend = BlenderBackend(BlenderConfig(work_root=work_root), sandbox_info)
    with trio.fail_after(120):
        probe = await probe_render(backend, small_scene, job, REFERENCE_PATHS, 1, work_root)
    assert probe.work == frame_work(138, 78, 16, REFERENCE_PATHS)
    assert 0 < probe.render_ms < 60_000
    assert probe.complexity_permille(485) >= 1
    assert list(work_root.glob("pictor-probe-*")) == []  # its folder is gone
