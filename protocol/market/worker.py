"""The worker's task machine: bid, take awards, heartbeat, deliver, get paid.

Theory of operation
-------------------
One :class:`WorkerMachine` per node. A JobAnnounce whose renderer build it
runs and whose max price covers its ask (``min_price_wei_per_ru ×
ru_per_frame``) gets one Bid, sent straight to the requester: a standing offer
of ``slots`` concurrent frames at the ask — unless, by its measured benchmark
score (:mod:`protocol.cost`), a frame would end after the job's deadline. The
same test declines an award, with what the driver's probe render measured of
the scene (:meth:`scene_measured`); a scene the driver's preflight refused
declines every award of the job (:meth:`refuse_scene`). An Award for a job it bid on is
taken when a slot is free (:class:`StartRender`) and declined otherwise, so
the requester can give the frame to someone else at once; a "no free slot"
decline costs the bid, so the worker bids again once a slot frees up.

The driver checks that an award's pay is secured on chain before it renders,
and declines it through :meth:`decline` when it is not (``PayUnsecured``).
That too costs the bid, but the lane may only be late (our chain reading lags
the requester's funding, or our chain did not answer), so the worker bids again
after ``unsecured_rebid_ms``, doubling each time, at most ``unsecured_rebids``
times in a row (a frame of the job rendered resets the count): a requester that
never secures the pay costs a few chain reads, not a loop.

While a task renders, the machine's timer sends a Heartbeat every
``heartbeat_interval_ms`` the award asked for, and LeaseExtended answers move
the worker's copy of the lease deadline. If that deadline passes with no
extension (the requester is gone, or our heartbeats are lost) the task is
abandoned (:class:`CancelRender`): the requester has expired it too and
would ignore the result. The driver reports the render's end with
:meth:`render_finished` (→ Result) or :meth:`render_failed` (→ Failure).

A LeaseRevoked that names a verdict (``verdict_digest``) says a checker
rejected a result we submitted: SUBMITTED → REJECTED, and unless
``dispute_rejections`` is off the machine contests it at once with a
``Dispute`` quoting that digest (REJECTED → DISPUTED). No text is parsed.

Vouchers are cumulative per (job, payee): only a larger amount than the last
one is news (:class:`VoucherReceived`); its EIP-712 signature is the ledger's
to check. Messages only the job's requester may send (Award, LeaseExtended,
LeaseRevoked, Voucher, JobCancelled) from anyone else raise
``IllegalMessage``, as does an announce whose id is not its spec's hash.
Known jobs are forgotten ``job_memory_ms`` after their deadline.
"""

from __future__ import annotations

from dataclasses import dataclass

from protocol.cost import PERMILLE, finishes_in_time, frame_time_ms
from protocol.errors import IllegalMessage, IllegalTransition
from protocol.market import events as ev
from protocol.market.commands import CancelRender, Command, Send, StartRender, VoucherReceived
from protocol.market.config import WorkerConfig
from protocol.market.quote import ask_wei_per_frame
from protocol.market.tables import WORKER_TASK_TRANSITIONS, WorkerTaskState, next_state
from protocol.messages import (
    Award,
    AwardDeclined,
    Bid,
    DeclineReason,
    Dispute,
    Failure,
    FailureReason,
    Heartbeat,
    JobAnnounce,
    JobCancelled,
    JobSpec,
    LeaseExtended,
    LeaseRevoked,
    Message,
    Result,
    Voucher,
    check_announce,
)

# Results delivered that the job may still pay (a won dispute pays too).
_OWED_STATES = frozenset({WorkerTaskState.SUBMITTED, WorkerTaskState.DISPUTED})


@dataclass
class _Job:
    spec: JobSpec
    ask_wei: int
    cancelled: bool = False
    voucher_wei: int = 0
    rebid: bool = False  # bid again once a slot is free
    refused: str = ""  # why our preflight refused the job's scene: every award is declined
    complexity_permille: int = PERMILLE  # what our probe render measured of the scene
    unsecured: int = 0  # awards declined in a row because their pay was not secured
    rebid_at_ms: int | None = None  # when to bid again after such a decline


