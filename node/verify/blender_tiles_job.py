"""Pictor's tile script, run *inside* Blender, never in the node.

    blender -b -Y --factory-startup SCENE --python-exit-code 1 \
        --python pictor_tiles.py -- tiles.json

tiles.json is the rendering helper's job document (node.render.blender) plus
``"tiles": [[x0, y0, x1, y1], ...]`` (pixels, origin top-left, end exclusive),
``"job_script"``: the helper's ``blender_job.py``, whose ``_pin`` we apply for
every tile so the checker pins exactly what the worker pinned, and
``"probe"``: when true, only print the scene's own settings and quit.

All tiles of one frame render in this one process (start-up, scene load and
kernel load paid once) by :func:`render_tiles`, which the warm process
(``blender_serve.py``) calls too. Then one line per tile goes to stdout::

    PICTOR_TILE {"index": 0, "path": "...", "render_s": 0.05}
"""

from __future__ import annotations

import importlib.util
import json
import os
import sys
import time
from typing import Any

import bpy


def _load_pin(path: str) -> Any:
    spec = importlib.util.spec_from_file_location("pictor_job", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module._pin


def border(tile: list[int], width: int, height: int) -> list[float]:
    """Blender's normalised border (origin bottom-left) for a pixel tile.

    Blender truncates ``border * size`` to whole pixels; aiming at pixel
    centres (+0.5) keeps float rounding from moving an edge by one pixel.
    """
    x0, y0, x1, y1 = tile
    return [
        (x0 + 0.5) / width,
        1.0 if x1 == width else (x1 + 0.5) / width,
        (height - y1 + 0.5) / height,
        1.0 if y0 == 0 else (height - y0 + 0.5) / height,
    ]


def render_tiles(
    scene: Any, pin: Any, job: dict[str, Any], frame: int, tiles: list[list[int]], paths: list[str]
) -> list[float]:
    """Render ``tiles`` of ``frame`` to ``paths``; the seconds each took (setup in the first).

    Pinned and set to the frame once, then only the border moves between
    renders, and Cycles keeps the synced scene between them
    (``use_persistent_data``): each tile pays its path tracing and a sync of
    what changed, not a full sync of the scene (measured on a 1.3 M-triangle
    scene: 5.0 s of CPU for 24 tiles pinned and synced one by one, 3.2 s so).
    The pixels are those of a fresh full frame (tests/render/test_warm.py,
    tests/verify assert it): the border is the only setting that differs from
    the worker's pin, and persistent data only keeps what did not change.
    """
    width, height = job["resolution"]
    start = time.perf_counter()
    pin(scene, {**job, "border": border(tiles[0], width, height)})
    scene.render.use_persistent_data = True
    scene.frame_set(frame)
    seconds = []
    render = scene.render
    for tile, path in zip(tiles, paths, strict=True):
        edges = border(tile, width, height)
        render.border_min_x, render.border_max_x, render.border_min_y, render.border_max_y = edges
        render.filepath = path
        bpy.ops.render.render(write_still=True)
        now = time.perf_counter()
        seconds.append(now - start)
        start = now
    return seconds


def probe(scene: Any) -> None:
    render = scene.render
    info = {
        "engine": render.engine,
        "resolution_x": render.resolution_x * render.resolution_percentage // 100,
        "resolution_y": render.resolution_y * render.resolution_percentage // 100,
        "samples": scene.cycles.samples if render.engine == "CYCLES" else 64,
        "seed": scene.cycles.seed if render.engine == "CYCLES" else 0,
        "frame_start": scene.frame_start,
        "frame_end": scene.frame_end,
    }
    print("PICTOR_SCENE " + json.dumps(info), flush=True)


def main(argv: list[str]) -> None:
    with open(argv[argv.index("--") + 1]) as f:
        job = json.load(f)
    if job.get("open_scene"):
        bpy.ops.wm.open_mainfile(filepath=job["open_scene"], load_ui=False, use_scripts=False)
    scene = bpy.context.scene
    if job.get("probe"):
        probe(scene)
        return
    pin = _load_pin(job["job_script"])
    tiles = job["tiles"]
    paths = [os.path.join(job["out_dir"], f"tile_{i:03d}.png") for i in range(len(tiles))]
    seconds = render_tiles(scene, pin, job, job["frames"][0], tiles, paths) if tiles else []
    for index, (path, render_s) in enumerate(zip(paths, seconds, strict=True)):
        info = {"index": index, "path": path, "render_s": round(render_s, 4)}
        print("PICTOR_TILE " + json.dumps(info), flush=True)


if __name__ == "__main__":
    main(sys.argv)
