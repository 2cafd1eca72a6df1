"""``pictor status``, ``pictor peers``, ``pictor network``: the local API as tables."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import typer
from rich.table import Table

from node.cli.console import err_console, out_console
from node.cli.init_cmd import DataDirOption
from node.config import ConfigError, default_data_dir, load_config
from node.keyfile import KeyFileError, read_secret_file
from protocol.money import format_eth

API_TIMEOUT_S = 30.0  # a busy node (renders, a loaded box) still answers within this


def _fail(message: str) -> None:
    err_console().print(f"[bold red]error:[/] {message}")
    raise typer.Exit(1)


def _get(data_dir: Path | None, path: str, *, optional: bool = False) -> Any:
    data_dir = (data_dir or default_data_dir()).expanduser()
    try:
        config = load_config(data_dir)
        token = read_secret_file(config.api_token_path)
    except (ConfigError, KeyFileError) as exc:
        _fail(str(exc))
        raise  # unreachable; keeps type checkers honest
    addr_file = config.api_addr_path
    base = (
        addr_file.read_text().strip()
        if addr_file.exists()
        else f"http://127.0.0.1:{config.api_port}"
    )
    try:
        response = httpx.get(base + path, headers={"Authorization": f"Bearer {token}"},
                             timeout=API_TIMEOUT_S)  # fmt: skip
    except httpx.TimeoutException:
        _fail(f"the node at {base} did not answer within {API_TIMEOUT_S:.0f} s (busy?); "
              "try again, or see its log")  # fmt: skip
        raise
    except httpx.TransportError:
        _fail(f"node not running at {base}; start it with `pictor node run --data-dir {data_dir}`")
        raise
    if response.status_code == 401:
        _fail(f"the node at {base} refused the API token in {config.api_token_path}")
    if optional and response.status_code == 404:
        return None
    response.raise_for_status()
    return response.json()


def status(data_dir: Path | None = DataDirOption) -> None:
    """Show the local node's identity, roles, addresses and uptime."""
    info = _get(data_dir, "/v1/status")
    table = Table(show_header=False, box=None)
    for key, value in info.items():
        table.add_row(key, "\n".join(value) if isinstance(value, list) else str(value))
    for key, value in _work_rows(_get(data_dir, "/v1/roles", optional=True)):
        table.add_row(key, value)
    out_console().print(table)


def _work_rows(roles: dict[str, Any] | None) -> list[tuple[str, str]]:
    """What the node did and earned: frames, checks, and pay (exact ETH from wei)."""
    if not roles:
        return []
    rows = []
    if roles.get("worker"):
        rows.append(("frames rendered", str(roles["worker"]["rendered"])))
    if roles.get("checker"):
        rows.append(("frames checked", str(roles["checker"]["checked"])))
    if roles.get("payee"):
        rows.append(("earned (paid on chain)", format_eth(int(roles["payee"]["paid_wei"]))))
        rows.append(("owed (vouchers held)", format_eth(int(roles["payee"]["owed_wei"]))))
    elif roles.get("worker") or roles.get("checker"):
        rows.append(("earned", "nothing can be paid: no chain configured (chain_rpc_url)"))
    return rows


def peers(data_dir: Path | None = DataDirOption) -> None:
    """List known peers: connected or not, score, bans and refusals."""
    table = Table("peer", "connected", "score", "banned", "rejected", "addrs")
    for peer in _get(data_dir, "/v1/peers"):
        rejected = ", ".join(f"{k}={v}" for k, v in peer["rejected"].items())
        table.add_row(
            peer["peer_id"],
            "yes" if peer["connected"] else "no",
            f"{peer['score']:.1f}",
            "yes" if peer["banned"] else "",
            rejected,
            "\n".join(peer["addrs"]),
        )
    out_console().print(table)


def network(data_dir: Path | None = DataDirOption) -> None:
    """Show the network's capacity as seen in peers' CapacityAdverts."""
    table = Table("peer", "roles", "gpus", "renderers", "ru/h", "wei/ru", "free")
    for advert in _get(data_dir, "/v1/network"):
        gpus = ", ".join(f"{g['model']} ({g['vram_mib']} MiB)" for g in advert["gpus"]) or "-"
        table.add_row(
            advert["peer_id"],
            ", ".join(advert["roles"]) or "-",
            gpus,
            ", ".join(advert["renderer_builds"]) or "-",
            str(advert["score_ru_per_hour"]),
            advert["price_wei_per_ru"],
            str(advert["free_slots"]),
        )
    out_console().print(table)
