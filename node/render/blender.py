"""Blender backends: the ``blender`` executable, and the ``bpy`` module in a subprocess.

Both run :mod:`node.render.blender_job` (our script) in a sandboxed child:

- executable: ``blender -b -Y --factory-startup SCENE --python-exit-code 1
  --python blender_job.py -- job.json``. ``-Y`` (disable auto-exec) stops the
  scene's registered text blocks and drivers; our own ``--python`` still runs.
  ``--factory-startup`` ignores any user preferences or add-ons on the machine.
- bpy: ``python blender_job.py -- job.json`` with ``open_scene`` set, so the
  script opens the file itself with ``use_scripts=False``.

All frames of one call render in one process (start-up and scene load paid
once); the script prints ``PICTOR_FRAME {json}`` after each written frame and
Blender's own ``Fra:N ... Sample a/b`` lines give progress within a frame.
"""

from __future__ import annotations

import json
import re
import shutil
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import trio

from node.render.base import (
    OUTPUT_FORMATS,
    FrameOutput,
    ProgressFn,
    Region,
    RendererIdentity,
    RenderError,
)
from node.render.device import cpu_device_class
from node.render.gpu import probe_gpus
from node.render.sandbox import (
    SandboxError,
    SandboxInfo,
    SandboxLimits,
    probe_sandbox,
    run_sandboxed,
    take_file,
)
from protocol.messages import RenderSettings

# Run inside Blender, never imported here (it imports bpy).
JOB_SCRIPT = Path(__file__).with_name("blender_job.py")
_FRAME_LINE = "PICTOR_FRAME "
_SAMPLE_RE = re.compile(r"^Fra:(\d+) .*\| (?:Sample|Path Tracing Sample) (\d+)/(\d+)")
_VERSION_RE = re.compile(r"Blender (\d+\.\d+\.\d+)")
ENGINES = ("CYCLES", "BLENDER_EEVEE", "BLENDER_WORKBENCH")
GPU_DEVICES = ("CUDA", "OPTIX", "HIP", "ONEAPI", "METAL")


@dataclass(frozen=True)
class BlenderConfig:
    executable: str = "blender"
    python: str = sys.executable  # for the bpy backend: an interpreter with ``bpy``
    device: str = "CPU"  # or one of GPU_DEVICES
    threads: int = 0  # 0: all cores
    limits: SandboxLimits = field(default_factory=SandboxLimits)
    work_root: Path | None = None  # where per-render directories go (default: system temp)


def job_document(
    settings: RenderSettings,
    frames: Sequence[int],
    out_dir: Path,
    device: str,
    border: tuple[float, float, float, float] | None,
) -> dict[str, object]:
    """The JSON our Blender-side script reads; validates the pinned settings on our side."""
    if settings.engine not in ENGINES:
        raise RenderError(f"engine {settings.engine!r} is not one of {ENGINES}")
    if settings.output_format not in OUTPUT_FORMATS:
        raise RenderError(f"output format {settings.output_format!r} not in {list(OUTPUT_FORMATS)}")
    return {
        "engine": settings.engine,
        "samples": settings.samples,
        "seed": settings.seed,
        "resolution": [settings.resolution_x, settings.resolution_y],
        "frames": list(frames),
        "out_dir": str(out_dir),
        "color_depth": OUTPUT_FORMATS[settings.output_format],
        "border": list(border) if border else None,
        "device": device,
        "open_scene": None,
    }


def blender_border(region: Region, width: int, height: int) -> tuple[float, float, float, float]:
    """Pixel region (top-left origin) to Blender's normalised border (bottom-left origin)."""
    region.check_inside(width, height)
    return (region.x0 / width, region.x1 / width, 1 - region.y1 / height, 1 - region.y0 / height)


def gpu_device_class(backend: str) -> str:
    """``optix-sm90``: the Cycles backend and the first GPU's architecture (both
    change the kernel that runs, hence the pixels)."""
    probe = probe_gpus()
    if not probe.gpus:
        raise RenderError(f"device {backend} asked for, but no GPU: {probe.detail}")
    return f"{backend.lower()}-{probe.gpus[0].device_class.removeprefix('cuda-')}"


class LineParser:
    """Turns a Blender child's output lines into frame results and progress calls."""

    def __init__(self, progress: ProgressFn | None) -> None:
        self.outputs: list[FrameOutput] = []
        self._progress = progress

    def __call__(self, line: str) -> None:
        if line.startswith(_FRAME_LINE):
            info = json.loads(line[len(_FRAME_LINE) :])
            self.outputs.append(FrameOutput(info["frame"], Path(info["path"]), info["render_s"]))
            if self._progress:
                self._progress(info["frame"], 1.0)
        elif self._progress and (m := _SAMPLE_RE.match(line)):
            frame, done, total = (int(g) for g in m.groups())
            self._progress(frame, min(0.99, done / max(1, total)))


