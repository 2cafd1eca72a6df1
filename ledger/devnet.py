"""A local development network: anvil plus the deployed contracts.

Used by ``pictor chain up`` and by tests; prints nothing itself. The funded
accounts are anvil's well-known dev keys — never use them on a real chain.
"""

from __future__ import annotations

from dataclasses import dataclass

from eth_account import Account

from ledger.anvil import AnvilChain, start_anvil
from ledger.client import EscrowClient
from ledger.deploy import EscrowParams, deploy_escrow, deploy_test_token
from ledger.tx import TxSender


@dataclass(frozen=True, slots=True)
class Devnet:
    rpc_url: str
    chain_id: int
    escrow: str
    token: str
    accounts: tuple[str, ...]  # funded addresses (keys stay in anvil's dev mnemonic)


def bring_up(params: EscrowParams, accounts: int = 10) -> tuple[AnvilChain, Devnet]:
    """Start anvil and deploy Escrow and TestToken from the first dev account."""
    chain = start_anvil(accounts=accounts)
    try:
        sender = TxSender(chain.w3, chain.funded_keys[0])
        escrow = deploy_escrow(sender, params)
        token = deploy_test_token(sender)
    except BaseException:
        chain.close()
        raise
    assert chain.rpc_url is not None
    addresses = tuple(Account.from_key(k).address for k in chain.funded_keys)
    return chain, Devnet(chain.rpc_url, chain.chain_id, escrow, token, addresses)


def stake_checker(chain: AnvilChain, escrow: str, payment_key: bytes) -> None:
    """Stake the escrow's minimum checker stake from ``payment_key`` and register it as a
    checker, as a real checker must: its verdicts count in the public record only then
    (``protocol.record.stake_admits``), and requesters ask only checkers whose stake
    covers a claim of their pass (``checker_stake_wei``, by default the slash cap,
    which the minimum exceeds)."""
    client = EscrowClient(TxSender(chain.w3, payment_key), escrow)
    client.send(client.calls.stake(client.checker_min_stake_wei()))
    client.send(client.calls.register_checker())
