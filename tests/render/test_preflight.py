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
    assert report.frames == 3 and report.ru_per_frame == pytest.approx(0.5 * 0.5, abs=0.01)


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
    assert report["ru_total"] == pytest.approx(3.0)  # reference resolution and samples


# A valid 1x1 RGBA PNG, so Blender accepts the image as a real file.
_PNG_1PX = bytes.fromhex(
    "89504e470d0a1a0a0000000d49484452000000010000000108060000001f15c489"
    "0000000d49444154789c6360f8cfc0f01f0005000201a5f0e3b70000000049454e44ae426082"
)
