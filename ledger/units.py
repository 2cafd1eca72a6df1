"""Showing amounts without floats: wei as ETH text, by integer arithmetic only.

``f"{wei / 10**18:.6f}"`` goes through a binary float and can print a digit
that is not in the amount; these helpers never do.
"""

from __future__ import annotations

WEI_PER_ETH = 10**18


def format_eth(wei: int, places: int = 6) -> str:
    """``wei`` as ETH with ``places`` decimals, truncated toward zero: 1760000000000000000
    → "1.760000"."""
    if not 0 <= places <= 18:
        raise ValueError("places must be 0..18")
    sign = "-" if wei < 0 else ""
    whole, frac = divmod(abs(wei), WEI_PER_ETH)
    if places == 0:
        return f"{sign}{whole}"
    return f"{sign}{whole}.{str(frac).rjust(18, '0')[:places]}"
