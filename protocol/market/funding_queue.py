"""A requester's job queue merges the lane fundings queued behind one in flight.

A job's ``Send`` and ``FundLanes`` commands leave in the machine's order, a message
only after every funding before it was mined (node/roles/lanes.py, and the
simulator's simulations/lanes.py). One transaction at a time, each a block or
more, made every award wait behind all fundings queued before it: in a simulated
6 h baseline run 268 leases expired before their award left. So when a funding's
turn comes, it goes out together with every funding queued behind it, up to the
first item that is neither a send nor a funding (a driver's barrier, such as the
clawback adversary's marker), and the sends keep their order behind it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TypeVar

from protocol.market.commands import FundLanes, Send

T = TypeVar("T")


def merge_fundings(first: FundLanes, queued: Iterable[T]) -> tuple[FundLanes, list[T]]:
    """``first`` merged with the fundings in ``queued`` before any barrier (their
    fundings summed, their lane totals the highest per lane), and what of ``queued``
    is left, in order."""
    fundings = dict(first.fundings)
    totals = dict(first.lane_totals)
    kept: list[T] = []
    merging = True
    for item in queued:
        if merging and isinstance(item, FundLanes):
            for address, wei in item.fundings:
                fundings[address] = fundings.get(address, 0) + wei
            for address, total in item.lane_totals:
                totals[address] = max(totals.get(address, 0), total)
            continue
        merging = merging and isinstance(item, Send)
        kept.append(item)
    return FundLanes(first.job_id, tuple(fundings.items()), tuple(totals.items())), kept


def lane_shortfall(
    have: Mapping[bytes, int], totals: Iterable[tuple[bytes, int]]
) -> list[tuple[bytes, int]]:
    """The fundings that bring each lane from what the chain holds (``have``) up to the
    machine's total: what a driver sends, so that a reverted funding is made up by the
    next one of the same lane, and a retry never funds twice (node/roles/lanes.py,
    simulations/lanes.py)."""
    return [(a, t - have.get(a, 0)) for a, t in totals if t > have.get(a, 0)]
