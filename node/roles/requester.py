"""The requester (client mode) role: one ``JobMachine`` per job, journalled.

Theory of operation. Every input a job machine takes — start, a peer's
message, a timer, a checker assignment, a cancel — is first appended to the
job's journal in the store, then fed to the machine, and the commands it
returns are carried out: ``Send``/``Publish`` through the outbox,
``RequestVerification`` by picking a checker from capacity adverts (its
payment address, read from the advert then, is journalled with the
assignment), ``RecordPayment`` by signing the EIP-712 voucher for exactly the
machine's cumulative amount (workers and checkers alike: the machine keeps the
only books) and sending it to the payee node the machine names,
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

import hashlib
import hmac
import logging
import secrets
import shutil
import sqlite3
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

import trio

if TYPE_CHECKING:
    from trio_typing import TaskStatus

from ledger.errors import LedgerError
from ledger.fraud import pass_signer, result_signer
from ledger.vouchers import sign
from node.config import PASS_CLAIM_STAKE
from node.content.transfer import TransferError
from node.log import log_event
from node.roles import persist
from node.roles.adversary import Clawback, claw_back
from node.roles.challenger import Challenger, unpack_outcome
from node.roles.common import MarketClock, peer_of, run_timer
from node.roles.context import RoleContext
from node.roles.deposit import DepositRefused, escrow_once
from node.roles.job_record import JobRecord
from node.roles.lanes import JobQueue
from node.roles.plants import CheckFrames, apply_plant_entry
from node.roles.slasher import Slasher
from protocol.codec import from_wire, packb, to_wire, unpackb
from protocol.errors import RemoteProtocolError
from protocol.market import (
    CheckerOverruled,
    Command,
    DisputeResolved,
    FrameAccepted,
    FrameFailed,
    FundLanes,
    JobFinished,
    JobMachine,
    PassClaimDue,
    PlantJudged,
    Publish,
    RecordPayment,
    RefundDue,
    RequestPlant,
    RequestVerification,
    Send,
    SlashDue,
    WorkerBlocklisted,
    WorkerJudged,
)
from protocol.messages import (
    MESSAGE_TYPES,
    Bid,
    ClosedOutcome,
    JobAnnounce,
    JobCancelled,
    JobClosed,
    JobSpec,
    Message,
    Result,
    Role,
    Voucher,
)
from protocol.reputation import ReputationBook, WorkerRecord, judged, with_public
from protocol.verification import choose_checker

logger = logging.getLogger(__name__)
CHECKER_WAIT_S = 30.0
RESUME_WAIT_S = 30.0
REFUND_POLL_S = 5.0
MAX_WORKER_RECORDS = 100_000
CHECK_SECRET_DOMAIN = b"pictor/requester/check-secret/v1\x00"
STAKE_TTL_S = 60  # seconds: a confirmed stake is read again after this long


def check_secret_of(node_seed: bytes, job_id: bytes) -> bytes:
    """The job's check secret: HMAC of the job id under the node's private key seed."""
    return hmac.new(node_seed, CHECK_SECRET_DOMAIN + job_id, hashlib.sha256).digest()


def _pack_record(record: WorkerRecord | None) -> bytes:
    if record is None:
        return b""
    r = record
    return packb([r.accepted, r.rejected, r.failed, r.timed_out, r.first_seen_ms])


def _unpack_record(data: bytes) -> WorkerRecord | None:
    return None if not data else WorkerRecord(*(int(v) for v in unpackb(data)))


@dataclass
class JobView:
    """What the API and the progress display show; rebuilt by replay."""

    accepted: dict[int, dict[str, object]] = field(default_factory=dict)
    failed: dict[int, str] = field(default_factory=dict)
    workers: set[str] = field(default_factory=set)
    blocklisted: set[str] = field(default_factory=set)
    rejected: int = 0
    outcome: str | None = None
    refund_wei: int = 0  # what the machine's books leave unspent
    refunded: bool = False  # the escrow is settled (refunded, or nothing was left)
    refunded_wei: int = 0  # what our refund transaction returned
    started_ms: int = 0
    finished_ms: int | None = None


class RefundNotYet(Exception):
    """The escrow cannot be refunded now; the message says when or why not."""


class RequesterJob:
    def __init__(self, role: RequesterRole, spec: JobSpec, job_id: bytes, out_dir: Path) -> None:
        self.role = role
        self.spec = spec
        self.job_id = job_id
        self.out_dir = out_dir
        secret = check_secret_of(role.ctx.node.key.seed, job_id)
        self.machine = JobMachine(
            job_id, spec, role.ctx.settings.market, spec.created_ms, check_secret=secret,
            result_signer=partial(result_signer, spec), pass_signer=partial(pass_signer, spec),
        )
        self.fed: dict[bytes, WorkerRecord | None] = {}  # records the machine was given
        self.stakes_fed: dict[bytes, int] = {}  # stakes the machine was given (by address)
        self.checker_stake_fed = False  # the machine knows what stake a checker needs
        self.capacity_fed: dict[bytes, bytes] = {}  # challenge outcomes given (by worker)
        self.view = JobView(started_ms=spec.created_ms)
        self.live = False  # False while replaying: no side effects
        self.steps = 0  # inputs applied (replayed ones included)
        self._refund_lock = trio.Lock()
        self.done = trio.Event()
        self._collecting = 0
        self._lock = trio.Lock()
        self._assigning: dict[bytes, set[bytes]] = {}  # dispute checkers being assigned
        self._introduced: set[bytes] = set()  # checkers sent our announce (bounded by peers)
        self._changed = trio.Event()
        # With a chain, sends and lane fundings leave in the machine's order, one at a
        # time: an award goes out only after the FundLanes that secures it was mined.
        chain = role.ctx.chain
        self.queue = None if chain is None else JobQueue(chain, job_id, partial(claw_back, self))
        self._clawed = False  # adversary "clawback" only
        self.record = JobRecord(job_id, spec)  # its part of the public work record
        self.payee_nodes: dict[bytes, bytes] = {}  # payment address -> node it last paid
        self.frames = CheckFrames(self)  # what checkers are served; plants (forced errors)

    @property
    def ctx(self) -> RoleContext:
        return self.role.ctx

    @property
    def results(self) -> dict[bytes, bytes]:
        """Task -> the worker's signed Result envelope (one per award)."""
        return self.record.results

    async def wait_changed(self) -> None:
        await self._changed.wait()

    async def step(self, kind: str, peer: bytes, data: bytes, now_ms: int) -> None:
        """Feed one input, keep it, then carry out what it caused.

        The input's journal entry and the reputation records its judgements
        changed are written in ONE transaction, after the machine took the
        input and before anything it caused is carried out or published. A
        crash before that commit loses the input and all it caused (nothing
        left the node; its sender was not answered and asks again); after it,
        a replay rebuilds the machine and the book holds each judgement once.
        An input the machine refuses raises before changing any state and is
        not journalled.
        """
        async with self._lock:
            commands = self.feed(kind, peer, data, now_ms)
            journal = partial(persist.journal, job_id=self.job_id.hex(), kind=kind, peer=peer,
                              data=data, now_ms=now_ms)  # fmt: skip
            if not any(isinstance(c, WorkerJudged) for c in commands):
                await self.ctx.node.store.call(journal)
            else:
                await self.role.keep_judged(journal, commands, now_ms)
            self.carry_out(commands, now_ms)

    def apply(self, kind: str, peer: bytes, data: bytes, now_ms: int) -> None:
        """Replay one journal entry (its judgements are in the stored book already)."""
        self.carry_out(self.feed(kind, peer, data, now_ms), now_ms)

    def feed(self, kind: str, peer: bytes, data: bytes, now_ms: int) -> list[Command]:
        """One input into the machine; the commands it returned, not yet carried out."""
        machine = self.machine
        if kind == "start":
            commands = machine.start(now_ms)
        elif kind == "msg":  # [type, body, digest] and, since issue 16, the signed wire bytes
            msg_type, body, digest, *wire = unpackb(data)
            message: Message = from_wire(MESSAGE_TYPES[msg_type], body)
            commands = machine.receive(peer, message, now_ms, envelope_digest=digest or None)
            self.record.evidence(peer, message, wire[0] if wire else b"", digest, commands)
        elif kind == "timer":
            commands = machine.handle_timer(now_ms)
        elif kind == "record":  # the worker's reputation record, as the book had it
            record = self.fed[peer] = _unpack_record(data)
            commands = machine.set_worker_record(peer, record)
        elif kind == "stake":  # a payment address's confirmed stake, as the chain had it
            stake_wei = self.stakes_fed[peer] = int.from_bytes(data, "big")
            commands = machine.set_stake(peer, stake_wei)
        elif kind == "checker_stake":  # what a checker must hold (RequesterRole.checker_stake_wei)
            self.checker_stake_fed = True
            commands = machine.set_pass_claim_stake(int.from_bytes(data, "big"))
        elif kind == "capacity":  # a capacity challenge's outcome (node.roles.challenger)
            self.capacity_fed[peer] = data
            score, passed = unpack_outcome(data)
            commands = machine.capacity_judged(peer, score, passed, now_ms)
        elif kind == "assign":  # task id, the checker's payment address, the CID it is served
            served = data[52:].decode() or None  # (older entries: the worker's own)
            commands = machine.assign_checker(data[:32], peer, now_ms, data[32:52], served)
        elif kind == "plant":  # task id, the checker's payment address, the plant's CID
            commands = apply_plant_entry(self, peer, data, now_ms)
        elif kind == "refunded":  # not a machine input: the escrow is settled
            self.view.refunded, self.view.refunded_wei = True, int.from_bytes(data, "big")
            commands = []
        elif kind == "cancel":
            commands = machine.cancel(now_ms)
        elif kind == "unfetchable":  # task id: its frame could not be fetched, worker gone
            commands = machine.result_unfetchable(data, now_ms)
        else:  # a journal written by a newer version: never guess (it once meant "cancel")
            raise ValueError(f"unknown journal entry {kind!r}")
        self.steps += 1
        return commands

    def carry_out(self, commands: list[Command], now_ms: int) -> None:
        view, live = self.view, self.live
        for c in commands:
            if isinstance(c, Send | FundLanes) and live:
                if self.queue is not None:
                    self.queue.put(c)
                elif isinstance(c, Send):
                    self.ctx.outbox.send(c.to, c.message)
            elif isinstance(c, Publish) and live:
                if isinstance(c.message, JobAnnounce):  # our own record must know our jobs
                    self.ctx.node.record.publish_soon(c.topic, c.message)
                else:
                    self.ctx.outbox.publish(c.topic, c.message)
            elif isinstance(c, RequestVerification) and live:
                self.role.spawn(self._assign_checker, c)
            elif isinstance(c, RequestPlant) and live:
                self.role.spawn(self.frames.plant, c)
            elif isinstance(c, PlantJudged):
                self.frames.judged(c)
            elif isinstance(c, RecordPayment):
                self.payee_nodes[c.payee_address] = c.node
                self._pay(c.payee_address, c.cumulative_wei)
            elif isinstance(c, FrameAccepted):
                view.accepted[c.frame] = {"worker": c.worker.hex(), "cid": c.frame_cid,
                                          "price_wei": c.price_wei, "at_ms": now_ms}  # fmt: skip
                view.workers.add(c.worker.hex())
                if live:
                    self.start_collect(c)
            elif isinstance(c, FrameFailed):
                view.failed[c.frame] = c.reason
            elif isinstance(c, WorkerBlocklisted):
                view.blocklisted.add(c.worker.hex())
            elif isinstance(c, CheckerOverruled):
                log_event(logger, logging.WARNING, "checker overruled", checker=c.checker.hex()[:16],
                          task=c.task_id.hex()[:16])  # fmt: skip
            elif isinstance(c, SlashDue):  # replayed too: a claim stored before wins
                self.role.slasher.on_slash_due(self.spec, c)
            elif isinstance(c, PassClaimDue):  # as SlashDue: a checker passed our plant
                self.role.slasher.on_pass_claim_due(self.spec, c)
            elif isinstance(c, DisputeResolved):
                self.record.dispute_resolved(c)
                if not c.upheld:
                    view.blocklisted.discard(c.worker.hex())
                log_event(logger, logging.INFO, "dispute resolved", task=c.task_id.hex()[:16],
                          upheld=c.upheld, paid=c.paid, reason=c.reason)  # fmt: skip
            elif isinstance(c, RefundDue):
                view.refund_wei = c.refund_wei
                if live and self.ctx.chain is not None:
                    self.role.spawn(self._refund)
            elif isinstance(c, JobFinished):
                view.outcome, view.finished_ms = c.outcome.value, now_ms
                if live:
                    self.role.spawn(self._finished)
                self.record.closed(JobClosed(self.job_id, ClosedOutcome(c.outcome.value),
                                             len(view.accepted), len(view.failed)))  # fmt: skip
        self.record.flush(self.ctx.node.record, live, self.frames.holding)
        self._notify()

    def _notify(self) -> None:
        self._changed.set()
        self._changed = trio.Event()

    def _pay(self, address: bytes, cumulative_wei: int) -> None:
        if not self.live or self.queue is None:
            return  # without a chain no voucher can be signed or redeemed: books only
        if self.ctx.settings.adversary == "clawback" and not self._clawed:
            self._clawed = True
            self.queue.put(Clawback())
        voucher = self.voucher(address, cumulative_wei)
        self.queue.put(Send(self.payee_nodes[address], voucher))

    def voucher(self, payee: bytes, cumulative_wei: int) -> Voucher:
        chain = self.ctx.chain
        assert chain is not None
        unsigned = Voucher(chain.chain_id, chain.contract, chain.address, self.job_id, payee,
                           cumulative_wei)  # fmt: skip
        return sign(unsigned, self.ctx.payment_key)

    async def run_queue(self) -> None:
        if self.queue is not None:
            await self.queue.run(self.ctx.outbox)

    def resend_vouchers(self) -> None:
        for address, cumulative_wei in self.machine.due_wei_by_payee().items():
            self._pay(address, cumulative_wei)

    async def run_timer(self) -> None:
        async def fire(now_ms: int) -> None:
            await self.step("timer", b"", b"", now_ms)

        await run_timer(self.ctx.clock, self.machine.get_timer, fire, lambda: self._changed)

    async def _assign_checker(self, c: RequestVerification) -> None:
        def exclude() -> frozenset[bytes]:
            # the worker, its plant's checker, checkers overruled in this job and, in a
            # dispute, those already used (protocol: JobMachine.checkers_refused)
            refused = self.machine.checkers_refused(c.task_id) | c.exclude
            if not c.exclude:
                return refused
            # a dispute: nor one being assigned
            return refused | self._assigning.get(c.task_id, frozenset())

        def qualifies(checker: bytes) -> bool:
            address = self.role.address_of(checker)
            return address is not None and self.machine.checker_qualifies(address)

        def pick() -> bytes | None:
            return self.role.pick_checker(c.worker, exclude(), qualifies)

        def ready_or_new(known: list[bytes]) -> Callable[[], bool]:
            """A checker may be asked now, or checkers other than ``known`` came."""
            return lambda: bool(self.role.checker_candidates(c.worker, exclude(), qualifies)) or (
                self.role.pick_checkers(c.worker) != known
            )

        if not await self.feed_checker_stake():
            return  # what a checker must hold is not known: the verify timeout asks again
        await self._feed_checker_stakes(c.worker)
        try:
            await self.frames.prepare(c.worker, c.frame_cid)  # checkers fetch it from us
        except TransferError as exc:
            gone = peer_of(c.worker) not in self.ctx.node.network.connected_peers()
            log_event(logger, logging.WARNING, "result frame not fetched", frame=c.frame,
                      worker_gone=gone, error=str(exc)[:200])  # fmt: skip
            if gone and not c.exclude:  # nobody can check it: abandoned now, no blame
                await self.step("unfetchable", c.worker, c.task_id, self.ctx.clock.now_ms())
            return  # else the machine's verify timeout asks again
        with trio.move_on_after(CHECKER_WAIT_S):
            while not self.role.checker_candidates(c.worker, exclude(), qualifies):
                await self.ctx.node.wait_until(ready_or_new(self.role.pick_checkers(c.worker)))
                await self._feed_checker_stakes(c.worker)  # a newcomer's stake is read first
        checker = pick()
        if checker is None:
            log_event(logger, logging.WARNING, "no checker available", frame=c.frame)
            return  # the machine's verify timeout asks again (or ends the dispute)
        in_flight = self._assigning.setdefault(c.task_id, set())
        in_flight.add(checker)  # no await between the pick and this
        address = self.role.address_of(checker)
        if address is None:  # its advert went since the pick: the verify timeout asks again
            log_event(logger, logging.WARNING, "checker without payment address", frame=c.frame)
            return
        try:
            await self._introduce(checker)
            # checkers get the frame from us, as our copy (node.roles.plants): the request
            # and the checker's signed pass name that copy's CID
            entry = c.task_id + address + self.frames.served(c.frame_cid).encode()
            await self.step("assign", checker, entry, self.ctx.clock.now_ms())
        finally:
            in_flight.discard(checker)
            if not in_flight:
                self._assigning.pop(c.task_id, None)

    async def _introduce(self, checker: bytes) -> None:
        """Send ``checker`` our announce directly, once per job: a checker knows a job
        only from its announce, and one that joined after it (a dispute's fresh
        checkers, often) refused every check until the next re-announce, so a
        dispute could end for want of verdicts. Not delivered: the check is asked
        anyway, and the verify timeout asks again."""
        if checker in self._introduced:
            return
        if await self.ctx.outbox.deliver(checker, JobAnnounce(self.job_id, self.spec)):
            self._introduced.add(checker)

    async def _feed_checker_stakes(self, worker: bytes) -> None:
        """Feed the machine the confirmed stake of every checker we could ask, when a
        checker needs any (their assignment decision reads it)."""
        if not (self.machine.config.min_stake_wei or self.machine.pass_claim_wei):
            return
        for candidate in self.role.pick_checkers(worker):
            if (known := self.role.address_of(candidate)) is not None:
                await self.feed_stake(known)

    async def feed_checker_stake(self) -> bool:
        """Tell the machine, once per job, the stake a checker must hold to be asked
        (:meth:`RequesterRole.checker_stake_wei`, journalled: a replay asks the same);
        False while it is not known (the chain did not answer): ask no checker then."""
        if self.checker_stake_fed:
            return True
        stake_wei = await self.role.checker_stake_wei()
        if stake_wei is None:
            return False
        if stake_wei and not self.checker_stake_fed:
            await self.step("checker_stake", b"", stake_wei.to_bytes(32, "big"), self.ctx.clock.now_ms())
        return True

    async def feed_stake(self, address: bytes) -> None:
        """Tell the machine the chain-confirmed stake of ``address`` when it changed."""
        stake_wei = await self.role.confirmed_stake(address)
        if stake_wei is not None and self.stakes_fed.get(address) != stake_wei:
            await self.step("stake", address, stake_wei.to_bytes(32, "big"), self.ctx.clock.now_ms())

    def start_collect(self, c: FrameAccepted) -> None:
        self._collecting += 1  # counted now, so a JobFinished in the same batch waits for it
        self.role.spawn(self._collect, c)

    async def _collect(self, c: FrameAccepted) -> None:
        try:
            # The checkers that judged it hold a copy: a worker gone since still delivers.
            checkers = sorted(self.machine.checkers_excluded(c.task_id) - {c.worker})
            path = await self.ctx.fetch_from(c.worker, c.frame_cid, *checkers)
            self.out_dir.mkdir(parents=True, exist_ok=True)
            dest = self.out_dir / f"frame_{c.frame:04d}.png"
            await trio.to_thread.run_sync(shutil.copyfile, path, dest)
        except Exception as exc:  # the frame stays downloadable by CID
            log_event(logger, logging.WARNING, "frame not collected", frame=c.frame, error=str(exc))
        finally:
            self._collecting -= 1
            self._notify()

    async def _refund(self) -> None:
        """Reclaim the unspent escrow once the chain's clock passes deadline + grace.

        The contract decides on its own clock, so we ask it (a poll: there is no
        event to wait for); an outage just means asking again later. Runs when
        the job ends, and again after every restart until the journal says done.
        """
        while True:
            try:
                await self.refund_now()
                return
            except RefundNotYet:
                pass
            except LedgerError as exc:
                log_event(logger, logging.WARNING, "refund postponed", error=str(exc)[:200])
            await trio.sleep(REFUND_POLL_S)

    async def refund_now(self) -> int:
        """Refund what the escrow still holds for this job, if the chain allows it now.

        Returns the wei refunded (0 when there was nothing left or it was
        already refunded); raises ``RefundNotYet`` before deadline + grace and
        ``LedgerError`` when the chain does not answer. Either way a job whose
        escrow is settled is journalled as such, so a restart stops asking.
        """
        async with self._refund_lock:  # the route and the watcher must not both refund
            return await self._refund_now()

    async def _refund_now(self) -> int:
        chain = self.ctx.chain
        if chain is None:
            raise RefundNotYet("this node has no chain configured: nothing was escrowed")
        escrow = self.spec.escrow
        if escrow is not None and (escrow.chain_id, escrow.contract) != (
            chain.chain_id,
            chain.contract,
        ):
            raise RefundNotYet(
                f"the job was escrowed on chain {escrow.chain_id} contract "
                f"0x{escrow.contract.hex()}; this node is configured for chain {chain.chain_id} "
                f"contract 0x{chain.contract.hex()}: point it there to reclaim"
            )
        state = await chain.job(self.job_id)
        refund_wei = 0
        if not state.refunded and state.remaining_wei > 0:
            open_until_s = state.deadline_s + await chain.grace_s()
            wait_s = open_until_s - await chain.chain_time_s()
            if wait_s >= 0:
                raise RefundNotYet(f"the escrow refunds after deadline + grace: in {wait_s + 1} s "
                                   f"(chain time {open_until_s + 1})")  # fmt: skip
            await chain.refund(self.job_id)
            refund_wei = state.remaining_wei
        if not self.view.refunded:
            await self.step(
                "refunded", b"", refund_wei.to_bytes(32, "big"), self.ctx.clock.now_ms()
            )
        return refund_wei

    async def _finished(self) -> None:
        # Done means the frames are in the output folder, not merely accepted.
        while self._collecting:
            await self.wait_changed()
        await self.ctx.node.store.call(partial(
            persist.set_job_state, job_id=self.job_id.hex(), state=self.view.outcome or "finished",
            now_ms=self.ctx.clock.now_ms(),
        ))  # fmt: skip
        if self.spec.escrow is None and not self.view.refunded:
            # Nothing was escrowed: settled now, or every restart would resume it again.
            await self.step("refunded", b"", bytes(32), self.ctx.clock.now_ms())
        self._tell_payees_it_is_over()
        self.done.set()

    def _tell_payees_it_is_over(self) -> None:
        """Every payee holds its last voucher now: tell it no larger one will come, so it
        redeems once instead of per voucher. After the vouchers, in the job's queue."""
        if self.queue is None:
            return
        over = JobCancelled(self.job_id, f"finished: {self.view.outcome}")
        for node in sorted(set(self.payee_nodes.values())):
            self.queue.put(Send(node, over))


