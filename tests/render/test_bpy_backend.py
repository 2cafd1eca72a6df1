"""The bpy-module backend: same renders, in a subprocess, scripts off. Skips without bpy."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from node.render.blender import BlenderBackend, BlenderConfig
from node.render.sandbox import SandboxInfo
from tests.render.conftest import SMALL

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("bpy") is None, reason="the bpy wheel is not installed"
)


@pytest.mark.slow
async def test_bpy_renders_in_a_subprocess(
    small_scene: Path, sandbox_info: SandboxInfo, tmp_path: Path
) -> None:
    backend = BlenderBackend(BlenderConfig(), sandbox_info, bpy=True)
    assert backend.name == "bpy"
    assert (await backend.identify()).build.startswith("blender-")
    outputs = await backend.render_frames(small_scene, SMALL, [1], tmp_path / "out")
    assert outputs[0].path.exists()
