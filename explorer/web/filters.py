"""Jinja filters: how numbers, times and ids read on a page."""

from __future__ import annotations

import datetime as dt
from typing import Any

from jinja2 import Environment

WEI_PER_ETH = 10**18


def eth(wei: Any) -> str:
    """Wei (int or decimal text) as ether with up to 6 decimals, exact for small values."""
    value = int(wei or 0)
    whole, frac = divmod(value, WEI_PER_ETH)
    text = f"{whole}.{frac:018d}".rstrip("0").rstrip(".")
    if "." in text and len(text.split(".")[1]) > 6 and whole > 0:
        text = f"{value / WEI_PER_ETH:.6f}".rstrip("0").rstrip(".")
    return text + " ETH"


def when(ms: Any) -> str:
    if ms is None:
        return "–"
    stamp = dt.datetime.fromtimestamp(int(ms) / 1000, tz=dt.UTC)
    return stamp.strftime("%Y-%m-%d %H:%M:%S UTC")


def short(text: Any, keep: int = 10) -> str:
    value = str(text or "")
    return value if len(value) <= 2 * keep + 1 else f"{value[:keep]}…{value[-6:]}"


def thousands(value: Any) -> str:
    return f"{int(value or 0):,}"


def install(env: Environment) -> None:
    env.filters.update(eth=eth, when=when, short=short, thousands=thousands)
