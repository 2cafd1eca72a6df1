"""The market clock and timers: a timer woken at its time reads that time."""

from __future__ import annotations

import trio

from node.roles.common import MarketClock


async def test_sleeping_until_a_market_time_wakes_when_the_clock_reads_it(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """``n / 1000 * 1000 < n`` for some n: a timer armed for ``trio_time_of(due)`` woke
    reading ``due - 1``, re-armed for the same past instant and spun forever under the
    autojump clock (a requester-restart role test hung about one run in four)."""
    clock = MarketClock(lambda: 1_764_619_200_123)
    start_ms = clock.now_ms()
    for n in range(1, 3_000, 2):
        due_ms = start_ms + n
        await trio.sleep_until(clock.trio_time_of(due_ms))
        assert clock.now_ms() == due_ms
