"""Jobs paid in an ERC-20 token (TestToken on dev chains)."""

from __future__ import annotations

import os

import pytest

from ledger.artifacts import load_artifact
from ledger.client import EscrowClient
from ledger.errors import ChainRevert
from tests.ledger.conftest import ETHER, GRACE_S, Env


def token_of(env: Env, client: EscrowClient) -> object:
    return client.w3.eth.contract(address=env.token, abi=load_artifact("TestToken")["abi"])


def test_token_job_pays_in_token(env: Env) -> None:
    req, worker = env.requester, env.workers[0]
    token = token_of(env, req)
    req.sender.transact(token.functions.mint(req.sender.address, 10 * ETHER))  # type: ignore[attr-defined]
    req.sender.transact(token.functions.approve(env.escrow, 10 * ETHER))  # type: ignore[attr-defined]
    job_id, deadline_s = os.urandom(32), env.deadline_in(3600)
    with pytest.raises(ChainRevert, match="reverted without reason"):
        req.deposit(job_id, 11 * ETHER, deadline_s, token=env.token)
    req.deposit(job_id, 10 * ETHER, deadline_s, token=env.token)
    assert req.balance_wei() == 0  # no native coin moved
    req.open_lanes(job_id, [(worker.account, 4 * ETHER)])
    env.outsider.redeem(env.voucher(job_id, worker, 4 * ETHER))
    balance = token.functions.balanceOf  # type: ignore[attr-defined]
    assert balance(worker.sender.address).call() == 4 * ETHER
    env.chain.advance_time(deadline_s + GRACE_S + 1 - env.chain.timestamp_s())
    env.outsider.refund(job_id, req.account)
    assert balance(req.sender.address).call() == 6 * ETHER
    assert balance(env.escrow).call() == 0
