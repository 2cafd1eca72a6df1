"""POV-Ray through the same interface: frames by clock, tiles cropped to the region."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from node.render.base import Region, RenderError
from node.render.povray import PovrayBackend, PovrayConfig, antialias_args
from node.render.sandbox import SandboxInfo
from protocol.messages import RenderSettings
from tests.render.conftest import needs_povray

pytestmark = needs_povray

SCENE = """#version 3.7;
global_settings { assumed_gamma 1.0 }
camera { location <0, 2, -6> look_at <0, 0.5, 0> }
light_source { <4, 8, -6> color rgb 1 }
plane { y, 0 pigment { checker rgb 0.2 rgb 0.8 } }
sphere { <clock * 0.5, 1, 0>, 1 pigment { rgb <0.9, 0.3, 0.2> } finish { phong 0.6 } }
"""
SETTINGS = RenderSettings("POVRAY", 64, 48, 4, 0, "PNG_RGBA8")


def pixels(path: Path) -> np.ndarray:
    with Image.open(path) as image:
        return np.asarray(image.convert("RGBA"))


@pytest.fixture
def scene(tmp_path: Path) -> Path:
    path = tmp_path / "scene.pov"
    path.write_text(SCENE)
    return path


async def test_frames_and_tile(scene: Path, sandbox_info: SandboxInfo, tmp_path: Path) -> None:
    backend = PovrayBackend(PovrayConfig(), sandbox_info)
    identity = await backend.identify()
    assert identity.build.startswith("povray-3.7") and not identity.build.endswith(".")
    frames = await backend.render_frames(scene, SETTINGS, [0, 2], tmp_path / "full")
    f0, f2 = pixels(frames[0].path), pixels(frames[1].path)
    assert f0.shape == (48, 64, 4) and not np.array_equal(f0, f2)  # clock moved the sphere
    tile = await backend.render_region(scene, SETTINGS, 2, Region(10, 5, 42, 29), tmp_path / "t")
    assert np.array_equal(pixels(tile.path), f2[5:29, 10:42])


async def test_scene_cannot_write_outside_its_directory(
    sandbox_info: SandboxInfo, tmp_path: Path
) -> None:
    target = tmp_path / "written_by_scene.txt"
    hostile = tmp_path / "hostile.pov"
    hostile.write_text(SCENE + f'#fopen F "{target}" write\n#write (F, "owned")\n#fclose F\n')
    with pytest.raises(RenderError):
        await PovrayBackend(PovrayConfig(), sandbox_info).render_frames(
            hostile, SETTINGS, [0], tmp_path / "out"
        )
    assert not target.exists()


def test_antialias_is_deterministic() -> None:
    assert antialias_args(1) == ["-A"]
    assert "-J" in antialias_args(16)  # jitter off: the same pixels on every run


async def test_refuses_blender_engine(
    scene: Path, sandbox_info: SandboxInfo, tmp_path: Path
) -> None:
    with pytest.raises(RenderError):
        await PovrayBackend(PovrayConfig(), sandbox_info).render_frames(
            scene, RenderSettings("CYCLES", 64, 48, 4, 0, "PNG_RGBA8"), [0], tmp_path
        )
