"""Amounts of ether as text and back, in integer wei only.

Money is never a float: ``0.1`` ETH is not a binary fraction, and a float
round trip turns 0.88 ETH into 880000000000000128 wei. Parsing splits the
decimal text at the point and scales the digits; formatting uses ``divmod``.
"""

from __future__ import annotations

import re

WEI_PER_ETH = 10**18
UNITS = {"wei": 0, "gwei": 9, "eth": 18}
_AMOUNT = re.compile(r"(\d+)(?:\.(\d+))?\s*(wei|gwei|eth)?")


def parse_amount_wei(text: str, default_unit: str = "wei") -> int:
    """``"1.76eth"`` -> 1760000000000000000; ``ValueError`` says what is wrong.

    A bare number is in ``default_unit``. Digits finer than one wei are refused
    rather than rounded: an amount is paid exactly or not at all.
    """
    m = _AMOUNT.fullmatch(text.strip().lower())
    if m is None:
        raise ValueError(f"bad amount {text!r}; use e.g. 0.02eth, 5gwei, 1000wei")
    whole: str = m.group(1)
    frac: str = m.group(2) or ""
    unit: str = m.group(3) or default_unit
    decimals: int = UNITS[unit]
    if len(frac.rstrip("0")) > decimals:
        raise ValueError(f"amount {text!r} is finer than one wei")
    frac = frac.rstrip("0").ljust(decimals, "0")
    scale: int = 10**decimals
    return int(whole) * scale + (int(frac) if frac else 0)


def format_eth(wei: int, max_decimals: int | None = None) -> str:
    """``880000000000000000`` -> ``"0.88 ETH"``; exact unless ``max_decimals`` cuts it.

    With ``max_decimals``, an amount that needs more digits is rounded half up
    and marked ``≈`` so a reader knows it is not the exact figure.
    """
    if wei < 0:
        return "-" + format_eth(-wei, max_decimals)
    whole, frac = divmod(wei, WEI_PER_ETH)
    digits = f"{frac:018d}".rstrip("0")
    prefix = ""
    if max_decimals is not None and len(digits) > max_decimals:
        step = 10 ** (18 - max_decimals)
        rounded = (wei + step // 2) // step * step
        whole, frac = divmod(rounded, WEI_PER_ETH)
        digits = f"{frac:018d}"[:max_decimals].rstrip("0")
        prefix = "≈"
    return f"{prefix}{whole}{'.' + digits if digits else ''} ETH"
