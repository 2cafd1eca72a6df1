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
is checked (renderer build; for an escrowed job, given a ``result_signer``,
its ``result_sig`` must recover to the payee address the worker bid with: a
result no fraud claim could name is a failed attempt), then verified as the check plan says
(:func:`protocol.verification.plan_frame_check`, from the job's assurance, the
worker's reputation and a draw from the requester's ``check_secret``): a
result the plan skips is accepted at once, otherwise the driver gets
:class:`RequestVerification`,
picks a checker and calls :meth:`assign_checker`; only a Verdict from an
assigned checker about the exact result (envelope digest) counts; the
checker is told the plan's ``k`` (``VerifyRequest.tiles``); for an escrowed job,
given a ``pass_signer``, a passing verdict must carry the checker's signed Pass
(:mod:`protocol.signed_pass`). Reputation comes
in through :meth:`set_worker_record` (the driver's ``ReputationBook``) and goes
out as :class:`WorkerJudged` (what a verdict, failure or expiry showed). Accepted
frames raise the payee's cumulative amount (:class:`RecordPayment`; a checker's
fee raises its address's amount the same way: the machine's books are the only
ones). Pay is
secured before work: an award round, a checker assignment (when the driver
names the checker's payment address) or a dispute that leaves a payee's lane
short emits one :class:`FundLanes` ahead of the messages it secures, sized in
chunks by :mod:`protocol.market.lanes`. State and bookkeeping live in
:mod:`protocol.market.jobbook`, the award policy in
:mod:`protocol.market.awarding`.

Retries and blocklist (per job):

* a frame gets ``max_attempts_per_frame`` = 3 failed attempts, each by a
  *different* worker, then it fails; a failure of a worker on trial frames
  (unproven: ``MarketConfig.trial_leases``, protocol.capacity) costs the frame
  no attempt, since fresh identities cost nothing and would fail any frame in
  three tries (the worker is charged as usual);
* a worker is blocklisted after ``blocklist_after_failures`` = 3 soft failures
  (Failure messages, expired leases, results from the wrong renderer build),
  or after ``blocklist_after_rejections`` = 1 result a checker rejected;
* blocklisting revokes the worker's live leases and drops its results still
  waiting for a verdict (those frames go back to pending without losing an
  attempt): it gets nothing more from this job and is trusted with nothing.

A rejected worker may dispute the verdict (the ``LeaseRevoked`` telling it of
the rejection names it in ``verdict_digest``); checker assignment, verdicts and
disputes are in :mod:`protocol.market.verifying`.

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

from collections.abc import Callable, Iterable
from typing import Any

from protocol.errors import IllegalMessage, IllegalTransition
from protocol.market import events as ev
from protocol.market.awarding import Bidder, plan_awards
from protocol.market.commands import (
    Command,
    FrameFailed,
    JobOutcome,
    Publish,
    Send,
    WorkerBlocklisted,
    WorkerJudged,
)
from protocol.market.config import MarketConfig
from protocol.market.jobbook import SETTLED
from protocol.market.plants import PlantDesk
from protocol.market.records import JobStatistics, TaskRecord, result_digest_of
from protocol.market.tables import FrameState, JobState, TaskState
from protocol.market.verifying import VerifyDesk
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
)
from protocol.reputation import Judgement
from protocol.signed_pass import PassSigner
from protocol.topics import JOBS_TOPIC
from protocol.verification import DEFAULT_POLICY, VerificationPolicy

UNVERIFIABLE = "result unverifiable"  # LeaseRevoked.reason of an abandoned result (_abandon)


