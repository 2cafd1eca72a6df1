"""Verification benchmark: detection rate, false rejects, checker cost.

    python bench/verification.py [--width 640 --height 360 --samples 64]
                                 [--frames 2 --trials 500 --honest-checks 2] [--quick] [--json OUT]

1. Builds the reference scene (node/render/reference_scene.py) and renders, as a
   worker does (node.render's Blender backend, one process per frame), honest
   frames, then the cheats' own renders: another seed, 1/8 of the samples, half
   the resolution.
2. Builds a tamper set per frame from them (see TAMPERS).
3. Real checks: ``check_frame`` with real tile re-renders (node.verify) on every
   honest frame (``--honest-checks`` each, fresh secrets) and on every tampered
   image of frame 1 — the accept/reject figures and the checker's cost.
4. Cross-path: frame 1 rendered honestly on Cycles' SSE4.1 kernel
   (``CYCLES_CPU_NO_AVX2=1``), judged by this AVX2 checker with the tolerance:
   the false-reject figure for honest workers on other hardware.
5. Sampling trials: ``--trials`` fresh secrets per image; each selects the
   tiles a check at the default assurance would look at (fresh worker:
   ``plan_check``), judged against the honest frame's pixels. Tiles re-render
   bit-identically to the full frame (step 3 and tests/verify show it), so this
   is the check without paying Blender for every trial. Measured detection is
   printed next to the hypergeometric prediction for the cells the cheat touches.

Checker cost is the check's Blender process wall time over the worker's
per-frame process wall time (start-up included on both sides), and the same
for Blender's own render time only: one process per frame and per check, as
nodes rendered before issue 15. Then the same with warm processes, as nodes
render now (bench/warm_costs.py): one check's share of one frame over a
``--job-frames`` job, start-up included, and the average checking cost per
accepted frame under the plan's sampling.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

# Run as a script, this file's folder would shadow the `protocol` package.
_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]
sys.path.insert(0, str(_HERE.parent))

import numpy as np
import trio
from PIL import Image
from rich.console import Console
from rich.table import Table

from bench.warm_costs import warm_costs
from node.render.base import RendererIdentity
from node.render.blender import JOB_SCRIPT, BlenderBackend, BlenderConfig, job_document
from node.verify.blender_tiles import BlenderTileRenderer
from node.verify.checker import check_frame
from node.verify.images import Pixels, load_image
from protocol.messages import Assurance, RenderSettings
from protocol.verification import (
    DEFAULT_POLICY,
    PSNR_IDENTICAL_MILLIDB,
    compare_tile,
    p_caught_exact,
    plan_check,
    psnr_millidb,
    select_tiles,
    tile_grid,
)

REFERENCE_SCENE = _HERE.parent / "node" / "render" / "reference_scene.py"
Cheat = Callable[[Pixels, dict[str, Pixels], np.random.Generator], Pixels]


def _shift(h: Pixels, r: dict[str, Pixels], g: np.random.Generator) -> Pixels:
    out = np.roll(h, 1, axis=1)
    out[:, 0] = h[:, 0]
    return out


def _region(h: Pixels, y0: float, y1: float, x0: float, x1: float) -> tuple[slice, slice]:
    height, width = h.shape[:2]
    return slice(int(y0 * height), int(y1 * height)), slice(int(x0 * width), int(x1 * width))


def _blank(share: tuple[float, float, float, float]) -> Cheat:
    def cheat(h: Pixels, r: dict[str, Pixels], g: np.random.Generator) -> Pixels:
        out = h.copy()
        ys, xs = _region(h, *share)
        out[ys, xs, :3] = 0
        return out

    return cheat


def _noise_left_half(h: Pixels, r: dict[str, Pixels], g: np.random.Generator) -> Pixels:
    out = h.astype(np.int16)
    ys, xs = _region(h, 0, 1, 0, 0.5)
    out[ys, xs, :3] += g.integers(-3, 4, size=out[ys, xs, :3].shape).astype(np.int16)
    return np.clip(out, 0, 255).astype(np.uint8)


def _jpeg(h: Pixels, r: dict[str, Pixels], g: np.random.Generator) -> Pixels:
    buf = io.BytesIO()
    Image.fromarray(h[:, :, :3]).save(buf, format="JPEG", quality=95)
    return np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("RGBA"))


def _requantise(h: Pixels, r: dict[str, Pixels], g: np.random.Generator) -> Pixels:
    out = h.copy()
    out[:, :, :3] &= 0xFC
    return out


def _upscale(h: Pixels, r: dict[str, Pixels], g: np.random.Generator) -> Pixels:
    size = (h.shape[1], h.shape[0])
    return np.asarray(Image.fromarray(r["half_res"]).resize(size, Image.Resampling.BILINEAR))


def _partial(h: Pixels, r: dict[str, Pixels], g: np.random.Generator) -> Pixels:
    out = h.copy()
    out[h.shape[0] // 2 :] = r["fewer_samples"][h.shape[0] // 2 :]
    return out


TAMPERS: dict[str, Cheat] = {
    "other_seed": lambda h, r, g: r["other_seed"],
    "fewer_samples": lambda h, r, g: r["fewer_samples"],
    "other_frame": lambda h, r, g: r["other_frame"],
    "shift_1px": _shift,
    "blanked_quadrant": _blank((0.5, 1.0, 0.5, 1.0)),
    "noised_half": _noise_left_half,
    "recompressed_jpeg": _jpeg,
    "requantised_6bit": _requantise,
    "upscaled_half_res": _upscale,
    "partial_render": _partial,
}
# Not in the headline: a cheat too small to save work, to show the formula at work.
ILLUSTRATIONS: dict[str, Cheat] = {"blanked_5pct": _blank((0.1, 0.3, 0.1, 0.35))}


@dataclass
class Row:
    name: str
    area: float
    predicted: float
    detected: int
    trials: int
    real_rejected: bool | None = None


def _sh(args: list[str]) -> None:
    subprocess.run(args, check=True, capture_output=True, timeout=600)


async def _render(
    scene: Path, settings: RenderSettings, frames: list[int], out: Path
) -> tuple[list[Path], float, list[float]]:
    start = time.perf_counter()
    outputs = await BlenderBackend(BlenderConfig()).render_frames(scene, settings, frames, out)
    return [o.path for o in outputs], time.perf_counter() - start, [o.render_s for o in outputs]


def _render_sse41(scene: Path, settings: RenderSettings, frame: int, out: Path) -> Path:
    """The honest frame on Cycles' SSE4.1 kernel instead of AVX2 (another CPU code path).

    Cycles reads ``CYCLES_CPU_NO_AVX2`` from the environment; the rendering
    helper's sandbox scrubs the environment, so this runs Blender directly with
    the helper's own job script and pinning (our generated scene is trusted).
    """
    out.mkdir(parents=True, exist_ok=True)
    doc = job_document(settings, [frame], out, "CPU", None)
    job = out / "job.json"
    job.write_text(json.dumps(doc))
    argv = ["blender", "-b", "-Y", "--factory-startup", str(scene), "--python-exit-code", "1",
            "--python", str(JOB_SCRIPT), "--", str(job)]  # fmt: skip
    env = {**os.environ, "CYCLES_CPU_NO_AVX2": "1"}
    subprocess.run(argv, check=True, capture_output=True, timeout=1200, env=env)
    return out / f"frame_{frame:06d}.png"


def _cells_touched(honest: Pixels, cheat: Pixels, tile_px: int, same_build: bool) -> int:
    height, width = honest.shape[:2]
    grid = tile_grid(width, height, tile_px)
    policy = DEFAULT_POLICY.comparison
    return sum(
        not compare_tile(
            honest[t.y : t.y + t.height, t.x : t.x + t.width],
            cheat[t.y : t.y + t.height, t.x : t.x + t.width], same_build, policy, t,
        ).passed
        for t in grid
    )  # fmt: skip


def _trials(
    honest: Pixels, image: Pixels, k: int, trials: int, same_build: bool, salt: bytes
) -> int:
    """How many of ``trials`` fresh-secret checks reject ``image``."""
    height, width = honest.shape[:2]
    digest = hashlib.sha256(salt + image.tobytes()).digest()
    rejected = 0
    for i in range(trials):
        secret = hashlib.sha256(b"bench-secret" + salt + i.to_bytes(4, "big")).digest()
        tiles = select_tiles(digest, secret, width, height, k, DEFAULT_POLICY.sampling.tile_px)
        for t in tiles:
            ref = honest[t.y : t.y + t.height, t.x : t.x + t.width]
            cand = image[t.y : t.y + t.height, t.x : t.x + t.width]
            if not compare_tile(ref, cand, same_build, DEFAULT_POLICY.comparison, t).passed:
                rejected += 1
                break
    return rejected


async def run(args: argparse.Namespace, console: Console) -> dict[str, object]:
    work = Path(tempfile.mkdtemp(prefix="pictor-bench-verify-"))
    try:
        return await _run(args, console, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)


async def _run(args: argparse.Namespace, console: Console, work: Path) -> dict[str, object]:
    scene = work / "scene.blend"
    frames = list(range(1, args.frames + 1))
    _sh(
        [
            "blender",
            "-b",
            "-Y",
            "--factory-startup",
            "--python",
            str(REFERENCE_SCENE),
            "--",
            str(scene),
            str(max(2, args.frames)),
        ]
    )
    settings = RenderSettings("CYCLES", args.width, args.height, args.samples, 7, "PNG_RGBA8")
    console.print(
        f"scene {args.width}x{args.height}, {args.samples} samples, frames {frames}; load average "
        f"{os.getloadavg()[0]:.1f}; rendering as a worker ..."
    )
    honest: dict[int, Pixels] = {}
    worker_wall, worker_render = [], []
    for f in frames:  # one process per frame: the worker's per-frame cost, start-up included
        paths, wall, render_s = await _render(scene, settings, [f], work / "honest")
        honest[f] = load_image(paths[0])
        worker_wall.append(wall)
        worker_render += render_s
    if len(frames) == 1:
        paths, _, _ = await _render(scene, settings, [2], work / "other")
        other = {1: load_image(paths[0])}
    else:
        other = {f: honest[frames[(i + 1) % len(frames)]] for i, f in enumerate(frames)}
    cheats: dict[str, dict[int, Pixels]] = {}
    for name, variant in (
        ("other_seed", replace(settings, seed=8)),
        ("fewer_samples", replace(settings, samples=max(1, args.samples // 8))),
        (
            "half_res",
            replace(settings, resolution_x=args.width // 2, resolution_y=args.height // 2),
        ),
    ):
        paths, _, _ = await _render(scene, variant, frames, work / name)
        cheats[name] = {f: load_image(p) for f, p in zip(frames, paths, strict=True)}

    renderer = BlenderTileRenderer()
    me = await renderer.identify()
    plan = plan_check(Assurance.NORMAL, 0.0)
    tile_px = DEFAULT_POLICY.sampling.tile_px
    cells = len(tile_grid(args.width, args.height, tile_px))
    console.print(
        f"real checks: {plan.k} tiles of {tile_px} px out of {cells} cells ({me.build}, {me.device_class}) ..."
    )
    check_wall, check_render, honest_real = [], [], []
    for f in frames:
        for i in range(args.honest_checks):
            digest = hashlib.sha256(f"honest-{f}-{i}".encode()).digest()
            out = await check_frame(
                renderer, scene, settings, f, honest[f], result_digest=digest, k=plan.k, worker=me
            )
            honest_real.append(out.accepted)
            check_wall.append(out.render.wall_s)
            check_render.append(out.render.render_s)

    cross: dict[str, object] = {}
    if args.cross_path:
        console.print("cross-path: frame 1 on the SSE4.1 kernel, judged by the AVX2 checker ...")
        path = _render_sse41(scene, settings, 1, work / "sse41")
        sse = load_image(path)
        grid = tile_grid(args.width, args.height, tile_px)
        tiles_psnr = [
            psnr_millidb(honest[1][t.y : t.y + t.height, t.x : t.x + t.width],
                         sse[t.y : t.y + t.height, t.x : t.x + t.width])
            for t in grid
        ]  # fmt: skip
        other_class = RendererIdentity(me.build, "cpu-x86_64-sse41")
        real = await check_frame(
            renderer, scene, settings, 1, sse, result_digest=hashlib.sha256(b"sse41").digest(),
            k=plan.k, worker=other_class,
        )  # fmt: skip
        diff = np.abs(honest[1].astype(np.int32) - sse.astype(np.int32))
        cross = {
            "pixels_differing": int((diff.max(axis=2) > 0).sum()),
            "max_abs_diff": int(diff.max()),
            "frame_psnr_db": psnr_millidb(honest[1][..., :3], sse[..., :3]) / 1000,
            "min_tile_psnr_db": min(tiles_psnr) / 1000,
            "tiles_differing": sum(p != PSNR_IDENTICAL_MILLIDB for p in tiles_psnr),
            "real_check_tolerance_accepted": real.accepted,
            "trials_tolerance_rejected": f"{_trials(honest[1], sse, plan.k, args.trials, False, b'sse')}/{args.trials}",
            "trials_exact_rejected": f"{_trials(honest[1], sse, plan.k, args.trials, True, b'sse')}/{args.trials}",
        }
        console.print(f"cross-path honest frame: {cross}")

    rng = np.random.default_rng(11)
    table: dict[str, list[Row]] = {"exact": [], "tolerance": []}
    for name, cheat in {**TAMPERS, **ILLUSTRATIONS}.items():
        images = {
            f: cheat(
                honest[f], {"other_frame": other[f], **{n: c[f] for n, c in cheats.items()}}, rng
            )
            for f in frames
        }
        real = await check_frame(
            renderer, scene, settings, 1, images[1],
            result_digest=hashlib.sha256(name.encode()).digest(), k=plan.k, worker=me,
        )  # fmt: skip
        check_wall.append(real.render.wall_s)
        check_render.append(real.render.render_s)
        for mode, same in (("exact", True), ("tolerance", False)):
            row = Row(name, 0.0, 0.0, 0, 0, not real.accepted if same else None)
            preds = []
            for f in frames:
                m = _cells_touched(honest[f], images[f], tile_px, same)
                preds.append(p_caught_exact(cells, plan.k, m))
                row.area += m / cells / len(frames)
                row.detected += _trials(
                    honest[f], images[f], plan.k, args.trials, same, name.encode() + bytes([f])
                )
                row.trials += args.trials
            row.predicted = statistics.fmean(preds)
            table[mode].append(row)

    honest_trials = {
        mode: sum(
            _trials(honest[f], honest[f], plan.k, args.trials, same, b"h" + bytes([f]))
            for f in frames
        )
        for mode, same in (("exact", True), ("tolerance", False))
    }
    result = _summarise(args, console, table, honest_real, honest_trials, frames, plan.k, cells,
                        worker_wall, worker_render, check_wall, check_render)  # fmt: skip
    result["cross_path"] = cross
    console.print(f"warm processes (as a node renders now): worker and checker, "
                  f"{args.warm_checks} checks at k={plan.k} ...")  # fmt: skip
    warm = await warm_costs(scene, settings, frames, args.job_frames, args.warm_checks)
    result["warm"] = warm
    result["load_average_end"] = os.getloadavg()[0]
    console.print(
        f"warm checker: one check {warm['check_share_job']:.1%} of the worker's frame "
        f"(wall, start-up included on both sides, a {args.job_frames}-frame job: first check "
        f"{warm['checker_first_check_wall_s']:.2f} s then {warm['checker_steady_check_wall_s']:.2f}"
        f" s; worker's first frame {warm['worker_first_frame_wall_s']:.1f} s then "
        f"{warm['worker_steady_frame_wall_s']:.1f} s); steady {warm['check_share_steady']:.1%}\n"
        f"checking cost per accepted frame under the plan's sampling (warm, of the worker's "
        f"frame wall): fresh worker {warm['cost_per_accepted_frame_r0.0']:.1%}, reputation 0.5 "
        f"{warm['cost_per_accepted_frame_r0.5']:.1%}, trusted "
        f"{warm['cost_per_accepted_frame_r1.0']:.1%}\n"
        f"in CPU time (each warm Blender process's own, start-up included): one check "
        f"{warm['cpu_check_share_job']:.1%} of the worker's frame over the job (first check "
        f"{warm['checker_first_check_cpu_s']:.2f} s then {warm['checker_steady_check_cpu_s']:.2f} s"
        f" of CPU; worker's first frame {warm['worker_first_frame_cpu_s']:.1f} s then "
        f"{warm['worker_steady_frame_cpu_s']:.1f} s); steady {warm['cpu_check_share_steady']:.1%}; "
        f"warm tiles identical to the worker's frame: {warm['tiles_identical']}; "
        f"load average {os.getloadavg()[0]:.1f}"
    )
    return result


def _summarise(
    args: argparse.Namespace,
    console: Console,
    table: dict[str, list[Row]],
    honest_real: list[bool],
    honest_trials: dict[str, int],
    frames: list[int],
    k: int,
    cells: int,
    worker_wall: list[float],
    worker_render: list[float],
    check_wall: list[float],
    check_render: list[float],
) -> dict[str, object]:
    for mode, rows in table.items():
        t = Table(title=f"{mode} comparison: {k} tiles of {cells}, fresh worker, assurance normal")
        for col in ("tamper", "cells hit", "P(caught) predicted", "measured", "real check"):
            t.add_column(col, justify="right" if col != "tamper" else "left")
        for r in rows:
            real = (
                "" if r.real_rejected is None else ("rejected" if r.real_rejected else "ACCEPTED")
            )
            label = r.name + (" *" if r.name in ILLUSTRATIONS else "")
            t.add_row(
                label, f"{r.area:.1%}", f"{r.predicted:.4f}", f"{r.detected / r.trials:.4f}", real
            )
        console.print(t)
    console.print(
        "* not in the headline: a cheat too small to save work, shown against the formula"
    )
    head = [r for r in table["exact"] if r.name in TAMPERS]
    head_tol = [r for r in table["tolerance"] if r.name in TAMPERS]
    detection = sum(r.detected for r in head) / sum(r.trials for r in head)
    detection_tol = sum(r.detected for r in head_tol) / sum(r.trials for r in head_tol)
    real_tamper = [r.real_rejected for r in head]
    honest_n = args.trials * len(frames)
    worker_frame_wall = statistics.fmean(worker_wall)
    result = {
        "settings": {"width": args.width, "height": args.height, "samples": args.samples, "frames": frames},
        "k": k, "cells": cells, "tile_px": DEFAULT_POLICY.sampling.tile_px,
        "detection_rate_exact": detection,
        "detection_rate_tolerance": detection_tol,
        "real_tamper_checks_rejected": f"{sum(bool(x) for x in real_tamper)}/{len(real_tamper)}",
        "false_rejects_real_checks": f"{honest_real.count(False)}/{len(honest_real)}",
        "false_rejects_trials": {m: f"{n}/{honest_n}" for m, n in honest_trials.items()},
        "worker_frame_wall_s": worker_frame_wall,
        "worker_frame_render_s": statistics.fmean(worker_render),
        "check_wall_s": statistics.fmean(check_wall),
        "check_render_s": statistics.fmean(check_render),
        "checker_cost_wall": statistics.fmean(check_wall) / worker_frame_wall,
        "checker_cost_render": statistics.fmean(check_render) / statistics.fmean(worker_render),
    }  # fmt: skip
    console.print(
        f"detection (headline tamper set, {sum(r.trials for r in head)} tampered checks): "
        f"exact {detection:.2%}, tolerance {detection_tol:.2%}; real checks rejected "
        f"{result['real_tamper_checks_rejected']}\n"
        f"false rejects: real re-render checks {result['false_rejects_real_checks']}, "
        f"trials {result['false_rejects_trials']}\n"
        f"checker cost per checked frame: {result['checker_cost_wall']:.1%} of the worker's frame "
        f"(wall, start-up included: {result['check_wall_s']:.1f} s vs {worker_frame_wall:.1f} s), "
        f"{result['checker_cost_render']:.1%} in Blender render time; a fresh worker is checked "
        f"on every frame, a trusted one on 25 % with {plan_check(Assurance.NORMAL, 1.0).k} tiles"
    )
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--width", type=int, default=640)
    parser.add_argument("--height", type=int, default=360)
    parser.add_argument("--samples", type=int, default=64)
    parser.add_argument("--frames", type=int, default=2)
    parser.add_argument("--trials", type=int, default=500)
    parser.add_argument("--honest-checks", type=int, default=2)
    parser.add_argument(
        "--quick", action="store_true", help="160x90, 16 samples, 100 trials: a smoke run"
    )
    parser.add_argument(
        "--no-cross-path",
        dest="cross_path",
        action="store_false",
        help="skip rendering frame 1 on the SSE4.1 kernel (honest, other CPU code path)",
    )
    parser.add_argument("--job-frames", type=int, default=12,
                        help="frames of the job the warm start-up is spread over")  # fmt: skip
    parser.add_argument("--warm-checks", type=int, default=4,
                        help="checks rendered in the warm checker process at the fresh k")  # fmt: skip
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    if args.quick:
        args.width, args.height, args.samples, args.trials = 160, 90, 16, 100
    if shutil.which("blender") is None:
        sys.exit("blender not found: install Blender 3.4.1 (apt install blender)")
    console = Console(highlight=False)
    result = trio.run(run, args, console)
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
