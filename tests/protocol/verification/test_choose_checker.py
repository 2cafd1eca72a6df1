"""Which checker a requester asks: each its share, none able to predict its turn."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from protocol.errors import LocalProtocolError
from protocol.verification import choose_checker

IDS = [bytes([i]) * 32 for i in range(6)]


@given(st.integers(1, 6), st.lists(st.integers(0, 2**64 - 1), min_size=1, max_size=60))
def test_every_candidate_gets_its_share_whatever_the_draws(n: int, draws: list[int]) -> None:
    given_: dict[bytes, int] = {}
    for draw in draws:
        choose_checker(IDS[:n], given_, draw)
        assert max(given_.values()) - min(given_[c] for c in IDS[:n]) <= 1


def test_checks_and_plants_counted_apart_spread_both_over_two_checkers() -> None:
    """The rotation it replaced sent, with two checkers and a plant per result, every
    real check to one checker and every plant to the other (a lazy checker that only
    got real checks was never caught)."""
    a, b = IDS[:2]
    checks: dict[bytes, int] = {}
    plants: dict[bytes, int] = {}
    for draw in range(4):
        real = choose_checker([a, b], checks, draw * 7)
        choose_checker([c for c in (a, b) if c != real], plants, draw)
    assert checks == {a: 2, b: 2} and plants == {a: 2, b: 2}


def test_ties_go_where_the_draw_says_and_counts_outside_the_candidates_do_not_matter() -> None:
    a, b, c = IDS[:3]
    assert {choose_checker([a, b, c], {}, d) for d in range(3)} == {a, b, c}
    assert choose_checker([b, c], {a: 0, b: 1, c: 1}, 1) == c  # a is not a candidate
    with pytest.raises(LocalProtocolError):
        choose_checker([], {}, 0)


def test_a_fresh_identity_joins_the_ties_and_does_not_take_every_check() -> None:
    """Review finding: a new checker id counted zero checks, so it got every check until
    it caught up; churning identities captured most of them."""
    a, b, fresh = IDS[:3]
    given_ = {a: 50, b: 50}
    chosen = [choose_checker([a, b, fresh], given_, d) for d in range(3)]
    assert sorted(chosen) == sorted([a, b, fresh])  # one each: the newcomer started at 50
    assert given_ == {a: 51, b: 51, fresh: 51}
