"""The requester's verification desk: checkers, their verdicts, and disputes.

Theory of operation
-------------------
Part of :class:`protocol.market.requester.JobMachine`, split out by topic (the
state lives in :mod:`protocol.market.jobbook`). A result waiting for a verdict
makes the machine emit :class:`RequestVerification`; the driver picks a checker
and calls :meth:`VerifyDesk.assign_checker` with the checker's payment address
(the machine owes the fee there, so a driver that replays its inputs must
record the address with the assignment). Only a Verdict from an assigned
checker about the exact result (envelope digest), on the plan's number of
tiles (``VerifyRequest.tiles``) and on exactly the cells the request's
``tile_secret`` selects (:mod:`protocol.tile_secret`: the checker must not choose
them) and, passing a result of an escrowed job, signed by the checker's payment key
(:mod:`protocol.signed_pass`: a claimable pass) counts; it earns the checker
its fee (:class:`CheckerFeeDue`, then the address's new cumulative amount in a
:class:`RecordPayment`, as for a worker's frame: one set of books).

A rejected worker may dispute (``Dispute`` naming the verdict's digest, which
the ``LeaseRevoked`` telling it of the rejection carries in ``verdict_digest``) within
``dispute_window_ms``: ``dispute_checkers`` more checkers, never the worker nor
one already used (unless no fresh one is reached: :meth:`VerifyDesk.dispute_fallback`,
never the rejecter), are asked, their fees and the task's price reserved; the
majority of all verdicts decides. Upheld by a majority's verdicts (not by a
timeout), for an escrowed job and a signed result, the machine emits
:class:`SlashDue` naming the rejecting checkers and their verdicts: the driver
gathers their fraud signatures and claims the worker's stake
(:mod:`protocol.slashing`). Overturned, the first checker is reported
(``CheckerOverruled``), the rejection is struck from the worker's record, and
the frame is accepted from the disputed result if still open (a live retry is
revoked); upheld, nothing changes. See docs/MARKET.md.

A plan may want more than one checker per result (``verification.Level.checkers_*``,
the lever against colluding checkers): after each passing verdict but the last the
result stays verifying (``CheckPassed``), that checker is paid, and another checker,
never one already asked about the task, is requested with a fee of its own; any
rejection takes the rejection path above (the dispute's majority does not count the
earlier passes: they were on other tiles); once a dispute's majority upholds it, one of
the passes it contradicts is claimed (``PassClaimDue``, :meth:`VerifyDesk._contradicted_passes`:
its claimers re-render its own cells, so only a false one loses). A job whose budget has no room left for
another fee (a quote leaves room for one re-check per frame) accepts on the passes it
has rather than overspend its escrow.

What to do with an accepted or rejected result (accept and pay, charge the
worker, award again or settle) is the job machine's decision: the three hooks
at the end are its methods.
"""

from __future__ import annotations

from collections.abc import Iterable

from protocol.errors import IllegalMessage, IllegalTransition
from protocol.market import events as ev
from protocol.market.commands import (
    CheckerOverruled,
    Command,
    DisputeResolved,
    PassClaimDue,
    RequestVerification,
    Send,
    SlashDue,
    WorkerJudged,
)
from protocol.market.jobbook import SETTLED, JobBook, worst_tile
from protocol.market.records import TaskRecord, verdict_digest_of
from protocol.market.tables import JobState, TaskState
from protocol.messages import Dispute, LeaseRevoked, Verdict, VerifyRequest
from protocol.reputation import Judgement
from protocol.slashing import slash_split, upheld_rejecters
from protocol.tile_secret import CheckKind


