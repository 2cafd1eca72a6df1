"""The award ranking's integer rank equals the exact Fraction rank it replaced
(price times 1 / weight, then ETA, then node id), for any prices and weights."""

from __future__ import annotations

from fractions import Fraction

from hypothesis import example, given, settings
from hypothesis import strategies as st

from protocol.market.awarding import Bidder, plan_awards, ranked
from protocol.reputation import award_weight

prices = st.one_of(st.integers(0, 2_000), st.integers(0, 2**64))
weights = st.one_of(
    st.floats(min_value=0.5, max_value=1.0),
    st.sampled_from([0.5, 1.0, award_weight(0.3), award_weight(1 / 3)]),
    st.floats(min_value=1e-300, max_value=1.0, exclude_min=False),
)
bids = st.lists(
    st.tuples(st.integers(0, 7), prices, st.integers(1, 3), st.none() | weights), max_size=12
)


def fraction_order(bidders: list[Bidder], w: dict[bytes, float]) -> list[Bidder]:
    """The rank as it was: exact Fractions."""
    per_weight = {worker: 1 / Fraction(x) for worker, x in w.items()}
    return sorted(bidders, key=lambda b: (b.price_wei * per_weight.get(b.worker, Fraction(1)),
                                          b.eta_s, b.worker))  # fmt: skip


@settings(max_examples=400, deadline=None)
@given(bids)
# quotients that a float rank would confuse: 2**64 + 1 and 2**64 over weight 1
@example([(0, 2**64 + 1, 1, 1.0), (1, 2**64, 1, None), (2, 2**64, 1, 1.0)])
# equal quotients from different prices and weights: 100 / 0.5 == 200 / 1
@example([(0, 200, 2, None), (1, 100, 2, 0.5), (2, 100, 1, 0.5000000000000001)])
def test_integer_rank_is_the_fraction_rank(rows: list[tuple[int, int, int, float | None]]) -> None:
    bidders = [Bidder(bytes([i]) * 32, price, eta, b"\x01" * 20, 1) for i, price, eta, _ in rows]
    w = {bytes([i]) * 32: x for i, _, _, x in rows if x is not None}
    assert ranked(bidders, w) == fraction_order(bidders, w)


def test_a_bidder_whose_lane_holds_its_price_goes_first() -> None:
    """Money in a lane beyond its payee's need can only go to that payee until the
    refund: a dearer bidder whose lane holds its price (an award it declined for want of
    a free slot left it there) is awarded before a cheaper one needing new budget."""
    cheap = Bidder(b"\x01" * 32, 900, 60, b"\x0a" * 20, 1)
    dear = Bidder(b"\x02" * 32, 1_000, 60, b"\x0b" * 20, 1)
    fees = lambda price: price // 20  # noqa: E731
    # the budget left pays one new award: without the lane the cheap bid takes frame 1
    assert plan_awards([cheap, dear], {1}, {}, {}, 1_000, fees) == [(cheap, 1)]
    assert plan_awards([cheap, dear], {1}, {}, {}, 1_000, fees, {dear.payment_address: 1_000}) == [
        (dear, 1)
    ]
    # both get a frame when there are two; a lane short of the price does not count
    both = plan_awards([cheap, dear], {1, 2}, {}, {}, 2_000, fees, {dear.payment_address: 1_000})
    assert both == [(dear, 1), (cheap, 2)]
    short = {dear.payment_address: 999}
    assert plan_awards([cheap, dear], {1}, {}, {}, 1_000, fees, short) == [(cheap, 1)]


def test_a_lane_buys_first_place_only_for_the_frames_it_pays() -> None:
    """Review of stop 35: a bidder whose lane holds one price kept first place for all
    its slots, so its further frames came out of new budget at its dearer price."""
    cheap = Bidder(b"\x01" * 32, 600, 60, b"\x0a" * 20, 4)
    dear = Bidder(b"\x02" * 32, 1_000, 60, b"\x0b" * 20, 4)
    fees = lambda price: 0  # noqa: E731
    plan = plan_awards([cheap, dear], {1, 2, 3}, {}, {}, 10_000, fees, {dear.payment_address: 1_000})
    assert plan == [(dear, 1), (cheap, 2), (cheap, 3)]


def test_bidders_sharing_a_payment_address_share_its_lane() -> None:
    """Review of stop 35: two nodes of one operator (one payment address) each counted
    the lane's whole slack, and both were awarded from one spare price (committed past
    the budget; one of them rendered unsecured)."""
    one = Bidder(b"\x01" * 32, 1_000, 60, b"\x0a" * 20, 1)
    two = Bidder(b"\x02" * 32, 1_000, 60, b"\x0a" * 20, 1)
    fees = lambda price: price // 10  # noqa: E731
    plan = plan_awards([one, two], {1, 2}, {}, {}, 200, fees, {one.payment_address: 1_000})
    assert plan == [(one, 1)]  # the second has its fee but not its price


def test_the_reserve_pays_the_fees_of_frames_lanes_pay_and_nothing_else() -> None:
    """The fees of frames whose prices sit in lanes are kept from new money: a new award
    cannot take them, an award its lane pays can (jobs at the node's escrow expired with
    those prices in decliners' lanes and no fee left, docs/MARKET.md)."""
    fresh = Bidder(b"\x01" * 32, 500, 60, b"\x0a" * 20, 1)
    paid = Bidder(b"\x02" * 32, 1_000, 60, b"\x0b" * 20, 1)
    fees = lambda price: 100  # noqa: E731
    lane = {paid.payment_address: 1_000}
    # 600 of new money and 100 kept for the lane-paid frame's fee
    assert plan_awards([fresh], {1, 2}, {}, {}, 500, fees, lane, reserve_wei=100) == []
    both = plan_awards([fresh, paid], {1, 2}, {}, {}, 600, fees, lane, reserve_wei=100)
    assert both == [(paid, 1), (fresh, 2)]
    # a worker kept out of first place (it failed in the job) waits for its rank
    assert plan_awards([fresh, paid], {1}, {}, {}, 600, fees, lane, lane_first=set()) == [
        (fresh, 1)
    ]
