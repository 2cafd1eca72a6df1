"""A worker watches the escrow for fraud claims against its own signed results.

Theory of operation. A claim can only name a result the worker signed
(``Result.result_sig``). An honest requester claims only after a dispute
upheld a rejection, but a requester colluding with a quorum of checkers can
claim any result the worker signed, so the worker role hands every result it
signs here, from the moment it signs it
(:meth:`ClaimWatch.watch`, bounded: the oldest is dropped past
``MAX_WATCHED``); every ``POLL_S`` the watch reads the escrow's claim on
each, for ``WATCH_FOR_S`` (the unbonding delay: after it, stake we unbonded is
beyond reach), and reports what it finds — a pending claim as a warning with
its settle time, while the worker can still answer it, and its end. A pending
claim is handed to ``on_pending`` (the worker's :mod:`node.roles.answerer`,
which gathers a larger quorum's ``Clean`` signatures and answers it).
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Callable

import trio

from ledger.client import CLAIM_ANSWERED, CLAIM_EXECUTED, CLAIM_PENDING
from ledger.errors import LedgerError
from ledger.fraud import ResultRef
from node.log import log_event
from node.roles.ports import Chain

logger = logging.getLogger(__name__)
MAX_WATCHED = 1024
POLL_S = 300.0
WATCH_FOR_S = 7 * 24 * 3600.0
STATUS_NAMES = {CLAIM_PENDING: "pending", CLAIM_EXECUTED: "executed", CLAIM_ANSWERED: "answered"}


class ClaimWatch:
    def __init__(
        self, chain: Chain, on_pending: Callable[[ResultRef, int], None] | None = None
    ) -> None:
        self.chain = chain
        self.on_pending = on_pending  # called with (ref, settle_at_s) when a claim appears
        self._watched: OrderedDict[tuple[bytes, bytes], tuple[ResultRef, float]] = OrderedDict()
        self.claims: dict[tuple[bytes, bytes], str] = {}  # (job, task) -> claim status seen
        self._changed = trio.Event()

    def watch(self, ref: ResultRef) -> None:
        """Watch our signed result ``ref`` for claims, from the next poll on (a result
        just signed cannot be claimed before it is delivered, so no read now: a job's
        every result would otherwise cost a read of all watched ones)."""
        self._watched[(ref.job_id, ref.task_id)] = (ref, trio.current_time() + WATCH_FOR_S)
        while len(self._watched) > MAX_WATCHED:
            self._watched.popitem(last=False)

    async def wait_claim(self, job_id: bytes, task_id: bytes, status: str) -> None:
        while self.claims.get((job_id, task_id)) != status:
            await self._changed.wait()

    def _notify(self) -> None:
        self._changed.set()
        self._changed = trio.Event()

    async def run(self) -> None:
        while True:
            await self.poll()
            with trio.move_on_after(POLL_S):
                await self._changed.wait()

    async def poll(self) -> None:
        now = trio.current_time()
        for key, (ref, until) in list(self._watched.items()):
            if now >= until:
                del self._watched[key]
                continue
            try:
                state = await self.chain.claim_state(ref, self.chain.address)
            except LedgerError as exc:
                log_event(logger, logging.WARNING, "claims not read", error=str(exc)[:200])
                return  # the next poll tries again
            status = STATUS_NAMES.get(state.status)
            if status is None or self.claims.get(key) == status:
                continue
            self.claims[key] = status
            level = logging.WARNING if status != "answered" else logging.INFO
            log_event(logger, level, f"fraud claim against us: {status}", frame=ref.frame,
                      job=ref.job_id.hex()[:16], taken_wei=state.taken_wei,
                      settle_at_s=state.settle_at_s)  # fmt: skip
            if status != "pending":
                del self._watched[key]
            elif self.on_pending is not None:
                self.on_pending(ref, state.settle_at_s)
            self._notify()
