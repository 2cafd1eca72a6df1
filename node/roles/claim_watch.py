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
polls (:func:`reread_bound_s`); more a poll when the escrow's challenge window is
short, so each is read within a quarter of it. A read that fails is tried again
next time round (``MAX_FAILED_READS`` a poll). It
reports what it finds: a pending claim as a warning with its settle time,
while the worker can still answer it, and its end. A pending claim is handed
to ``on_pending`` (the worker's :mod:`node.roles.answerer`, which gathers a
larger quorum's signatures over the claim's rung 0 and answers it), with the node id of the
job's requester (whom the answer does not ask); so is a contested one (an
answer stands only once its window is over and somebody closes it: the
answerer does, after a restart too).

How long. The escrow opens a claim only while the job's vouchers pay
(``protocol.slashing.claim_window_open``), and refuses a top-up after that, so
a result is watched until its job's deadline plus the grace and two challenge
windows, a claim's and its answer's (``protocol.slashing.claim_watch_ends_s``),
and a claimed one until it is settled (each rung of its ladder restarts the
window), and one window more after a contest our side won (the escrow lets
the frame be claimed again until then): first ``WATCH_FOR_S`` from
signing, then, before it is let go, the job's deadline is read again and the
watch extended to what it says (a top-up may have pushed it later, only inside
the window and at most the escrow's ``MAX_JOB_S`` after the job's first
deposit), clamped to ``MAX_UNTIL_MS`` (an escrow deployed without that bound). A chain that does not answer, or says
the job does not exist, keeps the result watched. A full watch
(``MAX_WATCHED``) makes the worker and checker roles take no new work to sign
(:attr:`ClaimWatch.full`): a requester that has us sign more, or keeps its
windows open with top-ups, cannot push older results out. Each result is a
watch row of its own, keyed by its frame digest too (a requester that had us
sign two frames of one task cannot make the second replace the first).

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
from typing import TYPE_CHECKING

import trio

from ledger.client import CLAIM_ANSWERED, CLAIM_CONTESTED, CLAIM_EXECUTED, CLAIM_PENDING, ClaimState
from ledger.errors import LedgerError
from ledger.fraud import ResultRef
from node.log import log_event
from node.roles import persist
from node.roles.ports import Chain
from node.store import Store
from protocol.codec import packb, unpackb
from protocol.slashing import claim_watch_ends_s

if TYPE_CHECKING:
    import sqlite3

    from trio_typing import TaskStatus

logger = logging.getLogger(__name__)
_Write = Callable[["sqlite3.Connection"], object]  # one store write (Store.call runs it)
MAX_WATCHED = 16_384
POLL_S = 300.0
POLL_BATCH = 256  # claim reads per poll, at least (more when a short challenge window asks)
READS_WITHIN = 4  # every result is read within a 1/READS_WITHIN of the challenge window
MAX_FAILED_READS = 8  # chain errors a poll takes before it leaves the rest to the next
WATCH_FOR_S = 3 * 24 * 3600.0  # the first look at the job's claim window
MAX_UNTIL_MS = 2**62  # a store INTEGER; a job's deadline may be as far as 2**64 - 1 s
STATUS_NAMES = {CLAIM_PENDING: "pending", CLAIM_EXECUTED: "executed", CLAIM_ANSWERED: "answered",
                CLAIM_CONTESTED: "contested"}  # fmt: skip
Key = tuple[bytes, bytes, bytes]  # (job, task, frame digest): one signature each


