"""A requester job's queue funds lanes one transaction at a time, merging what queued.

Found by the simulator (simulations/scenarios/baseline.toml, seed 1, 6 h): each
funding was its own transaction and every award waited behind all fundings queued
before it, so 268 leases expired before their award left and 3 of 13 jobs of an
honest network ended partial. Now fundings queued behind one in flight go out as
one (node/roles/lanes.py, simulations/lanes.py), and the run completes 13 of 13."""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from typing import Any

import trio

from node.roles.lanes import JobQueue
from protocol.market import FundLanes, Send
from protocol.messages import JobCancelled
from simulations.lanes import Clawback, merged

JOB = b"\x01" * 32
A, B = b"\xaa" * 20, b"\xbb" * 20


def funding(totals: dict[bytes, int]) -> FundLanes:
    return FundLanes(JOB, tuple(totals.items()), tuple(totals.items()))


def send(n: int) -> Send:
    return Send(bytes([n]) * 32, JobCancelled(JOB, f"message {n}"))


class Chain:
    """Lanes on a chain whose transactions wait until the test lets them be mined."""

    def __init__(self) -> None:
        self.lane_wei: dict[bytes, int] = {}
        self.txs: list[dict[bytes, int]] = []
        self.mine = trio.Event()

    async def lanes(self, job_id: bytes, payees: Sequence[bytes]) -> dict[bytes, int]:
        return {p: self.lane_wei.get(p, 0) for p in payees}

    async def open_lanes(self, job_id: bytes, fundings: Sequence[tuple[bytes, int]]) -> None:
        self.txs.append(dict(fundings))
        await self.mine.wait()
        self.mine = trio.Event()
        for address, wei in fundings:
            self.lane_wei[address] = self.lane_wei.get(address, 0) + wei


class Outbox:
    def __init__(self) -> None:
        self.sent: list[str] = []

    def send(self, to: bytes, message: Any) -> None:
        self.sent.append(message.reason)


async def test_fundings_queued_behind_one_in_flight_go_out_as_one() -> None:
    chain, outbox = Chain(), Outbox()

    async def no_clawback() -> None:
        raise AssertionError("not a clawback requester")

    queue = JobQueue(chain, JOB, no_clawback)  # type: ignore[arg-type]
    async with trio.open_nursery() as nursery:
        nursery.start_soon(queue.run, outbox.send)
        queue.put(funding({A: 10}))
        queue.put(send(1))
        await trio.testing.wait_all_tasks_blocked()
        assert chain.txs == [{A: 10}] and outbox.sent == []  # the award waits for its lane
        for n, totals in enumerate(({A: 20}, {A: 20, B: 5}, {B: 7}), start=2):
            queue.put(funding(totals))
            queue.put(send(n))
        chain.mine.set()
        await trio.testing.wait_all_tasks_blocked()
        assert chain.txs == [{A: 10}, {A: 10, B: 7}]  # one transaction to the highest totals
        assert outbox.sent == ["message 1"]  # the rest wait for that one
        chain.mine.set()
        await trio.testing.wait_all_tasks_blocked()
        assert outbox.sent == [f"message {n}" for n in range(1, 5)]
        assert chain.lane_wei == {A: 20, B: 7}
        nursery.cancel_scope.cancel()


def test_the_simulator_merges_the_same_way_and_keeps_a_clawback_in_its_place() -> None:
    held: deque[Send | FundLanes | Clawback] = deque(
        [send(1), funding({A: 5}), send(2), (claw := Clawback()), funding({B: 1}), send(3)]
    )
    one = merged(funding({A: 10}), held)
    assert dict(one.fundings) == {A: 15} and dict(one.lane_totals) == {A: 10}
    assert list(held)[:3] == [send(1), send(2), claw]
    assert isinstance(list(held)[3], FundLanes)  # after the clawback: its own turn
