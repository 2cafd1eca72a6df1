"""``pictor init``: create a node's data directory, keys, API token and config."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

import typer

from node.cli.console import out_console
from node.config import CONFIG_FILE, CONFIG_TEMPLATE, default_data_dir, load_config
from node.keyfile import (
    read_key_file,
    write_key_file,
    write_payment_key_file,
    write_secret_file,
)
from protocol import NodeKey

DataDirOption = typer.Option(
    None, "--data-dir", help="Node data directory (default: $PICTOR_DATA_DIR or ~/.pictor)."
)


def init(data_dir: Path | None = DataDirOption) -> None:
    """Create the data directory with a node key, payment key, API token (0600) and config.toml.

    Existing files are kept, so running it twice is safe.
    """
    data_dir = (data_dir or default_data_dir()).expanduser()
    data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    config = load_config(data_dir, environ={})
    created = []
    if not config.key_path.exists():
        write_key_file(config.key_path, NodeKey.generate())
        created.append(config.key_path.name)
    if not config.payment_key_path.exists():
        write_payment_key_file(config.payment_key_path, os.urandom(32))
        created.append(config.payment_key_path.name)
    if not config.api_token_path.exists():
        write_secret_file(config.api_token_path, secrets.token_urlsafe(32) + "\n")
        created.append(config.api_token_path.name)
    if not (data_dir / CONFIG_FILE).exists():
        (data_dir / CONFIG_FILE).write_text(CONFIG_TEMPLATE)
        created.append(CONFIG_FILE)
    console = out_console()
    console.print(f"data dir  {data_dir}")
    console.print(f"node id   {read_key_file(config.key_path).node_id}")
    console.print(f"created   {', '.join(created) if created else 'nothing (all present)'}")
    console.print(f"next      pictor node run --data-dir {data_dir}")