class BlenderBackend:
    """Renders with the ``blender`` executable (``bpy=False``) or the ``bpy`` module."""

    def __init__(
        self, config: BlenderConfig, sandbox: SandboxInfo | None = None, bpy: bool = False
    ) -> None:
        self.config = config
        self.sandbox = sandbox or probe_sandbox()
        self._bpy = bpy
        self._identity: RendererIdentity | None = None

    @property
    def name(self) -> str:
        return "bpy" if self._bpy else "blender"

    async def identify(self) -> RendererIdentity:
        if self._identity is None:
            if self._bpy:
                code = "import bpy; print('Blender', bpy.app.version_string)"
                argv = [self.config.python, "-c", code]
            else:
                argv = [self.config.executable, "-b", "--factory-startup", "--version"]
            lines: list[str] = []
            with tempfile.TemporaryDirectory(dir=self.config.work_root) as tmp:
                await run_sandboxed(argv, Path(tmp), self.config.limits, self.sandbox, lines.append)
            match = next((m for line in lines if (m := _VERSION_RE.search(line))), None)
            if match is None:
                raise RenderError("could not read the Blender version", "\n".join(lines[-20:]))
            device = cpu_device_class()
            if self.config.device != "CPU":
                device = await trio.to_thread.run_sync(gpu_device_class, self.config.device)
            self._identity = RendererIdentity(f"blender-{match.group(1)}", device)
        return self._identity

    async def render_frames(
        self,
        scene: Path,
        settings: RenderSettings,
        frames: Sequence[int],
        out_dir: Path,
        progress: ProgressFn | None = None,
    ) -> list[FrameOutput]:
        return await self._render(scene, settings, frames, None, out_dir, progress)

    async def render_region(
        self, scene: Path, settings: RenderSettings, frame: int, region: Region, out_dir: Path
    ) -> FrameOutput:
        border = blender_border(region, settings.resolution_x, settings.resolution_y)
        outputs = await self._render(scene, settings, [frame], border, out_dir, None)
        return outputs[0]

    def _argv(self, root: Path) -> list[str]:
        if self._bpy:
            return [self.config.python, str(root / "pictor_job.py"), "--", str(root / "job.json")]
        return blender_argv(self.config.executable, root, self.config.threads)

    async def _render(
        self,
        scene: Path,
        settings: RenderSettings,
        frames: Sequence[int],
        border: tuple[float, float, float, float] | None,
        out_dir: Path,
        progress: ProgressFn | None,
    ) -> list[FrameOutput]:
        if not frames:
            return []
        with tempfile.TemporaryDirectory(dir=self.config.work_root, prefix="pictor-") as tmp:
            workdir = Path(tmp)
            doc = job_document(settings, frames, workdir / "out", self.config.device, border)
            if self._bpy:
                doc["open_scene"] = str(workdir / "scene.blend")
            prepare_workdir(workdir, scene, doc)
            parser = LineParser(progress)
            result = await run_sandboxed(
                self._argv(workdir), workdir, self.config.limits, self.sandbox, parser
            )
            return collect_frames(result.returncode, result.tail, parser, frames, workdir, out_dir)


def blender_argv(
    executable: str, root: Path, threads: int, script: str = "pictor_job.py",
    document: str = "job.json",
) -> list[str]:  # fmt: skip
    """The executable's command line for a work directory seen by the child at ``root``:
    ``scene.blend`` opened with scripts disabled, then our ``script`` given ``document``."""
    thread_args = ["-t", str(threads)] if threads else []
    return [
        executable, "-b", "-Y", "--factory-startup", *thread_args,
        str(root / "scene.blend"), "--python-exit-code", "1",
        "--python", str(root / script), "--", str(root / document),
    ]  # fmt: skip


def prepare_workdir(workdir: Path, scene: Path, doc: dict[str, object]) -> None:
    (workdir / "out").mkdir()
    # The child gets a copy: it may not write to our stored scene blob.
    shutil.copyfile(scene, workdir / "scene.blend")
    shutil.copyfile(JOB_SCRIPT, workdir / "pictor_job.py")
    (workdir / "job.json").write_text(json.dumps(doc))


def collect_frames(
    returncode: int,
    tail: str,
    parser: LineParser,
    frames: Sequence[int],
    workdir: Path,
    out_dir: Path,
) -> list[FrameOutput]:
    """Check every frame was reported, and move the files out of the work directory.

    Only the file *name* of a reported path is used, so a child (or container,
    whose paths differ from ours) cannot point us at a file outside ``out/``.
    """
    done = {o.frame for o in parser.outputs}
    if returncode != 0 or done != set(frames):
        missing = sorted(set(frames) - done)
        raise RenderError(f"blender exited {returncode}; frames not rendered: {missing}", tail)
    out_dir.mkdir(parents=True, exist_ok=True)
    results = []
    for output in parser.outputs:
        name = output.path.name
        try:  # never a plain is_file/move: the child may have planted symlinks
            dest = take_file(workdir, f"out/{name}", out_dir / name)
        except SandboxError as exc:
            raise RenderError(f"frame {output.frame} reported but not taken: {exc}", tail) from None
        results.append(FrameOutput(output.frame, dest, output.render_s))
    return results
