"""Re-render several tiles of one frame with Blender, in one sandboxed process.

The rendering helper (:mod:`node.render.blender`) renders one border region
per Blender process. A checker needs ``k`` tiles of the same frame, and a
Blender start plus scene and kernel load costs ~1.3 s on our CI machines —
more than eight 32x32 tiles together — so paying it once per check instead of
once per tile is what keeps the checker's cost a small share of the worker's.

We reuse everything else of the helper: its job document (the pinned
settings, validated), its sandbox (scrubbed env, rlimits, no network, kill on
timeout), its device classes, and its own ``_pin`` inside Blender (our script
loads ``blender_job.py`` next to it), so worker and checker pin identically.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from node.render.base import RendererIdentity, RenderError
from node.render.blender import JOB_SCRIPT, BlenderBackend, BlenderConfig, job_document
from node.render.sandbox import (
    SandboxError,
    SandboxInfo,
    probe_sandbox,
    produced_names,
    run_sandboxed,
    take_file,
)
from protocol.messages import RenderSettings
from protocol.verification import Tile

TILE_SCRIPT = Path(__file__).with_name("blender_tiles_job.py")
_TILE_LINE = "PICTOR_TILE "
_SCENE_LINE = "PICTOR_SCENE "


@dataclass(frozen=True)
class TileRenders:
    paths: tuple[Path, ...]  # one PNG per tile, in the order asked
    wall_s: float  # the whole Blender process: start-up, scene load, all tiles
    render_s: float  # Blender's own time for the tiles


class BlenderTileRenderer:
    """Renders tiles (for checks) and, for benchmarks and tests, whole frames."""

    def __init__(self, config: BlenderConfig | None = None, sandbox: SandboxInfo | None = None):
        self.config = config or BlenderConfig()
        self.sandbox = sandbox or probe_sandbox()
        self.backend = BlenderBackend(self.config, self.sandbox)

    async def identify(self) -> RendererIdentity:
        return await self.backend.identify()

    async def render_tiles(
        self,
        scene: Path,
        settings: RenderSettings,
        frame: int,
        tiles: Sequence[Tile],
        out_dir: Path,
    ) -> TileRenders:
        doc = job_document(settings, [frame], Path("."), self.config.device, None)
        doc["tiles"] = [[t.x, t.y, t.x + t.width, t.y + t.height] for t in tiles]
        lines, wall_s = await self._run(scene, doc, out_dir)
        done = [
            json.loads(line[len(_TILE_LINE) :]) for line in lines if line.startswith(_TILE_LINE)
        ]
        if len(done) != len(tiles):
            raise RenderError(
                f"blender rendered {len(done)} of {len(tiles)} tiles", "\n".join(lines[-20:])
            )
        paths = tuple(out_dir / Path(d["path"]).name for d in done)
        return TileRenders(paths, wall_s, sum(float(d["render_s"]) for d in done))

    async def read_scene_settings(
        self, scene: Path, output_format: str = "PNG_RGBA8"
    ) -> RenderSettings:
        """The scene file's own engine, resolution, samples and seed."""
        settings = RenderSettings("CYCLES", 1, 1, 1, 0, output_format)
        doc = job_document(settings, [1], Path("."), self.config.device, None)
        doc["probe"] = True
        with tempfile.TemporaryDirectory(dir=self.config.work_root, prefix="pictor-") as tmp:
            lines, _ = await self._run(scene, doc, Path(tmp))
        found = [
            json.loads(line[len(_SCENE_LINE) :]) for line in lines if line.startswith(_SCENE_LINE)
        ]
        if not found:
            raise RenderError("could not read the scene's settings", "\n".join(lines[-20:]))
        info = found[0]
        return RenderSettings(
            info["engine"], info["resolution_x"], info["resolution_y"], info["samples"],
            info["seed"], output_format,
        )  # fmt: skip

    async def _run(
        self, scene: Path, doc: dict[str, object], out_dir: Path
    ) -> tuple[list[str], float]:
        if not scene.is_file():
            raise RenderError(f"scene {scene} not found")
        with tempfile.TemporaryDirectory(dir=self.config.work_root, prefix="pictor-") as tmp:
            workdir = Path(tmp)
            (workdir / "out").mkdir()
            shutil.copyfile(scene, workdir / "scene.blend")  # the child may not touch our copy
            shutil.copyfile(JOB_SCRIPT, workdir / "pictor_job.py")
            shutil.copyfile(TILE_SCRIPT, workdir / "pictor_tiles.py")
            doc = {
                **doc,
                "out_dir": str(workdir / "out"),
                "job_script": str(workdir / "pictor_job.py"),
            }
            (workdir / "job.json").write_text(json.dumps(doc))
            lines: list[str] = []
            threads = ["-t", str(self.config.threads)] if self.config.threads else []
            argv = [
                self.config.executable, "-b", "-Y", "--factory-startup", *threads,
                str(workdir / "scene.blend"), "--python-exit-code", "1",
                "--python", str(workdir / "pictor_tiles.py"), "--", str(workdir / "job.json"),
            ]  # fmt: skip
            result = await run_sandboxed(
                argv, workdir, self.config.limits, self.sandbox, lines.append
            )
            if result.returncode != 0:
                raise RenderError(f"blender exited {result.returncode}", result.tail)
            out_dir.mkdir(parents=True, exist_ok=True)
            try:  # the child owns its work dir: never follow what it left there
                for name in produced_names(workdir, "out"):
                    take_file(workdir, f"out/{name}", out_dir / name)
            except SandboxError as exc:
                raise RenderError(f"tiles not taken: {exc}", result.tail) from None
            return lines, result.wall_s
