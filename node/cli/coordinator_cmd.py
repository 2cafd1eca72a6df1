"""``pictor coordinator run``: a public bootstrap node that relays for nodes behind NAT."""

from __future__ import annotations

import json
import sys
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from node.cli.console import err_console
from node.cli.init_cmd import DataDirOption
from node.config import ConfigError, default_data_dir
from node.keyfile import KeyFileError, read_key_file, read_secret_file
from node.log import setup_logging

if TYPE_CHECKING:
    from node.app.run import RunningNode

# coordinator/ builds on node/, so node/ reaches it only from inside the command
# (tests/test_layering.py).

app = typer.Typer(help="Run a coordinator: bootstrap peer, circuit relay, AutoNAT.")


@app.callback()
def coordinator() -> None:
    """Run a coordinator: bootstrap peer, circuit relay, AutoNAT."""


def _announce(running: RunningNode) -> None:
    node = running.node
    line = {"event": "ready", "node_id": node.node_id, "api": running.api_url,
            "addrs": node.network.listen_addrs()}  # fmt: skip
    print(json.dumps(line), flush=True)
    sys.stdout.flush()


@app.command("run")
def run(
    data_dir: Path | None = DataDirOption,
    listen: Annotated[
        list[str] | None,
        typer.Option("--listen", help="libp2p listen multiaddr (a public address); repeatable."),
    ] = None,
    api_port: int | None = typer.Option(None, "--api-port", help="Local API port (0 = any)."),
    max_reservations: int = typer.Option(256, help="Peers holding a relay slot at once."),
    reservations_per_ip: int = typer.Option(8, help="Relay slots held from one IP address."),
    circuit_mib: int = typer.Option(256, help="MiB a relayed connection may carry."),
    circuit_s: int = typer.Option(3600, help="Seconds a relayed connection may last."),
) -> None:
    """Relay for nodes behind NAT until SIGINT/SIGTERM.

    Prints one JSON line on stdout once ready: {"event": "ready", "node_id", "api", "addrs"};
    nodes use an address from it with --bootstrap.
    """
    from coordinator.service import coordinator_config, run_coordinator
    from node.net.relay import RelayHopLimits

    data_dir = (data_dir or default_data_dir()).expanduser()
    console = err_console()
    if not data_dir.exists():
        console.print(f"[bold red]error:[/] no data directory at {data_dir}; create it with "
                      f"`pictor init --data-dir {data_dir}`")  # fmt: skip
        raise typer.Exit(2)
    try:
        config = coordinator_config(data_dir, tuple(listen or ()))
        if api_port is not None:
            config = replace(config, api_port=api_port)
        read_key_file(config.key_path)
        read_secret_file(config.api_token_path)
    except (ConfigError, KeyFileError) as exc:
        console.print(f"[bold red]error:[/] {exc}")
        raise typer.Exit(2) from exc
    limits = RelayHopLimits(max_reservations=max_reservations, circuit_bytes=circuit_mib << 20,
                            circuit_s=circuit_s, reservations_per_ip=reservations_per_ip)  # fmt: skip
    setup_logging(json_lines=config.log_json, level=config.log_level)
    run_coordinator(config, limits, _announce)
