"""The trio wrapper: concurrent sends from one account get distinct, ordered nonces."""

from __future__ import annotations

import os

import pytest
import trio

from ledger.errors import ChainRevert
from ledger.trio_client import TrioEscrow
from tests.ledger.conftest import ETHER, Env


async def test_concurrent_sends_share_one_account(env: Env) -> None:
    # One thread for py-evm (not thread-safe); anvil takes several at once.
    threads = 1 if env.chain.rpc_url is None else 4
    ledger = TrioEscrow(env.requester, trio.CapacityLimiter(threads))
    job_ids = [os.urandom(32) for _ in range(6)]
    deadline_s = env.deadline_in(3600)
    async with trio.open_nursery() as nursery:
        for job_id in job_ids:
            nursery.start_soon(ledger.send, ledger.calls.deposit(job_id, ETHER, deadline_s))
    for job_id in job_ids:
        job = await ledger.run(env.requester.job, job_id)
        assert job.remaining_wei == ETHER


async def test_revert_costs_no_nonce(env: Env) -> None:
    ledger = TrioEscrow(env.requester, trio.CapacityLimiter(1))
    with pytest.raises(ChainRevert, match="no such job"):
        await ledger.send(ledger.calls.refund(os.urandom(32)))
    receipt = await ledger.send(ledger.calls.deposit(os.urandom(32), ETHER, env.deadline_in(60)))
    assert receipt["status"] == 1
