"""Warm Blender processes, for real: the same pixels as fresh processes, and bounded lives.

A frame rendered in a process that already rendered other frames (in any
order) must be bit-identical to the same frame from a fresh process, and a
tile rendered there to the same region of the full frame: checkers compare
exactly. A crashed, hung, cancelled, released or idle process must be gone
(its whole process group) and replaced on the next command.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import trio

from node.render.base import RenderError
from node.render.blender import BlenderBackend, BlenderConfig, job_document
from node.render.sandbox import SandboxInfo, SandboxLimits
from node.render.warm import WarmConfig, WarmPool, WarmProcess
from node.render.warm_frames import WarmFrameRenderer
from node.verify.blender_tiles import BlenderTileRenderer
from node.verify.images import load_image
from node.verify.warm_tiles import SCRIPTS, WarmTileRenderer
from protocol.verification import Tile
from tests.render.conftest import SMALL, group_gone, needs_blender

pytestmark = [needs_blender, pytest.mark.slow]


def _kit(work_root: Path, sandbox: SandboxInfo, **warm: float) -> tuple[WarmPool, BlenderConfig]:
    config = BlenderConfig(work_root=work_root)
    return WarmPool(config, sandbox, WarmConfig(**warm), SCRIPTS), config  # type: ignore[arg-type]


async def test_warm_frames_and_tiles_are_bit_identical_to_fresh_renders(
    small_scene: Path, work_root: Path, sandbox_info: SandboxInfo
) -> None:
    pool, config = _kit(work_root, sandbox_info)
    frames = WarmFrameRenderer(BlenderBackend(config, sandbox_info), pool)
    warm = {}
    for frame in (3, 1):  # frame 1 rendered after frame 3, in the same process
        (out,) = await frames.render_frames(small_scene, SMALL, [frame], work_root / f"w{frame}")
        warm[frame] = load_image(out.path)
    assert pool.started == 1
    fresh = {}
    for frame in (1, 3):  # one fresh process each
        backend = BlenderBackend(config, sandbox_info)
        (out,) = await backend.render_frames(small_scene, SMALL, [frame], work_root / f"f{frame}")
        fresh[frame] = load_image(out.path)
    assert not np.array_equal(fresh[1], fresh[3])  # the frames differ: the test can fail
    for frame in (1, 3):
        assert np.array_equal(warm[frame], fresh[frame]), f"frame {frame} differs when warm"

    tiles = WarmTileRenderer(BlenderTileRenderer(config, sandbox_info), pool)
    cells = [Tile(0, 0, 16, 16), Tile(32, 48, 16, 16), Tile(16, 24, 16, 16)]
    for frame in (3, 1):  # two checks of one job in one process, frames out of order
        done = await tiles.render_tiles(small_scene, SMALL, frame, cells, work_root / f"t{frame}")
        for cell, path in zip(cells, done.paths, strict=True):
            region = fresh[frame][cell.y : cell.y + cell.height, cell.x : cell.x + cell.width]
            assert np.array_equal(load_image(path), region), f"tile {cell} of frame {frame}"
    # One command mixing frames: each run of one frame's tiles is synced once, kept
    # between its tiles (persistent data), and still changes when the frame does.
    job = job_document(SMALL, [1], Path("."), config.device, None)
    mixed = [(3, cells[0]), (3, cells[1]), (1, cells[1]), (3, cells[2])]
    y, x = slice(cells[1].y, cells[1].y + 16), slice(cells[1].x, cells[1].x + 16)
    assert not np.array_equal(fresh[1][y, x], fresh[3][y, x])  # a stale tile would show
    items = [
        {"frame": f, "tile": [c.x, c.y, c.x + c.width, c.y + c.height], "name": f"m{i}.png"}
        for i, (f, c) in enumerate(mixed)
    ]
    done_mixed = await pool.render("tiles", small_scene, job, items, work_root / "mixed")
    assert done_mixed is not None
    for (frame, cell), rendered in zip(mixed, done_mixed, strict=True):
        region = fresh[frame][cell.y : cell.y + cell.height, cell.x : cell.x + cell.width]
        assert np.array_equal(load_image(rendered.path), region), f"mixed: {cell} of {frame}"
    assert pool.started == 2 and pool.processes == 2  # one for frames, one for checks

    warm_frames = pool.process_of("frames", small_scene)
    assert warm_frames is not None and warm_frames.pid is not None
    await frames.release(small_scene)  # the job ended
    assert pool.processes == 1 and group_gone(warm_frames.pid)
    await pool.aclose()


async def test_a_crashed_process_is_replaced(
    small_scene: Path, work_root: Path, sandbox_info: SandboxInfo
) -> None:
    pool, config = _kit(work_root, sandbox_info)
    frames = WarmFrameRenderer(BlenderBackend(config, sandbox_info), pool)
    await frames.render_frames(small_scene, SMALL, [1], work_root / "a")
    process = pool.process_of("frames", small_scene)
    assert process is not None and process.pid is not None
    os.killpg(process.pid, signal.SIGKILL)  # dies between two frames
    assert group_gone(process.pid)
    (out,) = await frames.render_frames(small_scene, SMALL, [2], work_root / "b")
    assert out.path.is_file() and pool.started == 2
    await pool.aclose()


async def test_a_hung_render_times_out_and_a_cancelled_one_is_killed(
    small_scene: Path, work_root: Path, sandbox_info: SandboxInfo
) -> None:
    pool, config = _kit(work_root, sandbox_info)
    pids: list[int] = []

    class Recording(WarmProcess):
        async def start(self, scene: Path, scripts: Mapping[str, Path]) -> None:
            await super().start(scene, scripts)
            assert self.pid is not None
            pids.append(self.pid)

    pool.process_factory = Recording
    pool.config = replace(config, limits=SandboxLimits(wall_s=3.0))
    heavy = replace(SMALL, resolution_x=640, resolution_y=480, samples=4096)  # minutes of work
    frames = WarmFrameRenderer(BlenderBackend(config, sandbox_info), pool)
    with pytest.raises(RenderError, match="timed out"):
        await frames.render_frames(small_scene, heavy, [1], work_root / "a")
    assert pool.processes == 0 and len(pids) == 1 and group_gone(pids[0])

    pool.config = config  # no short timeout: only the cancellation ends it
    rendering = trio.Event()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(frames.render_frames, small_scene, heavy, [1], work_root / "b",
                           lambda _frame, _fraction: rendering.set())  # fmt: skip
        await rendering.wait()  # Blender reports samples: it is rendering
        nursery.cancel_scope.cancel()  # the worker's CancelRender
    assert pool.processes == 0 and len(pids) == 2 and group_gone(pids[1])


async def test_an_idle_process_leaves_by_itself(
    small_scene: Path, work_root: Path, sandbox_info: SandboxInfo
) -> None:
    pool, config = _kit(work_root, sandbox_info, idle_s=1.0)
    frames = WarmFrameRenderer(BlenderBackend(config, sandbox_info), pool)
    await frames.render_frames(small_scene, SMALL, [1], work_root / "a")
    process = pool.process_of("frames", small_scene)
    assert process is not None and process._child is not None
    with trio.fail_after(60):  # the script's own idle timer (2 s here), not the pool's
        await process._child.wait()
    assert not process.alive
    (out,) = await frames.render_frames(small_scene, SMALL, [2], work_root / "b")
    assert out.path.is_file() and pool.started == 2
    await pool.aclose()
