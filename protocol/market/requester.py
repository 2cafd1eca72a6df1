"""The requester's job machine: announce, award, keep leases, verify, pay.

Theory of operation
-------------------
One :class:`JobMachine` per job. ``start`` gossips the JobAnnounce and opens a
bid window; bids are *standing offers* ("up to n of my leases at this price")
kept per worker, and once the window has closed every change that frees work
or capacity (a bid, a result, a failure, an expiry) runs :meth:`_award`
again. Awarding is cheapest-first by price over the worker's reputation weight
(then ETA, then node id so it is deterministic), pay-as-bid, never above
``max_price_wei_per_frame``, never to a worker blocklisted by this job or by
its reputation record, nor to a worker that already failed that frame, at most
``min(frames_wanted, max_tasks_per_worker)`` live leases per worker, and never
when ``spent + reserved + price + checker fee`` would exceed ``budget_wei``.

A lease lives ``lease_ms`` from the award and from every heartbeat (answered
with LeaseExtended), but never past the task's hard deadline (a multiple of
the bid's ETA, see :mod:`protocol.market.config`); when it runs out the task
expires, the worker is told (LeaseRevoked) and charged a failure. A result
is checked (renderer build), then verified as the check plan says
(:func:`protocol.verification.plan_frame_check`, from the job's assurance, the
worker's reputation and a draw from the requester's ``check_secret``): a
result the plan skips is accepted at once, otherwise the driver gets
:class:`RequestVerification`,
picks a checker and calls :meth:`assign_checker`; only a Verdict from an
assigned checker about the exact result (envelope digest) counts; the
checker is told the plan's ``k`` (``VerifyRequest.tiles``). Reputation comes
in through :meth:`set_worker_record` (the driver's ``ReputationBook``) and goes
out as :class:`WorkerJudged` (what a verdict, failure or expiry showed). Accepted
frames raise the payee's cumulative amount (:class:`RecordPayment`). Pay is
secured before work: an award round, a checker assignment (when the driver
names the checker's payment address) or a dispute that leaves a payee's lane
short emits one :class:`FundLanes` ahead of the messages it secures, sized in
chunks by :mod:`protocol.market.lanes`. State and bookkeeping live in
:mod:`protocol.market.jobbook`, the award policy in
:mod:`protocol.market.awarding`.

Retries and blocklist (per job):

* a frame gets ``max_attempts_per_frame`` = 3 failed attempts, each by a
  *different* worker, then it fails;
* a worker is blocklisted after ``blocklist_after_failures`` = 3 soft failures
  (Failure messages, expired leases, results from the wrong renderer build),
  or after ``blocklist_after_rejections`` = 1 result a checker rejected;
* blocklisting revokes the worker's live leases and drops its results still
  waiting for a verdict (those frames go back to pending without losing an
  attempt): it gets nothing more from this job and is trusted with nothing.

A rejected worker may dispute (``Dispute`` naming the verdict's digest, which
the ``LeaseRevoked`` telling it of the rejection carries in ``verdict_digest``) within
``dispute_window_ms``: ``dispute_checkers`` more checkers, never the worker nor
one already used, are asked, their fees and the task's price reserved; the
majority of all verdicts decides. Overturned, the first checker is reported
(``CheckerOverruled``), the rejection is struck from the worker's record, and
the frame is accepted from the disputed result if still open (a live retry is
revoked); upheld, nothing changes. See docs/MARKET.md.

The soft numbers are Flamenco's, and fit for the same reasons: one failure is
noise (an OOM, a lost connection), three on different frames point at the
worker, and three different workers failing one frame point at the frame (its
scene), so more retries burn budget and time. Distinct workers per attempt
mean one broken worker costs a frame at most one attempt, and a worker that
fails 10 % of its renders still loses a frame with probability 0.1³ = 0.1 %.
A rejected verdict is not noise: with pinned settings an honest render
matches within tolerance, so a mismatch is a cheat or broken hardware, and
one is enough to stop trusting that worker for the rest of the job (a false
verdict costs an honest worker one job, not its stake). Declined awards are
not failures (a worker may be busy) but drop that worker's bid until it bids
again.

While frames wait for a worker, the announce is repeated every
``reannounce_interval_ms`` for nodes that joined since (gossip is not kept).
At the deadline every open frame fails, live leases are revoked, and the
unspent budget is due back (:class:`RefundDue`). Late messages for a closed
job or a decided task are ignored; a message about a task the sender does not
hold, or a verdict by a node we did not ask, raises ``IllegalMessage``
before any state changes, so the machine stays usable for every other peer.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from protocol.errors import IllegalMessage, IllegalTransition
from protocol.market import events as ev
from protocol.market.awarding import Bidder, plan_awards
from protocol.market.commands import (
    CheckerFeeDue,
    CheckerOverruled,
    Command,
    DisputeResolved,
    FrameAccepted,
    FrameFailed,
    JobOutcome,
    Publish,
    RecordPayment,
    RequestVerification,
    Send,
    WorkerBlocklisted,
    WorkerJudged,
)
from protocol.market.config import MarketConfig
from protocol.market.jobbook import SETTLED, JobBook
from protocol.market.records import (
    JobStatistics,
    TaskRecord,
    result_digest_of,
    verdict_digest_of,
)
from protocol.market.tables import (
    FrameState,
    JobState,
    TaskState,
)
from protocol.messages import (
    Award,
    AwardDeclined,
    Bid,
    Dispute,
    Failure,
    Heartbeat,
    JobAnnounce,
    JobCancelled,
    JobSpec,
    LeaseExtended,
    LeaseRevoked,
    Message,
    Result,
    Verdict,
    VerifyRequest,
)
from protocol.reputation import Judgement
from protocol.topics import JOBS_TOPIC
from protocol.verification import DEFAULT_POLICY, VerificationPolicy


class JobMachine(JobBook):
    """The requester's side of one job (see the module docstring)."""

    def __init__(
        self, job_id: bytes, spec: JobSpec, config: MarketConfig, now_ms: int,
        *, check_secret: bytes | None = None, verification: VerificationPolicy = DEFAULT_POLICY,
    ) -> None:  # fmt: skip
        super().__init__(job_id, spec, config, now_ms, check_secret, verification)
        self._handlers: dict[type, Callable[[bytes, Any, int, bytes | None], list[Command]]] = {
            Bid: self._on_bid,
            Heartbeat: self._on_heartbeat,
            Result: self._on_result,
            Failure: self._on_failure,
            AwardDeclined: self._on_declined,
            Verdict: self._on_verdict,
            Dispute: self._on_dispute,
        }
        self._disputes: dict[bytes, TaskRecord] = {}  # DISPUTED tasks

    # ---- driver API ----

    def start(self, now_ms: int) -> list[Command]:
        self._job_step(ev.JobStarted(self.job_id))
        self._window_end_ms = now_ms + self.config.bid_window_ms
        self._window_pending = True
        return [self._announce(now_ms)]

    def receive(
        self, sender: bytes, message: Message, now_ms: int, *, envelope_digest: bytes | None = None
    ) -> list[Command]:
        handler = self._handlers.get(type(message))
        if handler is None:
            raise IllegalMessage(f"a requester does not take {type(message).__name__}")
        if getattr(message, "job_id", None) != self.job_id:
            raise IllegalTransition("a message for another job was routed to this machine")
        if self.state is not JobState.OPEN:
            return []  # before start or after the end: nothing left to decide
        return handler(sender, message, now_ms, envelope_digest)

    def assign_checker(
        self, task_id: bytes, checker: bytes, now_ms: int, checker_address: bytes = b""
    ) -> list[Command]:
        """The driver chose ``checker`` (paid at ``checker_address``) for a
        :class:`RequestVerification`. With an address the checker's lane is funded
        (``FundLanes``, before the request) and its fee is due to that address."""
        task = self._tasks.get(task_id)
        if task is None:
            raise IllegalTransition("no such task")
        if checker == task.worker:
            raise IllegalTransition("a worker cannot check its own result")
        was = task.state
        if was is TaskState.DISPUTED:
            if checker in task.checkers:
                raise IllegalTransition("a dispute needs checkers not yet used on the task")
            if len(task.dispute_checkers) >= self.config.dispute_checkers:
                raise IllegalTransition("the dispute has all its checkers")
        self._task_step(task, ev.CheckerAssigned(task_id))
        if was is TaskState.DISPUTED:
            task.dispute_checkers.add(checker)
        elif was is not TaskState.VERIFYING:
            return []  # decided meanwhile (revoked, or the job ended): no longer needed
        task.checkers.add(checker)
        request = VerifyRequest(
            self.job_id, task_id, task.frame, task.worker, task.result_digest,
            task.frame_cid, self.spec.scene_cid, task.fee_wei, task.tiles,
        )  # fmt: skip
        if not checker_address or task.fee_wei == 0:
            return [Send(checker, request)]
        self._checker_addresses.setdefault(checker, checker_address)
        self._fees_pending[(task_id, checker)] = task.fee_wei
        checkers = len(set(self._checker_addresses.values()))
        unsettled = len(self._frames) - self._settled
        chunk_wei = task.fee_wei * max(0, unsettled - 1) // checkers
        address = self._checker_addresses[checker]
        return [*self._fund({address: chunk_wei}), Send(checker, request)]

    def checkers_excluded(self, task_id: bytes) -> frozenset[bytes]:
        """Nodes ``assign_checker`` would refuse for a dispute of ``task_id``: its
        worker and every checker already asked about it."""
        task = self._tasks.get(task_id)
        return frozenset() if task is None else frozenset(task.checkers | {task.worker})

    def cancel(self, now_ms: int) -> list[Command]:
        if self.state is JobState.CREATED:
            self._job_step(ev.JobCancelledLocally(self.job_id))
            return self._settle(JobOutcome.CANCELLED)
        return self._close(ev.JobCancelledLocally(self.job_id), "cancelled by the requester")

    def get_timer(self) -> int | None:
        if self.state is not JobState.OPEN:
            return None
        times = [self.spec.deadline_ms]
        if self._window_pending:
            times.append(self._window_end_ms)
        if self._pending:
            times.append(self._next_announce_ms)
        for task in self._active.values():
            leased = task.state is TaskState.LEASED
            times.append(task.lease_deadline_ms if leased else task.verify_deadline_ms)
        times += [task.verify_deadline_ms for task in self._disputes.values()]
        return min(times)

    def handle_timer(self, now_ms: int) -> list[Command]:
        if self.state is not JobState.OPEN:
            return []
        if now_ms >= self.spec.deadline_ms:
            return self._close(ev.DeadlinePassed(self.job_id), "deadline passed")
        out: list[Command] = []
        for task in list(self._active.values()):
            if self.state is not JobState.OPEN:
                break
            if task.state is TaskState.LEASED and now_ms >= task.lease_deadline_ms:
                self._task_step(task, ev.LeaseExpired(task.task_id))
                out.append(Send(task.worker, LeaseRevoked(self.job_id, task.task_id, "expired")))
                out += self._charge(task, "lease expired", now_ms, timed_out=True)
            elif task.state is TaskState.VERIFYING and now_ms >= task.verify_deadline_ms:
                self._task_step(task, ev.VerificationTimedOut(task.task_id))
                out.append(self._request_verification(task, now_ms))
        for task in list(self._disputes.values()):
            if self.state is JobState.OPEN and now_ms >= task.verify_deadline_ms:
                out += self._resolve(task, False, "no majority before the timeout", now_ms)
        if self._window_pending and now_ms >= self._window_end_ms:
            self._window_pending = False
            out += self._award(now_ms)
        if self._pending and now_ms >= self._next_announce_ms and self.state is JobState.OPEN:
            out.append(self._announce(now_ms))  # for workers that joined since
        return out

    # ---- message handlers ----

    def _on_bid(self, sender: bytes, bid: Bid, now_ms: int, _: bytes | None) -> list[Command]:
        if sender in self._blocklist or bid.price_wei_per_frame > self.spec.max_price_wei_per_frame:
            return []
        if self._offender(sender, now_ms):
            return []  # its record (across jobs) blocklists it: no award, no bid kept
        if sender not in self._bidders and len(self._bidders) >= self.config.max_bidders:
            return []
        slots = min(bid.frames_wanted, self.config.max_tasks_per_worker)
        self._bidders[sender] = Bidder(
            sender, bid.price_wei_per_frame, bid.eta_s_per_frame, bid.payment_address, slots
        )
        return self._award(now_ms)

    def _on_heartbeat(
        self, sender: bytes, beat: Heartbeat, now_ms: int, _: bytes | None
    ) -> list[Command]:
        task = self._held(sender, beat.task_id)
        was = task.state
        self._task_step(task, ev.HeartbeatReceived(task.task_id))
        if was is not TaskState.LEASED:
            return []
        task.lease_deadline_ms = min(now_ms + self.config.lease_ms, task.hard_deadline_ms)
        return [Send(sender, LeaseExtended(self.job_id, task.task_id, task.lease_deadline_ms))]

    def _on_result(
        self, sender: bytes, result: Result, now_ms: int, digest: bytes | None
    ) -> list[Command]:
        task = self._held(sender, result.task_id, result.frame)
        digest = digest if digest is not None else result_digest_of(result)
        if task.state is TaskState.VERIFYING and result != task.result:
            raise IllegalMessage("a second, different result for one task", penalty=50)
        was = task.state
        if was is TaskState.LEASED and result.renderer_build != self.spec.renderer_build:
            self._task_step(task, ev.ResultInvalid(task.task_id))
            return self._charge(task, "wrong renderer build", now_ms)
        self._task_step(task, ev.ResultReceived(task.task_id))
        if was is not TaskState.LEASED:
            return []
        self._frame_step(task.frame, ev.FrameRendered(task.frame))
        task.result, task.result_digest, task.frame_cid = result, digest, result.frame_cid
        task.tiles = self._plan_tiles(task, now_ms)
        if task.tiles == 0:  # the check plan skips it (or the job asks for no checks)
            self._task_step(task, ev.VerificationWaived(task.task_id))
            return self._accept(task, now_ms)
        return [self._request_verification(task, now_ms), *self._award(now_ms)]

    def _on_failure(
        self, sender: bytes, failure: Failure, now_ms: int, _: bytes | None
    ) -> list[Command]:
        task = self._held(sender, failure.task_id, failure.frame)
        was = task.state
        if was is TaskState.VERIFYING:
            return []  # it already sent a result; that result decides
        self._task_step(task, ev.FailureReported(task.task_id))
        if was is not TaskState.LEASED:
            return []
        return self._charge(task, f"worker failed: {failure.reason.value}", now_ms)

    def _on_declined(
        self, sender: bytes, declined: AwardDeclined, now_ms: int, _: bytes | None
    ) -> list[Command]:
        task = self._held(sender, declined.task_id)
        if task.state is TaskState.VERIFYING:
            raise IllegalMessage("declined an award it already delivered")
        was = task.state
        self._task_step(task, ev.AwardRefused(task.task_id))
        if was is not TaskState.LEASED:
            return []
        self._release(task)
        self._frame_step(task.frame, ev.AttemptReturned(task.frame))
        self._pending.add(task.frame)
        self._bidders.pop(sender, None)  # it does not want (more) work from us now
        return self._award(now_ms)

    def _on_verdict(
        self, sender: bytes, verdict: Verdict, now_ms: int, digest: bytes | None
    ) -> list[Command]:
        task = self._tasks.get(verdict.task_id)
        if task is None or (verdict.worker, verdict.frame) != (task.worker, task.frame):
            raise IllegalMessage("a verdict about a task we do not know")
        if sender not in task.checkers:
            raise IllegalMessage("a verdict from a node we did not ask", penalty=50)
        if verdict.result_digest != task.result_digest:
            raise IllegalMessage("a verdict about another result")
        if len(verdict.tiles) != self._tiles_expected(task):
            raise IllegalMessage("a verdict on another number of tiles than asked", penalty=50)
        was = task.state
        event = ev.VerdictPassed if verdict.passed else ev.VerdictFailed
        self._task_step(task, event(task.task_id))
        if was is TaskState.DISPUTED:
            return self._on_dispute_verdict(task, sender, verdict.passed, now_ms)
        if was is not TaskState.VERIFYING:
            return []
        task.fee_paid = True
        self._reserved_wei -= task.fee_wei
        self._fees_wei += task.fee_wei
        out: list[Command] = [self._fee_due(task, sender)]
        if verdict.passed:
            out.append(WorkerJudged(self.job_id, task.worker, Judgement.ACCEPTED))
            return out + self._accept(task, now_ms)
        # keep the evidence for a dispute, and tell the worker which verdict to contest
        task.rejected_by = sender
        task.verdict_digest = digest if digest is not None else verdict_digest_of(verdict)
        task.dispute_until_ms = now_ms + self.config.dispute_window_ms
        revoked = LeaseRevoked(self.job_id, task.task_id, "rejected by a checker",
                               task.verdict_digest)  # fmt: skip
        out.append(Send(task.worker, revoked))
        return out + self._charge(task, "result rejected by a checker", now_ms, rejected=True)

    def _on_dispute(
        self, sender: bytes, dispute: Dispute, now_ms: int, _: bytes | None
    ) -> list[Command]:
        task = self._held(sender, dispute.task_id)
        if not task.rejected_by:
            raise IllegalMessage("no rejecting verdict on this task to dispute")
        if dispute.verdict_digest != task.verdict_digest:
            raise IllegalMessage("a dispute of a verdict we did not act on")
        if task.disputed:
            return []  # a resent dispute: already heard
        if now_ms > task.dispute_until_ms:
            raise IllegalMessage("a dispute after the dispute window")
        task.disputed = True
        reserve_wei = task.price_wei + self.config.dispute_checkers * task.fee_wei
        if self.config.dispute_checkers == 0:
            return [self._resolved(task, True, False, "disputes are not taken")]
        if reserve_wei > self._free_wei(self._lane_needs()):
            return [self._resolved(task, True, False, "the budget cannot cover a dispute")]
        self._task_step(task, ev.DisputeOpened(task.task_id))
        self._reserved_wei += reserve_wei
        task.dispute_reserved_wei = reserve_wei
        task.verify_deadline_ms = now_ms + self.config.verify_timeout_ms
        self._disputes[task.task_id] = task
        exclude = frozenset(task.checkers | {task.worker})
        ask = RequestVerification(
            task.task_id, task.frame, task.worker, task.result_digest, task.frame_cid, exclude
        )
        # the worker's lane must cover the price should the dispute be won
        return [*self._fund({task.payee_address: 0}), *[ask] * self.config.dispute_checkers]

    def _on_dispute_verdict(
        self, task: TaskRecord, sender: bytes, passed: bool, now_ms: int
    ) -> list[Command]:
        if sender not in task.dispute_checkers or sender in task.dispute_votes:
            return []  # the first checker again, or a resent verdict
        task.dispute_votes[sender] = passed
        task.dispute_reserved_wei -= task.fee_wei
        self._reserved_wei -= task.fee_wei
        self._fees_wei += task.fee_wei
        out: list[Command] = [self._fee_due(task, sender)]
        needed = self.config.dispute_checkers // 2 + 1  # of dispute_checkers + 1 verdicts
        passes = sum(task.dispute_votes.values())
        fails = 1 + len(task.dispute_votes) - passes
        if passes >= needed:
            return out + self._resolve(task, True, "the majority passed the result", now_ms)
        if fails >= needed:
            return out + self._resolve(task, False, "the majority rejected the result", now_ms)
        return out

    def _resolve(
        self, task: TaskRecord, overturned: bool, reason: str, now_ms: int
    ) -> list[Command]:
        """End ``task``'s dispute; an overturned one clears the worker and may settle the frame."""
        del self._disputes[task.task_id]
        self._reserved_wei -= task.dispute_reserved_wei
        task.dispute_reserved_wei = 0
        if not overturned:
            self._task_step(task, ev.DisputeUpheld(task.task_id))
            return [self._resolved(task, True, False, reason)]
        self._task_step(task, ev.DisputeOverturned(task.task_id))
        out: list[Command] = [
            CheckerOverruled(task.rejected_by, self.job_id, task.task_id),
            WorkerJudged(self.job_id, task.worker, Judgement.CLEARED),
        ]
        worker = task.worker
        self._rejections[worker] -= 1
        self._failures[worker] -= 1
        frame = self._frames[task.frame]
        frame.failed_workers.discard(worker)
        if worker in self._blocklist and (
            self._rejections[worker] < self.config.blocklist_after_rejections
            and self._failures[worker] < self.config.blocklist_after_failures
        ):
            self._blocklist.discard(worker)  # it may bid again
            if (bid := self._parked_bids.pop(worker, None)) is not None:
                # Its bid stands again: its machine will not re-bid a job it bid on.
                self._bidders.setdefault(worker, bid)
        if frame.state in SETTLED:
            return [*out, self._resolved(task, False, False, reason + "; frame settled meanwhile")]
        frame.failed_attempts -= 1
        for other in [t for t in self._active.values() if t.frame == task.frame]:
            if other.state is TaskState.LEASED:
                why = "frame accepted from a disputed result"
                out.append(Send(other.worker, LeaseRevoked(self.job_id, other.task_id, why)))
            self._task_step(other, ev.TaskRevoked(other.task_id))
            self._release(other)
            self._frame_step(other.frame, ev.AttemptReturned(other.frame))
        self._pending.discard(task.frame)
        self._frame_step(task.frame, ev.DisputeWon(task.frame))
        out.append(self._resolved(task, False, True, reason))
        return out + self._pay(task) + self._after_change(now_ms)

    def _fee_due(self, task: TaskRecord, checker: bytes) -> CheckerFeeDue:
        """``checker`` earned ``task``'s fee: book it to its payment address."""
        self._fees_pending.pop((task.task_id, checker), None)
        address = self._checker_addresses.get(checker, b"")
        if address:
            self._fees_by_address[address] = self._fees_by_address.get(address, 0) + task.fee_wei
        return CheckerFeeDue(self.job_id, task.task_id, checker, task.fee_wei, address)

    def _resolved(self, task: TaskRecord, upheld: bool, paid: bool, reason: str) -> Command:
        return DisputeResolved(self.job_id, task.task_id, task.worker, upheld, paid, reason)

    def _end_disputes(self, reason: str) -> list[Command]:
        """The job ended: open disputes end with it, their reserve released."""
        out: list[Command] = []
        for task in list(self._disputes.values()):
            del self._disputes[task.task_id]
            self._reserved_wei -= task.dispute_reserved_wei
            task.dispute_reserved_wei = 0
            self._task_step(task, ev.DisputeUpheld(task.task_id))
            out.append(self._resolved(task, True, False, reason))
        return out

    # ---- decisions ----

    def _award(self, now_ms: int) -> list[Command]:
        if self.state is not JobState.OPEN or self._window_pending or not self._pending:
            return []
        leases: dict[bytes, int] = {}
        for task in self._active.values():
            if task.state is TaskState.LEASED:
                leases[task.worker] = leases.get(task.worker, 0) + 1
        failed = {n: self._frames[n].failed_workers for n in self._pending}
        needs = self._lane_needs()
        bidders = [b for b in self._bidders.values() if not self._offender(b.worker, now_ms)]
        plan = plan_awards(
            bidders, self._pending, failed, leases, self._free_wei(needs), self._fee_wei,
            self._lanes.slack(needs), self._award_weights([b.worker for b in bidders], now_ms),
        )  # fmt: skip
        sends: list[Command] = [self._grant(bidder, frame, now_ms) for bidder, frame in plan]
        if not sends:
            return []
        # One FundLanes per round, before its awards: each awarded worker's lane is
        # topped up, when short, by its share of the frames still pending.
        share = -(-len(self._pending) // max(1, len(self._bidders)))
        chunks = {b.payment_address: b.price_wei * share for b, _ in plan}
        needs = self._lane_needs()
        fee_reserve_wei = self._fee_wei(self.spec.max_price_wei_per_frame) * len(self._pending)
        return [*self._fund(chunks, self._free_wei(needs) - fee_reserve_wei), *sends]

    def _grant(self, bidder: Bidder, frame: int, now_ms: int) -> Command:
        task = self._new_task(bidder, frame, now_ms)
        self._frame_step(frame, ev.FrameAwarded(frame))
        award = Award(
            self.job_id, task.task_id, frame, task.worker, task.price_wei,
            task.lease_deadline_ms, self.config.heartbeat_interval_ms,
        )  # fmt: skip
        return Send(task.worker, award)

    def _accept(self, task: TaskRecord, now_ms: int) -> list[Command]:
        self._release(task)
        self._frame_step(task.frame, ev.FrameVerified(task.frame))
        return self._pay(task) + self._after_change(now_ms)

    def _pay(self, task: TaskRecord) -> list[Command]:
        owed = self._owed_wei.get(task.payee_address, 0) + task.price_wei
        self._owed_wei[task.payee_address] = owed
        return [
            FrameAccepted(
                self.job_id, task.frame, task.task_id, task.worker, task.frame_cid, task.price_wei
            ),
            RecordPayment(task.payee_address, owed, self.job_id),
        ]

    def _charge(
        self, task: TaskRecord, reason: str, now_ms: int, *, rejected: bool = False,
        timed_out: bool = False,
    ) -> list[Command]:  # fmt: skip
        """``task`` failed by its worker's fault: count it against frame and worker."""
        self._release(task)
        judgement = Judgement.REJECTED if rejected else Judgement.FAILED
        out: list[Command] = [WorkerJudged(self.job_id, task.worker,
                                           Judgement.TIMED_OUT if timed_out else judgement)]  # fmt: skip
        frame = self._frames[task.frame]
        frame.failed_attempts += 1
        frame.failed_workers.add(task.worker)
        if frame.failed_attempts >= self.config.max_attempts_per_frame:
            self._frame_step(task.frame, ev.AttemptsExhausted(task.frame))
            out.append(FrameFailed(self.job_id, task.frame, f"{reason} (last attempt)"))
        else:
            self._frame_step(task.frame, ev.AttemptFailed(task.frame))
            self._pending.add(task.frame)
        failures = self._failures[task.worker] = self._failures.get(task.worker, 0) + 1
        rejections = self._rejections[task.worker] = self._rejections.get(task.worker, 0) + rejected
        caught = rejections >= self.config.blocklist_after_rejections
        if (caught or failures >= self.config.blocklist_after_failures) and (
            task.worker not in self._blocklist
        ):
            self._blocklist.add(task.worker)
            parked = self._bidders.pop(task.worker, None)
            if parked is not None and rejected:
                self._parked_bids[task.worker] = parked  # a won dispute restores it
            out.append(WorkerBlocklisted(self.job_id, task.worker, failures))
            out += self._shut_out(task.worker)
        return out + self._after_change(now_ms)

    def _after_change(self, now_ms: int) -> list[Command]:
        if self._settled < len(self._frames):
            return self._award(now_ms)
        self._job_step(ev.FramesSettled(self.job_id))
        all_accepted = all(f.state is FrameState.ACCEPTED for f in self._frames.values())
        outcome = JobOutcome.COMPLETED if all_accepted else JobOutcome.PARTIAL
        return self._end_disputes("the job finished") + self._settle(outcome)

    def _close(
        self, event: ev.DeadlinePassed | ev.JobCancelledLocally, reason: str
    ) -> list[Command]:
        self._job_step(event)
        out: list[Command] = []
        for task in list(self._active.values()):
            if task.state is TaskState.LEASED:
                out.append(Send(task.worker, LeaseRevoked(self.job_id, task.task_id, reason)))
            self._task_step(task, ev.TaskRevoked(task.task_id))
            self._release(task)
        for number, frame in self._frames.items():
            if frame.state not in SETTLED:
                self._frame_step(number, ev.JobClosed(number))
                out.append(FrameFailed(self.job_id, number, reason))
        self._pending.clear()
        out.append(Publish(JOBS_TOPIC, JobCancelled(self.job_id, reason)))
        cancelled = isinstance(event, ev.JobCancelledLocally)
        out += self._end_disputes(reason)
        return out + self._settle(JobOutcome.CANCELLED if cancelled else JobOutcome.EXPIRED)

    def _announce(self, now_ms: int) -> Publish:
        self._next_announce_ms = now_ms + self.config.reannounce_interval_ms
        return Publish(JOBS_TOPIC, JobAnnounce(self.job_id, self.spec))

    def _request_verification(self, task: TaskRecord, now_ms: int) -> RequestVerification:
        task.verify_deadline_ms = now_ms + self.config.verify_timeout_ms
        return RequestVerification(
            task.task_id, task.frame, task.worker, task.result_digest, task.frame_cid
        )


__all__ = ["JobMachine", "JobStatistics", "result_digest_of"]  # the last two re-exported
