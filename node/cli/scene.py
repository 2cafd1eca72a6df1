"""``pictor scene check``: preflight a ``.blend`` before announcing a job for it."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Annotated

import trio
import typer

from node.cli.console import err_console, out_console
from node.render.base import RenderError
from node.render.blender import BlenderBackend, BlenderConfig
from node.render.preflight import analyse, inspect_scene
from node.render.sandbox import SandboxError, probe_sandbox

app = typer.Typer(help="Inspect scenes before rendering them on the network.")


@app.callback()
def scene() -> None:
    """Inspect scenes before rendering them on the network."""


_STYLE = {"error": "red", "pinned": "yellow", "script": "magenta", "info": "cyan"}
# How a .blend begins: plain, or compressed with zstd (Blender 3.0+) or gzip (older).
BLEND_MAGICS = {b"BLENDER": "", b"\x28\xb5\x2f\xfd": "zstd", b"\x1f\x8b": "gzip"}
MAKE_ONE = "or make a sample with `pictor example-scene scene.blend`"


def blend_problem(path: Path) -> str | None:
    """What is wrong with ``path`` as a .blend, judged from its first bytes; None if nothing."""
    try:
        with path.open("rb") as f:
            head = f.read(16)
    except OSError as exc:
        return f"{path} cannot be read: {exc.strerror}"
    if any(head.startswith(magic) for magic in BLEND_MAGICS):
        return None
    what = "is empty" if not head else f"does not start like a .blend (first bytes {head[:8]!r})"
    return (f"{path} is not a Blender file: it {what}. Save the scene from Blender "
            f"(File > Save As, .blend), {MAKE_ONE}")  # fmt: skip


def _tail(exc: Exception) -> str:
    lines = [ln for ln in str(getattr(exc, "args", ("", ""))[-1]).splitlines() if ln.strip()]
    return "\n".join(lines[-5:])


async def _check(scene: Path, blender: str) -> dict[str, object]:
    config = BlenderConfig(executable=blender)
    backend = BlenderBackend(config, probe_sandbox())
    identity = await backend.identify()
    facts = await inspect_scene(scene, config, backend.sandbox)
    return analyse(facts, identity.build).as_json()


@app.command("check")
def check(
    scene: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="The .blend file.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
    blender: Annotated[str, typer.Option(help="Blender executable to inspect with.")] = "blender",
) -> None:
    """Report version, engine, frames, resolution, samples, missing files, embedded
    scripts, settings the job will pin, and estimated render units.

    Exit status 1 when the scene has errors (missing or unpacked files, no camera).
    """
    problem = blend_problem(scene)
    if problem:
        err_console().print(f"[red]not a scene:[/] {problem}", highlight=False)
        raise typer.Exit(2)
    if shutil.which(blender) is None:
        err_console().print(f"[red]Blender not found[/] ({blender!r}): install it "
                            "(`sudo apt-get install blender`, or scripts/setup) or pass --blender")  # fmt: skip
        raise typer.Exit(2)
    try:
        report = trio.run(_check, scene, blender)
    except (RenderError, SandboxError) as exc:
        tail = _tail(exc) if isinstance(exc, RenderError) else ""
        err_console().print(f"[red]inspection failed:[/] {exc.args[0] if exc.args else exc}"
                            f"{chr(10) + tail if tail else ''}\nBlender could not open the scene "
                            f"for inspection: open it in Blender and save it again, {MAKE_ONE}",
                            highlight=False)  # fmt: skip
        raise typer.Exit(2) from None
    if as_json:
        print(json.dumps(report, indent=2))
    else:
        _print(report)
    if not report["ok"]:
        raise typer.Exit(1)


def example_scene(
    out: Annotated[Path, typer.Argument(dir_okay=False, help="Where to write the .blend.")],
    frames: Annotated[int, typer.Option(min=1, max=250, help="Animation length.")] = 8,
    blender: Annotated[str, typer.Option(help="Blender executable to build it with.")] = "blender",
) -> None:
    """Write a sample scene to OUT: the demo's animation (a moving sphere), made by Blender."""
    from node.devnet.scene import build_scene

    if shutil.which(blender) is None:
        err_console().print(f"[red]Blender not found[/] ({blender!r}): install it "
                            "(`sudo apt-get install blender`, or scripts/setup) or pass --blender")  # fmt: skip
        raise typer.Exit(2)
    try:
        build_scene(out, frames, blender)
    except RuntimeError as exc:
        err_console().print(f"[red]{exc}[/]", highlight=False)
        raise typer.Exit(1) from None
    out_console().print(f"wrote {out} ({frames} frames); check it with `pictor scene check {out}`, "
                        f"render it with `pictor job submit {out} --frames 1-{frames}`",
                        highlight=False)  # fmt: skip


def _print(report: dict[str, object]) -> None:
    console = out_console()
    facts = report["facts"]
    assert isinstance(facts, dict)
    render = facts["render"]
    console.print(f"saved with Blender {facts['saved_version']}  engine {render['engine']}")
    console.print(
        f"frames {render['frame_start']}..{render['frame_end']} step {render['frame_step']}"
        f"  resolution {render['resolution'][0]}x{render['resolution'][1]}"
        f"  samples {render['samples']}"
    )
    for finding in report["findings"]:  # type: ignore[attr-defined]
        style = _STYLE.get(finding["kind"], "white")
        console.print(f"[{style}]{finding['kind']:>7}[/] {finding['message']}")
    console.print(
        f"estimated {report['ru_per_frame']} RU/frame, {report['ru_total']} RU "
        f"for {report['frames']} frames"
    )
