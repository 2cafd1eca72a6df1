"""``pictor demo``: the README's main-job command."""

from __future__ import annotations

import typer
from rich.console import Console


def demo() -> None:
    """Bring up a local network, render a generated scene end to end, tear down.

    Not available yet: the end-to-end job lands with the client-mode issue.
    Until then this command says so and exits with status 2.
    """
    Console(stderr=True).print(
        "[bold red]pictor demo is not available yet.[/]\n"
        "The end-to-end render job (devnet + Blender + verification + settlement) "
        "has not landed. What works today: `pictor keys new`, `pictor keys show`, "
        "and the test suite (see README)."
    )
    raise typer.Exit(code=2)
