"""The price plot leaves a gap where nothing was paid, instead of drawing a price of 0."""

from __future__ import annotations

import math

from simulations.plots import price_with_gaps


def test_intervals_without_accepted_frames_are_gaps_not_zero() -> None:
    prices = [0.0, 12.5, 0.0, 0.0, 11.0, 0.0]
    frames = [0, 4, 4, 4, 9, 9]  # cumulative frames accepted at each sample
    drawn = price_with_gaps(prices, frames)
    assert [math.isnan(p) for p in drawn] == [True, False, True, True, False, True]
    assert drawn[1] == 12.5 and drawn[4] == 11.0
    # a real price of 0 (free workers) in an interval that accepted frames stays 0
    assert price_with_gaps([0.0], [3]) == [0.0]
