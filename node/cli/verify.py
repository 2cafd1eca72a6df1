"""``pictor verify``: judge one frame image against its scene, or explain the odds.

Outside tools rely on this interface::

    pictor verify --scene SCENE.blend --frame N --image FRAME.png
                  [--settings JOB.json] [--tiles K] [--json]
    pictor verify --explain [--assurance A] [--reputation R] [--fraction F]

Exit status: 0 accepted, 1 rejected, 2 error (unreadable image, wrong
resolution, missing renderer or scene, bad settings), with a message saying
what to do. The work is in :mod:`node.verify`.
"""

from __future__ import annotations

import hashlib
import json
import math
import shutil
from dataclasses import asdict
from pathlib import Path
from typing import Annotated, Any, NoReturn

import trio
import typer
from rich.console import Console

from node.render.base import RenderError
from node.render.blender import BlenderConfig
from node.render.sandbox import SandboxError
from node.verify.blender_tiles import BlenderTileRenderer
from node.verify.checker import BuildMismatch, CheckOutcome, check_frame
from node.verify.images import ImageError, load_image
from node.verify.settings import NO_SETTINGS, JobSettings, SettingsError, read_job_settings
from protocol.messages import Assurance
from protocol.verification import (
    DEFAULT_POLICY,
    PSNR_IDENTICAL_MILLIDB,
    Explanation,
    explain,
    plan_check,
)

EXIT_ACCEPTED, EXIT_REJECTED, EXIT_ERROR = 0, 1, 2
FRACTIONS = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0)


