"""``pictor scene check``: missing and unpacked files, embedded scripts, pinned settings."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from node.cli.scene import app
from node.render.blender import BlenderConfig
from node.render.preflight import analyse, inspect_scene
from node.render.sandbox import SandboxInfo
from tests.render.conftest import blender_expr, needs_blender
from tests.render.test_malicious_scene import make_malicious

pytestmark = needs_blender

_TEXTURES = """
import bpy
mat = bpy.data.materials["diffuse"]
nodes = mat.node_tree.nodes
for path in [{missing!r}, {present!r}]:
    tex = nodes.new("ShaderNodeTexImage")
    tex.image = bpy.data.images.load({present!r}, check_existing=False)
    tex.image.filepath = path  # the artist's file moved away, for the first one
scene = bpy.context.scene
scene.cycles.use_animated_seed = True
scene.render.resolution_percentage = 50
bpy.ops.wm.save_as_mainfile(filepath={out!r})
"""


@pytest.mark.slow
async def test_missing_and_unpacked_textures(
    small_scene: Path, sandbox_info: SandboxInfo, tmp_path: Path
) -> None:
    present = tmp_path / "wood.png"
    present.write_bytes(_PNG_1PX)
    out = tmp_path / "textured.blend"
    code = _TEXTURES.format(missing="/nonexistent/brick.png", present=str(present), out=str(out))
    done = blender_expr(small_scene, code, "-Y")
    assert done.returncode == 0 and out.exists(), done.stdout[-2000:]

    facts = await inspect_scene(out, BlenderConfig(), sandbox_info)
    report = analyse(facts, "blender-3.4.1")
    errors = [f.message for f in report.findings if f.kind == "error"]
    assert any("brick.png" in m and "missing" in m for m in errors)
    # Present on the artist's disk, but a worker only ever receives the .blend:
    assert any("wood.png" in m and "not packed" in m for m in errors)
    assert not report.ok
    pinned = report.pinned
    assert pinned["use_animated_seed"] is False and pinned["resolution_percentage"] == 100
    assert pinned["resolution"] == [160, 120]  # what the artist sees at 50 %
    assert pinned["use_denoising"] is False and pinned["dither_intensity"] == 0.0
    assert report.frames == 3 and report.ru_per_frame == 1  # 160x120 at 32: a quarter, rounded up


@pytest.mark.slow
def test_cli_flags_embedded_scripts(small_scene: Path, tmp_path: Path) -> None:
    evil, _, _ = make_malicious(small_scene, tmp_path)
    result = CliRunner().invoke(app, ["check", str(evil), "--json"])
    assert result.exit_code == 0, result.output  # scripts are flagged, not fatal
    report = json.loads(result.output)
    scripts = [f["message"] for f in report["findings"] if f["kind"] == "script"]
    assert any("evil.py" in m and "registered to auto-run" in m for m in scripts)
    assert any("scripted driver" in m and "location" in m for m in scripts)
    assert report["facts"]["render"]["engine"] == "CYCLES"
    assert report["facts"]["saved_version"] == "3.4"
    assert report["ru_per_frame"] == 1 and report["ru_total"] == 3  # the reference frame


_ABSURD = """
import bpy
scene = bpy.context.scene
scene.render.resolution_x = scene.render.resolution_y = 16384
scene.cycles.samples = 1048576
bpy.ops.wm.save_as_mainfile(filepath={out!r})
"""


@pytest.mark.slow
def test_cli_refuses_absurd_settings_and_prices_what_the_job_would_announce(
    small_scene: Path, tmp_path: Path
) -> None:
    """On main this scene passed with exit 0 at "1.0 RU/frame" and was announced at 10 RU."""
    absurd = tmp_path / "absurd.blend"
    done = blender_expr(small_scene, _ABSURD.format(out=str(absurd)), "-Y")
    assert done.returncode == 0 and absurd.exists(), done.stdout[-2000:]
    result = CliRunner().invoke(app, ["check", str(absurd)])
    assert result.exit_code == 1, result.output
    text = " ".join(result.output.split())
    assert "16384x16384 at 1048576 samples with 12 bounces is about 114,532,462 RU per frame" in text
    assert "lower the resolution or the samples" in text
    assert "estimated 114532462 RU/frame" in text  # the number a job would announce


# A valid 1x1 RGBA PNG, so Blender accepts the image as a real file.
_PNG_1PX = bytes.fromhex(
    "89504e470d0a1a0a0000000d49484452000000010000000108060000001f15c489"
    "0000000d49444154789c6360f8cfc0f01f0005000201a5f0e3b70000000049454e44ae426082"
)
