"""Who gets which frame: the requester's award policy, as one pure function.

Theory of operation
-------------------
Bids are standing offers: "up to ``slots`` of my leases at this price". Given
the pending frames, the live leases per worker and the budget left,
:func:`plan_awards` walks the bidders cheapest first — by price divided by
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
(:func:`stake_qualifies`, the one test both use). Stake is what a fraud claim
takes, so a requester that asks for it deals only with identities a cheat
would cost money (``protocol.slashing``). A checker must also hold what a claim
of its pass takes, when the requester asks that (:func:`checker_qualifies`: the
node asks the escrow's ``SLASH_CAP`` by default), so that a missed plant can cost
a checker more than its fees (docs/VERIFICATION.md, "Checker stake").
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass

from protocol.capacity import TRIAL_SLOTS


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
) -> list[tuple[Bidder, int]]:
    """The awards to make now, as (bidder, frame) pairs in order.

    ``lane_slack`` (per payment address) is money already in a bidder's lane beyond
    what it is owed or holds: it pays that bidder's prices before the budget does.
    ``weights`` (per worker, in (0, 1]; missing: 1) rank bids, never their price:
    pay-as-bid still pays the bid's own price. Workers in ``trial`` (unproven,
    protocol.capacity) hold at most ``TRIAL_SLOTS`` lease each and ``trial_room`` new
    ones together."""
    order = sorted(pending)
    taken: set[int] = set()
    plan: list[tuple[Bidder, int]] = []
    slack = lane_slack or {}

    for bidder in lanes_first(ranked(bidders, weights or {}), slack):
        room = bidder.slots - leases.get(bidder.worker, 0)
        on_trial = bidder.worker in trial
        if on_trial:
            room = min(room, TRIAL_SLOTS - leases.get(bidder.worker, 0), trial_room)
        cost_wei = bidder.price_wei + fee_wei(bidder.price_wei)
        slack_wei = slack.get(bidder.payment_address, 0)
        for frame in order:
            from_lane_wei = min(slack_wei, bidder.price_wei)
            if room <= 0 or cost_wei - from_lane_wei > budget_left_wei:
                break
            if frame in taken or bidder.worker in failed_workers.get(frame, ()):
                continue
            plan.append((bidder, frame))
            taken.add(frame)
            room -= 1
            trial_room -= on_trial
            slack_wei -= from_lane_wei
            budget_left_wei -= cost_wei - from_lane_wei
        if len(taken) == len(order):
            break
    return plan


def lanes_first(ranked_bidders: list[Bidder], lane_slack: Mapping[bytes, int]) -> list[Bidder]:
    """``ranked_bidders`` (in their rank) with those whose lane already holds their price
    beyond what they are owed first. That money can only ever go to them until the
    refund after the deadline (protocol.market.lanes): awarding anyone else spends new
    budget while it sits. Each award declined for want of a free slot left its price in
    its decliner's lane, and in ``cheaters_20pct`` at the node's escrow jobs expired
    with the whole budget in such lanes while their owners bid again (docs/MARKET.md)."""
    first = [b for b in ranked_bidders if lane_slack.get(b.payment_address, 0) >= b.price_wei]
    if not first:
        return ranked_bidders
    rest = [b for b in ranked_bidders if lane_slack.get(b.payment_address, 0) < b.price_wei]
    return first + rest


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


def stake_qualifies(stake_wei: int | None, min_stake_wei: int) -> bool:
    """Whether a confirmed stake (None: not read) meets the requester's minimum."""
    return min_stake_wei == 0 or (stake_wei is not None and stake_wei >= min_stake_wei)


def checker_qualifies(stake_wei: int | None, min_stake_wei: int, pass_claim_wei: int) -> bool:
    """Whether a checker with this confirmed stake (None: not read) may be asked: it
    meets the job's minimum and holds ``pass_claim_wei``, what a claim of a pass it
    should not have signed takes (the escrow's SLASH_CAP; 0: not required). The
    requester's one test for checks and plants alike."""
    return stake_qualifies(stake_wei, max(min_stake_wei, pass_claim_wei))
