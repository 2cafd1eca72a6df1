"""The worker's renderer: whole frames in the job's warm Blender process.

Same interface and output as :class:`node.render.blender.BlenderBackend` (whose
``identify`` and one-shot render it uses), but the frames a worker is awarded
one by one render in one long-lived process per scene
(:class:`node.render.warm.WarmPool`), as ``blender -a`` would render them:
start-up, scene load and kernel load paid once per job, not once per frame.
When every warm slot is busy the frame renders one-shot, as before.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from node.render.base import FrameOutput, ProgressFn, RendererIdentity
from node.render.blender import BlenderBackend, LineParser, job_document
from node.render.warm import WarmPool
from protocol.messages import RenderSettings

KIND = "frames"


class WarmFrameRenderer:
    def __init__(self, backend: BlenderBackend, pool: WarmPool) -> None:
        self.backend = backend
        self.pool = pool

    @property
    def name(self) -> str:
        return "blender-warm"

    async def identify(self) -> RendererIdentity:
        return await self.backend.identify()

    async def render_frames(
        self,
        scene: Path,
        settings: RenderSettings,
        frames: Sequence[int],
        out_dir: Path,
        progress: ProgressFn | None = None,
    ) -> list[FrameOutput]:
        if not frames:
            return []
        job = job_document(settings, frames, Path("."), self.backend.config.device, None)
        items = [{"frame": f, "tile": None, "name": f"frame_{f:06d}.png"} for f in frames]
        rendered = await self.pool.render(KIND, scene, job, items, out_dir, LineParser(progress))
        if rendered is None:  # every warm slot busy: one process for this call
            return await self.backend.render_frames(scene, settings, frames, out_dir, progress)
        outputs = []
        for frame, done in zip(frames, rendered, strict=True):
            if progress is not None:
                progress(frame, 1.0)
            outputs.append(FrameOutput(frame, done.path, done.render_s))
        return outputs

    async def release(self, scene: Path) -> None:
        """Done with ``scene`` (the job ended or was cancelled): close its process."""
        await self.pool.release(KIND, scene)
