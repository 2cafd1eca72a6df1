"""A requester's outgoing queue per job: sends and lane fundings in the machine's order.

As the node's ``JobQueue`` (node/roles/lanes.py): the job machine emits
``FundLanes`` ahead of the awards (or checker request) it secures; every
``Send`` and ``FundLanes`` of a job leaves in order, and a message leaves only
after every funding before it was mined (included in a block); fundings queued
behind one in flight go out as one transaction (:func:`merged`). As the node's
``fund_lanes``, a funding brings the lanes up to the machine's ``lane_totals``
(:func:`to_totals`), not by its deltas: a reverted funding is final (the worker
whose lane stayed short declines its award), but the next funding of the same
lane makes up for it, as on the node; by deltas a revert left every lane it
named short for the rest of the job.

``Clawback`` is the clawback requester's marker (node/roles/adversary.py): in
its turn the requester reads the job, funds a lane of its sock puppet with
everything unallocated, signs the sock a voucher for all the job still holds
and redeems it. Lanes keep the payees' funded pay out of its reach.
"""

from __future__ import annotations

import hashlib
from collections import deque

from protocol.market import FundLanes, Send
from protocol.market.funding_queue import lane_shortfall, merge_fundings
from simulations.chain import EscrowJob
from simulations.world import SimNode, World


class Clawback:
    """A marker in a clawback requester's job queue: claw back before the next send."""


Queued = Send | FundLanes | Clawback


def sock_puppet(address: bytes) -> bytes:
    """A clawback requester's second payment address."""
    return hashlib.sha256(address + b"pictor/sock-puppet").digest()[:20]


class JobQueues:
    def __init__(self, world: World, node: SimNode) -> None:
        self.world = world
        self.node = node
        self._held: dict[bytes, deque[Queued]] = {}  # job -> items behind a tx in flight

    def put(self, job_id: bytes, item: Queued) -> None:
        """Send now, or behind the job's transaction in flight."""
        held = self._held.get(job_id)
        if held is not None:
            held.append(item)
        elif isinstance(item, Send):
            self.world.send(self.node, item.to, item.message)
        else:
            self._held[job_id] = deque()
            self._transact(job_id, item)

    def _transact(self, job_id: bytes, item: FundLanes | Clawback) -> None:
        chain, address = self.world.chain, self.node.address

        def mined(_: bool) -> None:
            self._release(job_id)

        if isinstance(item, FundLanes):
            chain.open_lanes(address, job_id, to_totals(chain.jobs.get(job_id), item), mined)
            return
        job = chain.jobs.get(job_id)  # the clawback: read the job, fund the sock, redeem
        if job is None or job.refunded:
            self._release(job_id)
            return
        sock = sock_puppet(address)
        self.world.clawback_addresses[sock] = address
        if job.unallocated_wei:
            chain.open_lanes(address, job_id, [(sock, job.unallocated_wei)])
        chain.issued.add((job_id, sock, job.remaining_wei))
        chain.redeem_batch([(job_id, sock, job.remaining_wei)], None, mined)

    def _release(self, job_id: bytes) -> None:
        """The transaction in flight was mined: carry out what waited, up to the next one."""
        held = self._held.pop(job_id, deque())
        while held:
            item = held.popleft()
            if not isinstance(item, Send):
                if isinstance(item, FundLanes):
                    item = merged(item, held)
                self._held[job_id] = held
                self._transact(job_id, item)
                return
            self.world.send(self.node, item.to, item.message)


def to_totals(job: EscrowJob | None, funding: FundLanes) -> list[tuple[bytes, int]]:
    """What ``funding`` moves: each lane up to its total, from what the chain holds now
    (one transaction at a time per job, so nothing of this job is in flight)."""
    return lane_shortfall({} if job is None else job.lanes, funding.lane_totals)


def merged(first: FundLanes, held: deque[Queued]) -> FundLanes:
    """``first`` and every funding queued behind it, as the node merges them
    (``protocol.market.funding_queue``); those fundings leave ``held``."""
    one, kept = merge_fundings(first, held)
    held.clear()
    held.extend(kept)
    return one
