"""Render overhead: our Blender backend vs. Blender run by hand, same frames, same run.

    python bench/render_overhead.py [--frames 8] [--width 160] [--height 120] [--samples 16]

Builds the reference scene, bakes the job's pinned settings into it (so that a
plain ``blender -b scene.blend -s 1 -e N -a`` renders exactly what our backend
renders), then times, alternating, ``--repeats`` times each (best kept):

1. by hand: ``blender -b scene.blend -o out/#### -s 1 -e N -a``
2. ours:    ``BlenderBackend.render_frames`` (sandbox, pinned settings, one process)
3. naive:   one ``blender -b scene.blend -f i`` process per frame

and prints ours / by-hand (goal <= 1.05) and the start-up cost per frame that
rendering all frames in one process avoids ((naive - ours) / N).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]
sys.path.insert(0, str(_HERE.parent))

import trio

from node.render.blender import BlenderBackend, BlenderConfig
from protocol.messages import RenderSettings

REFERENCE_SCRIPT = _HERE.parent / "node" / "render" / "reference_scene.py"
_BAKE = """
import bpy
s = bpy.context.scene
s.render.resolution_x, s.render.resolution_y, s.render.resolution_percentage = {w}, {h}, 100
s.cycles.samples, s.cycles.seed, s.cycles.use_animated_seed = {samples}, 7, False
s.cycles.use_denoising = s.cycles.use_adaptive_sampling = False
for layer in s.view_layers:
    layer.cycles.use_denoising = False
s.render.dither_intensity = 0
s.render.image_settings.file_format, s.render.image_settings.color_mode = "PNG", "RGBA"
bpy.ops.wm.save_as_mainfile(filepath={out!r})
"""


def _blender(*args: str) -> float:
    start = time.perf_counter()
    subprocess.run(["blender", "-b", *args], check=True, capture_output=True, timeout=3600)
    return time.perf_counter() - start


def _prepare(tmp: Path, args: argparse.Namespace) -> Path:
    base, scene = tmp / "base.blend", tmp / "bench.blend"
    _blender("-Y", "--factory-startup", "--python", str(REFERENCE_SCRIPT), "--", str(base),
             str(args.frames))  # fmt: skip
    bake = _BAKE.format(w=args.width, h=args.height, samples=args.samples, out=str(scene))
    _blender("-Y", "--factory-startup", str(base), "--python-expr", bake)
    return scene


def _ours(scene: Path, tmp: Path, args: argparse.Namespace) -> float:
    settings = RenderSettings("CYCLES", args.width, args.height, args.samples, 7, "PNG_RGBA8")
    backend = BlenderBackend(BlenderConfig())

    async def run() -> None:
        await backend.render_frames(scene, settings, range(1, args.frames + 1), tmp / "ours")

    start = time.perf_counter()
    trio.run(run)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--frames", type=int, default=8)
    parser.add_argument("--width", type=int, default=160)
    parser.add_argument("--height", type=int, default=120)
    parser.add_argument("--samples", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--skip-naive", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="pictor-bench-") as name:
        tmp = Path(name)
        tmp.chmod(0o711)  # the sandbox may run renders as another user
        scene = _prepare(tmp, args)
        n = str(args.frames)
        by_hand, ours, naive = [], [], []
        for _ in range(args.repeats):
            by_hand.append(_blender(str(scene), "-o", str(tmp / "hand" / "####"),
                                    "-s", "1", "-e", n, "-a"))  # fmt: skip
            ours.append(_ours(scene, tmp, args))
        if not args.skip_naive:
            naive.append(sum(_blender(str(scene), "-o", str(tmp / "naive" / "####"), "-f", str(i))
                             for i in range(1, args.frames + 1)))  # fmt: skip
    hand_s, ours_s = min(by_hand), min(ours)
    print(f"{args.frames} frames, {args.width}x{args.height}, {args.samples} samples, "
          f"best of {args.repeats}")  # fmt: skip
    print(f"by hand (-s 1 -e {n} -a): {hand_s:7.2f} s   runs {[round(t, 2) for t in by_hand]}")
    print(f"our backend            : {ours_s:7.2f} s   runs {[round(t, 2) for t in ours]}")
    print(f"ratio ours / by hand   : {ours_s / hand_s:7.3f}   (goal <= 1.05)")
    if naive:
        print(f"one process per frame  : {naive[0]:7.2f} s")
        print(f"start-up avoided/frame : {(naive[0] - ours_s) / args.frames:7.2f} s")


if __name__ == "__main__":
    main()
