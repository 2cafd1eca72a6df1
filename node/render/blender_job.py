"""Pictor's render script, run *inside* Blender (or a ``bpy`` subprocess), never in the node.

    blender -b -Y --factory-startup SCENE --python blender_job.py -- JOB.json

JOB.json (written by :mod:`node.render.blender`)::

    {"engine": "CYCLES", "samples": 8, "seed": 7, "resolution": [64, 48],
     "frames": [1, 2], "out_dir": "...", "color_depth": "8",
     "border": null | [min_x, max_x, min_y, max_y], "device": "CPU",
     "open_scene": null | "scene.blend"}

The job's settings are applied over whatever the scene file says, so a scene
cannot opt out of determinism: fixed seed, no animated seed, no denoising, no
adaptive sampling, no dither, 100 % resolution, PNG RGBA. All frames render in
this one process (start-up and scene load paid once); after each written frame
one machine-readable line goes to stdout::

    PICTOR_FRAME {"frame": 1, "path": "...", "render_s": 0.41}
"""

from __future__ import annotations

import json
import os
import sys
import time
from typing import Any

import bpy


def _pin_cycles(scene: Any, job: dict[str, Any]) -> None:
    cycles = scene.cycles
    cycles.seed = job["seed"]
    cycles.use_animated_seed = False
    cycles.samples = job["samples"]
    cycles.use_denoising = False
    cycles.use_adaptive_sampling = False
    cycles.device = "GPU" if job["device"] != "CPU" else "CPU"
    if job["device"] != "CPU":
        prefs = bpy.context.preferences.addons["cycles"].preferences
        prefs.compute_device_type = job["device"]
        prefs.get_devices()
        for dev in prefs.devices:
            dev.use = dev.type == job["device"]
    for layer in scene.view_layers:
        layer.cycles.use_denoising = False
        layer.samples = 0  # 0 = use the scene's sample count


def _pin(scene: Any, job: dict[str, Any]) -> None:
    render = scene.render
    render.engine = job["engine"]
    if job["engine"] == "CYCLES":
        _pin_cycles(scene, job)
    elif job["engine"] == "BLENDER_EEVEE":
        scene.eevee.taa_render_samples = job["samples"]
    render.dither_intensity = 0.0
    render.resolution_x, render.resolution_y = job["resolution"]
    render.resolution_percentage = 100
    render.pixel_aspect_x = render.pixel_aspect_y = 1.0
    render.use_compositing = False  # a compositor could add noise or blur after the pin
    render.use_sequencer = False
    settings = render.image_settings
    settings.file_format = "PNG"
    settings.color_mode = "RGBA"
    settings.color_depth = job["color_depth"]
    settings.compression = 15
    border = job.get("border")
    render.use_border = border is not None
    render.use_crop_to_border = border is not None
    if border is not None:
        render.border_min_x, render.border_max_x, render.border_min_y, render.border_max_y = border


def main(argv: list[str]) -> None:
    with open(argv[argv.index("--") + 1]) as f:
        job = json.load(f)
    if job.get("open_scene"):
        # bpy module: we open the file ourselves, with its scripts (text blocks,
        # drivers) disabled, as ``-Y`` does for the executable.
        bpy.ops.wm.open_mainfile(filepath=job["open_scene"], load_ui=False, use_scripts=False)
    scene = bpy.context.scene
    _pin(scene, job)
    for frame in job["frames"]:
        start = time.perf_counter()
        scene.frame_set(frame)
        path = os.path.join(job["out_dir"], f"frame_{frame:06d}.png")
        scene.render.filepath = path
        bpy.ops.render.render(write_still=True)
        info = {"frame": frame, "path": path, "render_s": round(time.perf_counter() - start, 4)}
        print("PICTOR_FRAME " + json.dumps(info), flush=True)


if __name__ == "__main__":
    main(sys.argv)
