"""``pictor ui``: print (or open) the login link of the node's web dashboard.

The link carries the API token in its fragment (``/ui/#token=…``): a browser
never sends a fragment to a server, so the token is in no request line and no
log; the page moves it to the tab's session storage and erases it from the
address bar (``node.ui.routes``). Anyone holding the link controls the node,
as anyone holding ``api.token`` does: the command says so.
"""

from __future__ import annotations

import webbrowser
from pathlib import Path
from typing import Annotated

import typer

from node.cli.console import err_console, out_console
from node.cli.init_cmd import DataDirOption
from node.config import ConfigError, default_data_dir
from node.devnet.api import ApiError, NodeApi
from node.keyfile import KeyFileError

CHECK_TIMEOUT_S = 30.0


def login_link(base_url: str, token: str) -> str:
    return f"{base_url.rstrip('/')}/ui/#token={token}"


def ui(
    data_dir: Path | None = DataDirOption,
    open_browser: Annotated[
        bool, typer.Option("--open", help="Open the link in the default browser too.")
    ] = False,
) -> None:
    """Print the login link of the node's web dashboard (Cloud, Render, Worker, Checker)."""
    data_dir = (data_dir or default_data_dir()).expanduser()
    try:
        api = NodeApi.for_data_dir(data_dir)
        api.get("/v1/status", timeout_s=CHECK_TIMEOUT_S)
    except (ConfigError, KeyFileError, ApiError) as exc:
        err_console().print(f"[bold red]error:[/] {exc}", highlight=False)
        raise typer.Exit(1) from None
    link = login_link(api.base_url, api.token)
    out_console().print(link, highlight=False, soft_wrap=True, markup=False)
    err_console().print(
        "The link holds this node's API token: whoever has it controls the node. "
        "It works only on this machine (the API listens on 127.0.0.1).",
        highlight=False,
    )
    if open_browser:
        webbrowser.open(link)
