"""``pictor node run``: start one node (libp2p host, store, local API) in this process."""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import trio
import typer

from node.cli.console import err_console
from node.cli.init_cmd import DataDirOption
from node.config import ConfigError, NodeConfig, default_data_dir, load_config
from node.keyfile import KeyFileError, read_key_file, read_payment_key_file, read_secret_file
from node.log import log_event, setup_logging
from protocol.messages import Role

if TYPE_CHECKING:
    from node.app.run import RunningNode

app = typer.Typer(help="Run and manage the local Pictor node.")


@app.callback()
def node() -> None:
    """Run and manage the local Pictor node."""


def _roles(worker: bool, checker: bool, client: bool) -> list[str] | None:
    chosen = [
        name for name, on in (("worker", worker), ("checker", checker), ("client", client)) if on
    ]
    return chosen or None


def _fail(message: str, code: int = 2) -> None:
    err_console().print(f"[bold red]error:[/] {message}")
    raise typer.Exit(code)


@app.command("run")
def run(
    data_dir: Path | None = DataDirOption,
    worker: bool = typer.Option(False, "--worker", help="Offer this machine's GPUs as a worker."),
    checker: bool = typer.Option(False, "--checker", help="Verify other workers' frames."),
    client: bool = typer.Option(False, "--client", help="Submit render jobs."),
    listen: Annotated[
        list[str] | None, typer.Option("--listen", help="libp2p listen multiaddr.")
    ] = None,
    bootstrap: Annotated[
        list[str] | None, typer.Option("--bootstrap", help="Peer to dial first.")
    ] = None,
    api_port: int | None = typer.Option(None, "--api-port", help="Local API port (0 = any)."),
    mdns: bool | None = typer.Option(None, "--mdns/--no-mdns", help="mDNS discovery."),
    log_json: bool | None = typer.Option(None, "--log-json/--log-text", help="Log format."),
    reachability: str | None = typer.Option(
        None, "--reachability", help="auto, public or private (behind NAT: use a relay)."
    ),
    relay: Annotated[
        list[str] | None,
        typer.Option("--relay", help="Relay multiaddr (default: the bootstrap peers)."),
    ] = None,
    checker_stake_wei: int | None = typer.Option(
        None, "--checker-stake-wei",
        help="As a requester with a chain: ask only checkers whose confirmed stake is at "
        "least this (wei). Default -1: what one claim of a missed plant takes (the "
        "escrow's SLASH_CAP); 0: no checker stake (min_stake_wei still applies).",
    ),
) -> None:
    """Start the node and run until SIGINT/SIGTERM; then drain, persist and exit 0.

    Prints one JSON line on stdout once ready: {"event": "ready", "node_id", "api", "addrs"}.
    """
    data_dir = (data_dir or default_data_dir()).expanduser()
    if not data_dir.exists():
        _fail(
            f"no node data directory at {data_dir}; create it with `pictor init --data-dir {data_dir}`"
        )
    overrides = {
        "roles": _roles(worker, checker, client),
        "listen_addrs": listen or None,
        "bootstrap": bootstrap or None,
        "api_port": api_port,
        "mdns": mdns,
        "log_json": log_json,
        "reachability": reachability,
        "relays": relay or None,
        "checker_stake_wei": checker_stake_wei,
    }
    try:
        config = load_config(data_dir, overrides=overrides)
    except ConfigError as exc:
        _fail(str(exc))
        return
    try:  # refuse missing or exposed secrets before starting anything
        read_key_file(config.key_path)
        read_payment_key_file(config.payment_key_path)
        read_secret_file(config.api_token_path)
    except KeyFileError as exc:
        _fail(str(exc))
    setup_logging(json_lines=config.log_json, level=config.log_level)
    for warning in standalone_warnings(config):
        log_event(logging.getLogger(__name__), logging.WARNING, warning)
    # Imported here: libp2p and FastAPI take a second or two to import, which
    # every other `pictor` command should not pay.
    from node.app.run import run_until_signalled

    try:
        trio.run(run_until_signalled, config, _announce)
    except OSError as exc:
        _fail(f"cannot start the node: {exc}", code=1)
    logging.getLogger(__name__).info("exited cleanly")


def standalone_warnings(config: NodeConfig) -> list[str]:
    """What keeps a worker or checker from being found or paid, said at start with the fix."""
    if not {Role.WORKER, Role.CHECKER} & set(config.roles):
        return []
    out = []
    loopback_only = all("/127." in a or "/ip6/::1/" in a for a in config.listen_addrs)
    if not config.bootstrap:
        heard = ("only nodes on this LAN that mDNS finds" if config.mdns and not loopback_only
                 else "nobody")  # fmt: skip
        out.append(f"no bootstrap peer: this node dials {heard}, so it hears of no jobs unless "
                   "another node bootstraps from it. Pass --bootstrap with a running node's "
                   "address: `pictor status` there lists listen_addrs (/ip4/.../tcp/.../p2p/"
                   "12D3KooW...; replace 0.0.0.0 with that machine's IP), or set bootstrap in "
                   "config.toml")  # fmt: skip
    if loopback_only:
        out.append("listening on loopback only: nodes on other machines cannot dial it "
                   "(--listen /ip4/0.0.0.0/tcp/4001)")  # fmt: skip
    if not config.chain_rpc_url:
        out.append("no chain configured: vouchers earned cannot be redeemed, so this node is "
                   "not paid. Set chain_rpc_url, chain_id and escrow_address in "
                   f"{config.data_dir / 'config.toml'}")  # fmt: skip
    return out


def _announce(running: RunningNode) -> None:
    node = running.node
    line = {
        "event": "ready",
        "node_id": node.node_id,
        "api": running.api_url,
        "addrs": node.network.listen_addrs(),
    }
    print(json.dumps(line), flush=True)
    sys.stdout.flush()
