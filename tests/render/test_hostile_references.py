"""Issue 15: every way a scene names a file outside its own content is refused before a render.

A job ships the ``.blend`` alone, so an external reference either is packed in
it or reaches the worker's disk: an image at an absolute path or at
``//../../`` put a host file's pixels into a paid frame on main, and a fluid
cache directory made Blender write outside the work directory. One hostile
scene carries each kind of reference at once; the inspection (in the sandbox)
must report each, and the rules every worker applies (``preflight.refusals``)
must refuse each by name. Scripted drivers hidden in node trees embedded in a
material and a world (not in ``bpy.data.node_groups``) are reported too.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image

from node.render.blender import BlenderConfig
from node.render.preflight import analyse, inspect_scene, refusals, stays_inside
from node.render.sandbox import SandboxInfo
from tests.render.conftest import blender_expr, needs_blender

FONT = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"

_HOSTILE = """
import bpy
secret, marker, library = {secret!r}, {marker!r}, {library!r}
bpy.ops.wm.save_as_mainfile(filepath=library, copy=True)
tree = bpy.data.materials["diffuse"].node_tree
image = bpy.data.images.load(secret, check_existing=False)
image.name = "abs_leak"
tree.nodes.new("ShaderNodeTexImage").image = image
climb = bpy.data.images.load(secret, check_existing=False)
climb.name, climb.use_fake_user = "climb_leak", True
climb.filepath = "//../../../../../../.." + secret
ies = tree.nodes.new("ShaderNodeTexIES")
ies.name, ies.mode, ies.filepath = "ies_leak", "EXTERNAL", secret

def scripted_driver(node_tree, name):
    value = node_tree.nodes.new("ShaderNodeValue")
    value.name = name
    fcurve = value.outputs[0].driver_add("default_value")
    fcurve.driver.type = "SCRIPTED"
    fcurve.driver.expression = "__import__('os').getpid() * 0 + 1"

scripted_driver(tree, "material_driver")
scripted_driver(bpy.data.worlds["world"].node_tree, "world_driver")

scene = bpy.context.scene
domain = bpy.data.objects.new("domain", bpy.data.meshes.new("domain"))
scene.collection.objects.link(domain)
fluid = domain.modifiers.new("fluid", "FLUID")
fluid.fluid_type = "DOMAIN"
fluid.domain_settings.cache_directory = marker
emitter = bpy.data.objects["Plane"]
emitter.modifiers.new("parts", "PARTICLE_SYSTEM")
cache = emitter.particle_systems[-1].point_cache
cache.use_external, cache.filepath = True, "/etc"
volume = bpy.data.volumes.new("cloud")
volume.filepath = "/nonexistent/cloud.vdb"
scene.collection.objects.link(bpy.data.objects.new("cloud", volume))
font = bpy.data.fonts.load({font!r})
font.name, font.use_fake_user = "host_font", True
with bpy.data.libraries.load(library, link=True) as (source, into):
    into.objects = ["Camera"]
scene.collection.objects.link(into.objects[0])
bpy.ops.wm.save_as_mainfile(filepath={out!r})
"""


@pytest.fixture
def secret() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="pictor-secret-") as tmp:
        os.chmod(tmp, 0o755)
        path = Path(tmp) / "secret.png"
        Image.new("RGBA", (8, 8), (255, 0, 0, 255)).save(path)
        os.chmod(path, 0o644)
        yield path


@needs_blender
@pytest.mark.slow
async def test_each_reference_outside_the_job_is_refused_by_name(
    small_scene: Path, sandbox_info: SandboxInfo, secret: Path, tmp_path: Path
) -> None:
    hostile, marker = tmp_path / "hostile.blend", tmp_path / "MARK_fluid_cache"
    code = _HOSTILE.format(secret=str(secret), marker=str(marker), font=FONT,
                           library=str(tmp_path / "library.blend"), out=str(hostile))  # fmt: skip
    done = blender_expr(small_scene, code, "-Y")
    assert done.returncode == 0 and hostile.exists(), done.stdout[-3000:]
    assert marker.is_dir()  # Blender made the cache folder outside any sandbox: the attack is real
    shutil.rmtree(marker)

    facts = await inspect_scene(hostile, BlenderConfig(), sandbox_info)
    refused = refusals(facts)
    for name in ("'abs_leak'", "'climb_leak'", "ies_leak", "fluid cache", "particle cache",
                 "volumes 'cloud'", "fonts 'host_font'", "libraries 'library.blend'"):  # fmt: skip
        assert [r for r in refused if name in r], f"{name} not refused: {refused}"
    report = analyse(facts, "blender-3.4.1")
    assert not report.ok
    scripts = [f.message for f in report.findings if f.kind == "script"]
    for owner in ("materials/diffuse/node_tree", "worlds/world/node_tree"):
        assert [m for m in scripts if owner in m], f"driver in {owner} not caught: {scripts}"
    assert not marker.exists()  # opening it for inspection wrote no cache outside


def test_which_paths_stay_inside_the_scene_folder() -> None:
    inside = ["", "//", "//cache", "//a/../cache", "//cache_fluid_1234/"]
    outside = ["/tmp/cache", "//..", "//../cache", "//a/../../x", "///etc", "//..\\\\x", "cache",
               "C:/cache"]  # fmt: skip
    assert [stays_inside(p) for p in inside] == [True] * len(inside)
    assert [stays_inside(p) for p in outside] == [False] * len(outside)
