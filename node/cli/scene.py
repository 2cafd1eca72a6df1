"""``pictor scene check``: preflight a ``.blend`` before announcing a job for it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import trio
import typer
from rich.console import Console

from node.render.base import RenderError
from node.render.blender import BlenderBackend, BlenderConfig
from node.render.preflight import analyse, inspect_scene
from node.render.sandbox import SandboxError, probe_sandbox

app = typer.Typer(help="Inspect scenes before rendering them on the network.")


@app.callback()
def scene() -> None:
    """Inspect scenes before rendering them on the network."""


_STYLE = {"error": "red", "pinned": "yellow", "script": "magenta", "info": "cyan"}


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
    try:
        report = trio.run(_check, scene, blender)
    except (RenderError, SandboxError) as exc:
        Console(stderr=True).print(f"[red]inspection failed:[/] {exc}")
        raise typer.Exit(2) from None
    if as_json:
        print(json.dumps(report, indent=2))
    else:
        _print(report)
    if not report["ok"]:
        raise typer.Exit(1)


def _print(report: dict[str, object]) -> None:
    console = Console()
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
