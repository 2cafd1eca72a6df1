"""Deploying the escrow (and the dev-chain test token) from the committed artifacts."""

from __future__ import annotations

from dataclasses import dataclass

from eth_typing import ChecksumAddress
from web3 import Web3

from ledger.artifacts import load_artifact
from ledger.tx import TxSender
from protocol.market.config import MarketConfig
from protocol.slashing import upheld_rejecters


@dataclass(frozen=True, slots=True)
class EscrowParams:
    """Constructor arguments; immutable once deployed."""

    grace_s: int = 24 * 3600  # vouchers stay redeemable this long after the deadline
    unbonding_s: int = 7 * 24 * 3600  # stake stays slashable this long after unbond request
    # Distinct registered checkers needed for a fraud proof: as many as the rejecting
    # verdicts of a default dispute that upholds a rejection (docs/VERIFICATION.md,
    # "Slashing quorum"); any more and no dispute could ever be claimed.
    slash_quorum: int = upheld_rejecters(MarketConfig().dispute_checkers)
    checker_min_stake_wei: int = 10**18
    # The most one fraud claim (one frame) can take from a worker; each claimer locks as much
    # of its own stake. Why 0.1 ether: docs/LEDGER.md, "Slash cap".
    slash_cap_wei: int = 10**17
    challenge_s: int = 2 * 24 * 3600  # a worker's time to answer a fraud claim
    # No job's deadline lies further than this after its first deposit (top-ups included):
    # the claim window of anything signed for a job ends by then + grace_s.
    max_job_s: int = 30 * 24 * 3600


def deploy_contract(sender: TxSender, name: str, *args: object) -> ChecksumAddress:
    artifact = load_artifact(name)
    factory = sender.w3.eth.contract(abi=artifact["abi"], bytecode=artifact["bytecode"])
    receipt = sender.transact(factory.constructor(*args))  # type: ignore[arg-type]
    address = receipt["contractAddress"]
    assert address is not None
    return Web3.to_checksum_address(address)


def deploy_escrow(sender: TxSender, params: EscrowParams | None = None) -> ChecksumAddress:
    p = params or EscrowParams()
    return deploy_contract(sender, "Escrow", p.grace_s, p.unbonding_s, p.slash_quorum,
                           p.checker_min_stake_wei, p.slash_cap_wei, p.challenge_s,
                           p.max_job_s)  # fmt: skip


def deploy_test_token(sender: TxSender) -> ChecksumAddress:
    return deploy_contract(sender, "TestToken")
