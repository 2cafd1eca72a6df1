"""The checker's renderer: tiles in a warm Blender process that keeps the job's scene.

A check re-renders ``k`` small tiles; with a process per check, start-up and
scene load were most of its cost (1.2 s of wall against 0.45 s of tile
renders, measured on main). Here every check of one job renders in the same
process (:class:`node.render.warm.WarmPool`), which renders a check's tiles
with the one-shot tile script's own ``blender_tiles_job.render_tiles``
(``blender_job._pin`` once with ``blender_tiles_job.border``, one ``frame_set``,
the scene kept synced between tiles). When every warm slot is busy the check
renders one-shot (:class:`node.verify.blender_tiles.BlenderTileRenderer`).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import trio

from node.render.base import RendererIdentity
from node.render.blender import job_document
from node.render.warm import WarmPool
from node.verify.blender_tiles import TILE_SCRIPT, BlenderTileRenderer, TileRenders
from protocol.messages import RenderSettings
from protocol.verification import Tile

KIND = "tiles"
SCRIPTS = {"pictor_tiles.py": TILE_SCRIPT}  # what a pool serving checks must carry


class WarmTileRenderer:
    def __init__(self, one_shot: BlenderTileRenderer, pool: WarmPool) -> None:
        if pool.scripts.get("pictor_tiles.py") != TILE_SCRIPT:
            raise ValueError("the pool must carry the tile script: WarmPool(..., scripts=SCRIPTS)")
        self.one_shot = one_shot
        self.pool = pool

    async def identify(self) -> RendererIdentity:
        return await self.one_shot.identify()

    async def render_tiles(
        self,
        scene: Path,
        settings: RenderSettings,
        frame: int,
        tiles: Sequence[Tile],
        out_dir: Path,
    ) -> TileRenders:
        job = job_document(settings, [frame], Path("."), self.one_shot.config.device, None)
        items = [
            {"frame": frame, "tile": [t.x, t.y, t.x + t.width, t.y + t.height],
             "name": f"tile_{i:03d}.png"}
            for i, t in enumerate(tiles)
        ]  # fmt: skip
        started = trio.current_time()
        rendered = await self.pool.render(KIND, scene, job, items, out_dir)
        if rendered is None:  # every warm slot busy
            return await self.one_shot.render_tiles(scene, settings, frame, tiles, out_dir)
        wall_s = trio.current_time() - started  # start-up included when this call paid it
        return TileRenders(
            tuple(r.path for r in rendered), wall_s, sum(r.render_s for r in rendered)
        )

    async def release(self, scene: Path) -> None:
        """Done checking ``scene``'s job: close its process."""
        await self.pool.release(KIND, scene)
