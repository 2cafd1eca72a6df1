"""``pictor explorer serve``: the public explorer website over a passive node."""

from __future__ import annotations

import signal
from functools import partial
from typing import TYPE_CHECKING, Annotated

import trio
import typer

from node.cli.console import err_console, out_console
from node.log import setup_logging

if TYPE_CHECKING:
    from explorer.service import ExplorerConfig

# explorer/ builds on node/, so node/ reaches it only from inside the command
# (tests/test_layering.py): importing the CLI never imports the explorer.

app = typer.Typer(help="The public explorer: index the network and serve its website.")


@app.callback()
def explorer() -> None:
    """The public explorer: index the network and serve its website."""


async def _serve(config: ExplorerConfig) -> None:
    from explorer.service import Explorer, run_explorer

    stop = trio.Event()
    console = out_console()
    # Listen for signals before starting, so a Ctrl-C during start-up also stops cleanly.
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async with trio.open_nursery() as nursery:

            async def start() -> None:
                started: Explorer = await nursery.start(partial(run_explorer, config, stop))
                console.print(f"explorer at {started.url} (Ctrl-C to stop)")

            nursery.start_soon(start)
            async for _ in signals:
                stop.set()
                break
        console.print("explorer stopped")


@app.command("serve")
def serve(
    bootstrap: Annotated[
        list[str] | None,
        typer.Option(
            "--bootstrap", help="Peer multiaddr (with /p2p/) to join through; repeatable."
        ),
    ] = None,
    listen: Annotated[
        list[str] | None, typer.Option("--listen", help="libp2p listen multiaddr.")
    ] = None,
    chain_rpc: str = typer.Option(
        "", "--chain-rpc", help="EVM JSON-RPC URL to follow escrow events on."
    ),
    chain_id: int | None = typer.Option(None, "--chain-id", help="Expected chain id (checked)."),
    contract: str = typer.Option("", "--contract", help="Escrow contract address."),
    start_block: int = typer.Option(0, "--start-block", help="First block of a new index."),
    confirmations: int = typer.Option(
        2, "--confirmations", help="Blocks deep before an event is indexed."
    ),
    db: str = typer.Option(
        "explorer.db", "--db", help="SQLite path, or postgresql://user@host/db."
    ),
    host: str = typer.Option("127.0.0.1", "--host", help="Address the website binds to."),
    port: int = typer.Option(8080, "--port", help="Website port (0 = any free port)."),
    log_level: str = typer.Option("INFO", "--log-level", help="Logging level."),
) -> None:
    """Join the network passively, index gossip and chain events, serve pages and a JSON API."""
    from explorer.indexer.db import DatabaseUrlError, DbTarget
    from explorer.service import ExplorerConfig

    try:
        DbTarget.parse(db)
        config = ExplorerConfig(
            db_url=db,
            bootstrap=tuple(bootstrap or ()),
            listen_addrs=tuple(listen or ("/ip4/0.0.0.0/tcp/0",)),
            chain_rpc=chain_rpc,
            chain_id=chain_id,
            contract=contract,
            start_block=start_block,
            confirmations=confirmations,
            host=host,
            port=port,
        )
    except (ValueError, DatabaseUrlError) as exc:
        err_console().print(f"[bold red]error:[/] {exc}")
        raise typer.Exit(2) from exc
    setup_logging(json_lines=False, level=log_level)
    trio.run(_serve, config)
