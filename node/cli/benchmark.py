"""``pictor benchmark``: measure (or show) this node's render score in RU per hour."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Annotated

import trio
import typer

from node.cli.console import err_console, out_console
from node.config import default_data_dir
from node.render.base import RenderError
from node.render.benchmark import score
from node.render.blender import BlenderBackend, BlenderConfig
from node.render.gpu import probe_gpus
from node.render.sandbox import SandboxError


def benchmark(
    data_dir: Annotated[
        Path | None, typer.Option("--data-dir", help="Node data directory (cache).")
    ] = None,
    blender: Annotated[str, typer.Option(help="Blender executable.")] = "blender",
    device: Annotated[
        str, typer.Option(help="CPU, or a Cycles GPU backend: CUDA, OPTIX, HIP.")
    ] = "CPU",
    cached: Annotated[
        bool, typer.Option("--cached", help="Use a cached score if there is one.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Render the generated reference scene and record render units per hour.

    1 RU = one reference frame (320x240, 32 samples, Cycles); the score is
    cached per Blender build and device class in the data directory.
    """
    backend = BlenderBackend(BlenderConfig(executable=blender, device=device))
    directory = data_dir or default_data_dir()
    try:
        result = trio.run(score, backend, directory, not cached)
    except (RenderError, SandboxError) as exc:
        err_console().print(f"[red]benchmark failed:[/] {exc}")
        raise typer.Exit(1) from None
    gpus = probe_gpus()
    if as_json:
        doc = {
            "result": asdict(result),
            "sandbox": backend.sandbox.describe(),
            "gpus": gpus.as_json(),
        }
        print(json.dumps(doc, indent=2))
        return
    console = out_console()
    console.print(f"{result.build} on {result.device_class}: {result.score_ru_per_hour} RU/h")
    console.print(f"reference frame {result.render_s:.2f} s (mean of {result.runs})")
    console.print(f"sandbox: {backend.sandbox.describe()}")
    console.print(f"GPUs: {gpus.detail}")
