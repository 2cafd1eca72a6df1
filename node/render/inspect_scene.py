"""Scene inspection, run *inside* Blender (``-Y``: the scene's own scripts stay off).

    blender -b -Y --factory-startup SCENE --python-exit-code 1 --python inspect_scene.py -- DIR

DIR is the directory the artist's ``.blend`` lives in, to resolve relative paths.

Prints one line ``PICTOR_SCENE {json}`` describing what the preflight check
needs: the version the file was saved with, engine, frames, resolution,
samples, the settings that break verification, external files (data-blocks and
nodes that read a file by path), simulation cache directories, and embedded
scripts (text blocks; scripted drivers on any data-block, node trees embedded in
materials, worlds and lights included). It only reads; it never renders.
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


def _id_blocks() -> list[tuple[str, Any]]:
    """Every data-block of the file, and the node trees embedded in them (a material's,
    a world's, a light's, a scene's compositor tree are not in ``bpy.data.node_groups``)."""
    found = []
    for kind in dir(bpy.data):
        collection = getattr(bpy.data, kind, None)
        if not isinstance(collection, bpy.types.bpy_prop_collection) or kind == "window_managers":
            continue
        for block in collection:
            if not isinstance(block, bpy.types.ID):
                continue
            found.append((f"{kind}/{block.name}", block))
            tree = getattr(block, "node_tree", None)
            if isinstance(tree, bpy.types.NodeTree):
                found.append((f"{kind}/{block.name}/node_tree", tree))
    return found


def _drivers(blocks: list[tuple[str, Any]]) -> list[dict[str, Any]]:
    scripted = []
    for owner, block in blocks:
        anim = getattr(block, "animation_data", None)
        for fcurve in anim.drivers if anim else ():
            driver = fcurve.driver
            if driver.type == "SCRIPTED":
                scripted.append(
                    {"owner": owner, "path": fcurve.data_path,
                     "expression": driver.expression[:200],
                     "simple": bool(driver.is_simple_expression)}
                )  # fmt: skip
    return scripted


# Nodes that read a file by path themselves (not through an image data-block).
_FILE_NODES = {"ShaderNodeTexIES": "IES light profile", "ShaderNodeScript": "OSL script"}


def _node_files(blocks: list[tuple[str, Any]]) -> list[dict[str, Any]]:
    found = []
    for owner, tree in blocks:
        if not isinstance(tree, bpy.types.NodeTree):
            continue
        for node in tree.nodes:
            kind = _FILE_NODES.get(node.bl_idname)
            if kind and node.mode == "EXTERNAL" and node.filepath:
                found.append({"kind": kind, "name": f"{owner}/{node.name}", "path": node.filepath,
                              "packed": False, "absolute": node.filepath})  # fmt: skip
    return found


def _cache_dirs() -> list[dict[str, str]]:
    """Directories a simulation reads its cache from or writes it to, set in the scene."""
    found = []
    for obj in bpy.data.objects:
        for mod in obj.modifiers:
            owner = f"objects/{obj.name}/{mod.name}"
            if mod.type == "FLUID" and mod.fluid_type == "DOMAIN":
                found.append({"kind": "fluid cache", "owner": owner,
                              "path": mod.domain_settings.cache_directory})  # fmt: skip
            elif mod.type == "OCEAN":
                found.append({"kind": "ocean cache", "owner": owner, "path": mod.filepath})
            elif mod.type == "DYNAMIC_PAINT" and mod.canvas_settings:
                for surface in mod.canvas_settings.canvas_surfaces:
                    found.append({"kind": "dynamic paint output", "owner": owner,
                                  "path": surface.image_output_path})  # fmt: skip
            cache = getattr(mod, "point_cache", None)
            if cache is not None and cache.use_external:
                found.append({"kind": "point cache", "owner": owner, "path": cache.filepath})
        for system in obj.particle_systems:
            cache = system.point_cache
            if cache.use_external:
                found.append({"kind": "particle cache", "owner": f"objects/{obj.name}/{system.name}",
                              "path": cache.filepath})  # fmt: skip
    return found


def _render_settings(scene: Any) -> dict[str, Any]:
    render, cycles = scene.render, scene.cycles
    layers_denoise = any(layer.cycles.use_denoising for layer in scene.view_layers)
    paths = {"max_bounces": cycles.max_bounces, "diffuse": cycles.diffuse_bounces,
             "glossy": cycles.glossy_bounces, "transmission": cycles.transmission_bounces,
             "volume": cycles.volume_bounces}  # fmt: skip
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
        "light_paths": paths,
        "file_format": render.image_settings.file_format,
    }


# The report is one line the node reads (at most 64 KiB): lists are cut to MAX_LISTED
# entries, the ones that matter first (unpacked files, caches not under "//", scripted
# drivers that are not simple), and strings to MAX_TEXT characters. A cut list still holds
# an offending entry whenever the scene has one, so preflight refuses what it must.
MAX_LISTED = 30
MAX_TEXT = 256


def _bounded(entries: list[dict[str, Any]], worst_first: Any) -> list[dict[str, Any]]:
    ordered = sorted(entries, key=worst_first)[:MAX_LISTED]
    return [{k: v[:MAX_TEXT] if isinstance(v, str) else v for k, v in e.items()} for e in ordered]


def main(argv: list[str]) -> None:
    origin_dir = argv[argv.index("--") + 1] if "--" in argv else "//"
    scene = bpy.context.scene
    blocks = _id_blocks()
    report = {
        # bpy.data.version is (major, minor, file subversion), not a release number.
        "saved_version": "{}.{}".format(*bpy.data.version[:2]),
        "file_subversion": bpy.data.version[2],
        "blender_version": bpy.app.version_string,
        "scene": scene.name,
        "scene_count": len(bpy.data.scenes),
        "render": _render_settings(scene),
        "external_files": _bounded(_external_files(origin_dir) + _node_files(blocks),
                                   lambda f: f["packed"]),
        "cache_dirs": _bounded(_cache_dirs(), lambda c: c["path"][:2] == "//" and not (
            c["path"][2:3] == "/" or ".." in c["path"] or "\\" in c["path"])),
        "texts": _bounded([
            {"name": t.name, "registered": bool(t.use_module), "lines": len(t.lines)}
            for t in bpy.data.texts
        ], lambda t: not t["registered"]),
        "scripted_drivers": _bounded(_drivers(blocks), lambda d: d["simple"]),
    }  # fmt: skip
    print("PICTOR_SCENE " + json.dumps(report), flush=True)


if __name__ == "__main__":
    main(sys.argv)