class JobMachine(PlantDesk, VerifyDesk):
    """The requester's side of one job (see the module docstring)."""

    def __init__(
        self, job_id: bytes, spec: JobSpec, config: MarketConfig, now_ms: int,
        *, check_secret: bytes | None = None, verification: VerificationPolicy = DEFAULT_POLICY,
        result_signer: Callable[[Result], bytes | None] | None = None,
        pass_signer: PassSigner | None = None,
    ) -> None:  # fmt: skip
        super().__init__(job_id, spec, config, now_ms, check_secret, verification)
        # Recovers a Result's result_sig to a payment address (the driver's crypto:
        # ledger.fraud.result_signer); None leaves results of this job unsigned-checked.
        self._result_signer = result_signer
        # The same for a passing Verdict's pass_sig (ledger.fraud.pass_signer: a pass of
        # an escrowed job must be the checker's signed, claimable one, protocol.signed_pass)
        self._pass_signer = pass_signer
        self._plants_init()
        self._handlers: dict[type, Callable[[bytes, Any, int, bytes | None], list[Command]]] = {
            Bid: self._on_bid,
            Heartbeat: self._on_heartbeat,
            Result: self._on_result,
            Failure: self._on_failure,
            AwardDeclined: self._on_declined,
            Verdict: self._on_verdict,
            Dispute: self._on_dispute,
        }

    # ---- driver API ----

    def start(self, now_ms: int) -> list[Command]:
        self._unsettle()
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
        out = handler(sender, message, now_ms, envelope_digest)
        if isinstance(message, Verdict):  # taken (a refused one raised: nothing changed)
            self._answered(message.task_id, sender)
        return out

    def cancel(self, now_ms: int) -> list[Command]:
        self._unsettle()
        if self.state is JobState.CREATED:
            self._job_step(ev.JobCancelledLocally(self.job_id))
            return self._settle(JobOutcome.CANCELLED)
        return self._close(ev.JobCancelledLocally(self.job_id), "cancelled by the requester")

    def stake_confirmed(
        self, address: bytes, stake_wei: int, lanes_elsewhere: int, now_ms: int
    ) -> list[Command]:
        """A chain-confirmed stake (and the other jobs it backs) read after the bid it
        decides (``set_stake``): the awards it allows go out now. Without this a stake read
        late (the chain did not answer when the bid came) waited for another bid, and a
        bid stands: the job could stall to its deadline (review of stop 43). Only a
        standing bid's address plans awards (a checker's stake decides none)."""
        unchanged = self.stake_reading(address) == (stake_wei, lanes_elsewhere)
        self.set_stake(address, stake_wei, lanes_elsewhere)
        if unchanged or address not in self.bidder_addresses():
            return []
        return self._award(now_ms)

    def capacity_judged(
        self, worker: bytes, score_ru_per_hour: int, passed: bool, now_ms: int
    ) -> list[Command]:
        """A capacity challenge of ``worker`` was judged (``set_capacity_proof``): the
        awards it changes go out now (a proven bidder leaves its trial; a caught one,
        ``passed`` False, gets no award from now on)."""
        self.set_capacity_proof(worker, score_ru_per_hour, passed)
        return self._award(now_ms)

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
        times += self._plant_deadlines() + self._orphan_deadlines() + self._dispute_room_ends()
        times += self._late_check_deadlines()
        return min(times)

    def handle_timer(self, now_ms: int) -> list[Command]:
        if self.state is not JobState.OPEN:
            return []
        frames_settled = self._settled == len(self._frames)
        if now_ms >= self.spec.deadline_ms and not frames_settled:
            return self._close(ev.DeadlinePassed(self.job_id), "deadline passed")
        past = now_ms >= self.spec.deadline_ms
        self._late_check_timeouts(now_ms)
        self._asked_timeouts(now_ms)
        expired = self._plant_timeouts(now_ms, everything=past)
        if self._orphan_timeouts(now_ms, everything=past) or expired:
            if frames_settled:  # the job waited only for its plants and orphaned checks
                return self._after_change(now_ms)
        out: list[Command] = []
        for task in list(self._active.values()):
            if self.state is not JobState.OPEN:
                break
            if task.state is TaskState.LEASED and now_ms >= task.lease_deadline_ms:
                self._task_step(task, ev.LeaseExpired(task.task_id))
                out.append(Send(task.worker, LeaseRevoked(self.job_id, task.task_id, "expired")))
                out += self._charge(task, "lease expired", now_ms, timed_out=True)
            elif task.state is TaskState.VERIFYING and now_ms >= task.verify_deadline_ms:
                if task.verify_asks >= self.config.verify_attempts:
                    out += self._abandon(task, now_ms)
                else:
                    self._task_step(task, ev.VerificationTimedOut(task.task_id))
                    out.append(self._request_verification(task, now_ms))
        for task in list(self._disputes.values()):
            if self.state is JobState.OPEN and (now_ms >= task.verify_deadline_ms or past):
                # (past the deadline only a job whose frames are all settled is still
                # open: it waited for this dispute, and waits no more)
                out += self._resolve(task, False, "no majority before the timeout", now_ms)
        if self._dispute_room_timeouts(now_ms) and self.state is JobState.OPEN:
            # the held room is free for the frames again, or the job waited for it
            out += self._after_change(now_ms)
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
        self._touch((sender,))
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
        if was is TaskState.LEASED and (problem := self._result_problem(task, result)):
            self._task_step(task, ev.ResultInvalid(task.task_id))
            # Tell the worker (no verdict: nothing to dispute): it would count the
            # result as owed and decline every later award as unpaid for, while its
            # lane holds the refused attempt's price and the award plan asks it first
            # (awarding._Walk): a job with one such worker stalled.
            revoked = LeaseRevoked(self.job_id, task.task_id, f"result refused: {problem}")
            return [Send(task.worker, revoked), *self._charge(task, problem, now_ms)]
        self._task_step(task, ev.ResultReceived(task.task_id))
        if was is not TaskState.LEASED:
            return []
        self._frame_step(task.frame, ev.FrameRendered(task.frame))
        task.result, task.result_digest, task.frame_cid = result, digest, result.frame_cid
        task.tiles = self._plan_tiles(task, now_ms)
        task.checks_needed = self.checkers_needed(task.worker, now_ms, task.payee_address)
        if task.tiles == 0:  # the check plan skips it (or the job asks for no checks)
            self._task_step(task, ev.VerificationWaived(task.task_id))
            return self._accept(task, now_ms)
        verify = self._request_verification(task, now_ms)
        return [*self._maybe_plant(task), verify, *self._award(now_ms)]

    def _result_problem(self, task: TaskRecord, result: Result) -> str:
        """Why ``result`` cannot be taken as delivered ("" when it can)."""
        if result.renderer_build != self.spec.renderer_build:
            return "wrong renderer build"
        if self._result_signer is not None and self.spec.escrow is not None:
            # Only a result signed by the payee's own key can back a fraud claim (the
            # contract's claim_fraud): without one, a cheat could never be slashed.
            if self._result_signer(result) != task.payee_address:
                return "result not signed by the worker's payment key"
        return ""

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

    def result_unfetchable(self, task_id: bytes, now_ms: int) -> list[Command]:
        """The driver could not fetch ``task_id``'s frame from its worker, which is no
        longer connected: nobody can check it, so it is abandoned now, as after
        ``verify_attempts`` unanswered asks (no blame, the frame back to pending), not
        ten minutes later (a worker killed after it delivered stalled its job: the e2e
        kill test timed out). Only a result still waiting for its check."""
        task = self._tasks.get(task_id)
        if self.state is not JobState.OPEN or task is None or task.state is not TaskState.VERIFYING:
            return []
        return self._abandon(task, now_ms)

    def _abandon(self, task: TaskRecord, now_ms: int) -> list[Command]:
        """No checker judged the result in ``verify_attempts`` asks: most often its worker
        is gone and nobody can fetch the frame (or every checker is slow). The frame goes
        back to pending without losing an attempt and nobody is blamed: silence does not
        say whose fault it is (a worker that is gone does not bid again)."""
        self._task_step(task, ev.VerificationAbandoned(task.task_id))
        self._release(task)
        self._frame_step(task.frame, ev.AttemptReturned(task.frame))
        self._pending.add(task.frame)
        return [Send(task.worker, LeaseRevoked(self.job_id, task.task_id, UNVERIFIABLE)),
                *self._after_change(now_ms)]  # fmt: skip

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
        slack = self._lanes.slack(needs)
        free_wei, reserve_wei = self._award_budget_wei(needs, slack)

        bidders, trial, trial_room = self._walk(leases, free_wei, reserve_wei, slack, now_ms)
        self._touched.clear()
        plan = plan_awards(
            bidders, self._pending, failed, leases, free_wei, self._award_fees_wei, slack,
            self._award_weights([b.worker for b in bidders], now_ms), trial, trial_room,
            reserve_wei, {b.worker for b in bidders if not self._failures.get(b.worker)},
        )  # fmt: skip
        sends: list[Command] = [self._grant(bidder, frame, now_ms) for bidder, frame in plan]
        out: list[Command] = []
        if sends:
            # One FundLanes per round, before its awards: each awarded worker's lane is
            # topped up, when short, by its share of the frames still pending.
            share = -(-len(self._pending) // max(1, len(self._bidders)))
            chunks = {b.payment_address: b.price_wei * share for b, _ in plan}
            # (``_fund``'s spare leaves the checks still to come their fees: _fees_ahead_wei)
            out = [*self._fund(chunks), *sends]
            for bidder, _ in plan:
                leases[bidder.worker] = leases.get(bidder.worker, 0) + 1
            trial_room -= sum(bidder.worker in trial for bidder, _ in plan)
            needs = self._lane_needs()
            slack = self._lanes.slack(needs)
            free_wei, reserve_wei = self._award_budget_wei(needs, slack)
        self._mark_settled(leases, free_wei, reserve_wei, slack, trial_room)
        return out

    def _award_budget_wei(
        self, needs: dict[bytes, int], slack: dict[bytes, int]
    ) -> tuple[int, int]:
        """What new money awards may spend, and the reserve only awards their bidders'
        lanes pay the price of may also take for their fees: the fees of the frames
        whose prices sit in workers' lanes already (``slack``, at each address's latest
        award's price, ``_last_award``; not a blocklisted worker's, nor a checker's). An
        award declined for want of a free slot leaves its price in its decliner's lane,
        which bids again later; without
        the reserve, new awards spent the fees such a frame needs, and jobs in
        ``cheaters_20pct`` at the node's escrow expired with 1-2 frames pending, no
        free budget and their prices in 14-28 lanes of bidders."""
        free_wei = self._award_free_wei(needs)
        if not any(slack.values()):
            return free_wei, 0
        checkers = set(self._checker_addresses.values())
        priced = 0
        for address, wei in slack.items():
            worker, price_wei = self._last_award.get(address, (b"", 0))
            if wei and price_wei and worker not in self._blocklist and address not in checkers:
                priced += wei // price_wei
        cap_wei = self.spec.max_price_wei_per_frame
        reserve_wei = min(len(self._pending), priced) * self._award_fees_wei(cap_wei)
        reserve_wei = max(0, min(reserve_wei, free_wei))
        return free_wei - reserve_wei, reserve_wei

    def _award_free_wei(self, needs: dict[bytes, int]) -> int:
        """What awards and their lanes' advance chunks may spend: the free budget less
        the fees of the checks open results' plans still want (``_checks_owed_wei``).
        Without it, with more frames than worker slots, the awards' chunks took ``high``'s
        second-check fees and 6 of 10 frames were accepted on one pass (review, stop 34)."""
        return self._free_wei(needs) - self._checks_owed_wei()

    def _walk(
        self, leases: dict[bytes, int], free_wei: int, reserve_wei: int, slack: dict[bytes, int],
        now_ms: int,
    ) -> tuple[list[Bidder], set[bytes], int]:  # fmt: skip
        """The bidders the plan must walk, those of them on trial, and the trial room.

        Settled (jobbook.PlanMark): after a plan every bidder it walked is blocked, so
        only the touched bidders and those whose leases ended or lanes' slack grew since
        can take a frame, unless something every bidder shares loosened. The trial room
        changes only with its holders' leases and standing: then they are counted again."""
        mark = self._mark
        if self._quiet and mark is not None and mark.holds(self._pending, free_wei, reserve_wei):
            self._touched.update(w for w, n in mark.leases.items() if leases.get(w, 0) < n)
            if grown := mark.slack_grown(slack):
                self._touched.update(
                    b.worker for b in self._bidders.values() if b.payment_address in grown
                )
            bidders = self._eligible(self._touched, now_ms)
            if self._touched.isdisjoint(mark.leases):
                return bidders, self._unproven(bidders), mark.trial_room
            holders = self._eligible([w for w in leases if w not in self._touched], now_ms)
            trial, trial_room = self._trial(bidders + holders, leases)
            if trial_room <= mark.trial_room:
                return bidders, trial, trial_room
            # a trial lease ended: any unproven bidder may take it
        bidders = self._eligible(self._bidders, now_ms)
        return bidders, *self._trial(bidders, leases)

    def _eligible(self, workers: Iterable[bytes], now_ms: int) -> list[Bidder]:
        """The standing bids of ``workers`` that may be awarded, as the plan ranks them."""
        return [self._capped(b) for w in workers if (b := self._bidders.get(w)) is not None
                and not self._offender(w, now_ms) and self.stake_qualifies(b.payment_address)
                and not self.caught(w)]  # fmt: skip

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

    def _charge(
        self, task: TaskRecord, reason: str, now_ms: int, *, rejected: bool = False,
        timed_out: bool = False,
    ) -> list[Command]:  # fmt: skip
        """``task`` failed by its worker's fault: count it against frame and worker."""
        self._release(task)
        if rejected:  # before the frame is awarded again
            self._hold_dispute_room(task)
        judgement = Judgement.REJECTED if rejected else Judgement.FAILED
        out: list[Command] = [WorkerJudged(self.job_id, task.worker,
                                           Judgement.TIMED_OUT if timed_out else judgement)]  # fmt: skip
        frame = self._frames[task.frame]
        # a fresh identity's failure says nothing about the frame (protocol.capacity)
        task.attempt_charged = not self._on_trial(task.worker, task.payee_address)
        frame.failed_attempts += task.attempt_charged
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
        if (self._plants or self._orphans or self._disputes or self._confirm_pending
                or self._dispute_rooms):  # fmt: skip
            # every frame is settled; the job ends once its paid checks are decided (an
            # open dispute's too: ended unheard, an upheld one could never be claimed)
            # and the windows of the rejections whose disputes it holds room for are
            # over (the retry was accepted first, the job ended, and an honest worker's
            # Dispute was never heard: tests/e2e/test_dispute.py, stop 38)
            return []
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


__all__ = ["JobMachine", "JobStatistics", "result_digest_of"]  # the last two re-exported
