"""The node's stake as its adverts state it: read from the chain, never assumed.

``StakeWatch`` reads the payment account's free stake (active less what pending
claims lock) from the escrow every
``refresh_s`` and hands it to the node (``Node.set_confirmed_stake``), which
re-advertises when it changed. When the chain cannot be read, the last reading
stands for at most ``max_age_s`` (an RPC hiccup does not make the advert flap);
after that the advert says 0, because nothing confirms the stake any more.
Only workers and checkers with a chain start a watch; other nodes advertise 0.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Awaitable, Callable

import trio

from ledger.errors import LedgerError
from node.log import log_event

logger = logging.getLogger(__name__)

REFRESH_S = 60.0
MAX_AGE_S = 300.0


class StakeWatch:
    def __init__(
        self,
        publish: Callable[[int], None],
        read_stake_wei: Callable[[], Awaitable[int]],
        *,
        refresh_s: float = REFRESH_S,
        max_age_s: float = MAX_AGE_S,
    ) -> None:
        self._publish = publish
        self._read = read_stake_wei
        self.refresh_s = refresh_s
        self.max_age_s = max_age_s
        self.confirmed_at_s = -math.inf  # trio time of the last successful reading

    async def refresh(self) -> None:
        """One reading: publish it, or 0 once the last reading is older than ``max_age_s``."""
        try:
            stake_wei = await self._read()
        except LedgerError as exc:
            if trio.current_time() - self.confirmed_at_s > self.max_age_s:
                self._publish(0)
            log_event(logger, logging.WARNING, "stake not read", error=str(exc)[:200])
            return
        self.confirmed_at_s = trio.current_time()
        self._publish(max(0, stake_wei))

    async def run(self) -> None:
        while True:
            await self.refresh()
            await trio.sleep(self.refresh_s)
