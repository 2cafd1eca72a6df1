"""The requester (client mode) role: one ``JobMachine`` per job, journalled.

Theory of operation. Every input a job machine takes — start, a peer's
message, a timer, a checker assignment, a cancel — is first appended to the
job's journal in the store, then fed to the machine, and the commands it
returns are carried out: ``Send``/``Publish`` through the outbox,
``RequestVerification`` by picking a checker from capacity adverts (its
payment address, read from the advert then, is journalled with the
assignment), ``RecordPayment`` by signing the EIP-712 voucher for exactly the
machine's cumulative amount (workers and checkers alike: the machine keeps the
only books) and sending it to the payee node the machine names until that node
acknowledges it (:mod:`node.roles.voucher_post`),
``FrameAccepted`` by fetching the frame into the job's output folder. A
restarted node replays each open job's journal into a fresh machine
(deterministic: same inputs, same state) with side effects off, then re-sends
the latest vouchers and lets the timers catch up — leases that ran out while
it was down expire and are re-awarded.

Reputation: the role keeps one ``ReputationBook`` (stored in
``worker_records``), fed by the machines' ``WorkerJudged``. Before a bid or a
result from a worker is fed to a machine, that worker's record — our book
merged with the public work record's history of it
(``protocol.reputation.with_public``), so a fresh requester ranks workers by
what others recorded — is, when it changed since the machine last saw it (a
journalled ``record`` input, so a replay decides the same). The judgements an
input causes are stored in the same transaction as its journal entry (a
replay never judges again). Each job's ``check_secret`` is derived from the
node's key and the job id: stable across restarts, unknown to workers. What a
job puts in the public work record: :mod:`node.roles.job_record`.
"""

from __future__ import annotations

import logging
import secrets
import sqlite3
from collections.abc import Awaitable, Callable, Iterable, Iterator
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

import trio

if TYPE_CHECKING:
    from trio_typing import TaskStatus

from ledger.errors import ChainRevert, LedgerError
from node.config import PASS_CLAIM_STAKE
from node.log import log_event
from node.roles import persist
from node.roles.challenger import Challenger
from node.roles.common import STAKE_TTL_S, MarketClock, peer_of
from node.roles.context import RoleContext
from node.roles.deposit import DepositRefused, escrow_once
from node.roles.requester_job import (
    RequesterJob,
    contained,
    message_record,
    pack_record,
)
from node.roles.rules import rules_digest
from node.roles.slasher import Slasher
from node.roles.voucher_post import VoucherPost
from protocol.codec import from_wire, packb, to_wire, unpackb
from protocol.errors import RemoteProtocolError
from protocol.market import (
    Command,
    FrameAccepted,
    JobMachine,
    JobState,
    WorkerJudged,
)
from protocol.market.awarding import planned_unmined
from protocol.messages import (
    Bid,
    JobAnnounce,
    JobSpec,
    Message,
    Result,
    Role,
)
from protocol.reputation import ReputationBook, WorkerRecord, judged, with_public
from protocol.slashing import may_pick_claimer
from protocol.verification import choose_checker, prefer_unasked, with_room

logger = logging.getLogger(__name__)
RESUME_WAIT_S = 30.0
MAX_WORKER_RECORDS = 100_000
KNOWN_ADVERT_S = 600.0  # a checker neither connected nor heard from for longer is not waited for


