"""Entry point of the ``pictor`` command.

Each command group is a Typer app in its own module, registered here with one
line, so that adding a group never means editing another group's file.
"""

from __future__ import annotations

import typer

import node.cli.explorer_cmd as explorer_cmd
from node.cli import (
    addon_cmd,
    chain,
    coordinator_cmd,
    demo,
    devnet,
    doctor,
    init_cmd,
    job,
    keys,
    node_cmd,
    sim,
    stake,
    status_cmd,
    ui_cmd,
    verify,
)
from node.cli import benchmark as benchmark_cmd
from node.cli import scene as scene_cmd

app = typer.Typer(
    name="pictor",
    help=(
        "Pictor: an open peer-to-peer GPU render network.\n\n"
        "GPU owners run a worker and earn for rendered frames; artists submit "
        "Blender scenes in client mode; checkers re-render random tiles to catch "
        "cheats; payment settles on an EVM chain through an escrow contract."
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

app.command("demo")(demo.demo)
app.add_typer(keys.app, name="keys")
app.add_typer(chain.app, name="chain")
app.add_typer(sim.app, name="sim")
app.command("init")(init_cmd.init)
app.add_typer(node_cmd.app, name="node")
app.command("status")(status_cmd.status)
app.command("doctor")(doctor.doctor)
app.command("ui")(ui_cmd.ui)
app.command("peers")(status_cmd.peers)
app.command("network")(status_cmd.network)
app.command("verify")(verify.verify)
app.command("benchmark")(benchmark_cmd.benchmark)
app.add_typer(scene_cmd.app, name="scene")
app.command("example-scene")(scene_cmd.example_scene)
app.command("addon-zip")(addon_cmd.addon_zip)
app.add_typer(explorer_cmd.app, name="explorer")
app.add_typer(job.app, name="job")
app.add_typer(devnet.app, name="devnet")
app.add_typer(coordinator_cmd.app, name="coordinator")
app.add_typer(stake.app, name="stake")


def main() -> None:
    app()
