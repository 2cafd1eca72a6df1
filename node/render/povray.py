"""POV-Ray 3.7 backend: the second real renderer, proof the interface is not Blender-shaped.

``povray +Iscene.pov +Oout.png +W +H -D +UA +FN8 ...`` in the sandbox, one short
process per frame (POV-Ray starts in well under a second, so there is no
start-up cost worth batching). The frame number is passed as the scene's
``clock`` (``+K``). Antialiasing is deterministic: non-adaptive supersampling
(``+AM1``) with jitter off (``-J``); the job's ``samples`` picks the depth.
A region renders with ``+SC/+EC/+SR/+ER`` (1-based, inclusive); POV-Ray 3.7
still writes a full-size image, which we crop to the region.

The scene language can read and write files and shell out: a ``povray.conf``
in the render's own ``HOME`` restricts file I/O to the work directory and
forbids shell-outs, on top of the sandbox.
"""

from __future__ import annotations

import math
import re
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import trio

from node.render.base import FrameOutput, ProgressFn, Region, RendererIdentity, RenderError
from node.render.device import cpu_device_class
from node.render.sandbox import (
    SandboxError,
    SandboxInfo,
    SandboxLimits,
    probe_sandbox,
    run_sandboxed,
    take_file,
)
from protocol.messages import RenderSettings

_VERSION_RE = re.compile(r"POV-Ray (\d+(?:\.\d+)+)")
_DEPTHS = {"PNG_RGBA8": "8", "PNG_RGBA16": "16"}
_CONF = """[File I/O Security]
restricted
[Shellout Security]
forbidden
[Permitted Paths]
read* = /usr/share/povray-3.7/include
read+write = .
"""


@dataclass(frozen=True)
class PovrayConfig:
    executable: str = "povray"
    threads: int = 0  # 0: POV-Ray's default (all cores)
    limits: SandboxLimits = field(default_factory=SandboxLimits)
    work_root: Path | None = None


def antialias_args(samples: int) -> list[str]:
    if samples <= 1:
        return ["-A"]
    depth = min(9, max(2, round(math.sqrt(samples))))
    return ["+A0.0", "+AM1", f"+R{depth}", "-J"]


class PovrayBackend:
    def __init__(self, config: PovrayConfig, sandbox: SandboxInfo | None = None) -> None:
        self.config = config
        self.sandbox = sandbox or probe_sandbox()
        self._identity: RendererIdentity | None = None

    @property
    def name(self) -> str:
        return "povray"

    async def identify(self) -> RendererIdentity:
        if self._identity is None:
            lines: list[str] = []
            with tempfile.TemporaryDirectory(dir=self.config.work_root) as tmp:
                await run_sandboxed(
                    [self.config.executable, "--version"],
                    Path(tmp),
                    self.config.limits,
                    self.sandbox,
                    lines.append,
                )
            match = next((m for line in lines if (m := _VERSION_RE.search(line))), None)
            if match is None:
                raise RenderError("could not read the POV-Ray version", "\n".join(lines[-20:]))
            self._identity = RendererIdentity(f"povray-{match.group(1)}", cpu_device_class())
        return self._identity

    async def render_frames(
        self,
        scene: Path,
        settings: RenderSettings,
        frames: Sequence[int],
        out_dir: Path,
        progress: ProgressFn | None = None,
    ) -> list[FrameOutput]:
        outputs = []
        for frame in frames:
            outputs.append(await self._render_one(scene, settings, frame, None, out_dir))
            if progress:
                progress(frame, 1.0)
        return outputs

    async def render_region(
        self, scene: Path, settings: RenderSettings, frame: int, region: Region, out_dir: Path
    ) -> FrameOutput:
        region.check_inside(settings.resolution_x, settings.resolution_y)
        if settings.output_format != "PNG_RGBA8":
            raise RenderError("POV-Ray region renders support PNG_RGBA8 only")
        output = await self._render_one(scene, settings, frame, region, out_dir)
        await trio.to_thread.run_sync(crop_png, output.path, region)
        return output

    def _argv(self, settings: RenderSettings, frame: int, region: Region | None) -> list[str]:
        if settings.engine != "POVRAY":
            raise RenderError(f"POV-Ray renders engine 'POVRAY', not {settings.engine!r}")
        if settings.output_format not in _DEPTHS:
            raise RenderError(f"output format {settings.output_format!r} not in {list(_DEPTHS)}")
        argv = [
            self.config.executable, "+Iscene.pov", "+Oout.png",
            f"+W{settings.resolution_x}", f"+H{settings.resolution_y}",
            "-D", "-V", "+UA", f"+FN{_DEPTHS[settings.output_format]}", f"+K{frame}",
            *antialias_args(settings.samples),
        ]  # fmt: skip
        if self.config.threads:
            argv.append(f"+WT{self.config.threads}")
        if region is not None:
            argv += [f"+SC{region.x0 + 1}", f"+EC{region.x1}", f"+SR{region.y0 + 1}"]
            argv.append(f"+ER{region.y1}")
        return argv

    async def _render_one(
        self, scene: Path, settings: RenderSettings, frame: int, region: Region | None, out: Path
    ) -> FrameOutput:
        argv = self._argv(settings, frame, region)
        with tempfile.TemporaryDirectory(dir=self.config.work_root, prefix="pictor-") as tmp:
            workdir = Path(tmp)
            shutil.copyfile(scene, workdir / "scene.pov")
            conf_dir = workdir / ".povray" / "3.7"
            conf_dir.mkdir(parents=True)
            (conf_dir / "povray.conf").write_text(_CONF)
            start = trio.current_time()
            result = await run_sandboxed(argv, workdir, self.config.limits, self.sandbox)
            if result.returncode != 0:
                raise RenderError(f"povray exited {result.returncode}", result.tail)
            try:  # the child owns its work dir: out.png may be a planted symlink
                dest = take_file(workdir, "out.png", out / f"frame_{frame:06d}.png")
            except SandboxError as exc:
                raise RenderError(f"povray wrote no frame: {exc}", result.tail) from None
            return FrameOutput(frame, dest, trio.current_time() - start)


def crop_png(path: Path, region: Region) -> None:
    from PIL import Image  # only needed for POV-Ray tiles

    with Image.open(path) as image:
        image.load()
        cropped = image.crop((region.x0, region.y0, region.x1, region.y1))
    cropped.save(path, format="PNG")