def verify(
    scene: Annotated[Path | None, typer.Option("--scene", help="The job's .blend scene.")] = None,
    frame: Annotated[
        int | None, typer.Option("--frame", help="Frame number the image claims to be.")
    ] = None,
    image: Annotated[
        Path | None, typer.Option("--image", help="The worker's frame image (PNG).")
    ] = None,
    settings: Annotated[
        Path | None,
        typer.Option(
            "--settings", help="JOB.json with the job's pinned settings (else: the scene's)."
        ),
    ] = None,
    tiles: Annotated[
        int | None,
        typer.Option(
            "--tiles", min=1, help="Tiles to re-render (default: from --assurance/--reputation)."
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the verdict as JSON.")] = False,
    do_explain: Annotated[
        bool, typer.Option("--explain", help="Print detection probabilities.")
    ] = False,
    assurance: Annotated[Assurance, typer.Option("--assurance")] = Assurance.NORMAL,
    reputation: Annotated[float, typer.Option("--reputation", min=0.0, max=1.0)] = 0.0,
    fraction: Annotated[
        float | None,
        typer.Option("--fraction", min=0.0, max=1.0, help="Share of the frame a cheat falsifies."),
    ] = None,
    width: Annotated[
        int | None, typer.Option("--width", min=1, help="Frame width (exact odds).")
    ] = None,
    height: Annotated[
        int | None, typer.Option("--height", min=1, help="Frame height (exact odds).")
    ] = None,
    blender: Annotated[
        str, typer.Option("--blender", help="Blender executable to re-render with.")
    ] = "blender",
    secret: Annotated[
        str | None,
        typer.Option("--secret", hidden=True, help="64 hex digits: replay a check's tile choice."),
    ] = None,
) -> None:
    """Verify a frame by re-rendering random tiles, or explain the detection odds."""
    if do_explain:
        _explain(assurance, reputation, fraction, width, height, as_json)
        return
    if scene is None or frame is None or image is None:
        _fail("give --scene, --frame and --image (or --explain)", as_json)
    k = tiles if tiles is not None else max(1, plan_check(assurance, reputation).k)
    try:
        secret_bytes = bytes.fromhex(secret) if secret is not None else None
        if secret_bytes is not None and len(secret_bytes) != 32:
            raise ValueError
    except ValueError:
        _fail("--secret must be 64 hex digits", as_json)
    try:
        job = read_job_settings(settings) if settings is not None else NO_SETTINGS
        outcome = trio.run(_check, scene, frame, image, job, k, blender, secret_bytes)
    except (ImageError, SettingsError, BuildMismatch) as exc:
        _fail(str(exc), as_json)
    except (RenderError, SandboxError, OSError) as exc:
        tail = getattr(exc, "tail", "")
        _fail(_render_hint(exc, blender) + (f"\n{tail[-800:]}" if tail else ""), as_json)
    _report(outcome, scene, frame, image, as_json)
    raise typer.Exit(EXIT_ACCEPTED if outcome.accepted else EXIT_REJECTED)


async def _check(
    scene: Path, frame: int, image: Path, job: JobSettings, k: int, blender: str,
    secret: bytes | None,
) -> CheckOutcome:  # fmt: skip
    if not scene.is_file():
        raise SettingsError(f"scene {scene} not found")
    pixels = load_image(image)  # before any Blender start: a bad image fails fast
    if shutil.which(blender) is None:
        raise FileNotFoundError(blender)
    renderer = BlenderTileRenderer(BlenderConfig(executable=blender))
    scene_settings = None if job.complete() else await renderer.read_scene_settings(scene)
    pinned = job.resolve(scene_settings)
    digest = hashlib.sha256(image.read_bytes()).digest()  # stands in for the Result's digest
    return await check_frame(
        renderer, scene, pinned, frame, pixels, result_digest=digest, k=k,
        worker=job.worker, job_build=job.job_build, secret=secret,
    )  # fmt: skip


def _render_hint(exc: Exception, blender: str) -> str:
    if isinstance(exc, FileNotFoundError):
        return (
            f"renderer not found: {blender!r}. Install the job's Blender build "
            "(e.g. `apt install blender` for 3.4.1) or pass --blender PATH."
        )
    return f"re-render failed: {exc}. Check the scene opens in this Blender build."


def _fail(message: str, as_json: bool) -> NoReturn:
    if as_json:
        print(json.dumps({"error": message}))
    Console(stderr=True, soft_wrap=True).print(f"[bold red]pictor verify:[/] {message}", highlight=False)
    raise typer.Exit(EXIT_ERROR)


def _db(millidb: int) -> float | None:
    return None if millidb == PSNR_IDENTICAL_MILLIDB else millidb / 1000


def _report(outcome: CheckOutcome, scene: Path, frame: int, image: Path, as_json: bool) -> None:
    mode = "exact" if outcome.same_build else "tolerance"
    worker = asdict(outcome.worker) if outcome.worker else None
    doc = {
        "accepted": outcome.accepted,
        "scene": str(scene),
        "frame": frame,
        "image": str(image),
        "mode": mode,
        "min_psnr_db": DEFAULT_POLICY.comparison.min_psnr_millidb / 1000,
        "builds": {
            "checker": asdict(outcome.checker),
            "worker": worker,
            "same": outcome.same_build,
        },
        "tiles": [
            {**asdict(c.evidence), "psnr_db": _db(c.evidence.psnr_millidb), "passed": c.passed}
            for c in outcome.checks
        ],
        "secret": outcome.secret.hex(),
        "result_digest": outcome.result_digest.hex(),
        "tile_px": DEFAULT_POLICY.sampling.tile_px,
        "checker_wall_s": round(outcome.render.wall_s, 3),
        "checker_render_s": round(outcome.render.render_s, 3),
    }
    if as_json:
        print(json.dumps(doc, indent=2))
        return
    console = Console(highlight=False, soft_wrap=True)
    word = "[bold green]ACCEPTED[/]" if outcome.accepted else "[bold red]REJECTED[/]"
    console.print(
        f"{word} frame {frame} of {scene} ({len(outcome.checks)} tiles, {mode} comparison)"
    )
    for c in outcome.checks:
        e, psnr = c.evidence, _db(c.evidence.psnr_millidb)
        shown = "  inf" if psnr is None else f"{psnr:5.1f}"
        verdict = "ok" if c.passed else "MISMATCH"
        console.print(
            f"  tile x={e.x:<5} y={e.y:<5} {e.width}x{e.height}  PSNR {shown} dB  "
            f"max|diff| {e.max_abs_diff:<5} {verdict}"
        )
    who = f"{outcome.worker.build}/{outcome.worker.device_class}" if outcome.worker else "unknown"
    console.print(
        f"  builds: checker {outcome.checker.build}/{outcome.checker.device_class}, worker {who}"
    )
    console.print(f"  secret {outcome.secret.hex()} (re-derive the tiles from it)")
    console.print(f"  checker cost {outcome.render.wall_s:.2f} s (one Blender process)")


def _explain(
    assurance: Assurance, reputation: float, fraction: float | None,
    width: int | None, height: int | None, as_json: bool,
) -> None:  # fmt: skip
    if (width is None) != (height is None):
        _fail("give both --width and --height, or neither", as_json)
    rows = [
        explain(assurance, reputation, f, width=width, height=height)
        for f in ((fraction,) if fraction is not None else FRACTIONS)
    ]
    if as_json:
        print(json.dumps([_explanation_doc(r) for r in rows], indent=2))
        return
    first = rows[0]
    console = Console(highlight=False, soft_wrap=True)
    console.print(
        f"assurance {assurance.value}, reputation {reputation:.2f}: check {first.check_probability:.0%} "
        f"of frames, {first.k} tiles of {first.tile_px}x{first.tile_px} px"
    )
    console.print(f"P(caught | checked) = {first.formula}")
    console.print("  falsified  P(caught|checked)  P(caught per frame)  frames to 99 %")
    for r in rows:
        frames = "never" if r.frames_for_99 is None else str(r.frames_for_99)
        console.print(
            f"  {r.fraction:9.1%}  {r.p_caught_if_checked:17.4%}  {r.p_caught_per_frame:19.4%}  {frames:>14}"
        )


def _explanation_doc(e: Explanation) -> dict[str, Any]:
    doc = asdict(e)
    doc["assurance"] = e.assurance.value
    if math.isnan(doc["p_caught_per_frame"]):
        doc["p_caught_per_frame"] = None
    return doc
