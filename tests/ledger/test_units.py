"""Integer-only display of amounts."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ledger.units import WEI_PER_ETH, format_eth


def test_examples() -> None:
    assert format_eth(1_760_000_000_000_000_000) == "1.760000"
    assert format_eth(1) == "0.000000"
    assert format_eth(1, places=18) == "0.000000000000000001"
    assert format_eth(-5 * WEI_PER_ETH // 2, places=1) == "-2.5"
    assert format_eth(7 * WEI_PER_ETH, places=0) == "7"
    with pytest.raises(ValueError):
        format_eth(1, places=19)


@given(st.integers(min_value=0, max_value=2**128))
def test_full_precision_round_trips(wei: int) -> None:
    whole, frac = format_eth(wei, places=18).split(".")
    assert int(whole) * WEI_PER_ETH + int(frac) == wei
