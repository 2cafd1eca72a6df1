"""The award ranking's integer rank equals the exact Fraction rank it replaced
(price times 1 / weight, then ETA, then node id), for any prices and weights."""

from __future__ import annotations

from fractions import Fraction

from hypothesis import example, given, settings
from hypothesis import strategies as st

from protocol.market.awarding import Bidder, ranked
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