async def _contained(fn: Callable[..., Awaitable[object]], *args: object) -> None:
    try:
        await fn(*args)
    except Exception as exc:  # cancellation (a BaseException) still passes
        log_event(logger, logging.ERROR, "requester task failed", task=getattr(fn, "__name__", "?"),
                  error=f"{type(exc).__name__}: {exc}")  # fmt: skip


def message_record(message: Message, digest: bytes, wire: bytes = b"") -> bytes:
    return packb([type(message).TYPE, to_wire(message), digest, wire])


class RequesterRole:
    def __init__(self, ctx: RoleContext) -> None:
        self.ctx = ctx
        self.jobs: dict[bytes, RequesterJob] = {}
        self.reputation = ReputationBook(MAX_WORKER_RECORDS)
        self._nursery: trio.Nursery | None = None
        # checker -> checks given it, real checks and plants apart (bounded: cleared when full)
        self._given: dict[str, dict[bytes, int]] = {"check": {}, "plant": {}}
        self._jobs_changed = trio.Event()
        self.slasher = Slasher(ctx, self.spawn, self.staked_checkers)
        self._stakes: dict[bytes, tuple[int, float]] = {}  # address -> (stake, read at)
        self._pass_claim_wei: int | None = None  # the escrow's SLASH_CAP, once read
        self._judging = trio.Lock()
        self.struck: set[bytes] = set()  # checkers that passed one of our plants
        self.tested: dict[bytes, int] = {}  # checker -> our plants it rejected (node.roles.plants)
        self.challenger = Challenger(self)  # capacity challenges of unproven bidders

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
        self._nursery.start_soon(_contained, fn, *args)

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
        resumed_ms = self.ctx.node._wall_ms()
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
        await job.step("start", b"", b"", self.clock.now_ms())
        self.spawn(job.run_timer)
        return job

    async def receive(self, sender: bytes, message: Message, digest: bytes, wire: bytes = b"") -> None:
        job = self.jobs.get(getattr(message, "job_id", b""))
        if job is None:
            return
        if isinstance(message, Bid | Result):  # the decisions that read reputation
            record = self.worker_record(sender)
            if job.fed.get(sender) != record:
                await job.step("record", sender, _pack_record(record), self.clock.now_ms())
        market = job.machine.config
        if isinstance(message, Bid) and (market.min_stake_wei or market.trial_leases):
            await job.feed_stake(message.payment_address)  # the award decision reads it
        if isinstance(message, Bid) and market.trial_leases:
            await self.challenger.on_bid(job, sender, message)  # its outcome, or a challenge
        await job.step("msg", sender, message_record(message, digest, wire), self.clock.now_ms())

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
        """Connected nodes advertising the checker role, ``worker`` excepted, in order."""
        from node.roles.common import raw_of

        peers = sorted(
            p for p, seen in self.ctx.node.capacity.items()
            if Role.CHECKER in seen.advert.roles and p in self.ctx.node.network.connected_peers()
        )  # fmt: skip
        return [raw_of(p) for p in peers if raw_of(p) != worker]

    def checker_candidates(
        self, worker: bytes, exclude: frozenset[bytes] = frozenset(),
        qualifies: Callable[[bytes], bool] = lambda _: True,
    ) -> list[bytes]:  # fmt: skip
        """The checkers :meth:`pick_checker` chooses among; no side effect, so a
        wait may poll it (polling the pick itself turned the rotation by the
        number of polls: which checker got a frame was luck)."""
        exclude = exclude | self.struck  # never again a checker that passed a plant of ours
        return [p for p in self.pick_checkers(worker) if p not in exclude and qualifies(p)]

    def pick_checker(
        self, worker: bytes, exclude: frozenset[bytes] = frozenset(),
        qualifies: Callable[[bytes], bool] = lambda _: True, kind: str = "check",
    ) -> bytes | None:  # fmt: skip
        """The checker to ask (``protocol.verification.choose_checker``); ``kind`` is
        ``check`` or ``plant``, counted apart."""
        candidates = self.checker_candidates(worker, exclude, qualifies)
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

    async def staked_checkers(
        self, exclude: frozenset[bytes], exclude_addresses: frozenset[bytes], min_stake_wei: int,
        count: int,
    ) -> dict[bytes, bytes]:  # fmt: skip
        """Up to ``count`` checkers that may sign a claim (node.roles.slasher): connected,
        advertising the checker role, not struck, none in ``exclude`` nor paid at one of
        ``exclude_addresses``, registered with the escrow and holding ``min_stake_wei``
        by the chain. Node id -> payment address, in a random order."""
        chain = self.ctx.chain
        picked: dict[bytes, bytes] = {}
        candidates = self.checker_candidates(b"", exclude)
        secrets.SystemRandom().shuffle(candidates)
        for node in candidates:
            address = self.address_of(node)
            if chain is None or len(picked) >= count:
                break
            if address is None or address in exclude_addresses or address in picked.values():
                continue
            stake_wei = await self.confirmed_stake(address)
            if stake_wei is None or stake_wei < min_stake_wei:
                continue
            try:
                if await chain.is_checker(address):
                    picked[node] = address
            except LedgerError as exc:
                log_event(logger, logging.WARNING, "checker not read", error=str(exc)[:200])
        return picked

    async def confirmed_stake(self, address: bytes) -> int | None:
        """``address``'s active stake as the chain has it (read at most every
        ``STAKE_TTL_S``); None without a chain or while it does not answer."""
        chain = self.ctx.chain
        if chain is None:
            return None
        now_s = trio.current_time()
        cached = self._stakes.get(address)
        if cached is not None and now_s - cached[1] < STAKE_TTL_S:
            return cached[0]
        try:
            stake_wei = await chain.stake_of(address)
        except LedgerError as exc:
            log_event(logger, logging.WARNING, "stake not read", error=str(exc)[:200])
            return None
        if len(self._stakes) >= MAX_WORKER_RECORDS:
            self._stakes.clear()  # a stranger's addresses stay bounded; re-read as needed
        self._stakes[address] = (stake_wei, now_s)
        return stake_wei

    def address_of(self, node: bytes) -> bytes | None:
        seen = self.ctx.node.capacity.get(peer_of(node))
        return seen.advert.payment.address if seen else None
