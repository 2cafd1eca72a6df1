"""Who gets which frame: the requester's award policy, as one pure function.

Theory of operation
-------------------
Bids are standing offers: "up to ``slots`` of my leases at this price". Given
the pending frames, the live leases per worker and the budget left,
:func:`plan_awards` first gives bidders whose lanes already hold their prices the
frames those lanes pay (money that can go to nobody else, ``_Walk``), then walks
the bidders cheapest first — by price divided by
the bidder's weight (``protocol.reputation.award_weight``: 0.5 for a fresh
identity up to 1.0 for a trusted one, so a newcomer must underbid a trusted
worker by up to half to go first), then ETA, then node id, so the plan is
deterministic — and hands each one the lowest pending
frames it may take: never a frame the worker already failed, never more than
its free slots, and never a frame whose price plus checker fee would overrun
the budget. Pay-as-bid: an award's price is the bid's price. Blocklisted
workers and over-priced bids never become bidders (the machine filters them).

A requester may require stake (``MarketConfig.min_stake_wei``): a bidder whose
payment address the chain confirms holding less — or whose stake the driver
has not read — gets nothing, and a checker below it is not asked
(:func:`stake_qualifies`, the one test both use). A bidder's stake must also
back every other job the escrow counts it open in (its lanes elsewhere: the
driver reads them with the stake), since claims on all of them draw on it; a
checker's is read alone (docs/LEDGER.md, "One stake, many jobs"). Stake is what a fraud claim
takes, so a requester that asks for it deals only with identities a cheat
would cost money (``protocol.slashing``). A checker must also hold what a claim
of its pass takes, when the requester asks that (:func:`checker_qualifies`: the
node asks the escrow's ``SLASH_CAP`` by default), so that a missed plant can cost
a checker more than its fees (docs/VERIFICATION.md, "Checker stake").
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass, field

from protocol.capacity import TRIAL_SLOTS
from protocol.errors import LocalProtocolError
from protocol.market.commands import FundLanes


@dataclass
class Bidder:
    worker: bytes
    price_wei: int
    eta_s: int
    payment_address: bytes
    slots: int


def plan_awards(
    bidders: Iterable[Bidder],
    pending: Collection[int],
    failed_workers: Mapping[int, Collection[bytes]],
    leases: Mapping[bytes, int],
    budget_left_wei: int,
    fee_wei: Callable[[int], int],
    lane_slack: Mapping[bytes, int] | None = None,
    weights: Mapping[bytes, float] | None = None,
    trial: Collection[bytes] = (),
    trial_room: int = 0,
    reserve_wei: int = 0,
    lane_first: Collection[bytes] | None = None,
) -> list[tuple[Bidder, int]]:
    """The awards to make now, as (bidder, frame) pairs in order.

    ``lane_slack`` (per payment address) is money already in a bidder's lane beyond
    what it is owed or holds: it pays that bidder's prices before the budget does.
    ``weights`` (per worker, in (0, 1]; missing: 1) rank bids, never their price:
    pay-as-bid still pays the bid's own price. Workers in ``trial`` (unproven,
    protocol.capacity) hold at most ``TRIAL_SLOTS`` lease each and ``trial_room`` new
    ones together. ``reserve_wei`` is kept from ``budget_left_wei``'s new money: only an
    award whose price the bidder's lane pays in full may take its fees from it (the
    fees of the frames priced in lanes already, protocol.market.requester).
    ``lane_first``: the workers whose lanes may put them first (None: all)."""
    walk = _Walk(sorted(pending), failed_workers, dict(leases), dict(lane_slack or {}),
                 budget_left_wei, reserve_wei, set(trial), trial_room, fee_wei)  # fmt: skip
    ranking = ranked(bidders, weights or {})
    for bidder in ranking:  # first the frames whose prices bidders' lanes hold already
        if lane_first is None or bidder.worker in lane_first:
            walk.take(bidder, lane_paid_only=True)
    for bidder in ranking:
        if walk.done:
            break
        walk.take(bidder, lane_paid_only=False)
    return walk.plan


@dataclass
class _Walk:
    """One plan's walk over the bidders: what is taken and left as awards are added.

    A bidder whose lane already holds its price beyond what it is owed is walked twice:
    first for as many frames as its lane pays in full (that money can only ever go to
    it until the refund after the deadline, protocol.market.lanes: awarding anyone else
    spends new budget while it sits; each award declined for want of a free slot left
    its price in its decliner's lane, and in ``cheaters_20pct`` at the node's escrow
    jobs expired with the budget in such lanes while their owners bid again), then in
    its rank with everyone for the rest. The machine puts first only workers that have
    not failed in the job: a crashed worker's bid stands and its timed-out task's price
    sits in its lane, and putting it first let frames run out of their attempts on
    lease timeouts (jobs ending with a frame failed in that scenario: 2 -> 10 of ~170).
    Slack is per payment address, spent as awards take it: bidders sharing an address
    share it."""

    order: list[int]
    failed_workers: Mapping[int, Collection[bytes]]
    leases: dict[bytes, int]
    slack: dict[bytes, int]
    budget_wei: int
    reserve_wei: int
    trial: set[bytes]
    trial_room: int
    fee_wei: Callable[[int], int]
    taken: set[int] = field(default_factory=set)
    plan: list[tuple[Bidder, int]] = field(default_factory=list)

    @property
    def done(self) -> bool:
        return len(self.taken) == len(self.order)

    def take(self, bidder: Bidder, lane_paid_only: bool) -> None:
        worker, address, price_wei = bidder.worker, bidder.payment_address, bidder.price_wei
        room = bidder.slots - self.leases.get(worker, 0)
        on_trial = worker in self.trial
        if on_trial:
            room = min(room, TRIAL_SLOTS - self.leases.get(worker, 0), self.trial_room)
        cost_wei = price_wei + self.fee_wei(price_wei)
        for frame in self.order:
            from_lane_wei = min(self.slack.get(address, 0), price_wei)
            lane_paid = from_lane_wei == price_wei
            if lane_paid_only and not lane_paid:
                break
            usable_wei = self.budget_wei + (self.reserve_wei if lane_paid else 0)
            if room <= 0 or cost_wei - from_lane_wei > usable_wei:
                break
            if frame in self.taken or worker in self.failed_workers.get(frame, ()):
                continue
            self.plan.append((bidder, frame))
            self.taken.add(frame)
            room -= 1
            self.leases[worker] = self.leases.get(worker, 0) + 1
            self.trial_room -= on_trial
            if from_lane_wei:
                self.slack[address] -= from_lane_wei
            spent_wei = cost_wei - from_lane_wei
            if lane_paid:  # its fees come out of the reserve first
                taken_wei = min(self.reserve_wei, spent_wei)
                self.reserve_wei -= taken_wei
                spent_wei -= taken_wei
            self.budget_wei -= spent_wei


def ranked(bidders: Iterable[Bidder], weights: Mapping[bytes, float]) -> list[Bidder]:
    """``bidders`` cheapest first: by price over weight (missing: 1) exactly, no float
    rounding of wei, then ETA, then node id.

    The rank is an integer, not a Fraction (making and comparing Fractions was two
    thirds of the award plan's time in bench/sim_scale.py with trial leases): a weight
    is ``n / d`` exactly (``as_integer_ratio``), so price over weight is
    ``price * d / n``; two different such quotients differ by at least
    ``1 / (n1 * n2)``, more than ``2 ** -(2 * bits)`` for ``bits`` the longest ``n``,
    so their floors after a left shift by ``2 * bits + 1`` keep their order, and equal
    quotients get equal ranks (tests/protocol/market/test_awarding.py compares
    it with the Fraction rank)."""
    ratios = {worker: w.as_integer_ratio() for worker, w in weights.items()}
    shift = 2 * max((abs(n).bit_length() for n, _ in ratios.values()), default=1) + 1

    def rank(b: Bidder) -> tuple[int, int, bytes]:
        n, d = ratios.get(b.worker, (1, 1))
        return ((b.price_wei * d << shift) // n, b.eta_s, b.worker)

    return sorted(bidders, key=rank)


def stake_qualifies(stake_wei: int | None, min_stake_wei: int, lanes_elsewhere: int = 0) -> bool:
    """Whether a confirmed stake (None: not read) meets the requester's minimum for this
    job and for each of the ``lanes_elsewhere`` other jobs it backs at once (a worker's:
    :func:`lanes_elsewhere`): claims on all of them draw on the one stake, so each job is
    backed by ``min_stake_wei`` only when the stake holds ``min_stake_wei × (lanes
    elsewhere + 1)`` (docs/LEDGER.md, "One stake, many jobs")."""
    if min_stake_wei == 0:
        return True
    return stake_wei is not None and stake_wei >= min_stake_wei * (max(0, lanes_elsewhere) + 1)


def count_matters(stake_wei: int | None, min_stake_wei: int) -> bool:
    """Whether a bidder's open-lane count can change what it qualifies for: a minimum is
    asked and its stake meets it (a smaller one qualifies for nothing whatever its
    count, so a driver reads no count for it)."""
    return min_stake_wei > 0 and stake_qualifies(stake_wei, min_stake_wei)


def lanes_elsewhere(open_lanes: int, own_lane_open: bool, planned_elsewhere: int = 0) -> int:
    """The other jobs a payee's stake backs: the escrow's count of its open lanes
    (``Escrow.open_lanes_of``, every requester's jobs) less this job's own, when this job
    opened one (the count has it then), plus ``planned_elsewhere``: the requester's other
    jobs that funded the payee a lane the requester has not yet seen mined (the count
    has them once mined; before, a worker bidding in two of our jobs at once was
    awarded in both on one stake)."""
    if open_lanes < 0 or planned_elsewhere < 0:
        raise LocalProtocolError("lane counts are never negative")
    return max(0, open_lanes - own_lane_open) + planned_elsewhere


def new_lanes(commands: Iterable[object]) -> set[bytes]:
    """The payees ``commands`` fund a lane for first in their job: each ``FundLanes``
    funding whose lane total after it is the funding itself. The escrow counts such a
    lane (``Escrow.open_lanes``: a payee's first funds in a job) once it is mined; a
    driver with other jobs reading that payee's count tells them at once
    (node.roles.requester ``lanes_planned``)."""
    out: set[bytes] = set()
    for c in commands:
        if isinstance(c, FundLanes):
            totals = dict(c.lane_totals)
            out.update(a for a, wei in c.fundings if wei > 0 and totals.get(a) == wei)
    return out


def planned_unmined(planned_wei: Mapping[bytes, int], mined: Collection[bytes]) -> set[bytes]:
    """The payees one job funded a lane (``planned_wei``: what its machine has had
    funded into each lane, ``JobMachine.lanes_wei``) that its driver has not yet seen
    mined (``mined``): lanes the escrow will count and does not yet."""
    return {payee for payee, wei in planned_wei.items() if wei > 0 and payee not in mined}


def checker_qualifies(stake_wei: int | None, min_stake_wei: int, pass_claim_wei: int) -> bool:
    """Whether a checker with this confirmed stake (None: not read) may be asked: it
    meets the job's minimum and holds ``pass_claim_wei``, what a claim of a pass it
    should not have signed takes (the escrow's SLASH_CAP; 0: not required). The
    requester's one test for checks and plants alike."""
    return stake_qualifies(stake_wei, max(min_stake_wei, pass_claim_wei))
