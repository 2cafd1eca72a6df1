"""Cost model benchmark: estimated vs measured frame render time over a few small scenes.

    python bench/cost_model.py [--quick] [--json OUT]

1. Measures this machine's score as ``pictor benchmark`` does (the reference
   scene, 320x240, 32 samples; ``node.render.benchmark.run_benchmark``).
2. Builds the scenes with Blender (never downloaded): the reference scene, the
   same with 2 bounces, and a heavier one (the spheres subdivided, a volume
   scattering world) that the formula cannot tell from the reference.
3. For each (scene, settings): the job's render units (``protocol.cost`` via
   ``preflight.job_ru``, the number a job announces), the formula's time at
   this score (``frame_time_ms``), the probe render a worker runs when it
   accepts the scene (``node.render.probe``) and the time scaled by what it
   measured; then the frame itself, rendered as a worker does (the Blender
   backend in its sandbox, one process per frame: the renderer's own time,
   start-up excluded). Prints each estimate's error against the measurement.

Times are the renderer's own per-frame times (``FrameOutput.render_s``), as the
benchmark's score is. The estimates use the job's whole RU (rounded up), as a
worker's deadline test does; the unrounded column shows the formula alone.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

# Run as a script, this file's folder would shadow the `protocol` package.
_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]
sys.path.insert(0, str(_HERE.parent))

import trio
from rich.console import Console
from rich.table import Table

from node.render.benchmark import build_reference_scene, run_benchmark
from node.render.blender import BlenderBackend, BlenderConfig
from node.render.preflight import inspect_scene, job_ru, light_paths
from node.render.probe import probe_render
from protocol.cost import frame_time_ms, frame_work, work_time_ms
from protocol.messages import RenderSettings

_VARIANTS = {
    "2 bounces": """
import bpy
c = bpy.context.scene.cycles
c.max_bounces = c.diffuse_bounces = c.glossy_bounces = c.transmission_bounces = 2
""",
    "heavy": """
import bpy
for obj in bpy.data.objects:
    if obj.name.startswith("Sphere"):
        obj.modifiers.new("subd", "SUBSURF").render_levels = 3
tree = bpy.context.scene.world.node_tree
scatter = tree.nodes.new("ShaderNodeVolumeScatter")
scatter.inputs["Density"].default_value = 0.02
tree.links.new(scatter.outputs[0], tree.nodes["World Output"].inputs["Volume"])
""",
}


@dataclass(frozen=True)
class Case:
    scene: str
    settings: RenderSettings


def cases(quick: bool) -> list[Case]:
    def s(x: int, y: int, samples: int) -> RenderSettings:
        return RenderSettings("CYCLES", x, y, samples, 0, "PNG_RGBA8")

    if quick:
        return [Case("reference", s(320, 240, 32)), Case("heavy", s(320, 240, 32))]
    return [
        Case("reference", s(320, 240, 32)),
        Case("reference", s(480, 360, 32)),
        Case("reference", s(320, 240, 96)),
        Case("2 bounces", s(320, 240, 64)),
        Case("heavy", s(320, 240, 32)),
    ]


def build_variant(reference: Path, code: str, out: Path) -> None:
    expr = code + f"\nbpy.ops.wm.save_as_mainfile(filepath={str(out)!r})\n"
    done = subprocess.run(
        ["blender", "-b", "-Y", "--factory-startup", str(reference), "--python-exit-code", "1",
         "--python-expr", expr],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    if done.returncode != 0 or not out.exists():
        raise SystemExit(f"could not build {out.name}: {done.stdout[-2000:]}")


def error_pct(estimate_ms: int, measured_ms: int) -> float:
    return round(100 * (estimate_ms - measured_ms) / measured_ms, 1)


async def run(quick: bool) -> dict[str, object]:
    with tempfile.TemporaryDirectory(prefix="pictor-cost-") as tmp:
        root = Path(tmp)
        root.chmod(0o711)
        backend = BlenderBackend(BlenderConfig(work_root=root))
        bench = await run_benchmark(backend)
        score = bench.score_ru_per_hour
        scenes = {"reference": root / "reference.blend"}
        await build_reference_scene(backend, scenes["reference"], frames=2)
        for name, code in _VARIANTS.items():
            scenes[name] = root / f"{name.replace(' ', '_')}.blend"
            await trio.to_thread.run_sync(build_variant, scenes["reference"], code, scenes[name])
        rows = []
        for case in cases(quick):
            scene, settings = scenes[case.scene], case.settings
            facts = await inspect_scene(scene, backend.config, backend.sandbox)
            paths = light_paths(facts)
            ru = job_ru(facts, settings)
            probe = await probe_render(backend, scene, settings, paths, 1, root)
            complexity = probe.complexity_permille(bench.probe_ms)
            (frame,) = await backend.render_frames(scene, settings, [1], root / "out")
            measured_ms = round(frame.render_s * 1000)
            work = frame_work(settings.resolution_x, settings.resolution_y, settings.samples, paths)
            formula_ms, probed_ms = frame_time_ms(ru, score), frame_time_ms(ru, score, complexity)
            exact_ms = work_time_ms(work, score, complexity)
            rows.append({
                "scene": case.scene,
                "settings": f"{settings.resolution_x}x{settings.resolution_y}/{settings.samples}",
                "ru": ru, "probe_ms": probe.render_ms, "complexity_permille": complexity,
                "formula_ms": formula_ms, "probed_ms": probed_ms, "probed_exact_ms": exact_ms,
                "measured_ms": measured_ms,
                "formula_error_pct": error_pct(formula_ms, measured_ms),
                "probed_error_pct": error_pct(probed_ms, measured_ms),
                "probed_exact_error_pct": error_pct(exact_ms, measured_ms),
            })  # fmt: skip
    return {"score_ru_per_hour": score, "reference_render_s": bench.render_s,
            "reference_probe_ms": bench.probe_ms, "rows": rows}  # fmt: skip


def show(result: dict[str, object]) -> None:
    console = Console()
    console.print(f"score {result['score_ru_per_hour']} RU/h (reference frame "
                  f"{result['reference_render_s']} s, its probe {result['reference_probe_ms']} ms)")  # fmt: skip
    table = Table("scene", "WxH/spp", "RU", "probe ms", "complexity ‰", "formula s", "err %",
                  "with probe s", "err %", "unrounded s", "err %", "measured s")  # fmt: skip
    rows = result["rows"]
    assert isinstance(rows, list)
    for r in rows:
        table.add_row(
            r["scene"], r["settings"], str(r["ru"]), str(r["probe_ms"]),
            str(r["complexity_permille"]), f"{r['formula_ms'] / 1000:.2f}",
            f"{r['formula_error_pct']:+.1f}", f"{r['probed_ms'] / 1000:.2f}",
            f"{r['probed_error_pct']:+.1f}", f"{r['probed_exact_ms'] / 1000:.2f}",
            f"{r['probed_exact_error_pct']:+.1f}", f"{r['measured_ms'] / 1000:.2f}",
        )  # fmt: skip
    console.print(table)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="two cases instead of five")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    result = trio.run(run, args.quick)
    show(result)
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
