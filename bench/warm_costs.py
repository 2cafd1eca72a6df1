"""The checker's cost with warm Blender processes, as a node now renders (bench/verification.py).

A worker renders a job's frames in one warm process (node.render.warm_frames)
and a checker checks them in one warm process per job (node.verify.warm_tiles).
Measured here, same scene and settings as the rest of bench/verification.py:

- the worker: ``--frames`` + 1 frames rendered warm, one command each; the
  first call's wall holds the start-up, the others are steady;
- the checker: checks at the fresh worker's k (and one at the trusted k), one
  command each; again the first call holds the start-up.

A job of ``job_frames`` frames then costs the worker ``first + (n-1) * steady``
and the checker, for a fresh worker (every frame checked), the same shape:
the ratio is one check's share of one frame, start-up included on both sides.
The average checking cost per accepted frame under the plan's sampling is
``q(r) * check(k(r)) + start-up / n`` over the worker's frame (start-up
included) for reputation r = 0, 0.5, 1 (protocol.verification.plan_check),
``check(k)`` interpolated linearly in k between the two measured k.

The same ratios in CPU time (``cpu_*``): each warm process reports its own
CPU time after every command (``WarmProcess.cpu_s``: Blender's whole process,
start-up and scene load included), which the others' load on a shared box
stretches far less than wall time. Every warm tile is also compared with the
same region of the worker's warm frame: ``tiles_identical`` must be all of
them (checks compare exactly).
"""

from __future__ import annotations

import hashlib
import os
import statistics
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import trio

from node.render.blender import BlenderBackend, BlenderConfig
from node.render.sandbox import probe_sandbox
from node.render.warm import WarmConfig, WarmPool
from node.render.warm_frames import WarmFrameRenderer
from node.verify.blender_tiles import BlenderTileRenderer
from node.verify.images import Pixels, load_image
from node.verify.warm_tiles import SCRIPTS, WarmTileRenderer
from protocol.messages import Assurance, RenderSettings
from protocol.verification import DEFAULT_POLICY, plan_check, select_tiles


async def warm_costs(
    scene: Path, settings: RenderSettings, frames: list[int], job_frames: int, checks: int
) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="pictor-bench-warm-") as tmp:
        root = Path(tmp)
        os.chmod(root, 0o711)  # the sandbox may render as another user
        config, sandbox = BlenderConfig(work_root=root), probe_sandbox()
        pool = WarmPool(config, sandbox, WarmConfig(max_processes=2), SCRIPTS)
        worker = WarmFrameRenderer(BlenderBackend(config, sandbox), pool)
        frame_wall: list[float] = []
        frame_cpu: list[float] = []
        pixels: dict[int, Pixels] = {}
        for frame in [*frames, frames[0]]:
            start = trio.current_time()
            (out,) = await worker.render_frames(scene, settings, [frame], root / "frames")
            frame_wall.append(trio.current_time() - start)
            frame_cpu.append(_cpu_since(pool, "frames", scene, frame_cpu))
            pixels[frame] = load_image(out.path)
        checker = WarmTileRenderer(BlenderTileRenderer(config, sandbox), pool)
        fresh, trusted = plan_check(Assurance.NORMAL, 0.0), plan_check(Assurance.NORMAL, 1.0)
        check_wall: dict[int, list[float]] = {fresh.k: [], trusted.k: []}
        check_cpu: dict[int, list[float]] = {fresh.k: [], trusted.k: []}
        spent: list[float] = []
        identical = tiles_n = 0
        for i in range(checks + 1):
            k = trusted.k if i == checks else fresh.k
            digest = hashlib.sha256(f"warm-{i}".encode()).digest()
            tiles = select_tiles(digest, os.urandom(32), settings.resolution_x,
                                 settings.resolution_y, k, DEFAULT_POLICY.sampling.tile_px)  # fmt: skip
            frame = frames[i % len(frames)]
            done = await checker.render_tiles(scene, settings, frame, tiles, root / f"check-{i}")
            check_wall[k].append(done.wall_s)
            spent.append(_cpu_since(pool, "tiles", scene, spent))
            check_cpu[k].append(spent[-1])
            for t, path in zip(tiles, done.paths, strict=True):
                region = pixels[frame][t.y : t.y + t.height, t.x : t.x + t.width]
                identical += bool(np.array_equal(load_image(path), region))
                tiles_n += 1
        await pool.aclose()
    steady_frame = statistics.fmean(frame_wall[1:])
    steady_check = statistics.fmean(check_wall[fresh.k][1:])
    per_tile = (steady_check - check_wall[trusted.k][0]) / max(1, fresh.k - trusted.k)
    n = job_frames
    worker_job = frame_wall[0] + (n - 1) * steady_frame
    checker_job = check_wall[fresh.k][0] + (n - 1) * steady_check

    def check_s(k: int) -> float:
        return max(0.0, steady_check + (k - fresh.k) * per_tile)

    per_frame = worker_job / n
    startup_s = max(0.0, check_wall[fresh.k][0] - steady_check)  # paid once per job

    def per_accepted(r: float) -> float:
        plan = plan_check(Assurance.NORMAL, r)
        return (plan.check_probability * check_s(plan.k) + startup_s / n) / per_frame

    cpu_frame, cpu_check = statistics.fmean(frame_cpu[1:]), statistics.fmean(check_cpu[fresh.k][1:])
    cpu_worker_job = frame_cpu[0] + (n - 1) * cpu_frame
    cpu_checker_job = check_cpu[fresh.k][0] + (n - 1) * cpu_check
    return {
        "worker_first_frame_cpu_s": frame_cpu[0],
        "worker_steady_frame_cpu_s": cpu_frame,
        "checker_first_check_cpu_s": check_cpu[fresh.k][0],
        "checker_steady_check_cpu_s": cpu_check,
        "cpu_check_share_job": cpu_checker_job / cpu_worker_job,
        "cpu_check_share_steady": cpu_check / cpu_frame,
        "tiles_identical": f"{identical}/{tiles_n}",
        "worker_first_frame_wall_s": frame_wall[0],
        "worker_steady_frame_wall_s": steady_frame,
        "checker_first_check_wall_s": check_wall[fresh.k][0],
        "checker_steady_check_wall_s": steady_check,
        "checker_trusted_k_check_wall_s": check_wall[trusted.k][0],
        "job_frames": n,
        "check_share_job": checker_job / worker_job,
        "check_share_steady": steady_check / steady_frame,
        **{f"cost_per_accepted_frame_r{r}": per_accepted(r) for r in (0.0, 0.5, 1.0)},
    }  # fmt: skip


def _cpu_since(pool: WarmPool, kind: str, scene: Path, earlier: list[float]) -> float:
    """CPU seconds the kind's warm process used for its last command (start-up in the first)."""
    process = pool.process_of(kind, scene)
    if process is None:
        raise RuntimeError(f"no warm {kind} process: every slot was busy, the bench measures none")
    return process.cpu_s - sum(earlier)
