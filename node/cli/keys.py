"""``pictor keys``: create and inspect node and payment keys."""

from __future__ import annotations

import os
from pathlib import Path

import typer

from node.cli.console import err_console, out_console
from node.keyfile import (
    KeyFileError,
    read_key_file,
    read_payment_key_file,
    write_key_file,
    write_payment_key_file,
)
from protocol import NodeKey, PaymentBinding
from protocol.identity import address_text

app = typer.Typer(help="Create and inspect a node's keys (node identity and payment address).")

DirOption = typer.Option(
    Path("~/.pictor").expanduser(), "--data-dir", help="Node data directory holding the keys."
)


@app.command("new")
def new(
    data_dir: Path = DirOption, force: bool = typer.Option(False, help="Replace keys.")
) -> None:
    """Create an Ed25519 node key and a secp256k1 payment key (files mode 0600)."""
    node_path, pay_path = data_dir / "node.key", data_dir / "payment.key"
    if not force and (node_path.exists() or pay_path.exists()):
        err_console().print(
            f"[red]Keys already exist in {data_dir}.[/] Use --force to replace them "
            "(the old identity and its reputation are then lost)."
        )
        raise typer.Exit(1)
    write_key_file(node_path, NodeKey.generate())
    write_payment_key_file(pay_path, os.urandom(32))
    show(data_dir)


@app.command("show")
def show(data_dir: Path = DirOption) -> None:
    """Print the node id (libp2p peer id) and the bound payment address. Never the secrets."""
    try:
        key = read_key_file(data_dir / "node.key")
        binding = PaymentBinding.create(key, read_payment_key_file(data_dir / "payment.key"))
    except KeyFileError as exc:
        err_console().print(f"[red]{exc}[/]")
        raise typer.Exit(1) from None
    binding.verify()
    console = out_console()
    console.print(f"node id          {key.node_id}")
    console.print(f"payment address  {address_text(binding.address)}")
