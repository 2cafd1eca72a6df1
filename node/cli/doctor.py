"""``pictor doctor``: is this machine ready to work on a Pictor network, and if not, what to do.

Each check says ok, warn or fail, what it found, and the next command to run:
Blender (the renderer every worker and checker runs), the sandbox (scenes
render without network access, as another user), the GPU (NVML), the chain
(RPC answers with the configured chain id and the escrow has code), a checker's
stake (requesters ask only checkers whose stake covers a claim of their pass; the
record counts verdicts of registered checkers with the escrow's minimum), the node
(running, listening beyond loopback, connected to peers), the ports (free
for a node that is not running) and the clock (peers' adverts arrive within
the replay window, the chain's newest block is not far from our time). Exit
status 1 when any check fails.
"""

from __future__ import annotations

import socket
import statistics
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from rich.table import Table

from ledger.errors import ChainRevert, LedgerError
from node.cli.console import out_console
from node.cli.init_cmd import DataDirOption
from node.config import ConfigError, NodeConfig, default_data_dir, load_config
from node.devnet.api import ApiError, NodeApi
from protocol.money import format_eth
from protocol.slashing import may_back_claim, signer_free_wei

_STYLE = {"ok": "green", "warn": "yellow", "fail": "red"}


@dataclass(frozen=True)
class Check:
    name: str
    status: str  # ok | warn | fail
    detail: str
    fix: str = ""


def clock_skew_s(adverts: list[dict[str, Any]]) -> float | None:
    """Median of (received - signed) over peers' adverts: how far our clock runs ahead of
    theirs, plus gossip delay (milliseconds on a LAN). None without adverts."""
    gaps = [(a["received_ms"] - a["advert_timestamp_ms"]) / 1000 for a in adverts]
    return statistics.median(gaps) if gaps else None


def judge_clock(skew_s: float | None, window_s: float, source: str) -> Check:
    if skew_s is None:
        return Check("clock", "warn", "nothing to compare with (no peers' adverts, no chain)",
                     "run the node connected to peers, then `pictor doctor` again")  # fmt: skip
    if abs(skew_s) > window_s:
        return Check("clock", "fail", f"{skew_s:+.1f} s from {source}; messages more than "
                     f"{window_s:.0f} s off are refused as replays",
                     "sync the clock: `timedatectl set-ntp true`")  # fmt: skip
    if abs(skew_s) > window_s / 4:
        return Check("clock", "warn", f"{skew_s:+.1f} s from {source}", "enable NTP")
    return Check("clock", "ok", f"{skew_s:+.1f} s from {source}")


def check_blender(executable: str = "blender") -> Check:
    try:
        done = subprocess.run([executable, "-b", "--factory-startup", "--version"],
                              capture_output=True, text=True, timeout=60, check=False)  # fmt: skip
    except (OSError, subprocess.TimeoutExpired) as exc:
        return Check("blender", "fail", f"{executable}: {exc}",
                     "install it: `sudo apt-get install blender` (or scripts/setup)")  # fmt: skip
    version = next((ln.strip() for ln in done.stdout.splitlines() if ln.startswith("Blender")), "")
    if done.returncode != 0 or not version:
        return Check("blender", "fail", f"{executable} --version failed (exit {done.returncode})",
                     "reinstall Blender")  # fmt: skip
    return Check("blender", "ok", version)


def check_sandbox() -> Check:
    from node.render.sandbox import probe_sandbox

    box = probe_sandbox()
    user = "as another user" if box.run_as else "as this user"
    if not box.network_isolated:
        return Check("sandbox", "warn", f"scenes would render with network access, {user}",
                     "allow network namespaces (`unshare -n true` must work: run as root or "
                     "enable unprivileged user namespaces)")  # fmt: skip
    return Check("sandbox", "ok", f"no network for scenes, {user}")


def check_gpu() -> Check:
    from node.render.gpu import probe_gpus

    probe = probe_gpus()
    if not probe.available:
        return Check("gpu", "warn", f"{probe.detail}: renders run on the CPU",
                     "install the NVIDIA driver to render on a GPU")  # fmt: skip
    models = ", ".join(f"{g.model} ({g.vram_mib} MiB)" for g in probe.gpus)
    return Check("gpu", "ok", f"{probe.detail}: {models}; driver {probe.driver_version}")


def _rpc(url: str, method: str, params: list[Any]) -> Any:
    body = {"jsonrpc": "2.0", "id": 1, "method": method, "params": params}
    return httpx.post(url, json=body, timeout=5).json()["result"]


