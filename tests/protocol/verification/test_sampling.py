"""Adaptive sampling and the stated detection probabilities."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from protocol.errors import LocalProtocolError
from protocol.messages import Assurance
from protocol.verification import (
    explain,
    p_caught_bound,
    p_caught_exact,
    plan_check,
    select_tiles,
    tile_grid,
)

reputations = st.floats(0.0, 1.0)


def test_fresh_workers_are_always_checked_hardest() -> None:
    fresh = plan_check(Assurance.NORMAL, 0.0)
    trusted = plan_check(Assurance.NORMAL, 1.0)
    assert (fresh.check_probability, fresh.k, fresh.checkers) == (1.0, 32, 2)
    assert (trusted.check_probability, trusted.k, trusted.checkers) == (0.25, 8, 1)
    assert plan_check(Assurance.NONE, 0.0).check_probability == 0.0
    assert plan_check(Assurance.HIGH, 1.0).check_probability == 1.0


@given(reputations, reputations)
def test_better_reputation_never_means_more_checking(a: float, b: float) -> None:
    lo, hi = sorted((a, b))
    for assurance in Assurance:
        p_lo, p_hi = plan_check(assurance, lo), plan_check(assurance, hi)
        assert p_hi.k <= p_lo.k and p_hi.check_probability <= p_lo.check_probability


@given(reputations)
def test_higher_assurance_never_means_less_checking(r: float) -> None:
    none, normal, high = (
        plan_check(a, r) for a in (Assurance.NONE, Assurance.NORMAL, Assurance.HIGH)
    )
    assert none.k <= normal.k <= high.k
    assert none.check_probability <= normal.check_probability <= high.check_probability


@given(st.integers(1, 400), st.data())
def test_exact_is_at_least_the_bound(cells: int, data: st.DataObject) -> None:
    k = data.draw(st.integers(0, cells))
    m = data.draw(st.integers(0, cells))
    assert p_caught_exact(cells, k, m) >= p_caught_bound(m / cells, k) - 1e-12


def test_hypergeometric_matches_simulation_of_select_tiles() -> None:
    """The stated formula is what select_tiles actually delivers."""
    width, height, tile_px, k = 128, 96, 32, 3  # 12 cells
    grid = tile_grid(width, height, tile_px)
    falsified = set(grid[:4])  # a cheat covering 4 of 12 cells
    trials = 4000
    caught = sum(
        bool(
            falsified
            & set(select_tiles(b"\x07" * 32, i.to_bytes(32, "big"), width, height, k, tile_px))
        )
        for i in range(trials)
    )
    expected = p_caught_exact(12, 3, 4)  # 1 - C(8,3)/C(12,3) = 1 - 56/220
    assert expected == pytest.approx(1 - 56 / 220)
    sigma = math.sqrt(expected * (1 - expected) / trials)
    assert abs(caught / trials - expected) < 5 * sigma


def test_explain_numbers() -> None:
    e = explain(Assurance.NORMAL, 0.0, 0.5)
    assert e.k == 32 and e.check_probability == 1.0
    assert e.p_caught_if_checked == pytest.approx(1 - (0.5**32) ** 2)  # two checkers' draws
    assert e.p_caught_per_frame == e.p_caught_if_checked
    assert e.frames_for_99 == 1
    trusted = explain(Assurance.NORMAL, 1.0, 0.1)
    assert trusted.p_caught_per_frame == pytest.approx(0.25 * (1 - 0.9**8))
    assert trusted.frames_for_99 == math.ceil(
        math.log(0.01) / math.log(1 - trusted.p_caught_per_frame)
    )
    exact = explain(Assurance.NORMAL, 0.0, 0.5, width=640, height=480)  # 1200 cells
    one = p_caught_exact(1200, 32, 600)
    assert exact.p_caught_if_checked == pytest.approx(1 - (1 - one) ** 2)
    assert exact.checked_area_share == pytest.approx(32 * 256 / (640 * 480))  # each checker
    assert explain(Assurance.NONE, 0.0, 1.0).frames_for_99 is None


def test_bad_inputs_are_refused() -> None:
    with pytest.raises(LocalProtocolError):
        plan_check(Assurance.NORMAL, 1.5)
    with pytest.raises(LocalProtocolError):
        p_caught_bound(-0.1, 3)
    with pytest.raises(LocalProtocolError):
        p_caught_exact(10, 2, 11)


@given(reputations)
def test_a_checked_share_is_never_zero_below_assurance_none(r: float) -> None:
    for assurance in (Assurance.NORMAL, Assurance.HIGH):
        plan = plan_check(assurance, r)
        assert plan.check_probability >= 0.25 and plan.k >= 1


def test_plan_frame_check_draws_from_the_secret_at_the_planned_rate() -> None:
    import hashlib

    from protocol.verification import plan_frame_check

    secret = hashlib.sha256(b"s").digest()
    digests = [hashlib.sha256(i.to_bytes(4, "big")).digest() for i in range(4_000)]
    ks = [plan_frame_check(Assurance.NORMAL, 1.0, secret, d) for d in digests]
    assert set(ks) == {0, 8}
    assert 0.22 < sum(k > 0 for k in ks) / len(ks) < 0.28
    # reproducible from the secret, and another secret draws otherwise
    assert ks == [plan_frame_check(Assurance.NORMAL, 1.0, secret, d) for d in digests]
    other = hashlib.sha256(b"t").digest()
    assert ks != [plan_frame_check(Assurance.NORMAL, 1.0, other, d) for d in digests]
    # no secret: every result checked; a fresh worker: every result, k fresh
    assert {plan_frame_check(Assurance.NORMAL, 1.0, None, d) for d in digests[:50]} == {8}
    assert {plan_frame_check(Assurance.NORMAL, 0.0, secret, d) for d in digests[:50]} == {32}
    assert plan_frame_check(Assurance.NONE, 0.0, None, digests[0]) == 0
