"""Scene preflight: what a client should know before announcing a job for a ``.blend``.

The file is inspected by Blender in the sandbox (our ``inspect_scene.py``, the
scene's own scripts disabled); this module turns the raw facts into findings:

- ``error``: the job cannot render as the artist expects, or would reach
  outside its own content (:func:`refusals`, which every worker applies too:
  external files — images, libraries, volumes, fonts, IES and OSL files —
  not packed, since a worker receives the ``.blend`` alone; a simulation cache
  directory outside the scene's folder; no camera);
- ``pinned``: a setting that would make renders unverifiable, and the value the
  job pins instead (denoising, adaptive sampling, dither, animated seed);
- ``script``: embedded Python (registered text blocks, scripted drivers) that
  will *not* run on any worker, so the render may differ from the artist's;
- ``info``: the version the file was saved with vs. the renderer build.

Render units per frame come from the one cost model, :mod:`protocol.cost`
(resolution, samples, the scene's light paths): the number the job announces
and every party prices by. Settings above ``protocol.cost.MAX_RU_PER_FRAME``
are an ``error``.
"""

from __future__ import annotations

import json
import posixpath
import shutil
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from node.render.base import RenderError
from node.render.blender import BlenderConfig
from node.render.sandbox import SandboxInfo, run_sandboxed
from protocol.cost import REFERENCE_PATHS, LightPaths, ru_per_frame, settings_problem
from protocol.messages import RenderSettings

INSPECT_SCRIPT = Path(__file__).with_name("inspect_scene.py")
MAX_SIDE, MAX_SAMPLES = 16_384, 1 << 20  # RenderSettings' wire limits
_LINE = "PICTOR_SCENE "


@dataclass(frozen=True)
class Finding:
    kind: str  # error | pinned | script | info
    message: str


@dataclass
class SceneReport:
    facts: dict[str, Any]
    findings: list[Finding] = field(default_factory=list)
    pinned: dict[str, Any] = field(default_factory=dict)
    frames: int = 0
    ru_per_frame: int = 0

    @property
    def ok(self) -> bool:
        return not any(f.kind == "error" for f in self.findings)

    def as_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["ok"] = self.ok
        out["ru_total"] = self.ru_per_frame * self.frames
        return out


# Settings that make renders unverifiable, and the value a job pins instead.
_PINS: dict[str, Any] = {
    "use_denoising": False,
    "use_adaptive_sampling": False,
    "use_animated_seed": False,
    "dither_intensity": 0.0,
    "resolution_percentage": 100,
    "use_compositing": False,
}


def stays_inside(path: str) -> bool:
    """Whether a Blender path resolves inside the scene's own folder: empty, or relative
    (``//``) and never climbing out of it (``//../x``, ``///etc`` do)."""
    if not path:
        return True
    if not path.startswith("//"):
        return False
    rest = posixpath.normpath(path[2:].replace("\\", "/") or ".")
    return not (rest == ".." or rest.startswith(("../", "/")))


def light_paths(facts: dict[str, Any]) -> LightPaths:
    """The scene's light paths for the cost model (the reference's when not Cycles)."""
    paths = facts["render"].get("light_paths")
    if facts["render"]["engine"] != "CYCLES" or not isinstance(paths, dict):
        return REFERENCE_PATHS
    return LightPaths(**{k: int(paths[k]) for k in ("max_bounces", "diffuse", "glossy",
                                                   "transmission", "volume")})  # fmt: skip


def job_ru(facts: dict[str, Any], settings: RenderSettings) -> int:
    """Render units per frame of a job rendering this scene with ``settings``."""
    return ru_per_frame(settings.resolution_x, settings.resolution_y, settings.samples,
                        light_paths(facts))  # fmt: skip


def refusals(facts: dict[str, Any], settings: RenderSettings | None = None) -> list[str]:
    """Why a scene cannot be rendered as a job (empty: it can). Pure, so the requester's
    preflight and every worker's (``node.roles.scene_gate``) refuse the same scenes.

    A job ships the ``.blend`` alone: every external file it uses must be packed in it.
    ``settings`` are the job's (they override the scene's resolution and samples).
    """
    out = [
        f"{f['kind']} {f['name']!r} {f['path']}: not packed (the job ships the .blend alone)"
        for f in facts["external_files"]
        if not f["packed"]
    ]
    out += [
        f"{c['kind']} of {c['owner']} at {c['path']!r}: a cache directory must stay inside "
        "the scene's own folder (a relative path, //name)"
        for c in facts.get("cache_dirs", ())
        if not stays_inside(c["path"])
    ]
    if not facts["render"]["has_camera"]:
        out.append("the scene has no active camera")
    if settings is None:
        (res_x, res_y), samples = _scene_resolution(facts), facts["render"]["samples"]
        if max(res_x, res_y) > MAX_SIDE or samples > MAX_SAMPLES:
            out.append(f"{res_x}x{res_y} at {samples} samples: a job renders at most "
                       f"{MAX_SIDE}x{MAX_SIDE} at {MAX_SAMPLES} samples")  # fmt: skip
        settings = scene_settings(facts)
    problem = settings_problem(settings.resolution_x, settings.resolution_y, settings.samples,
                               light_paths(facts))  # fmt: skip
    if problem:
        out.append(problem)
    return out


