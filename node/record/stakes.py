"""Chain-confirmed stakes of the checkers the public record names (``RecordConfig.checker_counts``).

Theory of operation. ``protocol.record.stake_admits`` decides; this keeps
what it needs. The escrow's minimum checker stake is read first (0, or no
answer yet: every checker counts, as on a network without stake). Then a
checker's verdicts count only once its active stake, read from the chain at
the payment address its capacity advert binds to its key, is at least that
minimum. ``counts`` is synchronous (the book calls it while counting): an
unknown checker is queued for a read and does not count until it was read.
Readings are refreshed every ``refresh_s``, so lapsed stake stops counting.
At most ``max_checkers`` are kept (least recently asked dropped) and queued.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Awaitable, Callable

import trio

from ledger.errors import LedgerError
from node.log import log_event
from protocol.record import stake_admits

logger = logging.getLogger(__name__)
REFRESH_S = 300.0
MAX_CHECKERS = 10_000


class CheckerStakes:
    def __init__(
        self,
        read_min: Callable[[], Awaitable[int]],
        read_stake: Callable[[bytes], Awaitable[int]],
        address_of: Callable[[bytes], bytes | None],
        *,
        refresh_s: float = REFRESH_S,
        max_checkers: int = MAX_CHECKERS,
    ) -> None:
        self._read_min, self._read_stake, self._address_of = read_min, read_stake, address_of
        self.refresh_s, self.max_checkers = refresh_s, max_checkers
        self.min_stake_wei = 0
        self._stakes: OrderedDict[bytes, tuple[int, float]] = OrderedDict()  # stake, read at
        self._wanted: OrderedDict[bytes, None] = OrderedDict()
        self._wake = trio.Event()

    def stake_of(self, checker: bytes) -> int | None:
        reading = self._stakes.get(checker)
        return None if reading is None else reading[0]

    def counts(self, checker: bytes) -> bool:
        if self.min_stake_wei <= 0:
            return True
        stake = self.stake_of(checker)
        if stake is None and checker not in self._wanted:
            self._wanted[checker] = None
            while len(self._wanted) > self.max_checkers:
                self._wanted.popitem(last=False)
            self._wake.set()
        return stake_admits(stake, self.min_stake_wei)

    async def run(self) -> None:
        refresh_at = trio.current_time()
        while True:
            try:
                if trio.current_time() >= refresh_at:  # the minimum, and every known checker
                    refresh_at = trio.current_time() + self.refresh_s
                    self._wanted.update((c, None) for c in self._stakes if c not in self._wanted)
                    self.min_stake_wei = await self._read_min()
                await self._read_wanted()
            except LedgerError as exc:  # the chain did not answer: what we know stands
                log_event(logger, logging.WARNING, "checker stakes not read", error=str(exc)[:200])
            with trio.move_on_at(refresh_at):
                await self._wake.wait()
            self._wake = trio.Event()

    async def _read_wanted(self) -> None:
        while self._wanted:
            checker = next(iter(self._wanted))
            address = self._address_of(checker)
            if address is not None:
                stake_wei = await self._read_stake(address)
                self._stakes.pop(checker, None)
                self._stakes[checker] = (stake_wei, trio.current_time())
                while len(self._stakes) > self.max_checkers:
                    self._stakes.popitem(last=False)
            del self._wanted[checker]  # no advert (no address): asked again when counted
