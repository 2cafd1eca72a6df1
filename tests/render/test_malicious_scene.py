"""A .blend carrying auto-run Python (a registered text block and a scripted driver)
must render through our backend without either script running."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from node.render.blender import BlenderBackend, BlenderConfig
from node.render.sandbox import SandboxInfo
from tests.render.conftest import SMALL, blender_expr, needs_blender

pytestmark = [needs_blender, pytest.mark.slow]

# Run by Blender itself (with -Y, so nothing fires while we build it): adds a
# text block registered to run on load, and a Python driver on a moving sphere.
_ARM = """
import bpy
text = bpy.data.texts.new("evil.py")
text.write("open({text_marker!r}, 'w').write('ran')\\n")
text.use_module = True
sphere = [o for o in bpy.data.objects if o.type == "MESH"][-1]
fcurve = sphere.driver_add("location", 0)
fcurve.driver.type = "SCRIPTED"
fcurve.driver.expression = "len(open({driver_marker!r}, 'w').write('ran') * 0 or '') * 0"
bpy.ops.wm.save_as_mainfile(filepath={out!r})
"""


def make_malicious(base: Path, tmp_path: Path) -> tuple[Path, Path, Path]:
    text_marker, driver_marker = tmp_path / "MARK_text", tmp_path / "MARK_driver"
    out = tmp_path / "evil.blend"
    code = _ARM.format(text_marker=str(text_marker), driver_marker=str(driver_marker), out=str(out))
    done = blender_expr(base, code, "-Y")
    assert done.returncode == 0 and out.exists(), done.stdout[-2000:]
    text_marker.unlink(missing_ok=True)
    driver_marker.unlink(missing_ok=True)
    return out, text_marker, driver_marker


async def test_embedded_scripts_do_not_run_but_frame_renders(
    small_scene: Path, sandbox_info: SandboxInfo, tmp_path: Path
) -> None:
    evil, text_marker, driver_marker = make_malicious(small_scene, tmp_path)

    # Control: with auto-exec *enabled*, Blender runs both on load / frame change.
    control = blender_expr(evil, "import bpy; bpy.context.scene.frame_set(2)", "-y")
    assert control.returncode == 0, control.stdout[-2000:]
    assert text_marker.exists() and driver_marker.exists()
    text_marker.unlink()
    driver_marker.unlink()

    outputs = await BlenderBackend(BlenderConfig(), sandbox_info).render_frames(
        evil, SMALL, [2], tmp_path / "out"
    )
    assert not text_marker.exists() and not driver_marker.exists()
    with Image.open(outputs[0].path) as image:
        pixels = np.asarray(image)
    assert pixels.shape == (48, 64, 4) and pixels[..., :3].max() > 0  # a real, lit frame
