"""The bpy-module backend: same renders, in a subprocess, scripts off.

Runs where ``bpy`` imports in this interpreter, or where ``PICTOR_BPY_PYTHON``
names an interpreter that has it (the wheel pins numpy<2, so it usually lives in
a venv of its own); skips otherwise.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from node.render.base import Region
from node.render.blender import BlenderBackend, BlenderConfig
from node.render.sandbox import SandboxInfo
from tests.render.conftest import SMALL
from tests.render.test_malicious_scene import make_malicious

BPY_PYTHON = os.environ.get("PICTOR_BPY_PYTHON") or (
    sys.executable if importlib.util.find_spec("bpy") else None
)
pytestmark = [
    pytest.mark.skipif(BPY_PYTHON is None, reason="no interpreter with the bpy wheel"),
    pytest.mark.slow,
]


def pixels(path: Path) -> np.ndarray:
    with Image.open(path) as image:
        return np.asarray(image.convert("RGBA"))


async def test_bpy_frames_and_tile(
    small_scene: Path, sandbox_info: SandboxInfo, tmp_path: Path
) -> None:
    assert BPY_PYTHON is not None
    backend = BlenderBackend(BlenderConfig(python=BPY_PYTHON), sandbox_info, bpy=True)
    assert backend.name == "bpy"
    assert (await backend.identify()).build.startswith("blender-")
    (full,) = await backend.render_frames(small_scene, SMALL, [3], tmp_path / "full")
    tile = await backend.render_region(small_scene, SMALL, 3, Region(10, 5, 42, 29), tmp_path)
    assert np.array_equal(pixels(tile.path), pixels(full.path)[5:29, 10:42])


async def test_bpy_does_not_run_scene_scripts(small_scene: Path, tmp_path: Path) -> None:
    assert BPY_PYTHON is not None
    evil, text_marker, driver_marker = make_malicious(small_scene, tmp_path)
    # Control: opened *with* scripts, both fire.
    control = f"import bpy; bpy.ops.wm.open_mainfile(filepath={str(evil)!r}, use_scripts=True)"
    control += "; bpy.context.scene.frame_set(2)"
    subprocess.run([BPY_PYTHON, "-c", control], capture_output=True, timeout=120, check=True)
    assert text_marker.exists() and driver_marker.exists()
    text_marker.unlink()
    driver_marker.unlink()
    # Same user as the test (no uid drop), so only use_scripts=False stands in the way.
    same_user = SandboxInfo(network_prefix=(), rlimits=True)
    backend = BlenderBackend(BlenderConfig(python=BPY_PYTHON), same_user, bpy=True)
    (frame,) = await backend.render_frames(evil, SMALL, [2], tmp_path / "out")
    assert frame.path.exists()
    assert not text_marker.exists() and not driver_marker.exists()