class _Watched:
    def __init__(self, ref: ResultRef, requester: bytes, until_ms: int) -> None:
        self.ref, self.requester, self.until_ms = ref, requester, until_ms

    @property
    def key(self) -> Key:
        return (self.ref.job_id, self.ref.task_id, self.ref.frame_digest)

    @property
    def stored_task(self) -> bytes:
        """The store's ``task_id`` column: the task and the frame digest (a requester that
        had us sign two frames of one task must not make the second replace the first)."""
        return self.ref.task_id + self.ref.frame_digest

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
        self.claims: dict[Key, str] = {}  # claim status seen (not stored; bounded by the watch)
        self._challenge_s: int | None = None  # the escrow's CHALLENGE_S, once read
        self._changed = trio.Event()
        # writes for the saver, in order: (what, the write), one task for all of them
        self._saves, self._to_save = trio.open_memory_channel[tuple[str, _Write]](MAX_WATCHED)
        # job -> (its requester's node id, payment address): every job we signed work in,
        # as stored, newest last (bounded as the watch)
        self._payers: OrderedDict[bytes, tuple[bytes, bytes]] = OrderedDict()

    def payer_of(self, job_id: bytes) -> tuple[bytes, bytes] | None:
        """(requester node id, requester payment address) of a job we signed a result or
        a pass in, this run or a previous one (the stored watch): whose vouchers for the
        job we keep after a restart forgot the job's spec (node.roles.service)."""
        return self._payers.get(job_id)

    def _payer(self, entry: _Watched) -> None:
        self._remember_payer(entry.ref.job_id, entry.requester, entry.ref.requester)

    def _remember_payer(self, job_id: bytes, requester: bytes, address: bytes) -> None:
        self._payers[job_id] = (requester, address)
        self._payers.move_to_end(job_id)
        while len(self._payers) > MAX_WATCHED:
            self._payers.popitem(last=False)

    def note_payer(self, job_id: bytes, requester: bytes, address: bytes) -> None:
        """Remember, stored, that ``requester`` (node id; payment ``address``) pays us for
        ``job_id`` though we signed nothing in it: a checker whose verdicts in a job were
        all rejections kept no watch entry, and once restarted it acknowledged and dropped
        that job's fee vouchers (issue 17's notes). Once per job and run."""
        if self._payers.get(job_id) == (requester, address):
            return
        self._remember_payer(job_id, requester, address)
        until_ms = self.now_ms() + int(WATCH_FOR_S * 1000)
        self._queue_write("job payer", partial(
            persist.save_payer, job_id=job_id, requester=requester, address=address,
            until_ms=until_ms, keep=MAX_WATCHED,
        ))  # fmt: skip

    @property
    def watching(self) -> int:
        """How many signed results are watched now."""
        return len(self._watched)

    @property
    def full(self) -> bool:
        """Whether the watch holds all it can: the worker and checker roles then take no
        new work to sign (what a node signs stays within what it can defend)."""
        return len(self._watched) >= MAX_WATCHED

    def watch(self, ref: ResultRef, requester: bytes) -> None:
        """Watch our signed result ``ref`` (of ``requester``'s job) for claims, from the
        next poll on (a result just signed cannot be claimed before it is delivered, so
        no read now: a job's every result would otherwise cost a read of all watched
        ones). The saver stores it at once; should its queue be full, the watch still
        holds it in memory (a warning says a restart would forget it). Past
        ``MAX_WATCHED`` (the roles stop taking work first: :attr:`full`) the entry read
        longest ago is dropped, with a warning."""
        entry = _Watched(ref, requester, self.now_ms() + int(WATCH_FOR_S * 1000))
        self._watched[entry.key] = entry
        self._payer(entry)
        while len(self._watched) > MAX_WATCHED:
            (job_id, _, _), dropped = self._watched.popitem(last=False)
            log_event(logger, logging.WARNING, "claim watch full: a result no longer watched",
                      job=job_id.hex()[:16], frame=dropped.ref.frame)  # fmt: skip
        self._save(True, entry)

    def _save(self, keep: bool, entry: _Watched) -> None:
        job_id, task = entry.ref.job_id, entry.stored_task
        if keep:
            self._queue_write("claim watch", partial(
                persist.watch_result, job_id=job_id, task_id=task, data=entry.pack(),
                until_ms=entry.until_ms, keep=MAX_WATCHED,
            ))  # fmt: skip
            return

        def unwatch(conn: sqlite3.Connection) -> None:
            # rows stored before the digest joined the key have the task alone
            for stored in (task, entry.ref.task_id):
                persist.unwatch_result(conn, job_id=job_id, task_id=stored)

        self._queue_write("claim watch", unwatch)

    def _queue_write(self, what: str, write: _Write) -> None:
        try:
            self._saves.send_nowait((what, write))
        except trio.WouldBlock:
            log_event(logger, logging.WARNING, f"{what} not stored: a restart forgets it")

    async def load(self) -> None:
        """Watch again what a previous run of the node stored."""
        payers = await self.store.call(partial(persist.stored_payers, now_ms=self.now_ms()))
        for job_id, requester, address in payers:
            self._remember_payer(job_id, requester, address)
        rows = await self.store.call(persist.watched_results)
        for data, until_ms in rows:
            entry = _Watched.unpack(data, until_ms)
            self._watched.setdefault(entry.key, entry)
            self._payer(entry)
        while len(self._watched) > MAX_WATCHED:
            self._watched.popitem(last=False)

    async def _saver(self) -> None:
        async for what, write in self._to_save:
            try:
                await self.store.call(write)
            except Exception as exc:  # held in memory still; a restart may forget it
                log_event(logger, logging.ERROR, f"{what} not stored",
                          error=f"{type(exc).__name__}: {str(exc)[:200]}")  # fmt: skip

    async def wait_claim(self, job_id: bytes, task_id: bytes, status: str) -> None:
        """Wait until a claim on a result of (job, task) was seen in ``status``."""
        while not any(k[:2] == (job_id, task_id) and s == status for k, s in self.claims.items()):
            await self._changed.wait()

    def _notify(self) -> None:
        self._changed.set()
        self._changed = trio.Event()

    async def run(self, *, task_status: TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._saver)
            await self.load()
            task_status.started()  # loaded: payer_of knows the stored jobs (review, stop 38)
            while True:
                await self.poll()
                with trio.move_on_after(POLL_S):
                    await self._changed.wait()

    async def _challenge(self) -> int:
        """The escrow's CHALLENGE_S (immutable: read once); ``LedgerError`` until read."""
        if self._challenge_s is None:
            self._challenge_s = (await self.chain.fraud_terms()).challenge_s
        return self._challenge_s

    async def reads_per_poll(self) -> int:
        """``POLL_BATCH``, or more when the escrow's challenge window is short: every
        watched result is read within ``1 / READS_WITHIN`` of it (:func:`reread_bound_s`)."""
        try:
            polls = _polls_within(await self._challenge())
        except LedgerError:
            return POLL_BATCH
        return max(POLL_BATCH, -(-len(self._watched) // polls))

    async def poll(self) -> None:
        """Read the claims on the results read least recently (each goes to the back of
        the line; :meth:`reads_per_poll` of them), and let go of those whose claim window
        has closed. A read that fails is tried again next time round; after
        ``MAX_FAILED_READS`` failures the rest waits for the next poll."""
        now_ms, failed = self.now_ms(), 0
        for key in list(self._watched)[: await self.reads_per_poll()]:
            entry = self._watched.get(key)
            if entry is None:
                continue
            self._watched.move_to_end(key)
            try:
                # a live claim is watched until it is settled, however long its ladder
                live = self.claims.get(entry.key) in ("pending", "contested")
                expired = now_ms >= entry.until_ms and not live
                if expired and not await self._extend(entry):
                    del self._watched[key]
                    self._save(False, entry)
                    continue
                state = await self.chain.claim_state(entry.ref, self.chain.address)
            except LedgerError as exc:
                log_event(logger, logging.WARNING, "claims not read", error=str(exc)[:200])
                failed += 1
                if failed >= MAX_FAILED_READS:
                    return
                continue
            self._seen(entry, state)

    async def _extend(self, entry: _Watched) -> bool:
        """Whether ``entry``'s job can still be claimed on (or answered): its deadline read
        again, the watch then runs to ``claim_watch_ends_s`` (stored; at most
        ``MAX_UNTIL_MS``). Raises ``LedgerError`` while the chain does not answer: the
        result stays watched, as it does when the chain says the job does not exist (it
        existed when we signed, and escrow jobs are never deleted: a node behind)."""
        ref = entry.ref
        secured = await self.chain.secured(ref.requester, ref.job_id)
        if not secured.exists:
            log_event(logger, logging.WARNING, "claim watch: the chain does not know the job",
                      job=ref.job_id.hex()[:16])  # fmt: skip
            entry.until_ms = self.now_ms() + int(WATCH_FOR_S * 1000)
            return True
        ends_s = claim_watch_ends_s(secured.redeem_until_s, await self._challenge())
        if await self.chain.chain_time_s() >= ends_s:
            return False
        entry.until_ms = min(ends_s * 1000, MAX_UNTIL_MS)
        self._save(True, entry)
        return True

    def _seen(self, entry: _Watched, state: ClaimState) -> None:
        ref = entry.ref
        status = STATUS_NAMES.get(state.status)
        if status is None or self.claims.get(entry.key) == status:
            return
        self.claims.pop(entry.key, None)
        self.claims[entry.key] = status  # the newest last; the oldest go past MAX_WATCHED
        while len(self.claims) > MAX_WATCHED:
            del self.claims[next(iter(self.claims))]
        level = logging.WARNING if status != "answered" else logging.INFO
        log_event(logger, level, f"fraud claim against us: {status}", frame=ref.frame,
                  job=ref.job_id.hex()[:16], taken_wei=state.taken_wei,
                  settle_at_s=state.settle_at_s)  # fmt: skip
        if status == "executed":
            del self._watched[entry.key]
            self._save(False, entry)
        elif status in ("pending", "contested") and self.on_pending is not None:
            # pending: answer it; contested (our answer, found after a restart): close it
            # once its window is over, or see it overturned
            self.on_pending(ref, state.settle_at_s, entry.requester)
        elif status == "answered":
            # still watched, since a larger quorum may claim the frame again: the escrow
            # reopens it for a window after the contest, even past the job's window
            window_ms = int(self._challenge_s or WATCH_FOR_S) * 1000
            entry.until_ms = min(max(entry.until_ms, self.now_ms() + window_ms), MAX_UNTIL_MS)
            self._save(True, entry)
        self._notify()


def reread_bound_s(challenge_s: int | None = None) -> float:
    """The longest a watched result waits between two reads of its claim, for a full
    watch (``POLL_BATCH`` a poll, or more for a short ``challenge_s``): what a claim's
    answer may lose of its challenge window."""
    cycle = -(-MAX_WATCHED // POLL_BATCH)  # polls a full watch takes at POLL_BATCH
    if challenge_s is not None:
        cycle = min(cycle, _polls_within(challenge_s))
    return cycle * POLL_S


def _polls_within(challenge_s: int) -> int:
    """The polls in ``1 / READS_WITHIN`` of a challenge window (at least one)."""
    return max(1, int(challenge_s / READS_WITHIN // POLL_S))
