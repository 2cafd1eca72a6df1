"""Jinja filters: how numbers, times and ids read on a page."""

from __future__ import annotations

import datetime as dt
from typing import Any

from jinja2 import Environment
from markupsafe import Markup, escape

from protocol.money import format_eth

ETH_DECIMALS = 6
ZERO_HASH = "0x" + "00" * 32


def eth(wei: Any) -> Markup:
    """Wei (int or decimal text) as ether, in integers: exact up to 6 decimals; an amount
    that needs more is rounded, marked ``≈``, and its exact wei is the element's title."""
    value = int(wei or 0)
    text = format_eth(value, ETH_DECIMALS)
    if text.startswith("≈"):
        return Markup('<span title="{} wei">{}</span>').format(value, text)
    return Markup(escape(text))


def tx_hash(value: Any) -> str:
    """A transaction hash, or "" for none (a spec written before its deposit carries zeros)."""
    text = str(value or "")
    return "" if not text.strip("0x") or text == ZERO_HASH else text


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
    env.filters.update(eth=eth, when=when, short=short, thousands=thousands, tx_hash=tx_hash)