def scene_settings(facts: dict[str, Any]) -> RenderSettings:
    """The settings a job pins for this scene as the artist saved it: the size the artist
    sees (resolution x percentage) at 100 %, its samples and seed, 8-bit PNG."""
    render = facts["render"]
    res_x, res_y = _scene_resolution(facts)
    samples = min(MAX_SAMPLES, max(1, int(render["samples"])))
    return RenderSettings(render["engine"], min(MAX_SIDE, res_x), min(MAX_SIDE, res_y), samples,
                          int(render["seed"]) % (1 << 32), "PNG_RGBA8")  # fmt: skip


def _scene_resolution(facts: dict[str, Any]) -> tuple[int, int]:
    pct = facts["render"]["resolution_percentage"]
    res_x, res_y = (max(1, v * pct // 100) for v in facts["render"]["resolution"])
    return res_x, res_y


def analyse(facts: dict[str, Any], renderer_build: str | None = None) -> SceneReport:
    render = facts["render"]
    report = SceneReport(facts)
    for refusal in refusals(facts):
        report.findings.append(Finding("error", refusal))
    for f in facts["external_files"]:  # the artist's disk: say which ones are missing there
        if not f["packed"] and not Path(f["absolute"]).exists():
            report.findings.append(Finding("error", f"{f['kind']} {f['name']!r} {f['path']}: "
                                           "missing on this machine too"))  # fmt: skip
    for name, pinned in _PINS.items():
        if render[name] != pinned:
            report.pinned[name] = pinned
            report.findings.append(
                Finding(
                    "pinned", f"{name} = {render[name]!r} breaks verification; job pins {pinned!r}"
                )
            )
    for text in facts["texts"]:
        state = "registered to auto-run" if text["registered"] else "not registered"
        report.findings.append(
            Finding("script", f"text block {text['name']!r} ({state}) will not run on workers")
        )
    for drv in facts["scripted_drivers"]:
        if not drv["simple"]:
            report.findings.append(
                Finding("script", f"scripted driver {drv['owner']}.{drv['path']} "
                        f"({drv['expression']!r}) will not run on workers")
            )  # fmt: skip
    if (
        renderer_build
        and not renderer_build.endswith("-" + facts["saved_version"] + ".0")
        and (not renderer_build.startswith("blender-" + facts["saved_version"]))
    ):
        report.findings.append(
            Finding(
                "info",
                f"saved with Blender {facts['saved_version']}; job renders with {renderer_build}",
            )
        )
    report.frames = len(range(render["frame_start"], render["frame_end"] + 1, render["frame_step"]))
    settings = scene_settings(facts)
    report.pinned["resolution"] = [settings.resolution_x, settings.resolution_y]
    report.ru_per_frame = job_ru(facts, settings)
    return report


async def inspect_scene(scene: Path, config: BlenderConfig, sandbox: SandboxInfo) -> dict[str, Any]:
    """Run our inspection script on ``scene`` in the sandbox; return its raw facts."""
    lines: list[str] = []
    with tempfile.TemporaryDirectory(dir=config.work_root, prefix="pictor-") as tmp:
        workdir = Path(tmp)
        shutil.copyfile(scene, workdir / "scene.blend")
        shutil.copyfile(INSPECT_SCRIPT, workdir / "inspect_scene.py")
        argv = [
            config.executable, "-b", "-Y", "--factory-startup", str(workdir / "scene.blend"),
            "--python-exit-code", "1", "--python", str(workdir / "inspect_scene.py"),
            "--", str(scene.resolve().parent),
        ]  # fmt: skip
        result = await run_sandboxed(argv, workdir, config.limits, sandbox, lines.append)
    found = [line[len(_LINE) :] for line in lines if line.startswith(_LINE)]
    if result.returncode != 0 or not found:
        raise RenderError(f"scene inspection failed (exit {result.returncode})", result.tail)
    try:
        facts: dict[str, Any] = json.loads(found[-1])
    except ValueError:  # cut at the line limit, or not ours
        raise RenderError("scene inspection printed an unreadable report", result.tail) from None
    return facts
