"""The requester's job machine: announce, award, keep leases, verify, pay.

Theory of operation
-------------------
One :class:`JobMachine` per job. ``start`` gossips the JobAnnounce and opens a
bid window; bids are *standing offers* ("up to n of my leases at this price")
kept per worker, and once the window has closed every change that frees work
or capacity (a bid, a result, a failure, an expiry) runs :meth:`_award`
again. Awarding is cheapest-first (price, then ETA, then node id so it is
deterministic), pay-as-bid, never above ``max_price_wei_per_frame``, never to a
blocklisted worker nor to a worker that already failed that frame, at most
``min(frames_wanted, max_tasks_per_worker)`` live leases per worker, and never
when ``spent + reserved + price + checker fee`` would exceed ``budget_wei``.

A lease lives ``lease_ms`` from the award and from every heartbeat (answered
with LeaseExtended); when it runs out the task expires, the worker is told
(LeaseRevoked) and charged a failure. A result is checked (renderer build),
then verified: with ``Assurance.NONE`` it is accepted at once, otherwise the
driver gets :class:`RequestVerification`, picks a checker and calls
:meth:`assign_checker`; only a Verdict from an assigned checker about the
exact result (envelope digest) counts. Accepted frames raise the payee's
cumulative amount (:class:`RecordPayment`); a rejected result is a failure.

Retries and blocklist: a frame gets ``max_attempts_per_frame`` = 3 failed
attempts, each by a *different* worker; then it fails. A worker that fails
``blocklist_after_failures`` = 3 times in one job (failures, expired leases,
rejected or invalid results) gets no further award in that job. These are
Flamenco's numbers, and they fit here for the same reasons: one failure is
noise (an OOM, a lost connection), three on different frames point at the
worker, and three different workers failing one frame point at the frame (its
scene), so retrying further burns budget and time. Because attempts must come
from distinct workers, one broken or dishonest worker can cost a frame at most
one attempt and a job at most three, and a worker that is honest 90 % of the
time still loses a frame only with probability 0.1³ = 0.1 %. Declined awards
are not failures (a worker may be busy), but drop that worker's bid.

At the deadline every open frame fails, live leases are revoked, and the
unspent budget is due back (:class:`RefundDue`). Late messages for a closed
job or a decided task are ignored; a message about a task the sender does not
hold, or a verdict by a node we did not ask, raises ``IllegalMessage``
before any state changes, so the machine stays usable for every other peer.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from protocol.codec import packb, to_wire
from protocol.errors import IllegalMessage, IllegalTransition
from protocol.market import events as ev
from protocol.market.commands import (
    CheckerFeeDue,
    Command,
    FrameAccepted,
    FrameFailed,
    JobFinished,
    JobOutcome,
    Publish,
    RecordPayment,
    RefundDue,
    RequestVerification,
    Send,
    WorkerBlocklisted,
)
from protocol.market.config import MarketConfig
from protocol.market.tables import (
    FRAME_TRANSITIONS,
    JOB_TRANSITIONS,
    TASK_TRANSITIONS,
    FrameState,
    JobState,
    TaskState,
    next_state,
)
from protocol.messages import (
    Assurance,
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
    job_id_of,
)
from protocol.topics import JOBS_TOPIC


@dataclass
class _Bidder:
    worker: bytes
    price_wei: int
    eta_s: int
    payment_address: bytes
    slots: int


@dataclass
class _Task:
    task_id: bytes
    frame: int
    worker: bytes
    price_wei: int
    fee_wei: int
    payee_address: bytes
    lease_deadline_ms: int
    state: TaskState = TaskState.LEASED
    result_digest: bytes = b""
    frame_cid: str = ""
    checkers: set[bytes] = field(default_factory=set)
    verify_deadline_ms: int = 0
    fee_paid: bool = False


@dataclass
class _Frame:
    state: FrameState = FrameState.PENDING
    failed_attempts: int = 0
    failed_workers: set[bytes] = field(default_factory=set)


@dataclass(frozen=True)
class JobStatistics:
    state: JobState
    frames_total: int
    frames_pending: int
    frames_leased: int
    frames_verifying: int
    frames_accepted: int
    frames_failed: int
    awards: int
    bidders: int
    workers_blocklisted: int
    owed_wei: int
    fees_wei: int
    reserved_wei: int
    budget_wei: int

    @property
    def committed_wei(self) -> int:
        return self.owed_wei + self.fees_wei + self.reserved_wei


def result_digest_of(result: Result) -> bytes:
    """Stand-in for the envelope digest when a driver has no envelope."""
    return hashlib.sha256(b"pictor/result/v1\x00" + packb(to_wire(result))).digest()


class JobMachine:
    """The requester's side of one job (see the module docstring)."""

    def __init__(self, job_id: bytes, spec: JobSpec, config: MarketConfig, now_ms: int) -> None:
        if job_id != job_id_of(spec):
            raise IllegalTransition("job_id is not the hash of the spec")
        self.job_id = job_id
        self.spec = spec
        self.config = config
        self.state = JobState.CREATED
        self.created_ms = now_ms
        self._frames = {frame: _Frame() for frame in spec.frames}
        self._pending: set[int] = set(spec.frames)
        self._tasks: dict[bytes, _Task] = {}
        self._active: dict[bytes, _Task] = {}  # LEASED or VERIFYING
        self._bidders: dict[bytes, _Bidder] = {}
        self._failures: dict[bytes, int] = {}
        self._blocklist: set[bytes] = set()
        self._owed_wei: dict[bytes, int] = {}
        self._fees_wei = 0
        self._reserved_wei = 0
        self._awards = 0
        self._settled = 0
        self._window_end_ms = 0
        self._window_pending = False
        self._handlers: dict[type, Callable[[bytes, Any, int, bytes | None], list[Command]]] = {
            Bid: self._on_bid,
            Heartbeat: self._on_heartbeat,
            Result: self._on_result,
            Failure: self._on_failure,
            AwardDeclined: self._on_declined,
            Verdict: self._on_verdict,
            Dispute: lambda *_: [],  # judged by the verification machine (later issue)
        }

    # ---- driver API ----

    def start(self, now_ms: int) -> list[Command]:
        self._job_step(ev.JobStarted(self.job_id))
        self._window_end_ms = now_ms + self.config.bid_window_ms
        self._window_pending = True
        return [Publish(JOBS_TOPIC, JobAnnounce(self.job_id, self.spec))]

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

    def assign_checker(self, task_id: bytes, checker: bytes, now_ms: int) -> list[Command]:
        """The driver chose ``checker`` for a :class:`RequestVerification`."""
        task = self._tasks.get(task_id)
        if task is None:
            raise IllegalTransition("no such task")
        if checker == task.worker:
            raise IllegalTransition("a worker cannot check its own result")
        if self.state is not JobState.OPEN:
            return []
        self._task_step(task, ev.CheckerAssigned(task_id))
        task.checkers.add(checker)
        request = VerifyRequest(
            self.job_id, task_id, task.frame, task.worker, task.result_digest,
            task.frame_cid, self.spec.scene_cid, task.fee_wei,
        )  # fmt: skip
        return [Send(checker, request)]

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
        for task in self._active.values():
            leased = task.state is TaskState.LEASED
            times.append(task.lease_deadline_ms if leased else task.verify_deadline_ms)
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
                out += self._charge(task, "lease expired", now_ms)
            elif task.state is TaskState.VERIFYING and now_ms >= task.verify_deadline_ms:
                self._task_step(task, ev.VerificationTimedOut(task.task_id))
                out.append(self._request_verification(task, now_ms))
        if self._window_pending and now_ms >= self._window_end_ms:
            self._window_pending = False
            out += self._award(now_ms)
        return out

    # ---- introspection ----

    def statistics(self) -> JobStatistics:
        counts = {state: 0 for state in FrameState}
        for frame in self._frames.values():
            counts[frame.state] += 1
        return JobStatistics(
            self.state, len(self._frames), counts[FrameState.PENDING],
            counts[FrameState.LEASED], counts[FrameState.VERIFYING],
            counts[FrameState.ACCEPTED], counts[FrameState.FAILED], self._awards,
            len(self._bidders), len(self._blocklist), sum(self._owed_wei.values()),
            self._fees_wei, self._reserved_wei, self.spec.budget_wei,
        )  # fmt: skip

    def frame_states(self) -> dict[int, FrameState]:
        return {number: frame.state for number, frame in self._frames.items()}

    def owed_wei_by_payee(self) -> dict[bytes, int]:
        return dict(self._owed_wei)

    def blocklisted(self) -> frozenset[bytes]:
        return frozenset(self._blocklist)

    def task_state(self, task_id: bytes) -> TaskState | None:
        task = self._tasks.get(task_id)
        return None if task is None else task.state

    # ---- message handlers ----

    def _on_bid(self, sender: bytes, bid: Bid, now_ms: int, _: bytes | None) -> list[Command]:
        if sender in self._blocklist or bid.price_wei_per_frame > self.spec.max_price_wei_per_frame:
            return []
        if sender not in self._bidders and len(self._bidders) >= self.config.max_bidders:
            return []
        slots = min(bid.frames_wanted, self.config.max_tasks_per_worker)
        self._bidders[sender] = _Bidder(
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
        task.lease_deadline_ms = now_ms + self.config.lease_ms
        return [Send(sender, LeaseExtended(self.job_id, task.task_id, task.lease_deadline_ms))]

    def _on_result(
        self, sender: bytes, result: Result, now_ms: int, digest: bytes | None
    ) -> list[Command]:
        task = self._held(sender, result.task_id, result.frame)
        digest = digest if digest is not None else result_digest_of(result)
        if task.state is TaskState.VERIFYING and digest != task.result_digest:
            raise IllegalMessage("a second, different result for one task", penalty=50)
        was = task.state
        if was is TaskState.LEASED and result.renderer_build != self.spec.renderer_build:
            self._task_step(task, ev.ResultInvalid(task.task_id))
            return self._charge(task, "wrong renderer build", now_ms)
        self._task_step(task, ev.ResultReceived(task.task_id))
        if was is not TaskState.LEASED:
            return []
        self._frame_step(task.frame, ev.FrameRendered(task.frame))
        task.result_digest, task.frame_cid = digest, result.frame_cid
        if self.spec.assurance is Assurance.NONE:
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
        self, sender: bytes, verdict: Verdict, now_ms: int, _: bytes | None
    ) -> list[Command]:
        task = self._tasks.get(verdict.task_id)
        if task is None or (verdict.worker, verdict.frame) != (task.worker, task.frame):
            raise IllegalMessage("a verdict about a task we do not know")
        if sender not in task.checkers:
            raise IllegalMessage("a verdict from a node we did not ask", penalty=50)
        if verdict.result_digest != task.result_digest:
            raise IllegalMessage("a verdict about another result")
        was = task.state
        event = ev.VerdictPassed if verdict.passed else ev.VerdictFailed
        self._task_step(task, event(task.task_id))
        if was is not TaskState.VERIFYING:
            return []
        task.fee_paid = True
        self._reserved_wei -= task.fee_wei
        self._fees_wei += task.fee_wei
        out: list[Command] = [CheckerFeeDue(self.job_id, task.task_id, sender, task.fee_wei)]
        if verdict.passed:
            return out + self._accept(task, now_ms)
        return out + self._charge(task, "result rejected by a checker", now_ms)

    # ---- decisions ----

    def _award(self, now_ms: int) -> list[Command]:
        if self.state is not JobState.OPEN or self._window_pending or not self._pending:
            return []
        leases: dict[bytes, int] = {}
        for task in self._active.values():
            if task.state is TaskState.LEASED:
                leases[task.worker] = leases.get(task.worker, 0) + 1
        order = sorted(self._pending)
        out: list[Command] = []
        bidders = sorted(self._bidders.values(), key=lambda b: (b.price_wei, b.eta_s, b.worker))
        for bidder in bidders:
            room = bidder.slots - leases.get(bidder.worker, 0)
            cost_wei = bidder.price_wei + self._fee_wei(bidder.price_wei)
            for frame in order:
                if room <= 0 or self._committed_wei() + cost_wei > self.spec.budget_wei:
                    break
                if (
                    frame in self._pending
                    and bidder.worker not in self._frames[frame].failed_workers
                ):
                    out.append(self._grant(bidder, frame, now_ms))
                    room -= 1
        return out

    def _grant(self, bidder: _Bidder, frame: int, now_ms: int) -> Send:
        self._awards += 1
        seed = b"pictor/task/v1\x00" + self.job_id + self._awards.to_bytes(8, "big")
        task = _Task(
            hashlib.sha256(seed).digest(), frame, bidder.worker, bidder.price_wei,
            self._fee_wei(bidder.price_wei), bidder.payment_address,
            now_ms + self.config.lease_ms,
        )  # fmt: skip
        self._tasks[task.task_id] = self._active[task.task_id] = task
        self._frame_step(frame, ev.FrameAwarded(frame))
        self._pending.discard(frame)
        self._reserved_wei += task.price_wei + task.fee_wei
        award = Award(
            self.job_id, task.task_id, frame, task.worker, task.price_wei,
            task.lease_deadline_ms, self.config.heartbeat_interval_ms,
        )  # fmt: skip
        return Send(task.worker, award)

    def _accept(self, task: _Task, now_ms: int) -> list[Command]:
        self._release(task)
        self._frame_step(task.frame, ev.FrameVerified(task.frame))
        owed = self._owed_wei.get(task.payee_address, 0) + task.price_wei
        self._owed_wei[task.payee_address] = owed
        return [
            FrameAccepted(
                self.job_id, task.frame, task.task_id, task.worker, task.frame_cid, task.price_wei
            ),
            RecordPayment(task.payee_address, owed, self.job_id),
            *self._after_change(now_ms),
        ]

    def _charge(self, task: _Task, reason: str, now_ms: int) -> list[Command]:
        """``task`` failed by its worker's fault: count it against frame and worker."""
        self._release(task)
        out: list[Command] = []
        frame = self._frames[task.frame]
        frame.failed_attempts += 1
        frame.failed_workers.add(task.worker)
        if frame.failed_attempts >= self.config.max_attempts_per_frame:
            self._frame_step(task.frame, ev.AttemptsExhausted(task.frame))
            out.append(FrameFailed(self.job_id, task.frame, f"{reason} (last attempt)"))
        else:
            self._frame_step(task.frame, ev.AttemptFailed(task.frame))
            self._pending.add(task.frame)
        failures = self._failures.get(task.worker, 0) + 1
        self._failures[task.worker] = failures
        if failures >= self.config.blocklist_after_failures and task.worker not in self._blocklist:
            self._blocklist.add(task.worker)
            self._bidders.pop(task.worker, None)
            out.append(WorkerBlocklisted(self.job_id, task.worker, failures))
        return out + self._after_change(now_ms)

    def _after_change(self, now_ms: int) -> list[Command]:
        if self._settled < len(self._frames):
            return self._award(now_ms)
        self._job_step(ev.FramesSettled(self.job_id))
        all_accepted = all(f.state is FrameState.ACCEPTED for f in self._frames.values())
        return self._settle(JobOutcome.COMPLETED if all_accepted else JobOutcome.PARTIAL)

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
            if frame.state not in _SETTLED:
                self._frame_step(number, ev.JobClosed(number))
                out.append(FrameFailed(self.job_id, number, reason))
        self._pending.clear()
        out.append(Publish(JOBS_TOPIC, JobCancelled(self.job_id, reason)))
        cancelled = isinstance(event, ev.JobCancelledLocally)
        return out + self._settle(JobOutcome.CANCELLED if cancelled else JobOutcome.EXPIRED)

    def _settle(self, outcome: JobOutcome) -> list[Command]:
        out: list[Command] = [JobFinished(self.job_id, outcome)]
        refund_wei = self.spec.budget_wei - sum(self._owed_wei.values()) - self._fees_wei
        if refund_wei > 0:
            not_before_ms = self.spec.deadline_ms + self.config.refund_grace_ms
            out.append(RefundDue(self.job_id, refund_wei, not_before_ms))
        return out

    # ---- bookkeeping ----

    def _request_verification(self, task: _Task, now_ms: int) -> RequestVerification:
        task.verify_deadline_ms = now_ms + self.config.verify_timeout_ms
        return RequestVerification(
            task.task_id, task.frame, task.worker, task.result_digest, task.frame_cid
        )

    def _held(self, sender: bytes, task_id: bytes, frame: int | None = None) -> _Task:
        task = self._tasks.get(task_id)
        if task is None or task.worker != sender:
            raise IllegalMessage("a message about a task the sender does not hold")
        if frame is not None and frame != task.frame:
            raise IllegalMessage("a message naming the wrong frame for its task")
        return task

    def _release(self, task: _Task) -> None:
        """``task`` left LEASED/VERIFYING: drop it from the live set and the reserve."""
        self._active.pop(task.task_id, None)
        self._reserved_wei -= task.price_wei + (0 if task.fee_paid else task.fee_wei)

    def _fee_wei(self, price_wei: int) -> int:
        if self.spec.assurance is Assurance.NONE:
            return 0
        return price_wei * self.spec.checker_fee_bps // 10_000

    def _committed_wei(self) -> int:
        return sum(self._owed_wei.values()) + self._fees_wei + self._reserved_wei

    def _job_step(self, event: object) -> None:
        self.state = next_state(JOB_TRANSITIONS, self.state, event)

    def _frame_step(self, number: int, event: object) -> None:
        frame = self._frames[number]
        frame.state = next_state(FRAME_TRANSITIONS, frame.state, event)
        self._settled += frame.state in _SETTLED

    def _task_step(self, task: _Task, event: object) -> None:
        task.state = next_state(TASK_TRANSITIONS, task.state, event)


_SETTLED = (FrameState.ACCEPTED, FrameState.FAILED)
__all__ = ["JobMachine", "JobStatistics", "result_digest_of"]
