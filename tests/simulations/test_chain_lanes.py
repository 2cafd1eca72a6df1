"""The chain model's open-lane count and lane gas follow the escrow (Escrow.open_lanes_of,
bench/gas.py): a new lane costs a new count slot unless its payee has one that day; a
zero funding writes no new slot and leaves the lane new, as the contract's."""

from __future__ import annotations

from simulations.chain import DAY_MS, ChainModel
from simulations.loop import EventLoop
from simulations.scenario import Chain

REQUESTER, PAYEE = b"\x0a" * 20, b"\x0b" * 20
WEI = 10**15


def lanes_gas(chain: ChainModel, loop: EventLoop, job: bytes, fundings: list[tuple[bytes, int]]) -> int:
    before = chain.stats.gas
    chain.open_lanes(REQUESTER, job, fundings)
    loop.run_until(loop.now_ms + 60_000)
    return chain.stats.gas - before


def test_lane_gas_and_the_count_follow_the_escrow() -> None:
    loop, config = EventLoop(seed=1), Chain()
    chain = ChainModel(loop, config)
    chain.mint(REQUESTER, 100 * WEI)
    jobs = [bytes([n]) * 32 for n in range(3)]
    for job in jobs:
        chain.deposit(REQUESTER, job, 10 * WEI, 3_600_000, None)
    loop.run_until(60_000)
    base = config.gas_open_lanes
    assert lanes_gas(chain, loop, jobs[0], [(PAYEE, 0)]) == base + config.gas_lane_top_up
    assert chain.open_lanes_of(PAYEE) == 0  # a zero funding is not counted, nor written
    assert lanes_gas(chain, loop, jobs[0], [(PAYEE, WEI)]) == base + config.gas_lane_new  # new
    assert lanes_gas(chain, loop, jobs[0], [(PAYEE, WEI)]) == base + config.gas_lane_top_up
    assert lanes_gas(chain, loop, jobs[1], [(PAYEE, WEI)]) == base + config.gas_lane_counted
    assert chain.open_lanes_of(PAYEE) == 2
    loop.run_until(3_600_000 + int(config.grace_s * 1000) + DAY_MS)  # past the windows' day
    assert chain.open_lanes_of(PAYEE) == 0
