"""Plants under a transparent film, on real Blender frames (review of stop 44).

A renderer writes colour 0 or 1 under alpha 0 (measured here: Blender 3.4.1, Cycles
and EEVEE, a sphere on a transparent film). A plant used to put specks of 6 levels
there, so a lone lazy checker could tell it without rendering: any colour of 2 or more
under alpha 0. Now a plant changes visible pixels only (protocol.forced_errors)."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from node.verify.images import load_image
from node.verify.plant import plant_png
from protocol.forced_errors import PLANT_DELTA
from protocol.verification import DEFAULT_POLICY, tile_grid

SCENE = """
import bpy, sys
out, engine = sys.argv[-2], sys.argv[-1]
bpy.ops.wm.read_factory_settings(use_empty=True)
scene = bpy.context.scene
scene.render.engine = engine
if engine == "CYCLES":
    scene.cycles.samples = 8
    scene.cycles.device = "CPU"
    scene.cycles.use_denoising = False
scene.render.resolution_x, scene.render.resolution_y = 96, 64
scene.render.resolution_percentage = 100
scene.render.film_transparent = True
scene.render.image_settings.file_format = "PNG"
scene.render.image_settings.color_mode = "RGBA"
scene.render.image_settings.color_depth = "8"
bpy.ops.mesh.primitive_uv_sphere_add(radius=1.0)
cam = bpy.data.objects.new("cam", bpy.data.cameras.new("cam"))
scene.collection.objects.link(cam)
scene.camera = cam
cam.location, cam.rotation_euler = (0, -6, 0), (1.5708, 0, 0)
sun = bpy.data.objects.new("sun", bpy.data.lights.new("sun", type="SUN"))
scene.collection.objects.link(sun)
scene.render.filepath = out
bpy.ops.render.render(write_still=True)
"""


@pytest.mark.skipif(shutil.which("blender") is None, reason="blender not installed")
@pytest.mark.parametrize("engine", ["CYCLES", "BLENDER_EEVEE"])
def test_a_plant_of_a_transparent_blender_frame_has_nothing_under_alpha_0(
    tmp_path: Path, engine: str
) -> None:
    script, frame = tmp_path / "scene.py", tmp_path / "frame.png"
    script.write_text(SCENE)
    argv = ["blender", "-b", "--factory-startup", "--python-exit-code", "1",
            "--python", str(script), "--", str(frame), engine]  # fmt: skip
    done = subprocess.run(argv, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0 and frame.exists(), done.stdout[-2000:] + done.stderr[-2000:]
    real = load_image(frame)
    hidden = real[:, :, 3] == 0
    assert 0 < hidden.sum() < hidden.size
    assert int(real[hidden][:, :3].max()) <= 1  # what a renderer writes under alpha 0
    data, blank = plant_png(frame, hashlib.sha256(b"plant").digest(), DEFAULT_POLICY.sampling.tile_px)
    plant_path = tmp_path / "plant.png"
    plant_path.write_bytes(data)
    plant = load_image(plant_path)
    # the lazy checker's test finds nothing: no colour of 2 or more under alpha 0
    assert np.array_equal(plant[hidden], real[hidden])
    assert int(plant[hidden][:, :3].max()) < 2 < PLANT_DELTA
    # the sphere's cells are planted, the empty corners are not
    grid = list(tile_grid(96, 64, DEFAULT_POLICY.sampling.tile_px))
    assert blank and len(blank) < len(grid)
    for cell in grid:
        rows, cols = slice(cell.y, cell.y + cell.height), slice(cell.x, cell.x + cell.width)
        assert np.array_equal(plant[rows, cols], real[rows, cols]) == (cell in blank)
    with Image.open(plant_path) as img:
        assert img.mode == "RGBA"
