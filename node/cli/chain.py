"""``pictor chain``: a local development chain with the Pictor contracts."""

from __future__ import annotations

import typer

from ledger.anvil import AnvilNotFound
from ledger.deploy import EscrowParams
from ledger.devnet import bring_up
from node.cli.console import err_console, out_console

app = typer.Typer(help="Run a local EVM dev chain (anvil) with the escrow deployed.")
DEFAULTS = EscrowParams()


@app.command("up")
def up(
    grace_s: int = typer.Option(DEFAULTS.grace_s, help="Voucher grace period after a job's deadline."),
    unbonding_s: int = typer.Option(DEFAULTS.unbonding_s, help="Stake unbonding delay."),
    quorum: int = typer.Option(DEFAULTS.slash_quorum, help="Checker signatures needed to slash."),
    slash_cap_wei: int = typer.Option(DEFAULTS.slash_cap_wei, help="Most one fraud claim (one frame) takes, wei."),
    challenge_s: int = typer.Option(DEFAULTS.challenge_s, help="Time a worker has to answer a fraud claim."),
    accounts: int = typer.Option(10, help="Funded dev accounts."),
) -> None:
    """Start anvil, deploy Escrow and TestToken, print the addresses, run until Ctrl-C."""
    console = out_console()
    params = EscrowParams(grace_s=grace_s, unbonding_s=unbonding_s, slash_quorum=quorum,
                          slash_cap_wei=slash_cap_wei, challenge_s=challenge_s)  # fmt: skip
    try:
        chain, net = bring_up(params, accounts)
    except AnvilNotFound as exc:
        err_console().print(f"[red]{exc}[/]")
        raise typer.Exit(1) from exc
    console.print(f"RPC URL   {net.rpc_url}")
    console.print(f"chain id  {net.chain_id}")
    console.print(f"Escrow    {net.escrow}")
    console.print(f"TestToken {net.token}")
    console.print("funded accounts (anvil's public dev mnemonic; never use on a real chain):")
    for address in net.accounts:
        console.print(f"  {address}")
    console.print("Ctrl-C to stop.")
    try:
        assert chain.process is not None
        chain.process.wait()
    except KeyboardInterrupt:
        pass
    finally:
        chain.close()
