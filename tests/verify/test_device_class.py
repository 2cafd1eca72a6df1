"""The worker's device class reaches the checker: exact within a class, tolerance across.

A worker whose frames differ from the checker's re-render by one least
significant bit in one pixel per cell (far above the 55 dB tolerance, not
bit-identical) is rejected by a checker of its own build and device class,
and accepted by a checker on another device class. Before the class was on
the wire, the node's checker always used the tolerance: the first case passed.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import trio
from PIL import Image

from node.render.base import FrameOutput, ProgressFn, RendererIdentity
from protocol.messages import RenderSettings
from tests.roles.cluster import open_cluster
from tests.roles.conftest import inline_threads  # noqa: F401  (blocking calls inline, as there)
from tests.roles.fakes import FAKE_BUILD, FakeFrames, FakeTiles


class NudgedFrames(FakeFrames):
    """Honest frames but for one low bit in the top-left pixel of every 16-px cell."""

    async def render_frames(
        self, scene: Path, settings: RenderSettings, frames: Sequence[int], out_dir: Path,
        progress: ProgressFn | None = None,
    ) -> list[FrameOutput]:  # fmt: skip
        outputs = await super().render_frames(scene, settings, frames, out_dir, progress)
        for output in outputs:
            pixels = np.array(Image.open(output.path))
            pixels[::16, ::16, 0] ^= 1
            Image.fromarray(pixels, "RGBA").save(output.path)
        return outputs


class OtherDeviceTiles(FakeTiles):
    async def identify(self) -> RendererIdentity:
        return RendererIdentity(FAKE_BUILD, "cpu-other")


async def _run_job(tmp_path: Path, tiles: FakeTiles, until_done: bool) -> tuple[set[str], str]:
    async with open_cluster(tmp_path) as cluster:
        # the checker's comparison is under test, not the requester's capacity challenge
        # (a nudged frame fails the challenge's exact tile first: no award at all)
        await cluster.add("client", "client", trial_leases=0)
        await cluster.add("w1", "worker", frames=NudgedFrames())
        await cluster.add("c1", "checker", tiles=tiles)
        await cluster.settle("client", 2)
        job_id = await cluster.submit("client", frames=1)
        job = cluster.members["client"].live().requester.jobs[job_id]
        if until_done:
            await job.done.wait()
        while not until_done and not job.view.blocklisted:
            await job.wait_changed()
        return set(job.view.blocklisted), job.view.outcome or ""


async def test_same_device_class_compares_exactly(
    autojump_clock: trio.testing.MockClock, tmp_path: Path
) -> None:
    blocklisted, _ = await _run_job(tmp_path, FakeTiles(), until_done=False)
    assert blocklisted  # one low bit off: rejected


async def test_another_device_class_gets_the_tolerance(
    autojump_clock: trio.testing.MockClock, tmp_path: Path
) -> None:
    blocklisted, outcome = await _run_job(tmp_path, OtherDeviceTiles(), until_done=True)
    assert not blocklisted and outcome == "completed"
