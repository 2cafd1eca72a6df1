"""PlanMark: what an award plan left behind, so the next plan walks only what changed.

Theory of operation
-------------------
The requester re-plans its awards (protocol.market.awarding) after every input that
may free work or capacity. Walking every bidder each time was most of a simulated
network's award cost once trial leases kept frames pending while unproven bidders
wait for trial room: every result, verdict and judged challenge re-planned every
bidder (3,211 plans over 70 bidders on average in ``bench/sim_scale.py --quick 0.25
--nodes 1000``). A plan leaves a mark; the machine's ``_walk``
(protocol.market.requester) uses it to walk only the bidders that may take a frame
now, and gets the same plan as walking everyone (tests/protocol/market/
test_late_bids.py compares the two on random sequences of every input).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class PlanMark:
    """What an award plan left behind (after its awards and lane fundings).

    After a plan every bidder it walked is blocked: it has no room (its slots or, on
    trial, the trial room are taken), or its price plus fee beyond its lane's slack is
    more than the free budget, or every pending frame is taken or failed by it (the
    plan walks on until each is; protocol.market.awarding). Whether a bidder is
    blocked does not depend on the order of the walk, so a later plan can give a frame
    only to a bidder whose own inputs loosened (a new bid or standing: ``_touched``; a
    lease that ended: fewer ``leases``; more slack in its lane), or to any bidder when
    an input they all share loosened: a frame back in pending, more free budget, more
    trial room. :meth:`holds` checks the shared ones but the trial room (the machine
    recounts it only when a lease holder changed). tests/protocol/market/
    test_late_bids.py compares every plan with planning every bidder anew."""

    pending: frozenset[int]
    free_wei: int
    reserve_wei: int  # what bidders whose lanes pay their price may also take
    slack: dict[bytes, int]  # per payment address
    leases: dict[bytes, int]  # per worker
    trial_room: int

    def holds(self, pending: set[int], free_wei: int, reserve_wei: int) -> bool:
        """Whether no input shared by every bidder loosened (trial room aside): neither
        the free budget nor what a bidder whose lane pays its price may take grew."""
        return (
            free_wei <= self.free_wei
            and free_wei + reserve_wei <= self.free_wei + self.reserve_wei
            and pending <= self.pending
        )

    def slack_grown(self, slack: dict[bytes, int]) -> set[bytes]:
        """The payment addresses whose lanes' slack grew: their bidders may take more."""
        return {address for address, wei in slack.items() if wei > self.slack.get(address, 0)}
