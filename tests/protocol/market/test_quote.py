"""Price proposals and escrow budgets from workers' asks (pure, integer wei)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from protocol.market.quote import (
    Offer,
    budget_wei,
    checker_fee_wei,
    propose_max_price,
    retries_room,
)
from protocol.messages import Assurance
from protocol.money import format_eth, parse_amount_wei
from protocol.verification import checks_per_frame

BUILD = "blender-3.4.1"
ETH = 10**18


def offer(name: str, ask_wei: int, slots: int = 1, build: str = BUILD, score: int = 0) -> Offer:
    return Offer(name, ask_wei, (build,), slots, score)


def test_devnet_asks_get_a_max_price_that_draws_bids() -> None:
    # the devnet: three workers asking 0.1 ETH a frame; the old default 0.02 ETH drew nothing
    offers = [offer(f"w{i}", ETH // 10) for i in range(3)]
    p = propose_max_price(offers, BUILD, frames=3, fee_bps=500)
    assert p is not None
    assert p.max_price_wei_per_frame == 11 * ETH // 100  # 0.1 ETH + 10 % margin
    assert p.workers == 3 and p.cheapest_ask_wei == ETH // 10
    assert p.estimate_wei == 3 * (ETH // 10 + ETH // 200)
    assert p.budget_wei == budget_wei(3, p.max_price_wei_per_frame, 500)


def test_cheapest_offers_covering_the_frames_set_the_price() -> None:
    offers = [offer("dear", 9 * ETH), offer("cheap", ETH, slots=2), offer("mid", 2 * ETH)]
    two = propose_max_price(offers, BUILD, frames=2, fee_bps=0, margin_bps=0)
    three = propose_max_price(offers, BUILD, frames=3, fee_bps=0, margin_bps=0)
    many = propose_max_price(offers, BUILD, frames=50, fee_bps=0, margin_bps=0)
    assert two is not None and two.max_price_wei_per_frame == ETH
    assert three is not None and three.max_price_wei_per_frame == 2 * ETH
    assert many is not None and many.max_price_wei_per_frame == 9 * ETH


def test_no_offer_for_the_build_means_no_proposal() -> None:
    assert propose_max_price([offer("w", ETH, build="blender-4.2.0")], BUILD, 1, 500) is None
    assert propose_max_price([], BUILD, 1, 500) is None


def test_free_workers_still_get_a_positive_max_price() -> None:
    p = propose_max_price([offer("w", 0)], BUILD, 1, 500)
    assert p is not None and p.max_price_wei_per_frame == 1


def test_a_job_that_checks_nothing_escrows_no_fees() -> None:
    # assurance none used to escrow two fees a frame (and one a retry) it never paid
    checks = checks_per_frame(Assurance.NONE)
    assert checks == 0
    assert budget_wei(20, ETH, 1_000, checks) == (20 + retries_room(20)) * ETH
    assert checks_per_frame(Assurance.NORMAL) == 2 and checks_per_frame(Assurance.HIGH) == 2


def test_budget_is_integer_exact() -> None:
    # 4 frames at 0.2 ETH with 5 % checks and one re-check (0.88 ETH, not
    # 0.880000000000000128), and two retries with their checks (0.42 ETH)
    assert budget_wei(4, 2 * ETH // 10, 500) == 88 * ETH // 100 + 42 * ETH // 100
    assert budget_wei(1, 1, 500) == 4  # rounded up: the escrow never falls short


def test_the_escrow_has_room_for_a_tenth_of_the_frames_again_and_at_least_two() -> None:
    assert [retries_room(n) for n in (1, 2, 20, 21, 100, 1_000)] == [2, 2, 2, 3, 10, 100]
    assert checker_fee_wei(ETH // 10, 500) == ETH // 200


@given(st.integers(1, 10_000), st.integers(1, 10**21), st.integers(0, 5_000))
def test_budget_covers_every_frame_and_two_checks(frames: int, price: int, fee_bps: int) -> None:
    exact = frames * price * (10_000 + 2 * fee_bps)  # the budget × 10,000, before rounding
    exact += retries_room(frames) * price * (10_000 + fee_bps)  # and the retries'
    assert exact <= budget_wei(frames, price, fee_bps) * 10_000 < exact + 10_000


def test_amounts_parse_and_format_exactly() -> None:
    assert parse_amount_wei("1.76eth") == 1_760_000_000_000_000_000
    assert parse_amount_wei("0.1 ETH") == ETH // 10
    assert parse_amount_wei("5gwei") == 5 * 10**9
    assert parse_amount_wei("1000") == 1000
    assert parse_amount_wei("2", default_unit="eth") == 2 * ETH
    for bad in ("-1eth", "1e18", "0.1.2eth", "1.5wei", "0.0000000000000000001eth", "eth"):
        try:
            parse_amount_wei(bad)
        except ValueError:
            continue
        raise AssertionError(f"{bad!r} parsed")
    assert format_eth(1_760_000_000_000_000_000) == "1.76 ETH"
    assert format_eth(880_000_000_000_000_128) == "0.880000000000000128 ETH"
    assert format_eth(880_000_000_000_000_128, max_decimals=6) == "≈0.88 ETH"
    assert format_eth(0) == "0 ETH" and format_eth(ETH) == "1 ETH"
    assert format_eth(1, max_decimals=6) == "≈0 ETH"
    assert format_eth(999_999_950_000_000_000, max_decimals=6) == "≈1 ETH"


@given(st.integers(0, 10**30))
def test_format_then_parse_is_identity(wei: int) -> None:
    assert parse_amount_wei(format_eth(wei).removesuffix(" ETH") + "eth") == wei
