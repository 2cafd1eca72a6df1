"""A requester job's outgoing queue: its sends and lane fundings, in the machine's order.

Theory of operation. The job machine emits ``FundLanes`` ahead of the awards
(or checker request) it secures (protocol/market/lanes.py). ``JobQueue`` keeps
every ``Send`` and ``FundLanes`` of a job in one FIFO and carries them out one
at a time, so a message leaves only after every funding before it was mined.
Fundings queued behind one in flight go out as one transaction
(``protocol.market.funding_queue``: the highest total per lane), so an award waits for at most the transaction in
flight and the next, however many fundings queued meanwhile.
``fund_lanes`` reads the lanes first and funds only the difference to the
machine's totals: a retry after an outage (backoff ``FUND_RETRY_S`` doubling to
``FUND_RETRY_MAX_S``) or a restart (``restore`` queues the replayed machine's
totals) never funds twice. A revert is final: it is logged, and the worker
whose lane stayed short declines its award.
"""

from __future__ import annotations

import logging
import math
from collections import deque
from collections.abc import Awaitable, Callable

import trio

from ledger.errors import ChainRevert, LedgerError
from node.log import log_event
from node.roles.adversary import Clawback
from node.roles.ports import Chain
from protocol.market import FundLanes, Send
from protocol.market.funding_queue import lane_shortfall, merge_fundings
from protocol.messages import Message

logger = logging.getLogger(__name__)
FUND_RETRY_S = 1.0
FUND_RETRY_MAX_S = 30.0


async def fund_lanes(chain: Chain, job_id: bytes, totals: dict[bytes, int]) -> set[bytes]:
    """Bring the job's lanes up to ``totals``: read them, fund the difference in one
    transaction; a chain outage is retried with backoff, a revert is final. Returns the
    payees whose lane holds funds on chain now (after a revert, those read before it)."""
    delay_s = FUND_RETRY_S
    have: dict[bytes, int] = {}
    while True:
        try:
            have = await chain.lanes(job_id, list(totals))
            fundings = lane_shortfall(have, totals.items())
            if fundings:
                await chain.open_lanes(job_id, fundings)
                log_event(logger, logging.INFO, "lanes funded", job=job_id.hex()[:16],
                          lanes={"0x" + a.hex(): w for a, w in fundings})  # fmt: skip
            return {p for p, w in have.items() if w > 0} | {p for p, w in fundings if w > 0}
        except ChainRevert as exc:
            log_event(logger, logging.WARNING, "lanes not funded", job=job_id.hex()[:16],
                      error=str(exc)[:200])  # fmt: skip
            return {p for p, w in have.items() if w > 0}
        except LedgerError as exc:
            log_event(logger, logging.WARNING, "lane funding postponed", error=str(exc)[:200])
        await trio.sleep(delay_s)
        delay_s = min(delay_s * 2, FUND_RETRY_MAX_S)


class JobQueue:
    def __init__(
        self, chain: Chain, job_id: bytes, claw_back: Callable[[], Awaitable[None]],
        mined: Callable[[set[bytes]], None] = lambda payees: None,
    ) -> None:  # fmt: skip
        self.chain = chain
        self.job_id = job_id
        self._claw_back = claw_back  # adversary "clawback" only
        self._mined = mined  # told the payees whose lanes hold funds after each funding
        self._in, self._out = trio.open_memory_channel[Send | FundLanes | Clawback](math.inf)

    def put(self, item: Send | FundLanes | Clawback) -> None:
        self._in.send_nowait(item)

    def restore(self, totals: dict[bytes, int]) -> None:
        """After a restart: fund every lane up to the machine's books (a funding lost
        in the crash is redone; one that was mined is not repeated)."""
        if totals:
            self.put(FundLanes(self.job_id, (), tuple(totals.items())))

    async def run(self, send: Callable[[bytes, Message], None]) -> None:
        """Carry the items out in order; ``send`` hands a message on (it must not block)."""
        pending: deque[Send | FundLanes | Clawback] = deque()
        while True:
            if pending:
                item = pending.popleft()
            else:
                try:
                    item = await self._out.receive()
                except trio.EndOfChannel:
                    return
            if isinstance(item, Send):
                send(item.to, item.message)
            elif isinstance(item, FundLanes):
                totals = self._merge(item, pending)
                self._mined(await fund_lanes(self.chain, self.job_id, totals))
            else:
                await self._claw_back()

    def _merge(
        self, first: FundLanes, pending: deque[Send | FundLanes | Clawback]
    ) -> dict[bytes, int]:
        """The lane totals to fund now: ``first``'s merged with every funding queued
        behind it (``protocol.market.funding_queue``); those leave ``pending``."""
        while True:
            try:
                pending.append(self._out.receive_nowait())
            except (trio.WouldBlock, trio.EndOfChannel):
                break
        merged, kept = merge_fundings(first, pending)
        pending.clear()
        pending.extend(kept)
        return dict(merged.lane_totals)