def check_chain(config: NodeConfig) -> tuple[Check, float | None]:
    """The chain check, and the chain clock's offset from ours (for the clock check)."""
    if not config.chain_rpc_url:
        return Check("chain", "warn", "no chain configured: this node can neither escrow nor be "
                     "paid", f"set chain_rpc_url, chain_id, escrow_address in "
                     f"{config.data_dir / 'config.toml'}"), None  # fmt: skip
    url = config.chain_rpc_url
    try:
        chain_id = int(_rpc(url, "eth_chainId", []), 16)
        code = _rpc(url, "eth_getCode", [config.escrow_address, "latest"])
        block = _rpc(url, "eth_getBlockByNumber", ["latest", False])
    except (httpx.HTTPError, ValueError, KeyError, TypeError) as exc:
        return Check("chain", "fail", f"{url} does not answer: {exc}",
                     "start the chain or fix chain_rpc_url"), None  # fmt: skip
    offset_s = time.time() - int(block["timestamp"], 16)
    if chain_id != config.chain_id:
        return Check("chain", "fail", f"{url} is chain {chain_id}, config says {config.chain_id}",
                     "fix chain_id in config.toml"), offset_s  # fmt: skip
    if code in ("0x", "", None):
        return Check("chain", "fail", f"no contract at escrow_address {config.escrow_address}",
                     "fix escrow_address in config.toml"), offset_s  # fmt: skip
    return Check("chain", "ok", f"chain {chain_id} at {url}, escrow deployed"), offset_s


def judge_checker_stake(
    active_wei: int, registered: bool, minimum_wei: int, cap_wei: int, locked_wei: int = 0
) -> Check:
    """A checker is asked for checks only with free stake (active, less what pending claims
    lock: requesters read that) covering a claim of its pass (the slash cap: requesters'
    default ``checker_stake_wei``), counts in the public record only registered with the
    escrow's minimum, and can sign a claim (or an answer) only with a cap free besides the
    cap the claim locks (``protocol.slashing.may_back_claim``)."""
    free_wei = active_wei - locked_wei
    # the minimum is judged on active stake, the caps on free stake; registering needs a
    # deposit (--checker registers after it): a wei when nothing more is needed
    need_wei = max(minimum_wei - active_wei, signer_free_wei(cap_wei) - free_wei, 0 if registered else 1)
    # a bare number is wei (protocol.money): exact, whatever the amount
    fix = f"pictor stake deposit {need_wei} --checker"
    locked = f" ({format_eth(locked_wei)} locked by claims)" if locked_wei else ""
    if free_wei < cap_wei:
        return Check("checker stake", "fail", f"{format_eth(free_wei)} free{locked}: requesters ask "
                     f"only checkers holding {format_eth(cap_wei)} free (a claim of one pass)", fix)  # fmt: skip
    if not registered or active_wei < minimum_wei:
        return Check("checker stake", "warn", f"{format_eth(active_wei)} active, "
                     f"{'registered' if registered else 'not registered'}: verdicts count in the "
                     f"public record from {format_eth(minimum_wei)}, registered", fix)  # fmt: skip
    if not may_back_claim(active_wei, locked_wei, cap_wei):
        return Check("checker stake", "warn", f"{format_eth(free_wei)} free{locked}: it cannot sign "
                     f"a claim, which locks {format_eth(cap_wei)} and keeps as much more free", fix)  # fmt: skip
    return Check("checker stake", "ok", f"{format_eth(active_wei)} active{locked}, registered")


def check_checker_stake(config: NodeConfig) -> Check | None:
    """The checker's stake as its chain has it (None: not a checker, or no chain)."""
    if "checker" not in config.roles or not config.chain_rpc_url or not config.escrow_address:
        return None
    from node.cli.stake import StakeError, open_escrow

    try:
        escrow = open_escrow(config.data_dir)
        state = escrow.stake_of()
        return judge_checker_stake(state.active_wei, escrow.is_checker(escrow.account),
                                   escrow.checker_min_stake_wei(), escrow.slash_cap_wei(),
                                   state.locked_wei)  # fmt: skip
    except (StakeError, LedgerError) as exc:
        return Check("checker stake", "fail", f"cannot read it: {str(exc)[:120]}",
                     "see the chain check above")  # fmt: skip