class RequesterRole:
    def __init__(self, ctx: RoleContext) -> None:
        self.ctx = ctx
        self.jobs: dict[bytes, RequesterJob] = {}
        self.reputation = ReputationBook(MAX_WORKER_RECORDS)
        self._nursery: trio.Nursery | None = None
        # checker -> checks given it, real checks and plants apart (bounded: cleared when full)
        self._given: dict[str, dict[bytes, int]] = {"check": {}, "plant": {}}
        # checker -> picks made for a check or plant not journalled yet (holding_room)
        self._picking: dict[bytes, int] = {}
        self._jobs_changed = trio.Event()
        self.slasher = Slasher(ctx, self.spawn, self.staked_checkers, self.introduce)
        self._stakes: dict[bytes, tuple[int, float]] = {}  # address -> (stake, read at)
        self._open_lanes: dict[bytes, tuple[int | None, float]] = {}  # address -> (count, read at)
        self._count_refused = False  # the escrow refused open_lanes_of (logged once)
        self._lanes_epoch: dict[bytes, int] = {}  # address -> lanes of ours mined for it
        self._pass_claim_wei: int | None = None  # the escrow's SLASH_CAP, once read
        self._judging = trio.Lock()
        self.struck: set[bytes] = set()  # checkers that passed one of our plants
        self.tested: dict[bytes, int] = {}  # checker -> our plants it rejected (node.roles.plants)
        self.challenger = Challenger(self)  # capacity challenges of unproven bidders
        # what the journal's start entries name (node.roles.rules)
        self.rules = rules_digest(repr(ctx.settings.market).encode())
        # every job's vouchers, sent until acknowledged (node.roles.voucher_post)
        self.vouchers = VoucherPost(
            ctx.outbox.post, self.spawn, lambda: self.clock.now_ms() / 1000,
            ctx.chain.grace_s if ctx.chain is not None else None,
        )  # fmt: skip

    @property
    def clock(self) -> MarketClock:
        return self.ctx.clock

    def _add(self, job: RequesterJob) -> None:
        self.jobs[job.job_id] = job
        self._jobs_changed.set()
        self._jobs_changed = trio.Event()

    async def wait_jobs(self, count: int) -> None:
        """Return once this node has ``count`` jobs (a saved job starts after a restart
        only once its deposit is confirmed)."""
        while len(self.jobs) < count:
            await self._jobs_changed.wait()

    def spawn(self, fn: Callable[..., Awaitable[object]], *args: object) -> None:
        """Run ``fn(*args)`` beside the role; a bug in it is logged, never fatal."""
        assert self._nursery is not None
        self._nursery.start_soon(contained, fn, *args)

    async def run(self, *, task_status: TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            for worker, record in await self.ctx.node.store.call(
                partial(persist.load_worker_records, limit=MAX_WORKER_RECORDS)
            ):
                self.reputation.load(worker, record)
            await self._resume()
            self.spawn(self.slasher.resume)
            task_status.started()
            await trio.sleep_forever()

    async def _resume(self) -> None:
        for job_hex, spec_bytes, out_dir in await self.ctx.node.store.call(persist.unsettled_jobs):
            spec = from_wire(JobSpec, unpackb(spec_bytes))
            job = RequesterJob(self, spec, bytes.fromhex(job_hex), Path(out_dir))
            for kind, peer, data, now_ms in await self.ctx.node.store.call(
                partial(persist.read_journal, job_id=job_hex)
            ):
                try:
                    job.apply(kind, peer, data, now_ms)
                except RemoteProtocolError:
                    pass  # refused the first time too, before any state changed
                except Exception as exc:  # a bug met live was contained then; so it is now
                    log_event(logger, logging.ERROR, "journal entry not replayed", kind=kind,
                              job=job_hex[:16], error=f"{type(exc).__name__}: {exc}")  # fmt: skip
            if job.steps == 0:  # saved, never started: killed while depositing
                self.spawn(self._start_saved, job)
                continue
            job.live = True
            self._add(job)
            if job.queue is not None:
                job.queue.restore(job.machine.lanes_wei())
            self.spawn(job.run_queue)
            if job.view.outcome is None and job.rules != self.rules:
                # journalled under other rules (node.roles.rules): cancelled before any
                # input or timer reaches it, so nothing is awarded under the new rules
                log_event(logger, logging.ERROR, "job cancelled: started by another version",
                          job=job_hex[:16], accepted=len(job.view.accepted),
                          hint="its accepted frames are kept and what is unspent is refunded"
                               " after the deadline; submit the frames left as a new job")  # fmt: skip
                await self.cancel(job.job_id)
            log_event(logger, logging.INFO, "job resumed", job=job_hex[:16],
                      accepted=len(job.view.accepted))  # fmt: skip
            self.spawn(self._resume_job, job)

    async def _republish(self, job: RequesterJob, resumed_ms: int) -> None:
        """What a crash kept from the public record goes out once a peer is heard from
        since the restart (gossip published before that reaches nobody)."""
        node = self.ctx.node
        with trio.move_on_after(RESUME_WAIT_S):
            await node.wait_until(
                lambda: any(s.received_ms >= resumed_ms for s in node.capacity.values())
            )
        if missing := await job.record.republish(node.record):
            log_event(logger, logging.WARNING, "records republished after a restart",
                      job=job.job_id.hex()[:16], records=missing)  # fmt: skip

    async def _resume_job(self, job: RequesterJob) -> None:
        resumed_ms = self.ctx.node.wall_ms()
        for frame, info in job.view.accepted.items():
            if not (job.out_dir / f"frame_{frame:04d}.png").exists():
                worker, cid = bytes.fromhex(str(info["worker"])), str(info["cid"])
                price_wei = int(str(info["price_wei"]))
                job.start_collect(FrameAccepted(job.job_id, frame, b"", worker, cid, price_wei))
        # The journal names the payees' nodes: wait until they are heard of again, then
        # re-send the latest vouchers (one lost in the crash would otherwise never arrive).
        payees = {peer_of(n) for n in job.payee_nodes.values()}
        with trio.move_on_after(RESUME_WAIT_S):
            await self.ctx.node.wait_until(lambda: payees <= self.ctx.node.capacity.keys())
        job.resend_vouchers()
        self.spawn(self._republish, job, resumed_ms)
        if job.view.outcome is not None:
            if self.ctx.chain is not None and not job.view.refunded:
                self.spawn(job._refund)  # it ended before the restart: reclaim what is left
            await job._finished()
            return
        await job.run_timer()

    async def save_job(self, spec: JobSpec, job_id: bytes, out_dir: Path) -> None:
        """Record the job (idempotent); until its first journal entry it is resumed by
        escrowing and starting it (``_start_saved``)."""
        await self.ctx.node.store.call(partial(
            persist.save_job, job_id=job_id.hex(), requester=self.ctx.node.node_id,
            spec=packb(to_wire(spec)), out_dir=str(out_dir), now_ms=self.clock.now_ms(),
        ))  # fmt: skip

    async def forget_job(self, job_id: bytes) -> None:
        await self.ctx.node.store.call(partial(persist.forget_job, job_id=job_id.hex()))

    async def _start_saved(self, job: RequesterJob) -> None:
        """A job saved but never started: the node was killed while depositing."""
        if self.ctx.chain is not None:
            try:
                await escrow_once(self.ctx.chain, job.spec, job.job_id)
            except DepositRefused as exc:
                log_event(logger, logging.WARNING, "saved job dropped: deposit refused",
                          job=job.job_id.hex()[:16], reason=str(exc))  # fmt: skip
                await self.forget_job(job.job_id)
                return
        log_event(logger, logging.INFO, "saved job started after a restart",
                  job=job.job_id.hex()[:16])  # fmt: skip
        await self.start_job(job.spec, job.job_id, job.out_dir)

    async def start_job(self, spec: JobSpec, job_id: bytes, out_dir: Path) -> RequesterJob:
        job = RequesterJob(self, spec, job_id, out_dir)
        job.live = True
        await self.save_job(spec, job_id, out_dir)
        self._add(job)
        self.spawn(job.run_queue)
        await job.step("start", b"", self.rules, self.clock.now_ms())
        if self.ctx.chain is not None:
            # before the first bid: the check plan and the bids' stake reads need it
            # (JobBook._check_reputation; it was fed only at the first check, so the
            # results before it were planned on unbacked records: review of stop 36)
            await job.feed_checker_stake()
        self.spawn(job.run_timer)
        return job

    async def receive(self, sender: bytes, message: Message, digest: bytes, wire: bytes = b"") -> bool:
        """Take ``message`` from ``sender``; False: not now (busy: the sender asks again).

        In a job that reads stakes a bid is taken only from a node whose advert binds the
        address it names (both keys sign: docs/PROTOCOL.md §8.1), and that address's stake
        is read for it as long as it stands. A bid's payment address is the bidder's word:
        the requester read the stake of whatever address a bid named, and stake proves a
        bidder, so any number of fresh keys naming a stranger's staked address skipped the
        challenge and the trial cap (and met a minimum stake), then took leases they could
        not deliver on (review of stop 44). A bid from a node whose advert we do not hold
        yet is held (``RequesterJob.park_bid``) and taken once its advert comes; one naming
        another address than its advert binds is not taken (busy, unscored)."""
        self.vouchers.heard_from(sender)  # a path to it exists: vouchers waiting go now
        job = self.jobs.get(getattr(message, "job_id", b""))
        if job is None:
            return True
        if isinstance(message, Bid) and job.machine.reads_stakes:
            bound = self.address_of(sender)
            if bound is None:  # its advert may be on its way: held until it comes (or busy)
                return job.park_bid(sender, message, digest, wire)
            job.unpark_bid(sender)
            if bound != message.payment_address:
                log_event(logger, logging.INFO, "bid not taken: its address is not its advert's",
                          bidder=sender.hex()[:16], address=message.payment_address.hex(),
                          advert=bound.hex())  # fmt: skip
                return False
        if isinstance(message, Bid | Result):  # the decisions that read reputation
            record = self.worker_record(sender)
            if job.fed.get(sender) != record:
                await job.step("record", sender, pack_record(record), self.clock.now_ms())
        market = job.machine.config
        if isinstance(message, Bid) and job.machine.reads_stakes:
            await job.feed_stake(message.payment_address, bidder=True)
        if isinstance(message, Bid) and market.trial_leases:
            await self.challenger.on_bid(job, sender, message)  # its outcome, or a challenge
        await job.step("msg", sender, message_record(message, digest, wire), self.clock.now_ms())
        return True

    def worker_record(self, worker: bytes) -> WorkerRecord | None:
        """What our machines are given: our own book merged with the public record's
        history (protocol.reputation.with_public; journalled as a ``record`` input)."""
        now_ms = self.clock.now_ms()
        public = self.ctx.node.record.book.history(worker, now_ms)
        return with_public(self.reputation.record(worker), public, now_ms)

    async def keep_judged(
        self, journal: Callable[[sqlite3.Connection], None], commands: list[Command], now_ms: int
    ) -> None:
        """Write ``journal`` and the records its ``WorkerJudged`` changed in one
        transaction, then fold them into the book. One at a time across jobs: two
        jobs judging one worker must not both start from the same record."""
        async with self._judging:
            records: dict[bytes, WorkerRecord] = {}
            for c in commands:
                if isinstance(c, WorkerJudged):
                    before = records.get(c.worker) or self.reputation.record(c.worker)
                    records[c.worker] = judged(before, c.judgement, now_ms)
            await self.ctx.node.store.call(partial(
                persist.journal_judged, journal=journal, records=list(records.items()),
                now_ms=now_ms, limit=MAX_WORKER_RECORDS,
            ))  # fmt: skip
            for worker, record in records.items():
                self.reputation.load(worker, record)

    async def cancel(self, job_id: bytes) -> None:
        await self.jobs[job_id].step("cancel", b"", b"", self.clock.now_ms())

    def pick_checkers(self, worker: bytes) -> list[bytes]:
        """Connected nodes advertising the checker role, ``worker`` excepted, in order;
        never a banned one (its verdicts go nowhere: a banned checker that dialled in
        again was still asked for a result's second check, every time)."""
        from node.roles.common import raw_of

        node, now_s = self.ctx.node, trio.current_time()
        connected = node.network.connected_peers()
        return [raw_of(p) for p in self._checker_peers(worker)
                if p in connected and not node.scorer.is_banned(p, now_s)]  # fmt: skip

    def known_checkers(self, worker: bytes) -> list[bytes]:
        """Nodes whose adverts say checker, ``worker`` excepted, that may still be asked:
        connected now, or heard from within ``KNOWN_ADVERT_S`` (a reconnect), counting
        adverts restored from the store as heard when this node started. Adverts are
        kept until evicted, and one of a checker gone for days made every further check
        wait ``CHECKER_WAIT_S`` for it before the machine was told no checker was left.
        (Not our own advert interval: the checker's may be longer, and a connected
        checker dropped from this list was never asked; nor the adverts' first hearing
        after a restart: every checker then looked gone, and a colluder's single pass
        was accepted before the honest second checker reconnected. Review of stop 41.)"""
        from node.roles.common import raw_of

        node = self.ctx.node
        now_ms = node.wall_ms()
        started_ms = now_ms - int((trio.current_time() - node.started_s) * 1000)
        since_ms = now_ms - int(KNOWN_ADVERT_S * 1000)
        connected = set(node.network.connected_peers())
        return [raw_of(p) for p in self._checker_peers(worker)
                if p in connected or max(node.capacity[p].received_ms, started_ms) >= since_ms]  # fmt: skip

    def _checker_peers(self, worker: bytes) -> list[str]:
        from node.roles.common import raw_of

        return sorted(p for p, seen in self.ctx.node.capacity.items()
                      if Role.CHECKER in seen.advert.roles and raw_of(p) != worker)  # fmt: skip

    def checker_candidates(
        self, worker: bytes, exclude: frozenset[bytes] = frozenset(),
        qualifies: Callable[[bytes], bool] = lambda _: True,
    ) -> list[bytes]:  # fmt: skip
        """The checkers :meth:`pick_checker` chooses among; no side effect, so a
        wait may poll it (polling the pick itself turned the rotation by the
        number of polls: which checker got a frame was luck)."""
        exclude = exclude | self.struck  # never again a checker that passed a plant of ours
        return [p for p in self.pick_checkers(worker) if p not in exclude and qualifies(p)]

    def with_room(self, candidates: list[bytes], cap: int) -> list[bytes]:
        """Those of ``candidates`` holding fewer than ``cap`` of our requests, over all
        our open jobs (``protocol.verification.with_room``; the simulator's the same)."""
        if not cap:
            return candidates  # no cap (the default): nothing to count
        machines = [job.machine for job in self.jobs.values() if job.machine.state is JobState.OPEN]
        out = JobMachine.checks_out_over(machines, self.clock.now_ms())
        for checker, n in self._picking.items():
            out[checker] = out.get(checker, 0) + n
        return with_room(candidates, out, cap)

    @contextmanager
    def holding_room(self, checker: bytes | None) -> Iterator[None]:
        """Count ``checker``'s place as taken from its pick until its ask is journalled
        (``step("assign")`` or ``step("plant")``, which the machine then counts): the
        awaits between let every other check waiting for room wake, find the same place
        free and send that checker a request too (review of stop 40: four results, one
        checker, three requests queued at once). None: nothing to hold."""
        if checker is None:
            yield
            return
        self._picking[checker] = self._picking.get(checker, 0) + 1
        try:
            yield
        finally:
            if self._picking[checker] > 1:
                self._picking[checker] -= 1
            else:
                del self._picking[checker]
            # the place may be free again (a plant dropped on its probation draw, an ask
            # not journalled): every job's waits for room look again, not only at the next
            # inbound message (second review of stop 41)
            for job in self.jobs.values():
                job.notify()

    def next_check_stale_ms(self) -> int | None:
        """When a request of ours next goes stale at its checker (its place frees with
        no verdict, so nothing wakes a wait for room: it waits until then at most)."""
        now_ms = self.clock.now_ms()
        times = [t for job in self.jobs.values() if job.machine.state is JobState.OPEN
                 and (t := job.machine.next_check_stale_ms(now_ms)) is not None]  # fmt: skip
        return min(times, default=None)

    def pick_checker(
        self, worker: bytes, exclude: frozenset[bytes] = frozenset(),
        qualifies: Callable[[bytes], bool] = lambda _: True, kind: str = "check",
        room: int | None = None, silent: frozenset[bytes] = frozenset(),
    ) -> bytes | None:  # fmt: skip
        """The checker to ask (``protocol.verification.choose_checker``); ``kind`` is
        ``check`` or ``plant``, counted apart; ``room``: only among those holding fewer
        of our requests (:meth:`with_room`; None: any); ``silent``: asked about the
        result and silent, asked again only if nobody else may be
        (``protocol.verification.prefer_unasked``)."""
        candidates = prefer_unasked(self.checker_candidates(worker, exclude, qualifies), silent)
        if room is not None:
            candidates = self.with_room(candidates, room)
        if not candidates:
            return None
        given = self._given[kind]
        if len(given) >= MAX_WORKER_RECORDS:
            given.clear()  # strangers' ids stay bounded; the shares start again
        return choose_checker(candidates, given, secrets.randbits(64))

    async def checker_stake_wei(self) -> int | None:
        """The stake a checker must hold for us to ask it, beyond a job's minimum: 0
        without a chain; else the setting (``NodeConfig.checker_stake_wei``) or, by
        default, what one claim of a missed plant takes (the escrow's SLASH_CAP, read
        once: immutable); None while the chain does not answer."""
        setting, chain = self.ctx.settings.checker_stake_wei, self.ctx.chain
        if chain is None:
            return 0
        if setting != PASS_CLAIM_STAKE:
            return setting
        if self._pass_claim_wei is None:
            try:
                self._pass_claim_wei = (await chain.fraud_terms()).cap_wei
            except LedgerError as exc:
                log_event(logger, logging.WARNING, "slash cap not read", error=str(exc)[:200])
                return None
        return self._pass_claim_wei

    async def introduce(self, job_id: bytes, checker: bytes) -> None:
        """Send ``checker`` the announce of our job ``job_id`` (the slasher's picks). A job
        settled before a restart is no longer among ours, but its claims go on: its
        announce is then rebuilt from the spec the store keeps."""
        job = self.jobs.get(job_id)
        if job is not None:
            return await job.introduce(checker, again=True)
        stored = await self.ctx.node.store.call(partial(persist.job_spec, job_id=job_id.hex()))
        if stored is not None:
            spec = from_wire(JobSpec, unpackb(stored))
            await self.ctx.outbox.deliver(checker, JobAnnounce(job_id, spec))

    async def staked_checkers(
        self, exclude: frozenset[bytes], exclude_addresses: frozenset[bytes], min_stake_wei: int,
        count: int,
    ) -> dict[bytes, bytes]:  # fmt: skip
        """Up to ``count`` checkers that may sign a claim (node.roles.slasher): connected,
        advertising the checker role, not struck, none in ``exclude`` nor paid at one of
        ``exclude_addresses``, registered with the escrow and with ``min_stake_wei`` and as much again of
        free stake by the chain (``protocol.slashing.may_pick_claimer``: one signer short of
        it and the escrow refuses the whole claim). Node id -> payment address, in a
        random order."""
        chain = self.ctx.chain
        picked: dict[bytes, bytes] = {}
        candidates = self.checker_candidates(b"", exclude)
        secrets.SystemRandom().shuffle(candidates)
        for node in candidates:
            address = self.address_of(node)
            if chain is None or len(picked) >= count:
                break
            if address is None or address in picked.values():
                continue
            try:  # free stake (other pending claims lock theirs), read now: picks are rare
                standing = await chain.signer_standing(address)
                if may_pick_claimer(address, standing, barred=exclude_addresses,
                                    amount_wei=min_stake_wei):  # fmt: skip
                    picked[node] = address
            except LedgerError as exc:
                log_event(logger, logging.WARNING, "checker not read", error=str(exc)[:200])
        return picked

    async def confirmed_stake(self, address: bytes) -> int | None:
        """``address``'s free active stake as the chain has it (``Chain.free_stake_of``:
        locked stake backs nothing; read at most every ``STAKE_TTL_S``); None without a
        chain or while it does not answer (read again at the next call)."""
        chain = self.ctx.chain
        if chain is None:
            return None
        now_s = trio.current_time()
        cached = self._stakes.get(address)
        if cached is not None and now_s - cached[1] < STAKE_TTL_S:
            return cached[0]
        try:
            stake_wei = await chain.free_stake_of(address)
        except LedgerError as exc:
            log_event(logger, logging.WARNING, "stake not read", error=str(exc)[:200])
            return None
        if len(self._stakes) >= MAX_WORKER_RECORDS:
            self._stakes.clear()  # a stranger's addresses stay bounded; re-read as needed
        self._stakes[address] = (stake_wei, now_s)
        return stake_wei

    async def open_lanes_count(self, address: bytes) -> int | None:
        """The escrow's count of ``address``'s open lanes (``Escrow.open_lanes_of``, every
        requester's jobs), read at most every ``STAKE_TTL_S`` and again once a lane we
        opened for it was mined (:meth:`lanes_opened`); None without a chain or while
        the count does not answer (a failed read is not retried within ``STAKE_TTL_S``:
        an escrow without the count, or a stranger's bids, cost one read a minute).
        Each job works out the lanes elsewhere from it (``RequesterJob._lanes_elsewhere``)."""
        chain = self.ctx.chain
        if chain is None:
            return None
        now_s = trio.current_time()
        cached = self._open_lanes.get(address)
        if cached is None or now_s - cached[1] >= STAKE_TTL_S:
            if len(self._open_lanes) >= MAX_WORKER_RECORDS:
                self._open_lanes.clear()  # bounded like the stakes
            epoch = self._lanes_epoch.get(address, 0)
            try:
                count: int | None = await chain.open_lanes_of(address)
            except ChainRevert as exc:  # the escrow refuses the call: one without the count
                if not self._count_refused:
                    self._count_refused = True
                    log_event(logger, logging.ERROR, "the escrow does not count open lanes: "
                              "with min_stake_wei set no bidder qualifies", error=str(exc)[:200],
                              hint="deploy a current escrow (pictor chain up) and set "
                                   "escrow_address, or set min_stake_wei = 0; pictor doctor checks it")  # fmt: skip
                count = None
            except LedgerError as exc:
                log_event(logger, logging.WARNING, "open lanes not read", error=str(exc)[:200])
                count = None
            if self._lanes_epoch.get(address, 0) != epoch:
                # a lane of ours for it was mined during the read: the count may not have it
                # while our job has already taken it off its planned lanes (review of stop
                # 44: a worker staked once took lanes in two of our jobs). Unread: the job
                # reads again at once (lanes_opened woke it).
                return None
            cached = self._open_lanes[address] = (count, now_s)
        return cached[0]

    def planned_elsewhere(self, address: bytes, job_id: bytes) -> int:
        """Our jobs other than ``job_id`` that planned ``address`` a lane not yet seen
        mined (``protocol.market.awarding.planned_unmined``): the escrow's count has them
        once mined, and our decisions must until then."""
        return sum(address in planned_unmined(job.machine.lanes_wei(), job.lanes_open)
                   for other, job in self.jobs.items()
                   if other != job_id and job.machine.state is JobState.OPEN)  # fmt: skip

    def lanes_planned(self, job_id: bytes, addresses: set[bytes]) -> None:
        """Our job ``job_id`` planned first lanes for ``addresses`` (its machine decided
        it just now): every other job of ours feeds their readings again before its next
        input (``RequesterJob.restate``)."""
        if addresses:
            for other, job in self.jobs.items():
                if other != job_id:
                    job.restate(addresses)

    def lanes_opened(self, addresses: Iterable[bytes]) -> None:
        """Lanes a job of ours opened for ``addresses`` were mined: their counts changed,
        read them again (else a count read before would be one short while the job takes
        its own lane off it), now, in every job of ours they bid in (a count read while
        this one was in flight is not used: :meth:`open_lanes_count`)."""
        changed = set(addresses)
        for address in changed:
            self._open_lanes.pop(address, None)
            self._lanes_epoch[address] = self._lanes_epoch.get(address, 0) + 1
        if len(self._lanes_epoch) > MAX_WORKER_RECORDS:
            self._lanes_epoch.clear()  # bounded; a read in flight then keeps what it read
        for job in self.jobs.values():
            if changed & job.machine.bidder_addresses():
                job.wake_backing()

    def keeps_advert(self, node: bytes) -> bool:
        """Whether we deal with ``node``: a bidder in one of our open jobs, a worker whose
        work we accepted, or a checker we gave checks (``Node.set_advert_keeper``: its
        advert outlasts a flood of fresh identities' adverts, which used to push it out
        oldest first, and a bid whose advert is gone waits for it: review of stop 44)."""
        record = self.reputation.record(node)
        if record is not None and record.accepted > 0:
            return True
        if any(node in given for given in self._given.values()):
            return True
        return any(job.machine.has_bidder(node) for job in self.jobs.values()
                   if job.machine.state is JobState.OPEN)  # fmt: skip

    def address_of(self, node: bytes) -> bytes | None:
        seen = self.ctx.node.capacity.get(peer_of(node))
        return seen.advert.payment.address if seen else None