@dataclass
class _Task:
    task_id: bytes
    job_id: bytes
    frame: int
    requester: bytes
    price_wei: int
    state: WorkerTaskState
    lease_deadline_ms: int = 0
    heartbeat_interval_ms: int = 1
    next_heartbeat_ms: int = 0
    progress_permille: int = 0
    withdrawn: bool = False  # the requester revoked it (no verdict): it will not pay it


@dataclass(frozen=True)
class WorkerStatistics:
    jobs_known: int
    tasks_rendering: int
    tasks_submitted: int
    tasks_failed: int
    tasks_abandoned: int
    tasks_revoked: int
    awards_declined: int
    vouchers_wei: int
    tasks_disputed: int = 0


@dataclass(frozen=True)
class RenderingTask:
    """A frame the worker is rendering now (for a dashboard: ``rendering_tasks``)."""

    task_id: bytes
    job_id: bytes
    frame: int
    price_wei: int
    progress_permille: int
    lease_deadline_ms: int


class WorkerMachine:
    """The worker's side of the market (see the module docstring)."""

    def __init__(
        self, node_id: bytes, payment_address: bytes, config: WorkerConfig, now_ms: int
    ) -> None:
        if len(node_id) != 32 or len(payment_address) != 20:
            raise IllegalTransition("node_id is 32 bytes and payment_address 20")
        self.node_id = node_id
        self.payment_address = payment_address
        self.config = config
        self.created_ms = now_ms
        self._jobs: dict[bytes, _Job] = {}
        self._tasks: dict[bytes, _Task] = {}
        self._live: dict[bytes, _Task] = {}  # the RENDERING ones

    # ---- network input ----

    def receive(self, sender: bytes, message: Message, now_ms: int) -> list[Command]:
        if isinstance(message, JobAnnounce):
            return self._on_announce(sender, message, now_ms)
        if isinstance(message, Award):
            return self._on_award(sender, message, now_ms)
        if isinstance(message, LeaseExtended):
            task = self._from_requester(sender, message.job_id, message.task_id)
            if task is not None and self._step(task, ev.LeaseRenewed(task.task_id)):
                task.lease_deadline_ms = max(task.lease_deadline_ms, message.lease_deadline_ms)
            return []
        if isinstance(message, LeaseRevoked):
            task = self._from_requester(sender, message.job_id, message.task_id)
            if task is None:
                return []
            if message.verdict_digest is not None:
                return self._on_rejected(task, message.verdict_digest)
            return self._withdraw(task) + self._rebids(now_ms)
        if isinstance(message, Voucher):
            return self._on_voucher(sender, message)
        if isinstance(message, JobCancelled):
            return self._on_cancelled(sender, message) + self._rebids(now_ms)
        raise IllegalMessage(f"a worker does not take {type(message).__name__}")

    def _on_announce(self, sender: bytes, announce: JobAnnounce, now_ms: int) -> list[Command]:
        spec = announce.spec
        check_announce(announce, sender)
        self._forget_old_jobs(now_ms)
        ask_wei = ask_wei_per_frame(self.config.min_price_wei_per_ru, spec.ru_per_frame)
        if (
            announce.job_id in self._jobs
            or spec.deadline_ms <= now_ms
            or spec.renderer_build not in self.config.renderer_builds
            or ask_wei > spec.max_price_wei_per_frame
            or len(self._jobs) >= self.config.max_known_jobs
            or self._late(spec, PERMILLE, now_ms)
        ):
            return []
        self._jobs[announce.job_id] = job = _Job(spec, ask_wei)
        return [self._bid(announce.job_id, job)]

    def _frame_ms(self, spec: JobSpec, complexity_permille: int) -> int | None:
        """How long a frame of the job takes us; None when our score is not measured."""
        score = self.config.score_ru_per_hour
        return frame_time_ms(spec.ru_per_frame, score, complexity_permille) if score else None

    def _late(self, spec: JobSpec, complexity_permille: int, now_ms: int) -> str:
        """Why a frame started now would not end before the deadline ("" when it would)."""
        frame_ms = self._frame_ms(spec, complexity_permille)
        if frame_ms is None or finishes_in_time(now_ms, spec.deadline_ms, frame_ms):
            return ""
        left_s = max(0, spec.deadline_ms - now_ms) // 1000
        return f"a frame of {spec.ru_per_frame} RU takes about {-(-frame_ms // 1000)} s here, {left_s} s left"

    def _bid(self, job_id: bytes, job: _Job) -> Send:
        eta_s = -(-job.spec.ru_per_frame * 3600 // (self.config.score_ru_per_hour or 3600))
        slots = min(self.config.slots, len(job.spec.frames))
        bid = Bid(job_id, slots, job.ask_wei, eta_s, self.payment_address)
        return Send(job.spec.requester, bid)

    def _on_award(self, sender: bytes, award: Award, now_ms: int) -> list[Command]:
        job = self._jobs.get(award.job_id)
        if job is None or sender != job.spec.requester:
            raise IllegalMessage("an award for a job we did not bid on")
        if award.worker != self.node_id or award.frame not in job.spec.frames:
            raise IllegalMessage("an award naming another worker or a frame not in the job")
        known = self._tasks.get(award.task_id)
        if known is not None:
            if (known.job_id, known.frame) != (award.job_id, award.frame):
                raise IllegalMessage("one task id for two different awards", penalty=50)
            return []  # the same award delivered twice
        reason, detail = self._decline_reason(job, award, now_ms)
        task = _Task(award.task_id, award.job_id, award.frame, sender, award.price_wei,
                     WorkerTaskState.DECLINED if reason else WorkerTaskState.RENDERING)  # fmt: skip
        self._tasks[task.task_id] = task
        if reason is not None:
            # The requester drops our bid on any decline; renew it once a slot is free.
            job.rebid = reason is DeclineReason.NO_FREE_SLOT
            return [Send(sender, AwardDeclined(award.job_id, award.task_id, reason.text(detail)))]
        self._live[task.task_id] = task
        task.lease_deadline_ms = award.lease_deadline_ms
        task.heartbeat_interval_ms = max(1, award.heartbeat_interval_ms)
        task.next_heartbeat_ms = now_ms + task.heartbeat_interval_ms
        return [StartRender(task.task_id, award.job_id, award.frame, job.spec)]

    def _decline_reason(
        self, job: _Job, award: Award, now_ms: int
    ) -> tuple[DeclineReason | None, str]:
        if job.refused:
            return DeclineReason.SCENE_REFUSED, job.refused
        if job.cancelled:
            return DeclineReason.JOB_CANCELLED, ""
        if award.price_wei < job.ask_wei:
            return DeclineReason.PRICE_BELOW_ASK, ""
        if award.lease_deadline_ms <= now_ms:
            return DeclineReason.LEASE_EXPIRED, ""
        if late := self._late(job.spec, job.complexity_permille, now_ms):
            return DeclineReason.TOO_SLOW, late
        if self._rendering() >= self.config.slots:
            return DeclineReason.NO_FREE_SLOT, ""
        return None, ""

    def _on_rejected(self, task: _Task, verdict_digest: bytes) -> list[Command]:
        """A checker rejected our result: contest it (if configured), once.

        Only a SUBMITTED task can be rejected (the table refuses a rejection of a
        task we never delivered, as the requester's peer fault); the requester
        decides by the majority of more checkers and pays if we win."""
        was = task.state
        self._step(task, ev.ResultRejected(task.task_id))  # raises unless SUBMITTED or stale
        if was is not WorkerTaskState.SUBMITTED or not self.config.dispute_rejections:
            return []
        self._step(task, ev.DisputeSent(task.task_id))
        dispute = Dispute(task.job_id, task.task_id, verdict_digest, "rendered as specified")
        return [Send(task.requester, dispute)]

    def _on_voucher(self, sender: bytes, voucher: Voucher) -> list[Command]:
        job = self._jobs.get(voucher.job_id)
        if job is None or sender != job.spec.requester:
            raise IllegalMessage("a voucher from someone other than the job's requester")
        if voucher.payee != self.payment_address:
            raise IllegalMessage("a voucher for another payee")
        if voucher.cumulative_wei <= job.voucher_wei:
            return []  # an older or repeated voucher: the newest supersedes it
        job.voucher_wei = voucher.cumulative_wei
        return [VoucherReceived(voucher)]

    def _on_cancelled(self, sender: bytes, cancelled: JobCancelled) -> list[Command]:
        job = self._jobs.get(cancelled.job_id)
        if job is None:
            return []  # gossip about a job we never cared about
        if sender != job.spec.requester:
            raise IllegalMessage("a job cancelled by someone other than its requester")
        job.cancelled = True
        out: list[Command] = []
        for task in list(self._live.values()):
            if task.job_id == cancelled.job_id:
                out += self._withdraw(task)
        return out

    # ---- renderer input ----

    def render_progress(self, task_id: bytes, permille: int, now_ms: int) -> list[Command]:
        task = self._local(task_id)
        if self._step(task, ev.ProgressReported(task_id)):
            task.progress_permille = max(0, min(1000, permille))
        return []

    def render_finished(
        self, task_id: bytes, frame_cid: str, frame_size_bytes: int, render_time_ms: int,
        renderer_build: str, device_class: str, now_ms: int, *, result_sig: bytes | None = None,
    ) -> list[Command]:  # fmt: skip
        """``result_sig``: the driver's payment-key signature of the Result (an escrowed
        job's requester refuses one without it; see ``Result``)."""
        task = self._local(task_id)
        if not self._step(task, ev.RenderFinished(task_id)):
            return []
        if (job := self._jobs.get(task.job_id)) is not None:
            job.unsecured = 0  # its pay was secured: later declines start counting afresh
        result = Result(
            task.job_id, task_id, task.frame, frame_cid, frame_size_bytes, render_time_ms,
            renderer_build, device_class, result_sig,
        )  # fmt: skip
        return [Send(task.requester, result), *self._rebids(now_ms)]

    def render_failed(
        self, task_id: bytes, reason: FailureReason, detail: str, now_ms: int
    ) -> list[Command]:
        task = self._local(task_id)
        if not self._step(task, ev.RenderFailed(task_id)):
            return []
        failure = Failure(task.job_id, task_id, task.frame, reason, detail)
        return [Send(task.requester, failure), *self._rebids(now_ms)]

    def decline(self, task_id: bytes, reason: str, now_ms: int) -> list[Command]:
        """The driver will not render an award it took (its pay is not secured on
        chain): the requester is told (``AwardDeclined``, no failure held against us),
        and a bid for the job goes out again later (see the module docstring)."""
        task = self._local(task_id)
        if not self._step(task, ev.PayUnsecured(task_id)):
            return []
        job = self._jobs.get(task.job_id)
        if job is not None and job.unsecured < self.config.unsecured_rebids:
            job.rebid_at_ms = now_ms + self.config.unsecured_rebid_ms * 2**job.unsecured
            job.unsecured += 1
        declined = AwardDeclined(task.job_id, task_id, DeclineReason.PAY_UNSECURED.text(reason))
        return [CancelRender(task_id), Send(task.requester, declined), *self._rebids(now_ms)]

    def refuse_scene(self, task_id: bytes, detail: str, now_ms: int) -> list[Command]:
        """The driver's preflight refused the scene of this award's job (see
        ``node.roles.scene_gate``): this award and every live or later one of the job is
        declined (``scene refused: <detail>``), and the worker never bids on it again."""
        task = self._local(task_id)
        job = self._jobs.get(task.job_id)
        if job is not None:
            job.refused, job.rebid, job.rebid_at_ms = detail[:160] or "refused", False, None
        out: list[Command] = []
        text = DeclineReason.SCENE_REFUSED.text(detail)
        for live in [t for t in self._live.values() if t.job_id == task.job_id]:
            self._step(live, ev.SceneRefused(live.task_id))
            out += [CancelRender(live.task_id),
                    Send(live.requester, AwardDeclined(live.job_id, live.task_id, text))]  # fmt: skip
        return out + self._rebids(now_ms) if out else out

    def scene_measured(
        self, task_id: bytes, complexity_permille: int, now_ms: int
    ) -> list[Command]:
        """The driver's probe render measured the scene of this award's job (see
        ``protocol.cost.complexity_permille``). Kept for the job's later awards; when this
        frame would now end after the deadline it is declined (``cannot finish before the
        deadline: ...``), and no bid is renewed for the job."""
        task = self._local(task_id)
        job = self._jobs.get(task.job_id)
        if job is None or task.state is not WorkerTaskState.RENDERING:
            return []
        job.complexity_permille = max(1, complexity_permille)
        late = self._late(job.spec, job.complexity_permille, now_ms)
        if not late:
            return []
        job.rebid, job.rebid_at_ms = False, None
        self._step(task, ev.FrameTooSlow(task_id))
        declined = AwardDeclined(task.job_id, task_id, DeclineReason.TOO_SLOW.text(late))
        return [CancelRender(task_id), Send(task.requester, declined), *self._rebids(now_ms)]

    def in_flight_wei(self, job_id: bytes) -> int:
        """The prices of this job's awards we are rendering now."""
        return sum(t.price_wei for t in self._live.values() if t.job_id == job_id)

    def pay_needed_wei(self, job_id: bytes) -> int:
        """What this job owes us in all once every frame we delivered (and did not lose
        to a standing rejection) and every frame we are rendering is paid: what its
        lane must hold before we render another. Vouchers received plus renders in
        flight missed results delivered and still waiting for their voucher, so a
        worker started frames its lane no longer covered (the simulator's clawback
        scenario: an honest worker lost a frame). A result stays SUBMITTED once paid,
        so the delivered sum covers the vouchers too, but never less than them. A
        result whose lease the requester revoked without a verdict (it crossed the
        revocation, or the worker was blocklisted meanwhile) is not counted: its frame
        is awarded again and paid once (counting it stalled a lone worker's job in the
        e2e dispute test)."""
        delivered = sum(t.price_wei for t in self._tasks.values() if t.job_id == job_id
                        and t.state in _OWED_STATES and not t.withdrawn)  # fmt: skip
        job = self._jobs.get(job_id)
        paid = 0 if job is None else job.voucher_wei
        return max(delivered, paid) + self.in_flight_wei(job_id)

    def knows_job(self, job_id: bytes) -> bool:
        return job_id in self._jobs

    def job_spec(self, job_id: bytes) -> JobSpec | None:
        """The spec of a job we know (bid on), or None."""
        job = self._jobs.get(job_id)
        return None if job is None else job.spec

    # ---- time ----

    def get_timer(self) -> int | None:
        times = [
            min(task.next_heartbeat_ms, task.lease_deadline_ms) for task in self._live.values()
        ]
        times += [j.rebid_at_ms for j in self._jobs.values() if j.rebid_at_ms is not None]
        return min(times, default=None)

    def handle_timer(self, now_ms: int) -> list[Command]:
        out: list[Command] = []
        for task in list(self._live.values()):
            if now_ms >= task.lease_deadline_ms:
                self._step(task, ev.LeaseLapsed(task.task_id))
                out.append(CancelRender(task.task_id))
            elif now_ms >= task.next_heartbeat_ms:
                self._step(task, ev.HeartbeatDue(task.task_id))
                task.next_heartbeat_ms = now_ms + task.heartbeat_interval_ms
                beat = Heartbeat(task.job_id, task.task_id, task.progress_permille)
                out.append(Send(task.requester, beat))
        return out + self._rebids(now_ms)

    # ---- introspection ----

    def statistics(self) -> WorkerStatistics:
        counts = {state: 0 for state in WorkerTaskState}
        for task in self._tasks.values():
            counts[task.state] += 1
        return WorkerStatistics(
            len(self._jobs), counts[WorkerTaskState.RENDERING],
            counts[WorkerTaskState.SUBMITTED], counts[WorkerTaskState.FAILED],
            counts[WorkerTaskState.ABANDONED], counts[WorkerTaskState.REVOKED],
            counts[WorkerTaskState.DECLINED], sum(j.voucher_wei for j in self._jobs.values()),
            counts[WorkerTaskState.DISPUTED],
        )  # fmt: skip

    def task_states(self) -> dict[bytes, WorkerTaskState]:
        return {task_id: task.state for task_id, task in self._tasks.items()}

    def rendering_tasks(self) -> list[RenderingTask]:
        return [RenderingTask(t.task_id, t.job_id, t.frame, t.price_wei, t.progress_permille,
                              t.lease_deadline_ms) for t in self._live.values()]  # fmt: skip

    def voucher_wei(self, job_id: bytes) -> int:
        job = self._jobs.get(job_id)
        return 0 if job is None else job.voucher_wei

    # ---- helpers ----

    def _rebids(self, now_ms: int) -> list[Command]:
        """Renew the bids a decline cost us: once a slot is free ("no free slot"), or
        once the wait after an unsecured award is over and a slot is free."""
        free = self._rendering() < self.config.slots
        out: list[Command] = []
        for job_id, job in self._jobs.items():
            if job.cancelled or job.refused or now_ms >= job.spec.deadline_ms:
                job.rebid, job.rebid_at_ms = False, None
                continue
            if job.rebid_at_ms is not None and now_ms >= job.rebid_at_ms:
                job.rebid, job.rebid_at_ms = True, None
            if job.rebid and free:
                job.rebid = False
                out.append(self._bid(job_id, job))
        return out

    def _withdraw(self, task: _Task) -> list[Command]:
        task.withdrawn = True
        if self._step(task, ev.LeaseWithdrawn(task.task_id)):
            return [CancelRender(task.task_id)]
        return []

    def _step(self, task: _Task, event: object) -> bool:
        """Apply ``event``; True when the task was rendering (the event is live)."""
        was = task.state
        task.state = next_state(WORKER_TASK_TRANSITIONS, task.state, event)
        if task.state is not WorkerTaskState.RENDERING:
            self._live.pop(task.task_id, None)
        return was is WorkerTaskState.RENDERING

    def _from_requester(self, sender: bytes, job_id: bytes, task_id: bytes) -> _Task | None:
        """The task a lease message is about; None if its Award never reached us."""
        task = self._tasks.get(task_id)
        if task is not None and (task.requester, task.job_id) == (sender, job_id):
            return task
        job = self._jobs.get(job_id)
        if task is None and job is not None and job.spec.requester == sender:
            return None  # the requester's lease ran out on an award we never got
        raise IllegalMessage("a lease message about a task we do not hold from the sender")

    def _local(self, task_id: bytes) -> _Task:
        task = self._tasks.get(task_id)
        if task is None:
            raise IllegalTransition("no such task")
        return task

    def _rendering(self) -> int:
        return len(self._live)

    def _forget_old_jobs(self, now_ms: int) -> None:
        for job_id, job in list(self._jobs.items()):
            if now_ms >= job.spec.deadline_ms + self.config.job_memory_ms:
                del self._jobs[job_id]
                for task_id in [t.task_id for t in self._tasks.values() if t.job_id == job_id]:
                    del self._tasks[task_id]
                    self._live.pop(task_id, None)