class VerifyDesk(JobBook):
    """Checker assignment, verdicts and disputes of one job (see the module docstring)."""

    def assign_checker(
        self, task_id: bytes, checker: bytes, now_ms: int, checker_address: bytes,
        frame_cid: str | None = None,
    ) -> list[Command]:  # fmt: skip
        """The driver chose ``checker`` for a :class:`RequestVerification`; it is paid
        at ``checker_address`` (a driver that replays must pass the address it passed
        live: it is part of the input). Its lane is funded (``FundLanes``, before the
        request) and its fee is owed to that address, in its cumulative amount.
        ``frame_cid``: the CID the driver serves the checker the worker's frame under
        (the node's re-encoding, node.roles.plants; None: the worker's own), named in
        the request and in the checker's signed pass (protocol.signed_pass); part of
        the input, as the address is."""
        if len(checker_address) != 20:
            raise IllegalTransition("a checker is assigned with its 20-byte payment address")
        task = self._tasks.get(task_id)
        if task is None:
            raise IllegalTransition("no such task")
        if checker == task.worker:
            raise IllegalTransition("a worker cannot check its own result")
        if not self.checker_qualifies(self._checker_addresses.get(checker, checker_address)):
            return []  # below the stake a checker needs: the verify timeout asks again
        if self.plant_holder_refused(task_id, checker):
            return []  # the task's plant went to it (a driver's race): the timeout asks again
        if checker in self._overruled:
            return []  # overruled since the driver picked it: the timeout asks again
        was = task.state
        if was is not TaskState.DISPUTED and checker in task.passed_by:
            return []  # it passed the result already: the next check needs another checker
        if was is TaskState.DISPUTED:
            if checker in task.dispute_checkers:
                return []  # assigned by another request meanwhile (a driver's race)
            if checker in task.checkers and checker not in self.dispute_fallback(task_id):
                raise IllegalTransition("a dispute needs checkers not yet used on the task, "
                                        "or one that did not reject it")  # fmt: skip
            if len(task.dispute_checkers) >= self.config.dispute_checkers:
                # another request filled it meanwhile (a further check's request answered
                # after a wait, the result disputed since): nobody more is asked
                return []
        address = self._checker_addresses.get(checker, checker_address)
        need_wei = self._lane_needs().get(address, 0) + task.fee_wei
        live = was in (TaskState.VERIFYING, TaskState.DISPUTED)
        if live and task.fee_wei and not self._lanes.can_cover(address, need_wei):
            # Budget left in no lane can pay this checker (a re-assignment after a
            # verify timeout, say): ask nobody we could not pay. The timeout asks again.
            return []
        self._task_step(task, ev.CheckerAssigned(task_id))
        if was is TaskState.DISPUTED:
            if checker in task.checkers:
                task.dispute_fallbacks.add(checker)
            task.dispute_checkers.add(checker)
        elif was is not TaskState.VERIFYING:
            return []  # decided meanwhile (revoked, or the job ended): no longer needed
        else:  # the checker's window starts when the request goes out (check_waits)
            task.verify_deadline_ms = now_ms + self.config.verify_timeout_ms
            task.request_out = True
            if task.waits_for_room:  # it waited, uncounted; now it asks somebody
                task.waits_for_room = False
                task.verify_asks += 1
        self._asked(task_id, checker, now_ms)
        task.checkers.add(checker)
        task.asked_since_pass.add(checker)
        served = task.check_cids[checker] = frame_cid or task.frame_cid
        kind = CheckKind.DISPUTE if was is TaskState.DISPUTED else CheckKind.CHECK
        request = VerifyRequest(
            self.job_id, task_id, task.frame, task.worker, task.result_digest,
            served, self.spec.scene_cid, task.fee_wei, task.tiles,
            self._tile_secret(task, checker, kind),
            task.result.device_class if task.result is not None else "",
        )  # fmt: skip
        self._checker_addresses.setdefault(checker, checker_address)
        if task.fee_wei == 0:
            return [Send(checker, request)]
        self._fees_pending[(task_id, checker)] = task.fee_wei
        checkers = len(set(self._checker_addresses.values()))
        unsettled = len(self._frames) - self._settled
        chunk_wei = task.fee_wei * max(0, unsettled - 1) // checkers
        return [*self._fund({address: chunk_wei}), Send(checker, request)]

    def checkers_refused(self, task_id: bytes) -> frozenset[bytes]:
        """Nodes :meth:`assign_checker` would not take for ``task_id`` now, for a driver
        to leave out of its choice (node and simulator): its worker, the checker its
        plant went to, every checker a dispute of this job overruled, during a dispute
        every checker already used on the task, and after a pass the plan wants another
        checker's after, every checker that passed it or was asked since. (Not every one
        asked: a checker asked before the first pass and silent until its verify timeout
        may give the second; refusing them all left a loaded network nobody to ask, and at
        ``normal`` the result was accepted on one pass: 10 times in seed 1 of
        cheaters_20pct. Nor only those that passed: a checker whose verdicts are refused
        was asked again until the result was abandoned, its pass lost, and a job whose
        other checker it was expired.)"""
        task = self._tasks.get(task_id)
        out = set(self.checkers_short_of(task_id))
        if task is None:
            return frozenset(out)
        if task.state is TaskState.DISPUTED:
            out |= task.checkers | task.dispute_checkers
        elif task.passed_by:  # the plan's next checker: not one that passed it or failed it since
            out |= task.passed_by | task.asked_since_pass
        return frozenset(out)

    def checkers_barred(self) -> frozenset[bytes]:
        """Checkers this job asks no more (``assign_checker`` ignores them): each had a
        rejection overturned by a dispute's majority here. Asking one again invited the
        same lie and another dispute (and, with each checker given its share, the
        overruled one was the next asked: it had checked least)."""
        return frozenset(self._overruled)

    def dispute_fallback(self, task_id: bytes) -> frozenset[bytes]:
        """Checkers used on ``task_id`` before its open dispute that the dispute may
        still ask when the driver reaches no checker outside :meth:`checkers_refused`:
        every one asked about the result but its rejecter (the first check's passer, one
        asked and silent), none in the dispute already, none overruled in this job; and
        none once ``dispute_checkers // 2`` of the dispute's seats went to such checkers,
        so that with the rejecter's own verdict the checkers used before can never be the
        majority alone. The drivers ask fresh checkers first and these only after the
        wait for one (node.roles.requester_job, simulations.requesters, ``CHECKER_WAIT_MS``).

        Why: a rejection at the second check of a result the first checker passed needs
        ``dispute_checkers`` (2) fresh checkers; a network of three has one, the dispute
        timed out upheld, and a lying checker that drew the second check of an honest
        result took its frame (stop 37). Asked again, the passer re-renders the dispute's
        own tiles (``CheckKind.DISPUTE``): its vote is a new check, not its pass counted
        twice. What a colluder gains: with one fresh checker in reach, a colluding passer
        and a colluding fresh checker overturn a true rejection, where two colluding fresh
        checkers were needed before (and without a second fresh one the dispute timed out
        upheld: a lie at the second check stood). An honest fresh checker's rejection
        still upholds it (tests/protocol/market/test_dispute_fallback.py)."""
        task = self._tasks.get(task_id)
        if task is None or task.state is not TaskState.DISPUTED:
            return frozenset()
        if len(task.dispute_fallbacks) >= self.config.dispute_checkers // 2:
            return frozenset()  # the earlier checkers alone must never be the majority
        used = task.checkers - task.dispute_checkers - self._overruled
        return frozenset(used - {task.rejected_by, task.worker})

    def checkers_excluded(self, task_id: bytes) -> frozenset[bytes]:
        """Nodes ``assign_checker`` would refuse for a dispute of ``task_id`` while a fresh
        checker may come: its worker and every checker already asked about it (after
        the wait, :meth:`dispute_fallback` may take some of them)."""
        task = self._tasks.get(task_id)
        return frozenset() if task is None else frozenset(task.checkers | {task.worker})

    def _on_verdict(
        self, sender: bytes, verdict: Verdict, now_ms: int, digest: bytes | None
    ) -> list[Command]:
        if self._is_plant_verdict(sender, verdict):
            return self._on_plant_verdict(sender, verdict, now_ms, digest)
        task = self._tasks.get(verdict.task_id)
        if task is None or (verdict.worker, verdict.frame) != (task.worker, task.frame):
            raise IllegalMessage("a verdict about a task we do not know")
        if sender not in task.checkers:
            raise IllegalMessage("a verdict from a node we did not ask", penalty=50)
        if verdict.result_digest != task.result_digest:
            raise IllegalMessage("a verdict about another result")
        if len(verdict.tiles) != self._tiles_expected(task):
            raise IllegalMessage("a verdict on another number of tiles than asked", penalty=50)
        if len(verdict.tile_digests) != len(verdict.tiles):
            raise IllegalMessage("a verdict must commit to one digest per tile", penalty=50)
        kind = CheckKind.DISPUTE if sender in task.dispute_checkers else CheckKind.CHECK
        if kind is CheckKind.DISPUTE and verdict.secret == self._tile_secret(
            task, sender, CheckKind.CHECK
        ):  # a dispute fallback's answer to its first request: a pass resent, or a late one
            self._refuse_off_draw(task, sender, verdict, CheckKind.CHECK)
            self._refuse_unsigned_pass(sender, verdict, task.check_cids.get(sender, task.frame_cid))
            # never its dispute vote, which is on the dispute's tiles (review, stop 38); a
            # late first verdict is paid all the same (reviews, stop 39)
            return self._on_late_verdict(task, sender, CheckKind.CHECK)
        self._refuse_off_draw(task, sender, verdict, kind)
        self._refuse_unsigned_pass(sender, verdict, task.check_cids.get(sender, task.frame_cid))
        if task.task_id in self._orphans:
            return self._on_orphan_verdict(task, sender, now_ms)
        if (task.task_id, sender, kind) in self._late_checks:  # decided without it: no vote
            # (a DISPUTE-kind entry exists only once its dispute ended; a CHECK-kind one may
            # come while the task is in dispute: second review of stop 39)
            return self._on_late_verdict(task, sender, kind)
        was = task.state
        if was is TaskState.VERIFYING and sender in task.passed_by:
            return []  # a resent pass: counted once
        more = was is TaskState.VERIFYING and len(task.passed_by) + 1 < task.checks_needed
        if more and task.fee_wei > self._free_wei(self._lane_needs()):
            more = False  # no budget left for another fee: the passes so far decide
        event = (
            ev.VerdictFailed
            if not verdict.passed
            else (ev.CheckPassed if more else ev.VerdictPassed)
        )
        self._task_step(task, event(task.task_id))
        if was is TaskState.DISPUTED:
            body = verdict_digest_of(verdict)  # resends keep it (an envelope digest changes)
            return self._on_dispute_verdict(task, sender, verdict, body, now_ms)
        if was is not TaskState.VERIFYING:
            return []
        task.fee_paid = True
        self._reserved_wei -= task.fee_wei
        out: list[Command] = self._fee_due(task, sender)
        if verdict.passed and more:
            if self.spec.escrow is not None:
                task.passes[sender] = verdict  # claimed if a dispute upholds a rejection
            return out + self._next_check(task, sender, now_ms)
        if verdict.passed:
            task.passes.clear()  # accepted: nothing will contradict them
            out.append(WorkerJudged(self.job_id, task.worker, Judgement.ACCEPTED))
            return out + self._accept(task, now_ms)
        # keep the evidence for a dispute, and tell the worker which verdict to contest
        task.rejected_by = sender
        task.rejection_body = verdict_digest_of(verdict)
        task.rejection_verdict = verdict
        task.verdict_digest = digest if digest is not None else verdict_digest_of(verdict)
        task.dispute_until_ms = now_ms + self.config.dispute_window_ms
        revoked = LeaseRevoked(self.job_id, task.task_id, "rejected by a checker",
                               task.verdict_digest)  # fmt: skip
        out.append(Send(task.worker, revoked))
        confirm = self._confirmable(task)
        self._confirm_pending = confirm  # the job does not end before it opens (_after_change)
        out += self._charge(task, "result rejected by a checker", now_ms, rejected=True)
        self._confirm_pending = False
        if confirm and self.state is JobState.OPEN:
            out += self._open_dispute(task, now_ms)
            if task.task_id not in self._disputes:  # the budget could not cover it
                task.disputed = False  # the worker's own dispute may still be heard
                out += self._last_dispute(now_ms)
        return out

    def check_waits(self, task_id: bytes) -> None:
        """The driver holds ``task_id``'s latest RequestVerification until a checker has
        room for it (``verification.with_room``: every checker it could ask holds as many
        of our requests as ``MarketConfig.checks_per_checker``). That request asked
        nobody: it does not count towards ``verify_attempts`` (a request with no checker
        at all to ask still does), and the verify timeout asks again only to renew it.
        Without this, a burst of results that waited for busy checkers was abandoned
        after ``verify_attempts`` timeouts and rendered again: more checks still."""
        task = self._tasks.get(task_id)
        if task is None or task.state is not TaskState.VERIFYING or task.waits_for_room:
            return
        if task.request_out:
            # the latest request went out already (the node: an older copy of it, waiting
            # when the timeout renewed it, found room first); this copy waits for nothing
            # (review of stop 40: the ask was never counted, a silent checker asked on)
            return
        task.waits_for_room = True
        task.verify_asks -= 1

    def checkers_silent(self, task_id: bytes) -> frozenset[bytes]:
        """Checkers asked about ``task_id``'s current check (since its last pass) that gave
        no verdict the machine took: a driver asks others first
        (``verification.prefer_unasked``). Empty unless the result is verifying."""
        task = self._tasks.get(task_id)
        if task is None or task.state is not TaskState.VERIFYING:
            return frozenset()
        return frozenset(task.asked_since_pass)

    def check_waiting(self, task_id: bytes) -> bool:
        """Whether ``task_id``'s latest request still waits for room (``check_waits``, and
        no checker assigned since): a driver holding an older copy of it drops that."""
        task = self._tasks.get(task_id)
        return task is not None and task.state is TaskState.VERIFYING and task.waits_for_room

    def checkers_exhausted(
        self, task_id: bytes, now_ms: int, reachable: Iterable[bytes]
    ) -> list[Command]:
        """The driver found no checker to ask for ``task_id``'s further check; ``reachable``:
        every checker it could reach now (connected, advertising, not struck, holding the
        stake asked), whether or not asked already. If none of them could give the
        result's next pass (all passed it, are its worker, its plant's holder or overruled
        in this job: :meth:`checkers_short_of`), then at a level that allows it
        (``verification.Level.accept_short``: ``normal``) the passes it has decide, as when
        the budget has no room for another fee; the result is booked as short-checked
        (``frames_short_checked``). Otherwise (``high``, or a checker that could still
        answer, or a result not waiting for a further check) nothing changes: the verify
        timeout asks again, and after ``verify_attempts`` asks the result is abandoned and
        rendered again, at ``normal`` too. (Cutting on that silence instead, tried in
        this stop, let a colluder's pass through once one honest checker dropped one
        stale request: second review of stop 37. The price: a job whose only other
        checker is connected and never answers is rendered again until its deadline.)

        A reachable checker asked since the pass and silent still blocks the cut: an honest
        checker made slow (a full queue drops stale requests) must not turn a colluder's
        pass into an acceptance (review of stop 37: with every other checker asked and
        silent the driver found nobody, and the honest rejection came too late). One the
        driver no longer reaches (banned for its illegal verdicts, gone) does not.

        Why: ``normal`` asks two checkers of an unbacked result (one colluding checker in
        six let 6.1 % of cheats through one), and without this a network of one checker,
        ``pictor demo``'s, never finished a job. The machine cannot see the network: it
        takes the driver's word, as for ``result_unfetchable``. What an attacker gains: a
        requester that reaches no second checker is checked as before this level asked
        two; hiding the other checkers from it takes eclipsing its view of the network."""
        task = self._tasks.get(task_id)
        level = self._verification.sampling.levels[self.spec.assurance]
        if (
            self.state is not JobState.OPEN
            or task is None
            or task.state is not TaskState.VERIFYING
            or not task.passed_by
            or not level.accept_short
            or task.task_id in self._orphans
            or set(reachable) - self.checkers_short_of(task_id)
        ):
            return []
        return self._cut(task, now_ms)

    def _cut(self, task: TaskRecord, now_ms: int) -> list[Command]:
        """Accept ``task``'s result on the passes it has (``ChecksCut``)."""
        self._task_step(task, ev.ChecksCut(task.task_id))
        task.passes.clear()
        self._short_checked += 1  # (_accept releases the further check's reserved fee)
        return [WorkerJudged(self.job_id, task.worker, Judgement.ACCEPTED),
                *self._accept(task, now_ms)]  # fmt: skip

    def wants_further_check(self, task_id: bytes) -> bool:
        """Whether ``task_id``'s result passed and waits for the plan's next checker: the
        request a driver may answer with :meth:`checkers_exhausted`."""
        task = self._tasks.get(task_id)
        return task is not None and task.state is TaskState.VERIFYING and bool(task.passed_by)

    def checkers_short_of(self, task_id: bytes) -> frozenset[bytes]:
        """Nodes that can never give ``task_id``'s next pass: its worker, the checkers that
        passed it, its plant's holder, and every checker a dispute of this job overruled.
        A driver whose every known checker is among them (``pictor demo``'s one checker)
        need not wait for one before :meth:`checkers_exhausted`."""
        task = self._tasks.get(task_id)
        if task is None:
            return frozenset(self._overruled)
        out = {task.worker, *task.passed_by, *self._overruled}
        holder = self.plant_checker(task_id)
        if holder is not None and self.plant_holder_refused(task_id, holder):
            out.add(holder)
        return frozenset(out)

    def _next_check(self, task: TaskRecord, passed_by: bytes, now_ms: int) -> list[Command]:
        """``passed_by`` passed the result and the plan wants another checker: reserve its
        fee and ask one not yet used on the task (its own tiles, its own verify timeouts)."""
        task.passed_by.add(passed_by)
        task.asked_since_pass = set()
        task.fee_paid = False
        self._reserved_wei += task.fee_wei
        task.verify_asks = 0
        return [self._request_verification(task, now_ms)]

    def _on_dispute(
        self, sender: bytes, dispute: Dispute, now_ms: int, _: bytes | None
    ) -> list[Command]:
        task = self._held(sender, dispute.task_id)
        if not task.rejected_by:
            raise IllegalMessage("no rejecting verdict on this task to dispute")
        if dispute.verdict_digest != task.verdict_digest:
            raise IllegalMessage("a dispute of a verdict we did not act on")
        if task.disputed:
            return []  # a resent dispute, or our confirmation of it: already heard
        if now_ms > task.dispute_until_ms:
            raise IllegalMessage("a dispute after the dispute window")
        return self._open_dispute(task, now_ms)

    def _open_dispute(self, task: TaskRecord, now_ms: int) -> list[Command]:
        """Ask ``dispute_checkers`` more checkers about ``task``'s rejected result: its
        worker's dispute, or the requester's own confirmation (:meth:`_confirmable`)."""
        task.disputed = True
        self._free_dispute_room(task.task_id)  # held since the rejection: the dispute's now
        reserve_wei = task.price_wei + self.config.dispute_checkers * task.fee_wei
        if self.config.dispute_checkers == 0:
            return [self._resolved(task, True, False, "disputes are not taken")]
        needs = self._lane_needs()
        # the price is paid into the worker's own lane: what it holds ahead counts
        own_wei = min(task.price_wei, self._lanes.slack(needs).get(task.payee_address, 0))
        if reserve_wei - own_wei > self._free_wei(needs):
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
        self, task: TaskRecord, sender: bytes, verdict: Verdict, digest: bytes, now_ms: int
    ) -> list[Command]:
        if sender not in task.dispute_checkers or sender in task.dispute_votes:
            return []  # the first checker again, or a resent verdict
        passed = verdict.passed
        task.dispute_votes[sender] = passed
        task.dispute_digests[sender] = digest
        if not passed:
            task.dispute_rejects[sender] = verdict
        elif self.spec.escrow is not None:  # outvoted, a dispute seat's pass is claimed too
            task.passes[sender] = verdict
        task.dispute_reserved_wei -= task.fee_wei
        self._reserved_wei -= task.fee_wei
        out: list[Command] = self._fee_due(task, sender)
        needed = upheld_rejecters(self.config.dispute_checkers)  # a majority of all verdicts
        passes = sum(task.dispute_votes.values())
        fails = 1 + len(task.dispute_votes) - passes
        if passes >= needed:
            return out + self._resolve(task, True, "the majority passed the result", now_ms)
        if fails >= needed:
            return out + self._resolve(task, False, "the majority rejected the result", now_ms,
                                       slash=True)  # fmt: skip
        return out

    def _contradicted_passes(self, task: TaskRecord) -> list[Command]:
        """A dispute's majority upheld the rejection of ``task``'s result that earlier
        checkers passed, or that a dispute checker passed and was outvoted on: claim one of
        those passes (``PassClaimDue``, :meth:`_claimable_pass`; the node claims signed
        passes, which at an escrowed job are all it takes). A pass of a wrong frame is
        false wherever its own cells cover the fake, plant or not: a colluding checker that
        passes its partner's partial fake, and whose pass the other checker's rejection
        exposes, pays for it as for a plant. Without this, two checkers per result still
        let through a partial fake whenever the honest one's tiles missed it and the other
        colluded: 12 of the 14 cheats that slipped in ``cheaters_20pct`` at the default
        (docs/VERIFICATION.md, "Stop 46").

        Only a majority's verdicts (the requester confirms such a rejection itself when the
        claim is worth the dispute's fees, :meth:`_confirmable`): one checker's rejection
        is never enough, so a lone liar cannot have the requester claim an honest pass (a
        first version claimed at the rejection: review of stop 46). Who is right about the
        pass is still not decided here: the claimers re-render the passer's own cells of
        the frame it signed, and an honest pass whose tiles missed the fake gets no
        signature (``protocol.fraud_evidence.may_sign_pass``)."""
        best = self._claimable_pass(task)
        if best is None:
            return []
        checker, verdict, address = best
        cid = task.check_cids.get(checker, task.frame_cid)
        return [PassClaimDue(self.job_id, task.task_id, task.frame, cid, checker, address, verdict)]

    def _claimable_pass(self, task: TaskRecord) -> tuple[bytes, Verdict, bytes] | None:
        """The one pass of ``task``'s result to claim should a dispute uphold its
        rejection: (checker, its passing verdict, its payment address), or None. One: the
        node keeps one pass claim a task (its store's key). None while the task's plant is
        out: a missed plant is the surer claim. First a pass given in a dispute seat and
        outvoted (its aimed draw includes the rejection's worst cell), then one whose cells
        include that cell, then the lowest node id: a pass whose cells the rejecters found
        wrong before one that may be an honest miss elsewhere in the frame (review of stop
        46: a first check's passer reused in a dispute seat ranked with the seats, and a
        colluding seat escaped on the node-id tie)."""
        if self.plant_open(task.task_id):
            return None
        rejection = task.rejection_verdict
        worst = worst_tile(rejection) if rejection is not None and rejection.tiles else None

        def rank(item: tuple[bytes, Verdict]) -> tuple[bool, bool, bytes]:
            checker, verdict = item
            covers = worst is not None and any(
                (t.x, t.y) == (worst.x, worst.y) for t in verdict.tiles
            )
            return (task.dispute_votes.get(checker) is not True, not covers, checker)

        for checker, verdict in sorted(task.passes.items(), key=rank):
            if (address := self._checker_addresses.get(checker)) is not None:
                return checker, verdict, address
        return None

    def _slash(self, task: TaskRecord) -> list[Command]:
        """A majority upheld the rejection: the worker's stake answers for the frame, if
        the job is escrowed and the result is signed (the claim must carry it)."""
        result = task.result
        if self.spec.escrow is None or result is None or result.result_sig is None:
            return []
        rejecters = [task.rejected_by] + [c for c, ok in task.dispute_votes.items() if not ok]
        digests = [task.rejection_body] + [task.dispute_digests[c] for c in rejecters[1:]]
        verdicts = [task.rejection_verdict] + [task.dispute_rejects[c] for c in rejecters[1:]]
        addresses = tuple(self._checker_addresses.get(c, b"") for c in rejecters)
        return [SlashDue(self.job_id, task.task_id, task.frame, task.worker, task.payee_address,
                         task.frame_cid, result.result_sig, tuple(rejecters), tuple(digests),
                         tuple(v for v in verdicts if v is not None), addresses)]  # fmt: skip

    def _resolve(
        self, task: TaskRecord, overturned: bool, reason: str, now_ms: int, *,
        slash: bool = False,
    ) -> list[Command]:  # fmt: skip
        """End ``task``'s dispute; an overturned one clears the worker and may settle the
        frame; an upheld one with ``slash`` (a majority's verdicts) claims the stake."""
        del self._disputes[task.task_id]
        self._reserved_wei -= task.dispute_reserved_wei
        task.dispute_reserved_wei = 0
        self._keep_late_checks(
            task, CheckKind.DISPUTE, task.dispute_checkers - task.dispute_votes.keys()
        )
        if not overturned:
            self._task_step(task, ev.DisputeUpheld(task.task_id))
            claim = [*self._slash(task), *self._contradicted_passes(task)] if slash else []
            task.passes.clear()
            return [self._resolved(task, True, False, reason), *claim, *self._last_dispute(now_ms)]
        task.passes.clear()  # the passes stood
        self._task_step(task, ev.DisputeOverturned(task.task_id))
        self._unsettle()  # the worker may take the frame again, and its bid may stand again
        self._overruled.add(task.rejected_by)
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
            out.append(self._resolved(task, False, False, reason + "; frame settled meanwhile"))
            return out + self._last_dispute(now_ms)
        frame.failed_attempts -= task.attempt_charged
        for other in [t for t in self._active.values() if t.frame == task.frame]:
            # a retry being checked too: its worker must know it will not be paid for it
            # (its pay check counted it, its lane read one price short and it declined
            # every later award until the job expired; stop 38), and its check, out
            # already, is still paid if answered in time (_orphan, as for _shut_out)
            why = "frame accepted from a disputed result"
            out.append(Send(other.worker, LeaseRevoked(self.job_id, other.task_id, why)))
            was = other.state
            self._task_step(other, ev.TaskRevoked(other.task_id))
            if was is TaskState.VERIFYING:
                self._orphan(other)
            self._release(other)
            self._frame_step(other.frame, ev.AttemptReturned(other.frame))
        self._pending.discard(task.frame)
        self._frame_step(task.frame, ev.DisputeWon(task.frame))
        out.append(self._resolved(task, False, True, reason))
        return out + self._pay(task) + self._after_change(now_ms)

    def _last_dispute(self, now_ms: int) -> list[Command]:
        """A dispute ended without settling a frame: if every frame is settled, the job
        may have waited only for it (``JobMachine._after_change``)."""
        if self._settled < len(self._frames) or self.state is not JobState.OPEN:
            return []
        return self._after_change(now_ms)

    def _resolved(self, task: TaskRecord, upheld: bool, paid: bool, reason: str) -> Command:
        return DisputeResolved(self.job_id, task.task_id, task.worker, upheld, paid, reason)

    def _hold_dispute_room(self, task: TaskRecord) -> None:
        """``task``'s result was just rejected and its price released: hold what its
        dispute would cost (the price, should it be overturned, and the dispute checkers'
        fees) until the window ends, before the frame is awarded again. Before, the new
        award and the lanes' advance chunks took that budget at once, and a dispute within
        its window was upheld unheard ("the budget cannot cover a dispute"): in
        ``cheaters_20pct`` at the node's own escrow 13 of 40 disputes, honest workers'
        among them (docs/SIMULATIONS.md). A budget without that room holds nothing (the
        dispute is refused as before), nor one whose fees the checks still to come need
        (``_fees_ahead_wei``: the requester's protection comes first); a job that takes
        no disputes holds nothing; a frame settled already (its attempts used up) holds
        only the fees: an overturned dispute cannot pay it. A worker rejected on purpose
        delays the frame's retry by at most the window (60 s) when the budget is tight."""
        if self.config.dispute_checkers == 0:
            return
        needs = self._lane_needs()
        room_wei = self.config.dispute_checkers * task.fee_wei
        if self._frames[task.frame].state not in SETTLED:  # an overturned one is paid then
            # from the worker's own lane as far as it holds it ahead (slack is spent
            # for everyone else already)
            own_wei = self._lanes.slack(needs).get(task.payee_address, 0)
            room_wei += max(0, task.price_wei - own_wei)
        # the plans' checks come first: the room is what is left after their fees
        if room_wei > self._free_wei(needs) - self._fees_ahead_wei():
            return
        self._dispute_rooms[task.task_id] = (room_wei, task.dispute_until_ms)
        self._reserved_wei += room_wei

    def _free_dispute_room(self, task_id: bytes) -> bool:
        held = self._dispute_rooms.pop(task_id, None)
        if held is not None:
            self._reserved_wei -= held[0]
        return held is not None

    def _dispute_room_ends(self) -> list[int]:
        """When held rooms go back: just after their windows (a dispute at the window's
        last millisecond is still heard)."""
        return [until_ms + 1 for _, until_ms in self._dispute_rooms.values()]

    def _dispute_room_timeouts(self, now_ms: int) -> bool:
        """Free the rooms of windows that ended; whether any did."""
        over = [t for t, (_, until_ms) in self._dispute_rooms.items() if now_ms > until_ms]
        for task_id in over:
            self._free_dispute_room(task_id)
        return bool(over)

    def _confirmable(self, task: TaskRecord) -> bool:
        """Whether the requester disputes ``task``'s rejection itself, at once (a
        *confirmation*): a claim could follow (an escrowed job, a signed result) and the
        requester's part of the worker's confirmed stake, what an executed claim pays it
        at most (``protocol.slashing.slash_split``: a quarter; half is burned), is worth
        more than the dispute's fees.

        Why: only an upheld dispute leads to a claim, and a worker that knows it cheated
        does not dispute, so a staked cheater was never slashed (the attack in
        tests/protocol/market/test_confirmation.py). One checker's rejection is still
        never enough: the confirmation is the worker's dispute opened for it (its own
        ``Dispute`` is then heard already), with a dispute's outcomes: upheld by a
        majority it is claimed, overturned the worker is cleared and paid. (Not buying the
        frame back on an overturned confirmation would spare nothing: a rational cheater
        then disputes too, a free chance at its colluders; and an honest worker whose
        own dispute came late would have lost the frame, review of stop 36.) It costs
        the requester nothing a dispute by the worker would not. A claim takes at most
        the escrow's cap (``pass_claim_wei``) and pays the requester a quarter of it.
        Since stop 46 the claim of a checker that passed the result before counts too
        (:meth:`_claimable_pass`, the one pass claimed): a colluder's pass of an unstaked
        sybil's fake is worth confirming for its own stake."""
        if self.spec.escrow is None or self.config.dispute_checkers <= 0:
            return False
        claimers = upheld_rejecters(self.config.dispute_checkers)

        def part(address: bytes) -> int:  # the requester's part of one executed claim
            stake_wei = self._stakes.get(address, 0)
            if self.pass_claim_wei:  # a claim takes at most the escrow's cap
                stake_wei = min(stake_wei, self.pass_claim_wei)
            return slash_split(stake_wei, claimers).requester_wei

        result = task.result
        worth_wei = part(task.payee_address) if result and result.result_sig is not None else 0
        if (best := self._claimable_pass(task)) is not None:  # and the pass claimed (stop 46)
            worth_wei += part(best[2])
        return worth_wei > self.config.dispute_checkers * task.fee_wei

    def _end_disputes(self, reason: str) -> list[Command]:
        """The job ended: open disputes end with it, their reserve released (and the rooms
        held for disputes still to come)."""
        for task_id in list(self._dispute_rooms):
            self._free_dispute_room(task_id)
        out: list[Command] = []
        for task in list(self._disputes.values()):
            del self._disputes[task.task_id]
            self._reserved_wei -= task.dispute_reserved_wei
            task.dispute_reserved_wei = 0
            self._drop_dispute_fees(task)
            self._task_step(task, ev.DisputeUpheld(task.task_id))
            out.append(self._resolved(task, True, False, reason))
        return out

    # ---- checks orphaned by a revoked task ----

    def _orphan(self, task: TaskRecord) -> None:
        """``task`` was revoked while its check was out (its worker was shut out): the
        checker we asked cannot know and renders anyway, so its verdict, if it comes
        by the check's verify deadline, is still paid (honest checkers lost these fees,
        a lazy one that answers at once almost never did). The fee stays reserved
        until then; the verdict changes nothing else."""
        if task.fee_paid or task.fee_wei == 0 or not task.checkers:
            return
        self._orphans[task.task_id] = (task.fee_wei, task.verify_deadline_ms)
        self._reserved_wei += task.fee_wei  # _release gave it back with the price

    def _keep_late_checks(
        self, task: TaskRecord, kind: CheckKind = CheckKind.CHECK,
        checkers: Iterable[bytes] | None = None,
    ) -> None:  # fmt: skip
        """``task`` was decided (or given up, or its orphaned check answered) while
        checkers it asked (``checkers``: by default every one) had not answered: each one's
        verdict is still paid until a verify timeout after the last ask's deadline, if
        its checker's lane holds the fee already or the free budget has room for it; the
        fee stays reserved and in its lane need meanwhile. ``kind``: which of its requests (a dispute's checkers
        that had not voted when its majority decided are kept as ``DISPUTE``). The cap on
        checks' late fees applies when one is paid (:meth:`_on_late_verdict`).

        Why: a checker starts a request only within a verify timeout of receiving it
        (``protocol.verification.check_stale``) and counts the fee of every verdict it
        sends as promised (node.roles.checker). When another checker answered first the
        verdict went unpaid, the checker's count stayed above the requester's, its lane
        was topped up only to the requester's figure, and it refused every later check of
        the job as unsecured (``baseline``, seed 3: 81 such verdicts, 531 checks refused,
        3 of 26 jobs expired; docs/MARKET.md, "Late verdicts"). The cap bounds what a
        checker that never renders and answers only after the task is decided can take
        (review of stop 39: its late verdict cannot be judged). The job does not wait for
        them; a verdict after the window, past the cap, or after the job ended is not
        paid. Checkers are taken in sorted order: a tight budget keeps the same ones on a
        journal replay (a set's order is the hash seed's: review of stop 39)."""
        until_ms = task.verify_deadline_ms + self.config.verify_timeout_ms
        for checker in sorted(task.checkers if checkers is None else checkers):
            fee_wei = self._fees_pending.get((task.task_id, checker))
            if fee_wei is None:
                continue
            # what the budget holds, with this fee still in its lane's need (a lane funded
            # for it is not slack); a lane that holds its whole need has the fee already:
            # keeping it costs nothing (dropped, it would be that lane's slack, no freer)
            needs = self._lane_needs()
            address = self._checker_addresses[checker]
            covered = self._lanes.lanes_wei.get(address, 0) >= needs.get(address, 0)
            free_wei = self._free_wei(needs)
            del self._fees_pending[(task.task_id, checker)]
            if fee_wei and (covered or fee_wei <= free_wei):
                self._late_checks[(task.task_id, checker, kind)] = (fee_wei, until_ms)
                self._reserved_wei += fee_wei

    def _on_late_verdict(self, task: TaskRecord, sender: bytes, kind: CheckKind) -> list[Command]:
        """Pay a late verdict kept for it; a check's (not a dispute seat's: the seat was
        asked with the dispute and its vote came after the majority) only while the
        checker has had fewer than ``late_fees_per_checker`` paid in this job."""
        held = self._late_checks.pop((task.task_id, sender, kind), None)
        if held is None:
            return []  # not kept: too late, or paid already
        self._reserved_wei -= held[0]
        if kind is CheckKind.CHECK:
            paid = self._late_paid.get(sender, 0)
            if paid >= self.config.late_fees_per_checker:
                return []
            self._late_paid[sender] = paid + 1
        return self._fee_due_wei(task.task_id, sender, held[0], late=True)

    def _drop_late_check(self, key: tuple[bytes, bytes, CheckKind]) -> None:
        fee_wei, _ = self._late_checks.pop(key)
        self._reserved_wei -= fee_wei

    def _late_check_timeouts(self, now_ms: int) -> None:
        for key in [k for k, (_, until_ms) in self._late_checks.items() if now_ms >= until_ms]:
            self._drop_late_check(key)

    def _late_check_deadlines(self) -> list[int]:
        return [until_ms for _, until_ms in self._late_checks.values()]

    def _on_orphan_verdict(self, task: TaskRecord, sender: bytes, now_ms: int) -> list[Command]:
        if (task.task_id, sender) not in self._fees_pending:
            return []  # a verdict already paid, resent (review: a pass paid twice)
        fee_wei, _ = self._orphans.pop(task.task_id)
        self._reserved_wei -= fee_wei
        task.fee_paid = True
        self._fees_pending.pop((task.task_id, sender))
        out = self._fee_due(task, sender, late=True)
        # the others still out are late checks now (review of stop 39: only one was paid)
        self._keep_late_checks(task, CheckKind.CHECK, task.checkers - {sender})
        return out + self._after_change(now_ms)

    def _orphan_timeouts(self, now_ms: int, *, everything: bool = False) -> bool:
        """Orphaned checks unanswered by their deadline (``everything``: all of them):
        nothing owed, the reservation released. True if any went."""
        expired = [t for t, (_, due) in self._orphans.items() if everything or now_ms >= due]
        for task_id in expired:
            fee_wei, _ = self._orphans.pop(task_id)
            self._reserved_wei -= fee_wei
            if everything:  # the job is closing
                for checker in self._tasks[task_id].checkers:
                    self._fees_pending.pop((task_id, checker), None)
            else:  # a verdict rendered in time may still be on its way
                self._keep_late_checks(self._tasks[task_id])
        return bool(expired)

    def _drop_orphans(self) -> None:
        """The job ended: orphaned checks are paid no more, their reserve released."""
        self._orphan_timeouts(0, everything=True)

    def _orphan_deadlines(self) -> list[int]:
        return [due for _, due in self._orphans.values()]

    def _drop_dispute_fees(self, task: TaskRecord) -> None:
        """The dispute ended: a dispute checker that has not voted is not paid now, so
        its fee leaves the lanes' needs."""
        for checker in task.dispute_checkers:
            self._fees_pending.pop((task.task_id, checker), None)

    def _request_verification(self, task: TaskRecord, now_ms: int) -> RequestVerification:
        task.verify_deadline_ms = now_ms + self.config.verify_timeout_ms
        task.verify_asks += 1
        task.waits_for_room = task.request_out = False
        # after a pass, never a checker that passed it or was asked since (checkers_refused)
        exclude = (frozenset(task.passed_by | task.asked_since_pass | {task.worker})
                   if task.passed_by else frozenset())  # fmt: skip
        return RequestVerification(
            task.task_id, task.frame, task.worker, task.result_digest, task.frame_cid, exclude
        )

    # ---- the job machine's decisions (protocol.market.requester) ----

    def _is_plant_verdict(self, sender: bytes, verdict: Verdict) -> bool:
        raise NotImplementedError  # protocol.market.plants

    def _on_plant_verdict(
        self, sender: bytes, verdict: Verdict, now_ms: int, digest: bytes | None
    ) -> list[Command]:
        raise NotImplementedError

    def plant_checker(self, task_id: bytes) -> bytes | None:
        raise NotImplementedError

    def plant_holder_refused(self, task_id: bytes, checker: bytes) -> bool:
        raise NotImplementedError

    def plant_open(self, task_id: bytes) -> bool:
        raise NotImplementedError

    def _accept(self, task: TaskRecord, now_ms: int) -> list[Command]:
        raise NotImplementedError

    def _charge(
        self, task: TaskRecord, reason: str, now_ms: int, *, rejected: bool = False
    ) -> list[Command]:
        raise NotImplementedError

    def _after_change(self, now_ms: int) -> list[Command]:
        raise NotImplementedError
