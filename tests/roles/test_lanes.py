"""The requester's lane funding: retried through an outage, never twice, a revert is final."""

from __future__ import annotations

import os

import trio

from node.roles.lanes import FUND_RETRY_MAX_S, fund_lanes
from tests.roles.fakes import FakeChain, FakeEscrow

WORKER, CHECKER = b"\x01" * 20, b"\x02" * 20


def setup() -> tuple[FakeEscrow, FakeChain, bytes]:
    escrow = FakeEscrow(lambda: int(trio.current_time()) + 1_000_000)
    chain = FakeChain(escrow, b"\x0a" * 20)
    job_id = os.urandom(32)
    escrow.deposit(chain.address, job_id, 1000, 2_000_000)
    return escrow, chain, job_id


async def test_an_outage_is_retried_with_backoff_and_the_lanes_are_funded_once(
    autojump_clock: trio.testing.MockClock,
) -> None:
    escrow, chain, job_id = setup()
    chain.down = True
    async with trio.open_nursery() as nursery:
        nursery.start_soon(fund_lanes, chain, job_id, {WORKER: 300, CHECKER: 30})
        await chain.wait_calls("lanes", 8)  # 1, 2, 4, … s apart, capped
        assert trio.current_time() >= 1 + 2 + 4 + 8 + 16 + FUND_RETRY_MAX_S
        chain.down = False
    # a second pass (a retry, or a restart replaying the same totals) funds nothing more
    await fund_lanes(chain, job_id, {WORKER: 300, CHECKER: 30})
    assert escrow.lane(chain.address, job_id, WORKER).total_wei == 300
    assert escrow.lane(chain.address, job_id, CHECKER).total_wei == 30
    assert [t.what for t in chain.transactions] == ["open_lanes"]
    # a later top-up funds only the difference
    await fund_lanes(chain, job_id, {WORKER: 500})
    assert escrow.lane(chain.address, job_id, WORKER).total_wei == 500
    assert escrow.job_of(job_id).unallocated_wei == 1000 - 500 - 30


async def test_a_revert_is_final(autojump_clock: trio.testing.MockClock) -> None:
    escrow, chain, job_id = setup()
    await fund_lanes(chain, job_id, {WORKER: 2000})  # over budget: reverts, not retried
    assert chain.calls.count("open_lanes") == 1 and chain.transactions == []
    assert escrow.lane(chain.address, job_id, WORKER).total_wei == 0
