"""Scene inspection, run *inside* Blender (``-Y``: the scene's own scripts stay off).

    blender -b -Y --factory-startup SCENE --python-exit-code 1 --python inspect_scene.py -- DIR

DIR is the directory the artist's ``.blend`` lives in, to resolve relative paths.

Prints one line ``PICTOR_SCENE {json}`` describing what the preflight check
needs: the version the file was saved with, engine, frames, resolution,
samples, the settings that break verification, external files and embedded
scripts. It only reads; it never renders.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any

import bpy

_EXTERNAL_COLLECTIONS = (
    "images",
    "libraries",
    "sounds",
    "fonts",
    "volumes",
    "cache_files",
    "movieclips",
)


def _external_files(origin_dir: str) -> list[dict[str, Any]]:
    found = []
    for kind in _EXTERNAL_COLLECTIONS:
        for block in getattr(bpy.data, kind):
            path = getattr(block, "filepath", "")
            if not path or getattr(block, "source", "FILE") in ("GENERATED", "VIEWER"):
                continue
            if kind == "fonts" and path == "<builtin>":
                continue
            packed = getattr(block, "packed_file", None) is not None
            # Relative ("//tex.png") is relative to where the artist keeps the .blend,
            # not to our sandbox copy; the node checks existence, as the artist's user.
            absolute = os.path.normpath(bpy.path.abspath(path, start=origin_dir))
            found.append(
                {"kind": kind, "name": block.name, "path": path, "packed": packed,
                 "absolute": absolute}
            )  # fmt: skip
    return found


def _drivers() -> list[dict[str, str]]:
    scripted = []
    for kind in ("objects", "meshes", "materials", "scenes", "shape_keys", "node_groups",
                 "lights", "cameras", "worlds"):  # fmt: skip
        for block in getattr(bpy.data, kind):
            anim = getattr(block, "animation_data", None)
            for fcurve in anim.drivers if anim else ():
                driver = fcurve.driver
                if driver.type == "SCRIPTED":
                    scripted.append(
                        {"owner": f"{kind}/{block.name}", "path": fcurve.data_path,
                         "expression": driver.expression[:200],
                         "simple": bool(driver.is_simple_expression)}
                    )  # fmt: skip
    return scripted


def _render_settings(scene: Any) -> dict[str, Any]:
    render, cycles = scene.render, scene.cycles
    layers_denoise = any(layer.cycles.use_denoising for layer in scene.view_layers)
    return {
        "engine": render.engine,
        "frame_start": scene.frame_start,
        "frame_end": scene.frame_end,
        "frame_step": scene.frame_step,
        "resolution": [render.resolution_x, render.resolution_y],
        "resolution_percentage": render.resolution_percentage,
        "samples": cycles.samples if render.engine == "CYCLES" else scene.eevee.taa_render_samples,
        "seed": cycles.seed,
        "use_animated_seed": cycles.use_animated_seed,
        "use_denoising": bool(cycles.use_denoising or layers_denoise),
        "use_adaptive_sampling": cycles.use_adaptive_sampling,
        "dither_intensity": render.dither_intensity,
        "use_compositing": bool(render.use_compositing and scene.use_nodes),
        "has_camera": scene.camera is not None,
        "file_format": render.image_settings.file_format,
    }


def main(argv: list[str]) -> None:
    origin_dir = argv[argv.index("--") + 1] if "--" in argv else "//"
    scene = bpy.context.scene
    report = {
        # bpy.data.version is (major, minor, file subversion), not a release number.
        "saved_version": "{}.{}".format(*bpy.data.version[:2]),
        "file_subversion": bpy.data.version[2],
        "blender_version": bpy.app.version_string,
        "scene": scene.name,
        "scene_count": len(bpy.data.scenes),
        "render": _render_settings(scene),
        "external_files": _external_files(origin_dir),
        "texts": [
            {"name": t.name, "registered": bool(t.use_module), "lines": len(t.lines)}
            for t in bpy.data.texts
        ],
        "scripted_drivers": _drivers(),
    }
    print("PICTOR_SCENE " + json.dumps(report), flush=True)


if __name__ == "__main__":
    main(sys.argv)
