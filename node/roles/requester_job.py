"""One requester job: a ``JobMachine`` fed through its journal (node.roles.requester).

Theory of operation. Every input the job's machine takes is first appended to
the job's journal in the store (:meth:`RequesterJob.step`), then fed to the
machine (:meth:`RequesterJob.feed`), and the commands it returns are carried
out (:meth:`RequesterJob.carry_out`): sends, checker assignments, vouchers,
frame downloads, the deposit, lanes, refunds, plants and claims. A replay feeds
the same journal with side effects off and reaches the same state. The role
that owns the jobs, resumes them and picks checkers is
:class:`node.roles.requester.RequesterRole`; its docstring tells the whole story.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import logging
import shutil
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

import trio

if TYPE_CHECKING:

    from node.roles.requester import RequesterRole

from ledger.errors import LedgerError
from ledger.fraud import pass_signer, result_signer
from ledger.vouchers import sign
from node.content.transfer import TransferError
from node.log import log_event
from node.roles import persist
from node.roles.adversary import Clawback, claw_back
from node.roles.challenger import unpack_outcome
from node.roles.common import STAKE_TTL_S, peer_of, run_timer
from node.roles.context import RoleContext
from node.roles.job_record import JobRecord
from node.roles.lanes import JobQueue
from node.roles.plants import CheckFrames, apply_plant_entry
from protocol.codec import from_wire, packb, to_wire, unpackb
from protocol.market import (
    CheckerOverruled,
    Command,
    DisputeResolved,
    FrameAccepted,
    FrameFailed,
    FundLanes,
    JobFinished,
    JobMachine,
    JobState,
    PassClaimDue,
    PlantJudged,
    Publish,
    RecordPayment,
    RefundDue,
    RequestPlant,
    RequestVerification,
    Send,
    SlashDue,
    TaskState,
    WorkerBlocklisted,
    WorkerJudged,
)
from protocol.market.awarding import count_matters, lanes_elsewhere, new_lanes
from protocol.messages import (
    MESSAGE_TYPES,
    Bid,
    ClosedOutcome,
    JobAnnounce,
    JobCancelled,
    JobClosed,
    JobSpec,
    Message,
    Voucher,
)
from protocol.reputation import WorkerRecord
from protocol.verification import CHECKER_WAIT_MS, prefer_unasked

logger = logging.getLogger(__name__)
PARKED_BIDS = 64  # bids a job holds until their senders' adverts come (park_bid)
PARK_S = 120.0  # and for how long at most
UNDER_MINIMUM_SWEEPS = 10  # _run_backing reads stakes under the minimum this rarely
CHECKER_WAIT_S = CHECKER_WAIT_MS / 1000  # protocol.verification: the simulator's too
REFUND_POLL_S = 5.0
CHECK_SECRET_DOMAIN = b"pictor/requester/check-secret/v1\x00"


def check_secret_of(node_seed: bytes, job_id: bytes) -> bytes:
    """The job's check secret: HMAC of the job id under the node's private key seed."""
    return hmac.new(node_seed, CHECK_SECRET_DOMAIN + job_id, hashlib.sha256).digest()


def pack_record(record: WorkerRecord | None) -> bytes:
    if record is None:
        return b""
    r = record
    return packb([r.accepted, r.rejected, r.failed, r.timed_out, r.first_seen_ms, r.own_accepted])


def unpack_record(data: bytes) -> WorkerRecord | None:
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
        self.lanes_fed: dict[bytes, int] = {}  # and the other jobs each backs (lanes elsewhere)
        self._unread: set[bytes] = set()  # bidders' addresses whose stake or count was not read
        # The escrow's count last fed for each bidder's address (its lanes elsewhere are
        # worked out from it when fed and again when another job of ours planned it a lane:
        # _restate), and the addresses another job of ours planned a lane for since.
        self._counts: dict[bytes, int] = {}
        self._restate: set[bytes] = set()
        # bids held until their senders' adverts come (RequesterRole.receive): sender ->
        # (bid, digest, wire, when first held)
        self._parked: OrderedDict[bytes, tuple[Bid, bytes, bytes, float]] = OrderedDict()
        self._parking = False  # _run_parked runs
        self._backing_wake = trio.Event()  # a lane of ours was mined: read the counts again
        self.lanes_open: set[bytes] = set()  # payees whose lane in this job was mined
        # one stake read and journalled at a time: checks and plants feed the same checkers
        # at once, and each journalled the same stake (1 to 4 'stake' entries a checker)
        self._feeding_stake = trio.Lock()
        self.checker_stake_fed = False  # the machine knows what stake a checker needs
        self.capacity_fed: dict[bytes, bytes] = {}  # challenge outcomes given (by worker)
        self.view = JobView(started_ms=spec.created_ms)
        self.live = False  # False while replaying: no side effects
        self.steps = 0  # inputs applied (replayed ones included)
        self.rules = b""  # the rules its journal's start entry names (node.roles.rules)
        self._refund_lock = trio.Lock()
        self.done = trio.Event()
        self._collecting = 0
        self._lock = trio.Lock()
        self._assigning: dict[bytes, set[bytes]] = {}  # dispute checkers being assigned
        self._room_waits: set[bytes] = set()  # tasks whose check waits for room (_wait_for_room)
        self._introduced: set[bytes] = set()  # checkers sent our announce (bounded by peers)
        self._changed = trio.Event()
        # With a chain, sends and lane fundings leave in the machine's order, one at a
        # time: an award goes out only after the FundLanes that secures it was mined.
        chain = role.ctx.chain
        self.queue = None if chain is None else JobQueue(chain, job_id, partial(claw_back, self),
                                                         self._lanes_mined)  # fmt: skip
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
            await self._restate_counts(now_ms)
            await self._step_locked(kind, peer, data, now_ms)

    async def _step_locked(self, kind: str, peer: bytes, data: bytes, now_ms: int) -> None:
        """:meth:`step`'s work, the job's lock held."""
        commands = self.feed(kind, peer, data, now_ms)
        # no await before this: another job of ours deciding meanwhile must count the lanes
        # this input planned (RequesterRole.lanes_planned)
        self.role.lanes_planned(self.job_id, new_lanes(commands))
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
        if kind == "start":  # data: the rules it was journalled under (node.roles.rules)
            self.rules = data
            commands = machine.start(now_ms)
        elif kind == "msg":  # [type, body, digest] and, since issue 16, the signed wire bytes
            msg_type, body, digest, *wire = unpackb(data)
            message: Message = from_wire(MESSAGE_TYPES[msg_type], body)
            commands = machine.receive(peer, message, now_ms, envelope_digest=digest or None)
            self.record.evidence(peer, message, wire[0] if wire else b"", digest, commands)
        elif kind == "timer":
            commands = machine.handle_timer(now_ms)
        elif kind == "record":  # the worker's reputation record, as the book had it
            record = self.fed[peer] = unpack_record(data)
            commands = machine.set_worker_record(peer, record)
        elif kind == "stake":  # a payment address's confirmed stake, as the chain had it
            # 32 bytes of stake, then (since stop 43) 8 of the other jobs it backs
            stake_wei = self.stakes_fed[peer] = int.from_bytes(data[:32], "big")
            lanes = self.lanes_fed[peer] = int.from_bytes(data[32:40], "big")
            commands = machine.stake_confirmed(peer, stake_wei, lanes, now_ms)
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
        elif kind == "plant":  # task id, the checker's payment address, the plant's CID, blank cells
            commands = apply_plant_entry(self, peer, data, now_ms)
        elif kind == "refunded":  # not a machine input: the escrow is settled
            self.view.refunded, self.view.refunded_wei = True, int.from_bytes(data, "big")
            commands = []
        elif kind == "cancel":
            commands = machine.cancel(now_ms)
        elif kind == "unfetchable":  # task id: its frame could not be fetched, worker gone
            commands = machine.result_unfetchable(data, now_ms)
        elif kind == "waits":  # task id: its request waits for a checker with room
            self.machine.check_waits(data)
            commands = []
        elif kind == "exhausted":  # task id, then the checkers we reached (32 bytes each)
            reachable = [data[i : i + 32] for i in range(32, len(data), 32)]
            commands = machine.checkers_exhausted(data[:32], now_ms, reachable)
        else:  # a journal written by a newer version: never guess (it once meant "cancel")
            raise ValueError(f"unknown journal entry {kind!r}")
        self.record.decided(commands)
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
                self.frames.expect(c)  # before the real check's pick can run
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
            elif isinstance(c, PassClaimDue):  # as SlashDue: a false pass (a plant, or contradicted)
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
        self.notify()

    def notify(self) -> None:
        """Wake what waits on this job (:meth:`wait_changed`, :meth:`room_or_stale`): each
        step, and a change no inbound message makes (a plant picked its checker, or gave
        up; a place held for a pick freed)."""
        self._changed.set()
        self._changed = trio.Event()

    def assigning(self, task_id: bytes) -> frozenset[bytes]:
        """Checkers being assigned to ``task_id`` now: picked, not journalled yet."""
        return frozenset(self._assigning.get(task_id, ()))

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
            await self.queue.run(self._send)

    def _send(self, to: bytes, message: Message) -> None:
        """A queued message leaves: a voucher through the role's post, which sends it
        until its payee acknowledges it (node.roles.voucher_post); the rest once."""
        if isinstance(message, Voucher):
            self.role.vouchers.put(to, message, self.spec.deadline_ms // 1000)
        else:
            self.ctx.outbox.send(to, message)

    def resend_vouchers(self) -> None:
        for address, cumulative_wei in self.machine.due_wei_by_payee().items():
            self._pay(address, cumulative_wei)

    async def run_timer(self) -> None:
        async def fire(now_ms: int) -> None:
            await self.step("timer", b"", b"", now_ms)

        if self.queue is not None and self.machine.config.min_stake_wei:
            # A resumed job's readings are its journal's, from before the restart (lanes
            # opened elsewhere, or planned by our other jobs, while it was down): read its
            # standing bids again before its timer can award on them (review of stop 44).
            # A new job has no bids yet: nothing to read.
            await self._read_backing(sweep=1)
            self.role.spawn(self._run_backing)  # beside: a bug in it never stops the timer
        await run_timer(self.ctx.clock, self.machine.get_timer, fire, lambda: self._changed)

    async def _assign_checker(self, c: RequestVerification) -> None:
        def exclude() -> frozenset[bytes]:
            # the worker, its plant's checker, checkers overruled in this job and, in a
            # dispute, those already used (protocol: JobMachine.checkers_refused)
            refused = self.machine.checkers_refused(c.task_id) | c.exclude
            # nor one another request of the task is assigning (a request that waited may
            # find its task disputed since: review of stop 38)
            return refused | self._assigning.get(c.task_id, frozenset())

        def qualifies(checker: bytes) -> bool:
            address = self.role.address_of(checker)
            return address is not None and self.machine.checker_qualifies(address)

        cap = self.machine.config.checks_per_checker

        def pick() -> bytes | None:
            verifying = self.machine.task_state(c.task_id) is TaskState.VERIFYING
            return self.role.pick_checker(c.worker, exclude(), qualifies,
                                          room=cap if verifying else None,
                                          silent=self.machine.checkers_silent(c.task_id))  # fmt: skip

        def ready_or_new(known: list[bytes]) -> Callable[[], bool]:
            """A checker may be asked now, or checkers other than ``known`` came."""
            return lambda: bool(self.role.checker_candidates(c.worker, exclude(), qualifies)) or (
                self.role.pick_checkers(c.worker) != known
            )

        if not await self.feed_checker_stake():
            return  # what a checker must hold is not known: the verify timeout asks again
        await self.feed_checker_stakes(c.worker)
        try:
            await self.frames.prepare(c.worker, c.frame_cid)  # checkers fetch it from us
        except TransferError as exc:
            gone = peer_of(c.worker) not in self.ctx.node.network.connected_peers()
            log_event(logger, logging.WARNING, "result frame not fetched", frame=c.frame,
                      worker_gone=gone, error=str(exc)[:200])  # fmt: skip
            if gone and not c.exclude:  # nobody can check it: abandoned now, no blame
                await self.step("unfetchable", c.worker, c.task_id, self.ctx.clock.now_ms())
            return  # else the machine's verify timeout asks again
        further = self.machine.wants_further_check(c.task_id)
        short_of = self.machine.checkers_short_of(c.task_id)
        if further and all(p in short_of for p in self.role.known_checkers(c.worker)):
            # the plan's next checker after a pass, and no checker we know of could give
            # it (one checker in the network): no wait (protocol: checkers_exhausted)
            await self._exhausted(c, qualifies)
            return
        with trio.move_on_after(CHECKER_WAIT_S):
            while not self.role.checker_candidates(c.worker, exclude(), qualifies):
                await self.ctx.node.wait_until(ready_or_new(self.role.pick_checkers(c.worker)))
                await self.feed_checker_stakes(c.worker)  # a newcomer's stake is read first
        if further and not self.machine.wants_further_check(c.task_id):
            return  # decided (or disputed) during the wait: this request is void
        await self.frames.picked_first(c.task_id)  # a plant of the task picks its checker first
        if not await self._wait_for_room(c, exclude, qualifies):
            return  # decided meanwhile, or another request of the task waits for room
        checker = pick()
        if checker is None and (fallback := self.machine.dispute_fallback(c.task_id)):
            # a dispute that reached no fresh checker in the wait: one used before on the
            # result that did not reject it (protocol: JobMachine.dispute_fallback)
            busy = self._assigning.get(c.task_id, set())  # the other request's pick
            checker = self.role.pick_checker(c.worker, exclude() - fallback | busy, qualifies)
        if checker is None and further:
            # nobody to ask after a wait for newcomers (a reconnect, an advert not heard
            # yet): the machine decides from who we reach, asked already or not
            await self._exhausted(c, qualifies)
            return
        if checker is None:
            log_event(logger, logging.WARNING, "no checker available", frame=c.frame)
            return  # the machine's verify timeout asks again (or ends the dispute)
        address = self.role.address_of(checker)
        if address is None:  # its advert went since the pick: the verify timeout asks again
            log_event(logger, logging.WARNING, "checker without payment address", frame=c.frame)
            return
        in_flight = self._assigning.setdefault(c.task_id, set())
        in_flight.add(checker)  # no await between the pick and this
        counted = self.machine.task_state(c.task_id) is TaskState.VERIFYING  # with_room's
        try:
            with self.role.holding_room(checker if counted else None):  # (no await before)
                await self.introduce(checker)
                # checkers get the frame from us, as our copy (node.roles.plants): the
                # request and the checker's signed pass name that copy's CID
                entry = c.task_id + address + self.frames.served(c.frame_cid).encode()
                await self.step("assign", checker, entry, self.ctx.clock.now_ms())
        finally:
            in_flight.discard(checker)
            if not in_flight:
                self._assigning.pop(c.task_id, None)

    async def _wait_for_room(
        self, c: RequestVerification, exclude: Callable[[], frozenset[bytes]],
        qualifies: Callable[[bytes], bool],
    ) -> bool:  # fmt: skip
        """A check goes out only to a checker holding fewer than
        ``MarketConfig.checks_per_checker`` of our requests (protocol.verification.with_room).
        If every checker we could ask is that busy, the request waits here, told to the
        machine (``check_waits``, journalled: it asked nobody and is not counted towards
        ``verify_attempts``), until one has room; the machine's verify timeout renews it.
        One wait per task: a renewed request finds the first still waiting and returns
        False. True: pick now (a dispute's seats never wait)."""
        cap = self.machine.config.checks_per_checker

        def verifying() -> bool:
            machine = self.machine
            return machine.state is JobState.OPEN and machine.task_state(c.task_id) is TaskState.VERIFYING

        def room() -> bool:
            if self.frames.plant_ahead(c.task_id):
                return False  # the task's plant waits for room: the first place is its
            candidates = prefer_unasked(self.role.checker_candidates(c.worker, exclude(), qualifies),
                                        self.machine.checkers_silent(c.task_id))  # fmt: skip
            return not candidates or bool(self.role.with_room(candidates, cap))

        def waiting() -> bool:  # no other request of the task went out meanwhile
            return verifying() and self.machine.check_waiting(c.task_id)

        if not verifying() or room():
            return True
        await self.step("waits", c.worker, c.task_id, self.ctx.clock.now_ms())
        if c.task_id in self._room_waits:
            return False
        self._room_waits.add(c.task_id)
        try:
            while waiting() and not room():
                await self.room_or_stale(lambda: not waiting() or room())
        finally:
            self._room_waits.discard(c.task_id)
        return waiting()

    async def room_or_stale(self, predicate: Callable[[], bool]) -> None:
        """Wait until ``predicate`` holds after an inbound change (a verdict frees room),
        or until a request of ours goes stale at its checker (that frees room with nothing
        inbound), or a verify timeout at most."""
        wait_s = self.machine.config.verify_timeout_ms / 1000
        if (stale_ms := self.role.next_check_stale_ms()) is not None:
            wait_s = min(wait_s, max(0.0, (stale_ms - self.ctx.clock.now_ms()) / 1000))
        with trio.move_on_after(wait_s):
            async with trio.open_nursery() as nursery:  # an inbound change, or this job's own

                async def until(wait: Callable[[], Awaitable[None]]) -> None:
                    while not predicate():
                        await wait()
                    nursery.cancel_scope.cancel()

                nursery.start_soon(until, self.ctx.node.changed)
                nursery.start_soon(until, self.wait_changed)

    async def _exhausted(self, c: RequestVerification, qualifies: Callable[[bytes], bool]) -> None:
        """Tell the machine no checker is left to ask for ``c``'s further check, with every
        checker we reach now (``JobMachine.checkers_exhausted`` decides; journalled)."""
        reachable = self.role.checker_candidates(c.worker, frozenset(), qualifies)
        log_event(logger, logging.INFO, "no other checker to ask", frame=c.frame,
                  reachable=len(reachable))  # fmt: skip
        data = c.task_id + b"".join(reachable)
        await self.step("exhausted", c.worker, data, self.ctx.clock.now_ms())

    async def introduce(self, checker: bytes, again: bool = False) -> None:
        """Send ``checker`` our announce directly, once per job (``again``: even if sent
        before): a checker knows a job only from its announce, and one that joined
        after it (a dispute's fresh checkers, often) refused every check until the next
        re-announce, so a dispute could end for want of verdicts. Not delivered: the
        check is asked anyway, and the verify timeout asks again. The slasher sends it
        ``again`` to a claim's picks: a checker's map of jobs is bounded, and one that
        let the job go refused to re-render for the claim."""
        if checker in self._introduced and not again:
            return
        if await self.ctx.outbox.deliver(checker, JobAnnounce(self.job_id, self.spec)):
            self._introduced.add(checker)

    async def feed_checker_stakes(self, worker: bytes) -> None:
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

    async def feed_stake(self, address: bytes, bidder: bool = False) -> None:
        """Tell the machine the chain-confirmed stake of ``address`` when it changed and,
        for a bidder (``bidder``, or a standing bid's address fed as a checker's: one node
        may do both) when the job asks a minimum its stake meets, the other jobs that stake
        backs (:meth:`_lanes_elsewhere`). A bidder's stake is not fed while that count
        cannot be read: unfed, it qualifies for nothing; fed before, the last reading
        stands, as a stake's does."""
        async with self._feeding_stake:
            stake_wei = await self.role.confirmed_stake(address)
            count: int | None = None
            minimum = self.machine.config.min_stake_wei
            counted = bool(minimum) and (bidder or address in self.machine.bidder_addresses())
            if counted and count_matters(stake_wei, minimum):
                count = await self.role.open_lanes_count(address)
                if count is None:
                    stake_wei = None  # unread as a whole: no stake without its count
            if counted and stake_wei is None:  # read again by _run_backing
                if len(self._unread) < self.machine.config.max_bidders:
                    self._unread.add(address)
                return
            self._unread.discard(address)
            if stake_wei is not None:
                await self._feed_reading(address, stake_wei, count)

    async def _feed_reading(self, address: bytes, stake_wei: int, count: int | None) -> None:
        """Feed ``address``'s stake and, when read (``count``), its lanes elsewhere worked
        out in the job's lock, with no await before the machine takes them: a lane another
        job of ours plans meanwhile is counted (else in the reading, else by
        :meth:`_restate_counts` before this job's next input). A checker's reading
        (``count`` None) keeps what was fed. Never fed reads as 0: the machine decides the
        same for unread and 0 (no minimum is met, no bidder proven), and a flood of
        stakeless identities then adds nothing to the journal (review: each added a
        'stake' entry of 0 per job)."""
        async with self._lock:
            now_ms = self.ctx.clock.now_ms()
            await self._restate_counts(now_ms)
            lanes = self.lanes_fed.get(address, 0)
            if count is not None:
                self._keep_count(address, count)
                self._restate.discard(address)
                lanes = self._lanes_elsewhere(address, count)
            await self._feed_stake_entry(address, stake_wei, lanes, now_ms)

    def _keep_count(self, address: bytes, count: int) -> None:
        """Keep the count fed for ``address``, the newest last. Bounded: past
        ``max_bidders`` the oldest half goes but for standing bids (an address whose bid
        is on its way, fed just now, stays: its restatement must not be lost)."""
        self._counts.pop(address, None)
        cap = self.machine.config.max_bidders
        if len(self._counts) >= cap:
            standing = self.machine.bidder_addresses()
            for old in list(self._counts)[: max(1, cap // 2)]:
                if old not in standing:
                    del self._counts[old]
        self._counts[address] = count

    def _lanes_elsewhere(self, address: bytes, count: int) -> int:
        """The other jobs ``address``'s stake backs now: the escrow's ``count`` less this
        job's own lane once mined, plus our other jobs' lanes for it not yet seen mined
        (``protocol.market.awarding.lanes_elsewhere``; the journal keeps 8 bytes of it)."""
        planned = self.role.planned_elsewhere(address, self.job_id)
        return min(lanes_elsewhere(count, address in self.lanes_open, planned), 2**64 - 1)

    async def _feed_stake_entry(self, address: bytes, stake_wei: int, lanes: int, now_ms: int) -> None:
        """A 'stake' input, when it changes what the machine was fed (the lock held)."""
        if (self.stakes_fed.get(address, 0), self.lanes_fed.get(address, 0)) != (stake_wei, lanes):
            data = stake_wei.to_bytes(32, "big") + (lanes.to_bytes(8, "big") if lanes else b"")
            await self._step_locked("stake", address, data, now_ms)

    def restate(self, addresses: Iterable[bytes]) -> None:
        """Another job of ours planned lanes for ``addresses``: the readings fed for them
        here are one short; :meth:`_restate_counts` feeds them again before this job's
        next input."""
        self._restate.update(a for a in addresses if a in self._counts)

    async def _restate_counts(self, now_ms: int) -> None:
        """Feed again, before the next input (the lock held), each standing bid's lanes
        elsewhere that another job of ours changed by planning it a lane since its last
        reading here (no chain read: the count last fed, our jobs' plans now). Until this,
        a worker staked once that bid in two of our jobs at once was awarded in both: each
        job read the count before either lane was mined."""
        while self._restate:
            address = next(iter(self._restate))
            if address in self._counts:  # a bid on its way too: fed before it, not standing yet
                lanes = self._lanes_elsewhere(address, self._counts[address])
                await self._feed_stake_entry(address, self.stakes_fed.get(address, 0), lanes, now_ms)
            self._restate.discard(address)  # kept if the entry failed: restated next input

    async def _run_backing(self) -> None:
        """A job asking a minimum stake reads its standing bids' stakes (and, where the
        stake meets the minimum, counts) again every ``STAKE_TTL_S``, and at once after a
        lane of ours for one of them was mined (its count changed): a bid stands, so a
        reading taken when it came would otherwise decide every later award (a stake
        raised since, or lanes opened elsewhere since), and a reading that failed would
        wait for another bid. A standing bid whose stake was under the minimum is read
        only every ``UNDER_MINIMUM_SWEEPS``-th time (a stake raised since): a stranger's
        thousand standing bids, once sent, would otherwise cost a thousand chain reads a
        minute for the job's life. The role's caches serve readings up to ``STAKE_TTL_S`` old,
        so the machine decides on readings up to two minutes old. Read in this task, not
        in a message's or a timer's path (a bid's own reading excepted, and one reading
        before a resumed job's timer starts: :meth:`run_timer`); a changed reading is
        journalled and awards at once (``JobMachine.stake_confirmed``)."""
        for sweep in itertools.count():
            if self.view.outcome is not None:
                return
            with trio.move_on_after(STAKE_TTL_S):
                await self._backing_wake.wait()
            self._backing_wake = trio.Event()
            await self._read_backing(sweep)

    async def _read_backing(self, sweep: int) -> None:
        """One reading of the standing bids (:meth:`_run_backing`'s ``sweep``-th): those
        under the minimum only every ``UNDER_MINIMUM_SWEEPS``-th sweep, each contained."""
        minimum = self.machine.config.min_stake_wei
        # every standing bid was bound to its address by its sender's advert when it was
        # taken (RequesterRole.receive): its own address is read, whatever it binds since
        standing = self.machine.bidder_addresses()
        self._unread &= standing  # a bid replaced or dropped is not read for
        due = standing
        if sweep % UNDER_MINIMUM_SWEEPS:  # a stake under the minimum: every 10th sweep
            due = {a for a in standing if self.stakes_fed.get(a, 0) >= minimum} | self._unread
        for address in sorted(due):
            try:
                await self.feed_stake(address, bidder=True)
            except Exception as exc:  # contained: the other bids are still read
                log_event(logger, logging.ERROR, "stake reading not fed",
                          job=self.job_id.hex()[:16], error=f"{type(exc).__name__}: {exc}")  # fmt: skip

    def park_bid(self, sender: bytes, bid: Bid, digest: bytes, wire: bytes) -> bool:
        """Hold ``bid`` until ``sender``'s advert comes (at most ``PARK_S``): a node's bid
        may reach us before its advert, and workers bid once a job (answered busy, it
        gave up after its outbox's few tries). False when ``PARKED_BIDS`` others are held
        (the sender is answered busy): fresh keys cost nothing, and evicting the oldest
        let them push out an honest bid already answered "taken" (review of stop 44)."""
        held = self._parked.pop(sender, None)
        if held is None and len(self._parked) >= PARKED_BIDS:
            return False
        first = trio.current_time() if held is None else held[3]
        self._parked[sender] = (bid, digest, wire, first)
        if not self._parking:
            self._parking = True
            self.role.spawn(self._run_parked)
        return True

    def unpark_bid(self, sender: bytes) -> None:
        self._parked.pop(sender, None)

    async def _run_parked(self) -> None:
        """Take each held bid once its sender's advert came; drop it after ``PARK_S``."""
        address_of = self.role.address_of
        try:
            while self._parked and self.view.outcome is None:
                with trio.move_on_after(PARK_S / 4):
                    await self.ctx.node.wait_until(lambda: any(address_of(s) for s in self._parked))
                now = trio.current_time()
                for sender, entry in list(self._parked.items()):
                    if self._parked.get(sender) is not entry:
                        continue  # taken, or replaced by a newer bid, while we took another
                    bid, digest, wire, first = entry
                    if address_of(sender) is not None:
                        del self._parked[sender]  # before: a newer bid held meanwhile stays
                        try:
                            await self.role.receive(sender, bid, digest, wire)
                        except Exception as exc:  # contained: its sender is the machine's to judge
                            log_event(logger, logging.INFO, "held bid not taken",
                                      bidder=sender.hex()[:16], error=f"{type(exc).__name__}: {exc}"[:200])  # fmt: skip
                    elif now - first >= PARK_S:
                        self._parked.pop(sender, None)
                        log_event(logger, logging.INFO, "held bid dropped: no advert of its sender",
                                  bidder=sender.hex()[:16])  # fmt: skip
        finally:
            self._parking = False

    def wake_backing(self) -> None:
        """Read the standing bids again now (a lane of ours changed a count)."""
        self._backing_wake.set()

    def _lanes_mined(self, payees: Iterable[bytes]) -> None:
        """Lanes of this job that hold funds on chain (after each funding, and after a
        restart's): the escrow's counts have them now; read them again."""
        new = set(payees) - self.lanes_open
        if new:
            self.lanes_open |= new
            self.role.lanes_opened(new)  # and wakes every job of ours those addresses bid in

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
            self.notify()

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


async def contained(fn: Callable[..., Awaitable[object]], *args: object) -> None:
    try:
        await fn(*args)
    except Exception as exc:  # cancellation (a BaseException) still passes
        log_event(logger, logging.ERROR, "requester task failed", task=getattr(fn, "__name__", "?"),
                  error=f"{type(exc).__name__}: {exc}")  # fmt: skip


def message_record(message: Message, digest: bytes, wire: bytes = b"") -> bytes:
    return packb([type(message).TYPE, to_wire(message), digest, wire])
