"""`pictor addon-zip` builds a zip that Blender installs and enables as "Render: Pictor"."""

from __future__ import annotations

import os
import subprocess
import zipfile
from pathlib import Path

from typer.testing import CliRunner

from node.cli.addon_cmd import ADDON_SOURCE, build_addon_zip
from node.cli.main import app
from tests.render.conftest import needs_blender

CHECK = """
import bpy, addon_utils
bpy.ops.preferences.addon_install(filepath={zip!r})
bpy.ops.preferences.addon_enable(module="pictor_addon")
assert addon_utils.check("pictor_addon") == (True, True), addon_utils.check("pictor_addon")
assert hasattr(bpy.ops.pictor, "submit")
assert hasattr(bpy.context.scene, "pictor")
print("PICTOR_ADDON_OK", addon_utils.module_bl_info(__import__("pictor_addon"))["name"])
"""


def test_the_zip_holds_the_add_on_as_a_package_and_is_reproducible(tmp_path: Path) -> None:
    a, b = build_addon_zip(tmp_path / "a.zip"), build_addon_zip(tmp_path / "b.zip")
    assert a.read_bytes() == b.read_bytes()
    with zipfile.ZipFile(a) as zf:
        assert zf.namelist() == ["pictor_addon/__init__.py"]
        assert zf.read("pictor_addon/__init__.py") == ADDON_SOURCE.read_bytes()


def test_the_command_says_how_to_install_it(tmp_path: Path) -> None:
    out = tmp_path / "sub" / "pictor_addon.zip"
    result = CliRunner().invoke(app, ["addon-zip", str(out)])
    assert result.exit_code == 0, result.output
    assert out.is_file() and "Install" in result.output and "Render: Pictor" in result.output


@needs_blender
def test_blender_installs_and_enables_the_zip(tmp_path: Path) -> None:
    zip_path = build_addon_zip(tmp_path / "pictor_addon.zip")
    # A private user-scripts folder: the test must not touch the user's Blender.
    env = {**os.environ, "BLENDER_USER_SCRIPTS": str(tmp_path / "scripts")}
    done = subprocess.run(
        ["blender", "-b", "-Y", "--factory-startup", "--python-exit-code", "1",
         "--python-expr", CHECK.format(zip=str(zip_path))],
        capture_output=True, text=True, timeout=120, env=env, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert "PICTOR_ADDON_OK Pictor" in done.stdout
    assert (tmp_path / "scripts" / "addons" / "pictor_addon" / "__init__.py").is_file()