def check_min_stake(config: NodeConfig) -> Check | None:
    """A client asking a minimum stake reads each bidder's open lanes from the escrow
    (docs/LEDGER.md, "One stake, many jobs"); an escrow that cannot count them leaves
    every bidder unread, so nobody qualifies (None: no minimum asked, or no chain)."""
    if (not config.min_stake_wei or "client" not in config.roles or not config.chain_rpc_url
            or not config.escrow_address):  # fmt: skip
        return None
    from node.cli.stake import StakeError, open_escrow

    try:
        escrow = open_escrow(config.data_dir)
        escrow.open_lanes_of(escrow.account)
    except ChainRevert as exc:  # the escrow refuses the call: one without the count
        return Check("min stake", "fail", f"min_stake_wei is {format_eth(config.min_stake_wei)} "
                     f"but the escrow does not count open lanes ({str(exc)[:80]}): no bidder "
                     "qualifies", "deploy a current escrow (pictor chain up) and set "
                     "escrow_address, or set min_stake_wei = 0 in config.toml")  # fmt: skip
    except (StakeError, LedgerError) as exc:
        return Check("min stake", "fail", f"cannot read the escrow's open-lane count: "
                     f"{str(exc)[:120]}", "see the chain check above")  # fmt: skip
    return Check("min stake", "ok", f"bidders need {format_eth(config.min_stake_wei)} for each "
                 "job they are open in; the escrow counts them")  # fmt: skip


def check_node(config: NodeConfig) -> tuple[list[Check], list[dict[str, Any]] | None]:
    """Node, reachability and ports; the adverts it knows when it runs (for the clock)."""
    start = f"pictor node run --data-dir {config.data_dir}"
    try:
        api = NodeApi.for_data_dir(config.data_dir)
    except (OSError, ValueError) as exc:
        return [Check("node", "fail", f"cannot read its API token: {exc}", "pictor init"),
                check_ports(config)], None  # fmt: skip
    try:
        status = api.get("/v1/status")
        adverts: list[dict[str, Any]] = api.get("/v1/network")
    except ApiError:
        return [Check("node", "warn", f"not running (nothing answers at {api.base_url})", start),
                check_ports(config)], None  # fmt: skip
    checks = [Check("node", "ok", f"{status['node_id']} running, roles "
                    f"{', '.join(status['roles']) or 'none'}")]  # fmt: skip
    addrs = status["listen_addrs"]
    if all("/127." in a or "/ip6/::1/" in a for a in addrs):
        checks.append(Check("reachability", "warn", "listening on loopback only",
                            "--listen /ip4/0.0.0.0/tcp/4001"))  # fmt: skip
    elif status["connected_peers"] == 0:
        checks.append(Check("reachability", "warn", "no peer connected",
                            "pass --bootstrap <a running node's address> (docs/NODE.md)"))  # fmt: skip
    else:
        checks.append(Check("reachability", "ok", f"{status['connected_peers']} peer(s) "
                            f"connected, {len(adverts)} advert(s) known"))  # fmt: skip
    return checks, adverts


def check_ports(config: NodeConfig) -> Check:
    busy = []
    ports = [("API", "127.0.0.1", config.api_port)]
    for addr in config.listen_addrs:
        parts = addr.split("/")
        if len(parts) >= 5 and parts[1] == "ip4" and parts[3] == "tcp":
            ports.append(("libp2p", parts[2], int(parts[4])))
    for what, host, port in ports:
        if port == 0:
            continue
        with socket.socket() as s:
            try:
                s.bind((host, port))
            except OSError as exc:
                busy.append(f"{what} {host}:{port} ({exc.strerror})")
    if busy:
        return Check("ports", "fail", "in use: " + ", ".join(busy),
                     "stop what holds them, or pick others (--api-port, --listen)")  # fmt: skip
    return Check("ports", "ok", "API and listen ports free")


def doctor(data_dir: Path | None = DataDirOption) -> None:
    """Check Blender, sandbox, GPU, chain (a checker's stake, a client's minimum stake), the
    node's reachability, ports and clock."""
    import typer

    data_dir = (data_dir or default_data_dir()).expanduser()
    try:
        config = load_config(data_dir)
    except ConfigError as exc:
        out_console().print(f"[red]config:[/] {exc}", highlight=False)
        raise typer.Exit(1) from None
    checks = [check_blender(), check_sandbox(), check_gpu()]
    chain, chain_offset_s = check_chain(config)
    node_checks, adverts = check_node(config)
    checks += [chain, *node_checks]
    if chain.status == "ok" and (stake := check_checker_stake(config)) is not None:
        checks.append(stake)
    if chain.status == "ok" and (minimum := check_min_stake(config)) is not None:
        checks.append(minimum)
    if adverts:
        checks.append(judge_clock(clock_skew_s(adverts), config.replay_skew_s, "peers' adverts"))
    else:
        checks.append(judge_clock(chain_offset_s, config.replay_skew_s, "the chain's newest block"))
    table = Table("check", "")
    for name in ("found", "fix"):  # folded, never cut: a path or a command is copied whole
        table.add_column(name, overflow="fold")
    for c in checks:
        table.add_row(c.name, f"[{_STYLE[c.status]}]{c.status}[/]", c.detail, c.fix)
    out_console().print(table)
    if any(c.status == "fail" for c in checks):
        raise typer.Exit(1)
