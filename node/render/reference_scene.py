"""Builds Pictor's reference scene with Blender's own Python (run *inside* Blender).

    blender -b -Y --factory-startup --python node/render/reference_scene.py -- OUT.blend [FRAMES]

The scene is generated, never downloaded, so its content is pinned by this file
and the Blender build: a ground plane, three spheres with diffuse, glossy and
glass materials (the common Cycles code paths), an area light, a sun, and a
camera; one sphere moves over the frame range so every frame differs. The
node imports nothing from here; it only hands this file to a Blender process.
"""

from __future__ import annotations

import sys
from typing import Any

import bpy

REFERENCE_RESOLUTION = (320, 240)
REFERENCE_SAMPLES = 32


def _material(name: str, shader: str, color: tuple[float, float, float]) -> Any:
    mat = bpy.data.materials.new(name)
    mat.use_nodes = True
    nodes = mat.node_tree.nodes
    nodes.clear()
    out = nodes.new("ShaderNodeOutputMaterial")
    bsdf = nodes.new(shader)
    if "Color" in bsdf.inputs:
        bsdf.inputs["Color"].default_value = (*color, 1.0)
    mat.node_tree.links.new(bsdf.outputs[0], out.inputs["Surface"])
    return mat


def _sphere(location: tuple[float, float, float], mat: Any) -> Any:
    bpy.ops.mesh.primitive_uv_sphere_add(radius=0.8, location=location, segments=32, ring_count=16)
    obj = bpy.context.active_object
    bpy.ops.object.shade_smooth()
    obj.data.materials.append(mat)
    return obj


def build(frame_count: int) -> None:
    bpy.ops.wm.read_factory_settings(use_empty=True)
    scene = bpy.context.scene
    scene.render.engine = "CYCLES"
    scene.cycles.samples = REFERENCE_SAMPLES
    scene.render.resolution_x, scene.render.resolution_y = REFERENCE_RESOLUTION
    scene.frame_start, scene.frame_end = 1, frame_count

    bpy.ops.mesh.primitive_plane_add(size=20)
    bpy.context.active_object.data.materials.append(
        _material("ground", "ShaderNodeBsdfDiffuse", (0.6, 0.6, 0.55))
    )
    _sphere((-1.8, 0, 0.8), _material("diffuse", "ShaderNodeBsdfDiffuse", (0.8, 0.2, 0.1)))
    _sphere((1.8, 0, 0.8), _material("glass", "ShaderNodeBsdfGlass", (0.9, 0.95, 1.0)))
    mover = _sphere((0, 0.5, 0.8), _material("glossy", "ShaderNodeBsdfGlossy", (0.3, 0.5, 0.9)))
    mover.keyframe_insert("location", frame=1)
    mover.location.z = 2.0
    mover.keyframe_insert("location", frame=max(2, frame_count))

    bpy.ops.object.light_add(type="AREA", location=(2, -3, 5))
    bpy.context.active_object.data.energy = 800
    bpy.ops.object.light_add(type="SUN", location=(0, 0, 10))
    bpy.context.active_object.data.energy = 2
    bpy.ops.object.camera_add(location=(0, -8, 3.5), rotation=(1.2, 0, 0))
    scene.camera = bpy.context.active_object

    world = bpy.data.worlds.new("world")
    world.use_nodes = True
    world.node_tree.nodes["Background"].inputs["Color"].default_value = (0.05, 0.07, 0.1, 1)
    scene.world = world


def main(argv: list[str]) -> None:
    args = argv[argv.index("--") + 1 :]
    build(int(args[1]) if len(args) > 1 else 4)
    bpy.ops.wm.save_as_mainfile(filepath=args[0], compress=False)


if __name__ == "__main__":
    main(sys.argv)
