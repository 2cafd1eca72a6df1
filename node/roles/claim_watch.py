"""A worker watches the escrow for fraud claims against its own signed results.

Theory of operation. A claim can only name a result the worker signed
(``Result.result_sig``). An honest requester claims only after a dispute
upheld a rejection, but a requester colluding with a quorum of checkers can
claim any result the worker signed, so the worker role hands every result it
signs here, from the moment it signs it (:meth:`ClaimWatch.watch`; a checker's
signed passes too, node.roles.claim_defence). Each poll (every ``POLL_S``, or
when woken) reads the escrow's claim on up to ``POLL_BATCH`` of them, the
least recently read first, so the RPC load stays bounded however many are
watched, and every one is read at least every ``MAX_WATCHED / POLL_BATCH``
polls (:func:`reread_bound_s`, far inside the escrow's challenge window). It
reports what it finds: a pending claim as a warning with its settle time,
while the worker can still answer it, and its end. A pending claim is handed
to ``on_pending`` (the worker's :mod:`node.roles.answerer`, which gathers a
larger quorum's ``Clean`` signatures and answers it), with the node id of the
job's requester (whom the answer does not ask).

How long. The escrow opens a claim only while the job's vouchers pay
(``protocol.slashing.claim_window_open``), and refuses a top-up after that, so
a result is watched until its job's deadline plus the grace and the challenge
window (``protocol.slashing.claim_watch_ends_s``): first ``WATCH_FOR_S`` from
signing, then, before it is let go, the job's deadline is read again and the
watch extended to what it says (a top-up may have pushed it later). A chain
that does not answer keeps the result watched. Past ``MAX_WATCHED`` results
the oldest is dropped with a warning: a node signing results faster than that
for one window is beyond what it can defend (a frame a minute for 11 days).

The watch is stored (``claim_watch``, store migration 7; each result written
by a saver task as soon as it is watched, dropped when its claim ended or its
time ran out), so a node restarted inside a claim's window loads it and
answers the claim: the scene and frame it serves to the answering checkers
are in its content store, and nothing else of the job is needed.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Callable
from functools import partial

import trio

from ledger.client import CLAIM_ANSWERED, CLAIM_EXECUTED, CLAIM_PENDING, ClaimState
from ledger.errors import LedgerError
from ledger.fraud import ResultRef
from node.log import log_event
from node.roles import persist
from node.roles.ports import Chain
from node.store import Store
from protocol.codec import packb, unpackb
from protocol.slashing import claim_watch_ends_s

logger = logging.getLogger(__name__)
MAX_WATCHED = 16_384
POLL_S = 300.0
POLL_BATCH = 256  # claim reads per poll, at most
WATCH_FOR_S = 3 * 24 * 3600.0  # the first look at the job's claim window
STATUS_NAMES = {CLAIM_PENDING: "pending", CLAIM_EXECUTED: "executed", CLAIM_ANSWERED: "answered"}
Key = tuple[bytes, bytes]  # (job, task)


class _Watched:
    def __init__(self, ref: ResultRef, requester: bytes, until_ms: int) -> None:
        self.ref, self.requester, self.until_ms = ref, requester, until_ms

    def pack(self) -> bytes:
        r = self.ref
        return packb([r.chain_id, r.contract, r.requester, r.job_id, r.task_id, r.frame,
                      r.frame_digest, self.requester])  # fmt: skip

    @classmethod
    def unpack(cls, data: bytes, until_ms: int) -> _Watched:
        chain_id, contract, requester_address, job_id, task_id, frame, digest, requester = unpackb(data)
        ref = ResultRef(chain_id, contract, requester_address, job_id, task_id, frame, digest)
        return cls(ref, requester, until_ms)


class ClaimWatch:
    def __init__(
        self, chain: Chain, store: Store, now_ms: Callable[[], int],
        on_pending: Callable[[ResultRef, int, bytes], None] | None = None,
    ) -> None:  # fmt: skip
        self.chain = chain
        self.store = store
        self.now_ms = now_ms  # wall clock: the watch outlives a restart
        # called with (ref, settle_at_s, requester node id) when a claim appears
        self.on_pending = on_pending
        self._watched: OrderedDict[Key, _Watched] = OrderedDict()
        self.claims: dict[Key, str] = {}  # (job, task) -> claim status seen
        self._changed = trio.Event()
        self._saves, self._to_save = trio.open_memory_channel[_Watched | Key](MAX_WATCHED)

    @property
    def watching(self) -> int:
        """How many signed results are watched now."""
        return len(self._watched)

    def watch(self, ref: ResultRef, requester: bytes) -> None:
        """Watch our signed result ``ref`` (of ``requester``'s job) for claims, from the
        next poll on (a result just signed cannot be claimed before it is delivered, so
        no read now: a job's every result would otherwise cost a read of all watched
        ones). The saver stores it at once; should its queue be full, the watch still
        holds it in memory (a warning says a restart would forget it)."""
        entry = _Watched(ref, requester, self.now_ms() + int(WATCH_FOR_S * 1000))
        self._watched[(ref.job_id, ref.task_id)] = entry
        while len(self._watched) > MAX_WATCHED:
            (job_id, _), dropped = self._watched.popitem(last=False)
            log_event(logger, logging.WARNING, "claim watch full: a result no longer watched",
                      job=job_id.hex()[:16], frame=dropped.ref.frame)  # fmt: skip
        self._save(entry)

    def _save(self, what: _Watched | Key) -> None:
        try:
            self._saves.send_nowait(what)
        except trio.WouldBlock:
            log_event(logger, logging.WARNING, "claim watch not stored: a restart forgets it")

    async def load(self) -> None:
        """Watch again what a previous run of the node stored."""
        rows = await self.store.call(persist.watched_results)
        for data, until_ms in rows:
            entry = _Watched.unpack(data, until_ms)
            self._watched.setdefault((entry.ref.job_id, entry.ref.task_id), entry)
        while len(self._watched) > MAX_WATCHED:
            self._watched.popitem(last=False)

    async def _saver(self) -> None:
        async for what in self._to_save:
            if isinstance(what, _Watched):
                await self.store.call(partial(
                    persist.watch_result, job_id=what.ref.job_id, task_id=what.ref.task_id,
                    data=what.pack(), until_ms=what.until_ms, keep=MAX_WATCHED,
                ))  # fmt: skip
            else:
                await self.store.call(partial(persist.unwatch_result, job_id=what[0], task_id=what[1]))

    async def wait_claim(self, job_id: bytes, task_id: bytes, status: str) -> None:
        while self.claims.get((job_id, task_id)) != status:
            await self._changed.wait()

    def _notify(self) -> None:
        self._changed.set()
        self._changed = trio.Event()

    async def run(self) -> None:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._saver)
            await self.load()
            while True:
                await self.poll()
                with trio.move_on_after(POLL_S):
                    await self._changed.wait()

    async def poll(self) -> None:
        """Read the claims on the ``POLL_BATCH`` results read least recently (each goes
        to the back of the line), and let go of those whose claim window has closed."""
        now_ms = self.now_ms()
        for key in list(self._watched)[:POLL_BATCH]:
            entry = self._watched.get(key)
            if entry is None:
                continue
            self._watched.move_to_end(key)
            try:
                if now_ms >= entry.until_ms and not await self._extend(entry):
                    del self._watched[key]
                    self._save(key)
                    continue
                state = await self.chain.claim_state(entry.ref, self.chain.address)
            except LedgerError as exc:
                log_event(logger, logging.WARNING, "claims not read", error=str(exc)[:200])
                return  # the next poll tries again
            self._seen(key, entry, state)

    async def _extend(self, entry: _Watched) -> bool:
        """Whether ``entry``'s job can still be claimed on (or answered): its deadline read
        again, the watch then runs to ``claim_watch_ends_s`` (stored). Raises
        ``LedgerError`` while the chain does not answer: the result stays watched."""
        ref = entry.ref
        secured = await self.chain.secured(ref.requester, ref.job_id)
        if not secured.exists:
            return False  # no claim opens on a job the escrow does not hold
        terms = await self.chain.fraud_terms()
        grace_s = secured.redeem_until_s - secured.deadline_s
        ends_s = claim_watch_ends_s(secured.deadline_s, grace_s, terms.challenge_s)
        if await self.chain.chain_time_s() >= ends_s:
            return False
        entry.until_ms = ends_s * 1000
        self._save(entry)
        return True

    def _seen(self, key: Key, entry: _Watched, state: ClaimState) -> None:
        ref = entry.ref
        status = STATUS_NAMES.get(state.status)
        if status is None or self.claims.get(key) == status:
            return
        self.claims[key] = status
        level = logging.WARNING if status != "answered" else logging.INFO
        log_event(logger, level, f"fraud claim against us: {status}", frame=ref.frame,
                  job=ref.job_id.hex()[:16], taken_wei=state.taken_wei,
                  settle_at_s=state.settle_at_s)  # fmt: skip
        if status != "pending":
            del self._watched[key]
            self._save(key)
        elif self.on_pending is not None:
            self.on_pending(ref, state.settle_at_s, entry.requester)
        self._notify()


def reread_bound_s() -> float:
    """The longest a watched result waits between two reads of its claim (a full watch,
    ``POLL_BATCH`` a poll): what a claim's answer may lose of its challenge window."""
    return MAX_WATCHED / POLL_BATCH * POLL_S
