"""``pictor stake``: deposit, unbond and withdraw the node's stake in the escrow, and show it.

Works on the chain the node's config names (``chain_rpc_url``, ``chain_id``,
``escrow_address``) with the node's payment key, so a devnet node's data dir is
enough: ``pictor stake status --data-dir .devnet/nodes/w1``. Amounts are integer
wei, parsed by ``protocol.money`` (``0.5eth``, ``5gwei``, a bare number is wei).
Every command checks what the contract would refuse before it sends, and says why.
"""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from ledger.backends import connect
from ledger.client import EscrowClient, StakeState
from ledger.errors import ChainRevert, LedgerError
from ledger.tx import TxSender
from node.cli.console import err_console, out_console
from node.cli.init_cmd import DataDirOption
from node.config import ConfigError, default_data_dir, load_config
from node.keyfile import KeyFileError, read_payment_key_file
from protocol.identity import address_text
from protocol.money import format_eth, parse_amount_wei

app = typer.Typer(help="Stake coin in the escrow so that requesters can trust the node's work.")
AmountArg = typer.Argument(..., help="Amount: 0.5eth, 5gwei or a whole number of wei.")


class StakeError(Exception):
    """A refusal to show the user, in words."""


def _fail(message: str) -> None:
    err_console().print(f"[bold red]error:[/] {message}")
    raise typer.Exit(1)


def open_escrow(data_dir: Path | None) -> EscrowClient:
    """The node's escrow client: its config's chain, its payment key."""
    data_dir = (data_dir or default_data_dir()).expanduser()
    try:
        config = load_config(data_dir)
        key = read_payment_key_file(config.payment_key_path)
    except (ConfigError, KeyFileError) as exc:
        raise StakeError(str(exc)) from exc
    if not config.chain_rpc_url or not config.escrow_address:
        raise StakeError(
            f"no chain configured in {data_dir}: set chain_rpc_url, chain_id and escrow_address"
        )
    w3 = connect(config.chain_rpc_url, config.chain_id or None, timeout_s=10.0)
    return EscrowClient(TxSender(w3, key), config.escrow_address)


def _amount(text: str) -> int:
    try:
        wei = parse_amount_wei(text)
    except ValueError as exc:
        raise StakeError(str(exc)) from exc
    if wei <= 0:
        raise StakeError("the amount must be more than 0 wei")
    return wei


def deposit_stake(escrow: EscrowClient, amount_wei: int, *, checker: bool) -> StakeState:
    balance = escrow.coin_of_wei()
    if amount_wei >= balance:
        raise StakeError(
            f"{format_eth(amount_wei)} is not less than the account's balance "
            f"{format_eth(balance)} (gas must be paid too)"
        )
    if checker:
        minimum = escrow.checker_min_stake_wei()
        active = escrow.stake_of().active_wei + amount_wei
        if active < minimum:
            raise StakeError(
                f"a checker needs {format_eth(minimum)} active stake; "
                f"this deposit leaves {format_eth(active)}"
            )
    escrow.send(escrow.calls.stake(amount_wei))
    if checker:
        escrow.send(escrow.calls.register_checker())
    return escrow.stake_of()


def unbond_stake(escrow: EscrowClient, amount_wei: int) -> StakeState:
    st = escrow.stake_of()
    if amount_wei > st.free_wei:
        locked = f" ({format_eth(st.locked_wei)} locked by pending fraud claims)" if st.locked_wei else ""
        raise StakeError(
            f"only {format_eth(st.free_wei)} can be unbonded{locked}; asked {format_eth(amount_wei)}"
        )
    escrow.send(escrow.calls.request_unbond(amount_wei))
    return escrow.stake_of()


def withdraw_stake(escrow: EscrowClient) -> int:
    """Withdraw the unbonded stake; returns the amount."""
    st = escrow.stake_of()
    if st.unbonding_wei == 0:
        raise StakeError("nothing is unbonding: run `pictor stake unbond AMOUNT` first")
    now_s = escrow.chain_time_s()
    if now_s < st.unbond_at_s:
        raise StakeError(
            f"{format_eth(st.unbonding_wei)} is still unbonding: withdrawable at chain time "
            f"{st.unbond_at_s} (in {st.unbond_at_s - now_s} s)"
        )
    escrow.send(escrow.calls.withdraw_stake())
    return st.unbonding_wei


def _show(escrow: EscrowClient, st: StakeState) -> None:
    table = Table(show_header=False, box=None)
    account = address_text(escrow.account)
    table.add_row("account", account)
    table.add_row("escrow", escrow.address)
    table.add_row("active", format_eth(st.active_wei))
    table.add_row("locked (claims)", format_eth(st.locked_wei))
    table.add_row("unbonding", format_eth(st.unbonding_wei))
    if st.unbonding_wei:
        table.add_row("withdrawable at", f"chain time {st.unbond_at_s}")
    # What a requester asking a minimum counts: each job must be backed (docs/LEDGER.md)
    try:
        lanes = escrow.open_lanes_of(escrow.account)
        table.add_row("open lanes", f"{lanes} (a requester asking a minimum wants {lanes + 1}× it)")
    except ChainRevert:  # an escrow deployed before the count (stop 43) refuses the call
        table.add_row("open lanes", "not counted by this escrow")
    except LedgerError as exc:
        table.add_row("open lanes", f"not read: {str(exc)[:80]}")
    table.add_row("checker", "yes" if escrow.is_checker(escrow.account) else "no")
    table.add_row("credit", format_eth(escrow.credit_wei(escrow.account)))
    out_console().print(table)


def _run(data_dir: Path | None, action: str, text: str = "", checker: bool = False) -> None:
    try:
        escrow = open_escrow(data_dir)
        if action == "deposit":
            _show(escrow, deposit_stake(escrow, _amount(text), checker=checker))
        elif action == "unbond":
            _show(escrow, unbond_stake(escrow, _amount(text)))
        elif action == "withdraw":
            out_console().print(f"withdrew {format_eth(withdraw_stake(escrow))}")
            _show(escrow, escrow.stake_of())
        else:
            _show(escrow, escrow.stake_of())
    except StakeError as exc:
        _fail(str(exc))
    except ChainRevert as exc:
        _fail(f"the escrow refused: {exc.reason}")
    except LedgerError as exc:
        _fail(f"chain: {exc}")


@app.command("deposit")
def deposit(
    amount: str = AmountArg,
    checker: bool = typer.Option(False, "--checker", help="Also register as a checker."),
    data_dir: Path | None = DataDirOption,
) -> None:
    """Add stake from the node's payment account (and register as a checker)."""
    _run(data_dir, "deposit", amount, checker)


@app.command("unbond")
def unbond(amount: str = AmountArg, data_dir: Path | None = DataDirOption) -> None:
    """Start unbonding stake; it stays slashable and is withdrawable after the delay."""
    _run(data_dir, "unbond", amount)


@app.command("withdraw")
def withdraw(data_dir: Path | None = DataDirOption) -> None:
    """Withdraw stake whose unbonding delay has passed."""
    _run(data_dir, "withdraw")


@app.command("status")
def status(data_dir: Path | None = DataDirOption) -> None:
    """Show the node's stake as the chain has it."""
    _run(data_dir, "status")
