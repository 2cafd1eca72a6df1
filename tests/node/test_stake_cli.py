"""``pictor stake`` against a real anvil chain with the escrow deployed, as a node's data dir
configures it: deposit (and register as a checker), unbond, withdraw, status, and the
refusals it explains before sending anything."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from eth_account import Account
from typer.testing import CliRunner

from ledger.anvil import AnvilChain, find_anvil, start_anvil
from ledger.backends import connect
from ledger.client import EscrowClient
from ledger.deploy import EscrowParams, deploy_escrow, deploy_test_token
from ledger.tx import TxSender
from node.cli.doctor import check_min_stake
from node.cli.main import app
from node.config import load_config
from node.keyfile import write_payment_key_file
from node.roles.chain import ChainLink, ChainSettings

UNBONDING_S = 600
ETHER = 10**18


@pytest.fixture(scope="module")
def chain() -> Iterator[tuple[AnvilChain, str]]:
    if find_anvil() is None:
        pytest.skip("anvil binary missing: npm install --prefix .cache/npm @foundry-rs/anvil")
    with start_anvil() as anvil:
        params = EscrowParams(unbonding_s=UNBONDING_S, checker_min_stake_wei=ETHER)
        yield anvil, deploy_escrow(TxSender(anvil.w3, anvil.funded_keys[0]), params)


def node_dir(tmp_path: Path, anvil: AnvilChain, escrow: str, key: bytes, chain_id: int = 0) -> Path:
    (tmp_path / "config.toml").write_text(
        f'chain_rpc_url = "{anvil.rpc_url}"\nchain_id = {chain_id or anvil.chain_id}\n'
        f'escrow_address = "{escrow}"\n'
    )
    write_payment_key_file(tmp_path / "payment.key", key)
    return tmp_path


def pictor(data_dir: Path, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["stake", *args, "--data-dir", str(data_dir)],
                                env={"COLUMNS": "200"})  # fmt: skip
    return result.exit_code, result.output


def test_stake_lifecycle_from_the_cli(tmp_path: Path, chain: tuple[AnvilChain, str]) -> None:
    anvil, escrow = chain
    key = anvil.funded_keys[3]
    data_dir = node_dir(tmp_path, anvil, escrow, key)
    reader = EscrowClient(TxSender(connect(anvil.rpc_url, anvil.chain_id), key), escrow)

    code, out = pictor(data_dir, "status")
    assert code == 0 and "active           0 ETH" in out and "checker          no" in out, out
    assert "open lanes       0 (a requester asking a minimum wants 1× it)" in out, out
    code, out = pictor(data_dir, "deposit", "0.5eth", "--checker")
    assert code == 1 and "a checker needs 1 ETH active stake" in out, out
    assert reader.stake_of().active_wei == 0  # refused before anything was sent
    code, out = pictor(data_dir, "deposit", "1.5eth", "--checker")
    assert code == 0 and "checker          yes" in out, out
    assert reader.stake_of().active_wei == 3 * ETHER // 2 and reader.is_checker(reader.account)

    code, out = pictor(data_dir, "unbond", "2eth")
    assert code == 1 and "only 1.5 ETH can be unbonded" in out, out
    code, out = pictor(data_dir, "unbond", "0.6eth")  # under the checker minimum
    assert code == 0 and "unbonding        0.6 ETH" in out and "checker          no" in out, out
    code, out = pictor(data_dir, "withdraw")
    assert code == 1 and "still unbonding" in out, out

    anvil.advance_time(UNBONDING_S)
    before = reader.coin_of_wei()
    code, out = pictor(data_dir, "withdraw")
    assert code == 0 and "withdrew 0.6 ETH" in out, out
    assert 0 < reader.coin_of_wei() - before < 6 * ETHER // 10  # the stake came back, less gas
    code, out = pictor(data_dir, "withdraw")
    assert code == 1 and "nothing is unbonding" in out, out


def test_stake_cli_refusals(tmp_path: Path, chain: tuple[AnvilChain, str]) -> None:
    anvil, escrow = chain
    poor = tmp_path / "poor"
    poor.mkdir()
    node_dir(poor, anvil, escrow, os.urandom(32))  # an account without coin
    code, out = pictor(poor, "deposit", "1eth")
    assert code == 1 and "not less than the account's balance 0 ETH" in out, out
    for bad in ("0.5", "abc", "0"):
        code, out = pictor(poor, "deposit", bad)
        assert code == 1 and "error:" in out, (bad, out)
    wrong = tmp_path / "wrong"
    wrong.mkdir()
    node_dir(wrong, anvil, escrow, anvil.funded_keys[4], chain_id=anvil.chain_id + 1)
    code, out = pictor(wrong, "status")
    assert code == 1 and "serves chain id" in out, out
    bare = tmp_path / "bare"
    bare.mkdir()
    write_payment_key_file(bare / "payment.key", bytes(Account.create().key))
    code, out = pictor(bare, "status")
    assert code == 1 and "no chain configured" in out, out


async def test_chain_link_reads_the_stake_the_cli_deposited(
    tmp_path: Path, chain: tuple[AnvilChain, str]
) -> None:
    """What the node's adverts state (``ChainLink.free_stake_wei``) is what `pictor stake`
    put on chain for the same payment key."""
    anvil, escrow = chain
    key = anvil.funded_keys[5]
    link = ChainLink(ChainSettings(str(anvil.rpc_url), anvil.chain_id, escrow), key)
    assert await link.free_stake_wei() == 0
    code, out = pictor(node_dir(tmp_path, anvil, escrow, key), "deposit", "250000000000000000")
    assert code == 0, out
    assert await link.free_stake_wei() == ETHER // 4


def test_doctor_tells_a_client_asking_stake_whether_its_escrow_counts_open_lanes(
    tmp_path: Path, chain: tuple[AnvilChain, str]
) -> None:
    """A client asking a minimum stake on an escrow that cannot count open lanes (one
    deployed before stop 43: here a contract without the call) would qualify nobody."""
    anvil, escrow = chain
    other = deploy_test_token(TxSender(anvil.w3, anvil.funded_keys[0]))
    for name, address, status in (("current", escrow, "ok"), ("old", other, "fail")):
        data_dir = tmp_path / name
        data_dir.mkdir()
        node_dir(data_dir, anvil, address, anvil.funded_keys[6])
        with (data_dir / "config.toml").open("a") as config:
            config.write('roles = ["client"]\nmin_stake_wei = 1000\n')
        check = check_min_stake(load_config(data_dir))
        assert check is not None and check.status == status, check
        assert status == "ok" or "min_stake_wei = 0" in check.fix
