"""The simulator's job queue funds lanes up to the machine's totals, as the node does.

Found in review (issue 17): the simulator funded each FundLanes by its deltas, so a
merged funding that reverted left every lane it named short for the rest of the job,
while the node (node/roles/lanes.py ``fund_lanes``) brings lanes up to their totals
and the next funding of the lane makes up for the revert."""

from __future__ import annotations

from types import SimpleNamespace

from protocol.market import FundLanes
from protocol.market.funding_queue import lane_shortfall
from simulations.lanes import JobQueues
from simulations.scenario import scenario_from_dict
from simulations.world import World

JOB = b"j" * 32
A, B = b"a" * 20, b"b" * 20


def _funding(*lanes: tuple[bytes, int, int]) -> FundLanes:
    """(payee, delta, total) triples, as the machine emits them."""
    return FundLanes(JOB, tuple((p, d) for p, d, _ in lanes), tuple((p, t) for p, _, t in lanes))


def test_a_reverted_merged_funding_is_made_up_by_the_next() -> None:
    world = World(scenario_from_dict({}), seed=1)
    requester = SimpleNamespace(address=b"r" * 20)
    chain, loop = world.chain, world.loop
    chain.mint(requester.address, 100)
    chain.deposit(requester.address, JOB, 100, deadline_ms=10**9, done=None)
    loop.run_until(60_000)
    queues = JobQueues(world, requester)  # type: ignore[arg-type]
    queues.put(JOB, _funding((A, 10, 10)))  # in flight
    queues.put(JOB, _funding((A, 30, 40)))  # held, then merged with the next:
    queues.put(JOB, _funding((B, 80, 80)))  # 110 > the 90 left: the merged funding reverts
    loop.run_until(120_000)
    assert chain.jobs[JOB].lanes == {A: 10} and chain.stats.reverts == 1
    queues.put(JOB, _funding((A, 5, 45)))  # the machine's next funding of A
    loop.run_until(180_000)
    assert chain.jobs[JOB].lanes[A] == 45  # by deltas: 15, short of A's secured pay by 30


def test_the_shortfall_funds_only_lanes_below_their_total() -> None:
    assert lane_shortfall({A: 40, B: 90}, [(A, 45), (B, 80), (b"c" * 20, 7)]) == [
        (A, 5), (b"c" * 20, 7)
    ]  # fmt: skip
