"""Hypothesis state machine over one requester, several workers and checkers.

Rules finish, fail and judge renders, let time pass (leases expire, heartbeats
flow), silence workers, forge bids and illegal results. Invariants hold after
every step; at teardown time runs past the deadline and every frame must have
ended accepted or failed.
"""

from __future__ import annotations

from collections import Counter

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from protocol.errors import IllegalMessage
from protocol.market import (
    CheckerFeeDue,
    DisputeResolved,
    FrameAccepted,
    FrameFailed,
    FrameState,
    FundLanes,
    JobFinished,
    JobState,
    MarketConfig,
    RecordPayment,
    RefundDue,
    Send,
    TaskState,
    WorkerBlocklisted,
)
from protocol.messages import Assurance, Award, Bid, Dispute, Result
from tests.protocol.market.harness import BUILD, RU_PER_FRAME, MarketHarness, address_for

MAX_PRICE_WEI = 2_000
DEADLINE_MS = 600_000


class MarketStateMachine(RuleBasedStateMachine):
    harness: MarketHarness

    def __init__(self) -> None:
        super().__init__()
        self.ready = False

    @initialize(
        frames=st.integers(1, 6),
        prices=st.lists(st.integers(50, 250), min_size=1, max_size=4),
        slots=st.integers(1, 2),
        budget_frames=st.integers(1, 8),
        assurance=st.sampled_from([Assurance.NONE, Assurance.NORMAL]),
        max_tasks=st.integers(1, 3),
        blocklist_after=st.integers(1, 3),
        rejections_allowed=st.integers(1, 2),
        checkers=st.integers(2, 4),
    )
    def setup(
        self, frames: int, prices: list[int], slots: int, budget_frames: int,
        assurance: Assurance, max_tasks: int, blocklist_after: int, rejections_allowed: int,
        checkers: int,
    ) -> None:  # fmt: skip
        market = MarketConfig(
            lease_ms=60_000, heartbeat_interval_ms=15_000, bid_window_ms=1_000,
            verify_timeout_ms=30_000, max_tasks_per_worker=max_tasks,
            blocklist_after_failures=blocklist_after,
            blocklist_after_rejections=rejections_allowed,
        )  # fmt: skip
        self.harness = MarketHarness(
            frames=tuple(range(frames)), worker_prices_wei_per_ru=tuple(prices),
            worker_slots=slots, market=market, assurance=assurance,
            max_price_wei_per_frame=MAX_PRICE_WEI, budget_wei=budget_frames * 1_600,
            deadline_after_ms=DEADLINE_MS, checkers=checkers,
        )  # fmt: skip
        self.harness.start()
        self.ready = True

    # ---- rules ----

    @precondition(lambda self: self.harness.renders)
    @rule(data=st.data(), right_build=st.booleans())
    def finish_render(self, data: st.DataObject, right_build: bool) -> None:
        task_id = data.draw(st.sampled_from(sorted(self.harness.renders)))
        self.harness.finish_render(task_id, build=BUILD if right_build else "blender-2.79")

    @precondition(lambda self: self.harness.renders)
    @rule(data=st.data())
    def fail_render(self, data: st.DataObject) -> None:
        self.harness.fail_render(data.draw(st.sampled_from(sorted(self.harness.renders))))

    @precondition(lambda self: self.harness.verifications)
    @rule(data=st.data(), passed=st.booleans())
    def verdict(self, data: st.DataObject, passed: bool) -> None:
        task_id = data.draw(st.sampled_from(sorted(self.harness.verifications)))
        self.harness.verdict(task_id, passed)

    @precondition(lambda self: self.harness.job.state is JobState.OPEN)
    @rule(data=st.data())
    def dispute(self, data: st.DataObject) -> None:
        """A rejected worker disputes: legal within the window, refused after it."""
        harness = self.harness
        rejected = sorted(
            t for t, task in harness.job._tasks.items() if harness.rejection_digest(t) is not None
        )
        if not rejected:
            return
        task_id = data.draw(st.sampled_from(rejected))
        task = harness.job._tasks[task_id]
        if harness.now_ms <= task.dispute_until_ms:
            harness.dispute(task_id)
            return
        digest = harness.rejection_digest(task_id)
        assert digest is not None
        late = Dispute(harness.job_id, task_id, digest, "late")
        if task.disputed:
            return  # a resent dispute is ignored whenever it comes
        with pytest.raises(IllegalMessage):
            harness.job.receive(task.worker, late, harness.now_ms)

    @precondition(lambda self: self.harness.renders or self.harness.verifications)
    @rule(data=st.data())
    def reject_then_dispute(self, data: st.DataObject) -> None:
        """A result is delivered, a checker rejects it and its worker disputes at once."""
        harness = self.harness
        task_id = data.draw(st.sampled_from(sorted({*harness.renders, *harness.verifications})))
        if task_id in harness.renders:
            harness.finish_render(task_id)
        if task_id not in harness.verifications:
            return  # no verification asked (assurance none), or the message was lost
        self.harness.verdict(task_id, False)
        if self.harness.rejection_digest(task_id) is not None:
            self.harness.dispute(task_id)

    @precondition(lambda self: self.harness.dispute_requests)
    @rule(data=st.data(), passed=st.booleans())
    def dispute_verdict(self, data: st.DataObject, passed: bool) -> None:
        index = data.draw(st.integers(0, len(self.harness.dispute_requests) - 1))
        self.harness.dispute_verdict(index, passed)

    @rule(delta_ms=st.sampled_from([1, 1_000, 15_000, 30_000, 61_000, 200_000]))
    def advance(self, delta_ms: int) -> None:
        self.harness.advance(delta_ms)

    @rule(data=st.data())
    def silence_worker(self, data: st.DataObject) -> None:
        self.harness.silence(data.draw(st.sampled_from(sorted(self.harness.workers))))

    @rule(data=st.data(), frames_wanted=st.integers(1, 3))
    def forge_bid(self, data: st.DataObject, frames_wanted: int) -> None:
        """A worker claims more slots than it has (its machine declines the extra)."""
        index = data.draw(st.integers(0, len(self.harness.workers) - 1))
        node = list(self.harness.workers)[index]
        ask = self.harness.worker_prices_wei_per_ru[index] * RU_PER_FRAME
        bid = Bid(self.harness.job_id, frames_wanted, ask, 60, address_for(f"worker{index}"))
        self.harness.send(node, self.harness.requester, bid)
        self.harness.pump()

    @precondition(lambda self: self.harness.job.state is JobState.OPEN)
    @rule(data=st.data())
    def result_from_a_stranger(self, data: st.DataObject) -> None:
        """A Result for a task the sender does not hold is refused, and changes nothing."""
        awards = self.harness.awards()
        if not awards:
            return
        _, award = data.draw(st.sampled_from(awards))
        strangers = [n for n in self.harness.workers if n != award.worker]
        if not strangers:
            return
        forged = Result(award.job_id, award.task_id, award.frame, "bafkreiforged", 1, 1, BUILD, "x")
        before = self.harness.job.statistics()
        with pytest.raises(IllegalMessage):
            self.harness.job.receive(strangers[0], forged, self.harness.now_ms)
        assert self.harness.job.statistics() == before

    @rule(count=st.integers(1, 3))
    def lose_messages(self, count: int) -> None:
        self.harness.drop_next = count

    @rule()
    def toggle_duplicates(self) -> None:
        self.harness.duplicate = not self.harness.duplicate

    # ---- invariants ----

    @invariant()
    def workers_keep_to_their_slots_and_are_never_overpaid(self) -> None:
        if not self.ready:
            return
        owed = self.harness.job.owed_wei_by_payee()
        for worker in self.harness.workers.values():
            assert worker.statistics().tasks_rendering <= self.harness.worker_slots
            assert worker.voucher_wei(self.harness.job_id) <= owed.get(worker.payment_address, 0)

    @invariant()
    def frames_are_accepted_or_failed_at_most_once(self) -> None:
        if not self.ready:
            return
        accepted = Counter(c.frame for c in self.harness.commands(FrameAccepted))  # type: ignore[union-attr]
        failed = Counter(c.frame for c in self.harness.commands(FrameFailed))  # type: ignore[union-attr]
        assert all(n == 1 for n in accepted.values())
        assert all(n == 1 for n in failed.values())
        assert not set(accepted) & set(failed)
        live = [t.frame for t in self.harness.job._active.values()]
        assert len(live) == len(set(live))  # never two live awards of one frame

    @invariant()
    def owed_is_accepted_frames_times_awarded_price(self) -> None:
        if not self.ready:
            return
        prices = {a.task_id: a.price_wei for _, a in self.harness.awards()}
        expected: Counter[bytes] = Counter()
        for command in self.harness.commands(FrameAccepted):
            assert isinstance(command, FrameAccepted)
            assert command.price_wei == prices[command.task_id] <= MAX_PRICE_WEI
            worker = self.harness.workers[command.worker]
            expected[worker.payment_address] += command.price_wei
        assert self.harness.job.owed_wei_by_payee() == dict(expected)
        for fee in self.harness.commands(CheckerFeeDue):
            assert isinstance(fee, CheckerFeeDue)
            expected[fee.payee_address] += fee.fee_wei
        # one set of books: each payee's last cumulative is all it earned, checks included
        last_payment = {
            c.payee_address: c.cumulative_wei for c in self.harness.commands(RecordPayment)
        }  # type: ignore[union-attr]
        assert last_payment == +expected == self.harness.job.due_wei_by_payee()

    @invariant()
    def the_budget_is_never_exceeded(self) -> None:
        if self.ready:
            stats = self.harness.job.statistics()
            assert stats.committed_wei <= self.harness.budget_wei
            assert stats.reserved_wei >= 0

    @invariant()
    def lanes_stay_within_the_budget_and_cover_every_award_and_debt(self) -> None:
        """Issue 13: the worker's pay is in its lane before its award goes out, the
        lanes never sum past the deposit, and no payee is owed more than its lane."""
        if not self.ready:
            return
        harness, job = self.harness, self.harness.job
        lanes: Counter[bytes] = Counter()
        for sent in harness.log:
            command = sent.command
            if isinstance(command, FundLanes):
                for address, amount_wei in command.fundings:
                    assert amount_wei > 0
                    lanes[address] += amount_wei
                assert dict(command.lane_totals) == {a: lanes[a] for a, _ in command.fundings}
            elif isinstance(command, Send) and isinstance(command.message, Award):
                address = harness.workers[command.to].payment_address
                assert lanes[address] >= command.message.price_wei
        assert dict(lanes) == job.lanes_wei()
        assert sum(lanes.values()) <= harness.budget_wei
        owed: Counter[bytes] = Counter(job.owed_wei_by_payee())
        for fee in harness.commands(CheckerFeeDue):
            assert isinstance(fee, CheckerFeeDue) and fee.payee_address
            owed[fee.payee_address] += fee.fee_wei
        for address, owed_wei in owed.items():
            assert owed_wei <= lanes[address], "a payee is owed more than its lane"

    @invariant()
    def blocklisted_workers_get_no_new_award(self) -> None:
        if not self.ready:
            return
        listed: set[bytes] = set()
        for sent in self.harness.log:
            command = sent.command
            if isinstance(command, WorkerBlocklisted):
                listed.add(command.worker)
            elif isinstance(command, DisputeResolved) and not command.upheld:
                listed.discard(command.worker)  # cleared, unless it has other rejections
            elif isinstance(command, Send) and isinstance(command.message, Award):
                assert command.to not in listed
            elif isinstance(command, FrameAccepted):
                assert command.worker not in listed  # its unverified results were dropped

    def teardown(self) -> None:
        if not self.ready:
            return
        harness = self.harness
        harness.advance(DEADLINE_MS + 1)
        assert harness.job.state in (JobState.FINISHED, JobState.EXPIRED)
        assert set(harness.job.frame_states().values()) <= {FrameState.ACCEPTED, FrameState.FAILED}
        assert len(harness.commands(JobFinished)) == 1
        assert harness.job.get_timer() is None
        assert harness.job.statistics().reserved_wei == 0
        spent = sum(harness.job.owed_wei_by_payee().values()) + harness.job.statistics().fees_wei
        refunds = harness.commands(RefundDue)
        assert sum(r.refund_wei for r in refunds) == harness.budget_wei - spent  # type: ignore[union-attr]
        attempts = Counter(c.frame for c in harness.commands(FrameFailed)
                           if "last attempt" in c.reason)  # type: ignore[union-attr]  # fmt: skip
        assert all(n == 1 for n in attempts.values())
        resolved = [c.task_id for c in harness.commands(DisputeResolved)]  # type: ignore[union-attr]
        assert len(resolved) == len(set(resolved))  # each dispute ends once
        assert all(t.state is not TaskState.DISPUTED for t in harness.job._tasks.values())


MarketStateMachine.TestCase.settings = settings(
    max_examples=150,
    stateful_step_count=50,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
test_market_state_machine = MarketStateMachine.TestCase
