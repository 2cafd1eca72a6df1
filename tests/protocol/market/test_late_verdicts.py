"""Late verdicts (protocol.market.verifying, VerifyDesk._keep_late_checks): a checker
whose request timed out, or a dispute checker whose vote came after the majority, is
paid for the verdict it sends within a verify timeout after the last ask's deadline.

The attack on liveness this answers (found with the simulator: ``baseline``, seed 3):
such a verdict went unpaid, the checker counted its fee as promised all the same, its
lane was topped up only to the requester's figure, and it refused every later check of
the job as unsecured until the job expired (531 checks refused, 3 of 26 jobs expired in
that one run with no adversary at all)."""

from __future__ import annotations

from typing import Any

from protocol.market import CheckerFeeDue, JobFinished, MarketConfig, TaskState
from protocol.messages import VerifyRequest
from protocol.record_trigger import VerdictUse, verdict_use
from protocol.verification import fee_promised
from tests.protocol.market.harness import MarketHarness

TIMEOUT_MS = MarketConfig().verify_timeout_ms


def two_results(**kwargs: Any) -> tuple[MarketHarness, bytes, bytes]:
    """A started job of two frames whose two results were delivered (``kwargs``: the
    harness's; ``worker_prices_wei_per_ru=(100,), worker_slots=2``: one worker has both)."""
    harness = MarketHarness(frames=(1, 2), **kwargs)
    harness.start()
    harness.advance(MarketConfig().bid_window_ms)
    first, second = list(harness.renders)
    harness.finish_render(first)
    harness.finish_render(second)
    return harness, first, second


def slow_then_disputed(checkers: int) -> tuple[MarketHarness, bytes, bytes, VerifyRequest]:
    """Frame 1's first checker is slow past its verify timeout; the next one rejects the
    result and the worker disputes: (harness, task, the slow checker, its request)."""
    harness, task_id, _ = two_results(checkers=checkers)
    slow, first_request = harness.verifications.pop(task_id)
    harness.advance(TIMEOUT_MS)
    harness.verdict(task_id, False)  # another checker rejects
    harness.dispute(task_id)
    assert harness.job.task_state(task_id) is TaskState.DISPUTED
    return harness, task_id, slow, first_request


def decided_without_its_first_checker() -> tuple[MarketHarness, bytes, bytes, VerifyRequest]:
    """Frame 1's first checker stays silent past its verify timeout; other checkers
    pass the result and it is accepted; frame 2 keeps the job open."""
    harness, task_id, _ = two_results(checkers=4)
    checker, request = harness.verifications.pop(task_id)
    harness.advance(TIMEOUT_MS)  # timed out: the task asks another checker
    while harness.job.task_state(task_id) is TaskState.VERIFYING:
        harness.verdict(task_id, True)
    assert harness.job.task_state(task_id) is TaskState.ACCEPTED
    assert harness.commands(JobFinished) == []
    return harness, task_id, checker, request


def test_a_verdict_after_another_checker_decided_is_paid_and_not_public() -> None:
    harness, task_id, checker, request = decided_without_its_first_checker()
    fees_before = harness.job.statistics().fees_wei
    verdict = harness.make_verdict(checker, request, True)
    commands = harness.job.receive(checker, verdict, harness.now_ms)
    (fee,) = [c for c in commands if isinstance(c, CheckerFeeDue)]
    assert fee.checker == checker and fee.late and fee.fee_wei == request.fee_wei
    assert harness.job.statistics().fees_wei == fees_before + request.fee_wei
    assert harness.job.task_state(task_id) is TaskState.ACCEPTED  # it decides nothing
    assert verdict_use(task_id, checker, commands, recorded=True) is VerdictUse.NONE
    assert harness.job.receive(checker, verdict, harness.now_ms) == []  # paid once


def test_a_late_rejection_changes_nothing_but_is_paid() -> None:
    harness, task_id, checker, request = decided_without_its_first_checker()
    commands = harness.job.receive(checker, harness.make_verdict(checker, request, False),
                                   harness.now_ms)  # fmt: skip
    assert [c.late for c in commands if isinstance(c, CheckerFeeDue)] == [True]
    assert harness.job.task_state(task_id) is TaskState.ACCEPTED


def test_a_verdict_after_the_window_is_not_paid_and_the_reserve_comes_back() -> None:
    harness, _, checker, request = decided_without_its_first_checker()
    reserved = harness.job.statistics().reserved_wei
    harness.advance(2 * TIMEOUT_MS)  # past the last ask's deadline and a timeout more
    assert harness.job.statistics().reserved_wei == reserved - request.fee_wei
    commands = harness.job.receive(checker, harness.make_verdict(checker, request, True),
                                   harness.now_ms)  # fmt: skip
    assert [c for c in commands if isinstance(c, CheckerFeeDue)] == []


def test_the_job_does_not_wait_for_late_verdicts_and_ends_with_nothing_reserved() -> None:
    harness, _, _, _ = decided_without_its_first_checker()
    for task_id in list(harness.verifications):
        while harness.job.task_state(task_id) is TaskState.VERIFYING:
            harness.verdict(task_id, True)
    assert harness.commands(JobFinished)  # at once, the late check still out
    assert harness.job.statistics().reserved_wei == 0


def test_a_tight_budget_still_pays_the_late_checks_their_lanes_hold() -> None:
    """A tight budget (2,160 wei for two frames of 1,000): the free budget has no room
    for both late fees, but each is in its checker's lane already (funded when it was
    asked), so both are kept and paid (dropped, a fee would be that lane's slack:
    nothing freer). Before, which one was kept followed a set's order, the hash seed's,
    and a journal replay paid another (review of stop 39: 1 or 2 by PYTHONHASHSEED);
    checkers are taken in sorted order now."""
    harness = MarketHarness(frames=(1, 2), checkers=4, worker_prices_wei_per_ru=(100,),
                            worker_slots=2, budget_wei=2160, max_price_wei_per_frame=1000)  # fmt: skip
    harness.start()
    harness.advance(MarketConfig().bid_window_ms)
    task_id, _ = list(harness.renders)
    harness.finish_render(task_id)
    asked = []
    for _ in range(2):  # two checkers stay silent past their verify timeouts
        asked.append(harness.verifications.pop(task_id))
        harness.advance(TIMEOUT_MS)
    harness.verdict(task_id, True)  # the third decides with both others still out
    assert harness.job.task_state(task_id) is TaskState.ACCEPTED
    paid = []
    for checker, request in asked:
        commands = harness.job.receive(checker, harness.make_verdict(checker, request, True),
                                       harness.now_ms)  # fmt: skip
        paid += [c.checker for c in commands if isinstance(c, CheckerFeeDue)]
    assert sorted(paid) == sorted(checker for checker, _ in asked)


def test_a_checker_is_paid_for_at_most_late_fees_per_checker_late_verdicts_a_job() -> None:
    """A checker that never renders and answers only once the task is decided (its late
    verdict cannot be judged) takes at most ``late_fees_per_checker`` fees a job."""
    market = MarketConfig(late_fees_per_checker=1)
    harness = MarketHarness(market=market, frames=(1, 2, 3), checkers=2, worker_slots=3)
    harness.start()
    harness.advance(market.bid_window_ms)
    for task_id in list(harness.renders):
        harness.finish_render(task_id)
    late: list[tuple[bytes, VerifyRequest]] = []
    for task_id in list(harness.verifications)[:2]:
        late.append(harness.verifications.pop(task_id))
    harness.advance(TIMEOUT_MS)
    for task_id in list(harness.verifications):
        while harness.job.task_state(task_id) is TaskState.VERIFYING:
            harness.verdict(task_id, True)
            if task_id not in harness.verifications:
                break
    fees = []
    for checker, request in late:
        if harness.job.task_state(request.task_id) is TaskState.VERIFYING:
            continue
        commands = harness.job.receive(checker, harness.make_verdict(checker, request, True),
                                       harness.now_ms)  # fmt: skip
        fees += [c for c in commands if isinstance(c, CheckerFeeDue) and c.late]
    by_checker: dict[bytes, int] = {}
    for fee in fees:
        assert isinstance(fee, CheckerFeeDue)
        by_checker[fee.checker] = by_checker.get(fee.checker, 0) + 1
    assert all(n <= 1 for n in by_checker.values())


def test_a_dispute_fallback_seat_still_pays_its_earlier_late_check() -> None:
    """A checker slow on the first check, then seated in the task's dispute (the fallback
    seat, no other fresh checker): its first verdict, when it comes, is paid late and is
    not its vote (review of stop 39: seating it dropped the late fee its node counts)."""
    harness, task_id, slow, first_request = slow_then_disputed(checkers=3)
    assert slow in [c for c, _ in harness.dispute_requests]  # the fallback seat
    commands = harness.job.receive(slow, harness.make_verdict(slow, first_request, True),
                                   harness.now_ms)  # fmt: skip
    assert [c.late for c in commands if isinstance(c, CheckerFeeDue)] == [True]
    assert harness.job.task_state(task_id) is TaskState.DISPUTED  # not its vote
    (index,) = [i for i, (c, _) in enumerate(harness.dispute_requests) if c == slow]
    harness.dispute_verdict(index, True)  # its vote, on the dispute's tiles, paid as a vote
    vote_fees = [c for c in harness.commands(CheckerFeeDue)
                 if isinstance(c, CheckerFeeDue) and c.checker == slow and not c.late]  # fmt: skip
    assert len(vote_fees) == 1


def test_every_check_still_out_on_an_orphaned_task_is_paid() -> None:
    """A task revoked while two checks of it were out (a timed-out one and its re-ask):
    both verdicts are paid (review of stop 39: only the first was)."""
    harness, first, second = two_results(checkers=4, worker_prices_wei_per_ru=(100,),
                                         worker_slots=2)  # fmt: skip
    a, a_request = harness.verifications.pop(second)
    harness.advance(TIMEOUT_MS)
    b, b_request = harness.verifications.pop(second)
    harness.verdict(first, False)  # the worker is shut out: `second` revoked, both out
    assert harness.job.task_state(second) is TaskState.REVOKED
    paid = []
    for checker, request in ((a, a_request), (b, b_request)):
        commands = harness.job.receive(checker, harness.make_verdict(checker, request, True),
                                       harness.now_ms)  # fmt: skip
        paid += [c.checker for c in commands if isinstance(c, CheckerFeeDue)]
    assert sorted(paid) == sorted([a, b])


def test_a_checker_does_not_count_on_a_verdict_it_sends_after_a_verify_timeout() -> None:
    """The checker's side (node.roles.checker and the simulator's CheckerDriver): a
    verdict sent a verify timeout or more after its request arrived is not counted as
    promised, so a requester that pays it no more (past its window or cap) leaves the
    checker's figure no higher than its own."""
    fee = 7
    assert fee_promised(TIMEOUT_MS - 1, TIMEOUT_MS, fee) == fee
    assert fee_promised(TIMEOUT_MS, TIMEOUT_MS, fee) == 0
    assert fee_promised(10 * TIMEOUT_MS, TIMEOUT_MS, fee) == 0

def test_a_late_check_verdict_that_comes_during_the_dispute_is_paid() -> None:
    """A slow first checker, not seated in the dispute (fresh checkers exist), answers
    while the worker's dispute is open: its fee was kept late and its node counted it
    (second review of stop 39: it went unpaid)."""
    harness, _, slow, first_request = slow_then_disputed(checkers=5)
    assert slow not in [c for c, _ in harness.dispute_requests]
    job = harness.job
    assert any(k[1] == slow for k in job._late_checks), job._late_checks
    commands = job.receive(slow, harness.make_verdict(slow, first_request, True), harness.now_ms)
    assert [c.late for c in commands if isinstance(c, CheckerFeeDue)] == [True]


def test_a_second_dispute_seats_vote_is_paid_past_the_checks_cap() -> None:
    """A dispute upheld by its first vote leaves the second seat's vote late; it comes at
    once (well within a verify timeout of the request: the node counts it as promised),
    and the cap on checks' late fees does not apply to it (second review of stop 39)."""
    market = MarketConfig(late_fees_per_checker=1)
    harness = MarketHarness(market=market, frames=(1, 2, 3), checkers=3)
    harness.start()
    harness.advance(market.bid_window_ms)
    tasks = list(harness.renders)
    for t in tasks:
        harness.finish_render(t)
    disputed = []
    for t in tasks:
        harness.verdict(t, False)
        harness.dispute(t)
        if harness.job.task_state(t) is TaskState.DISPUTED:
            disputed.append(t)
    seats = {t: [i for i, (c, r) in enumerate(harness.dispute_requests) if r.task_id == t]
             for t in disputed}
    common = None
    for a in disputed:
        for b in disputed:
            if a < b:
                both = ({harness.dispute_requests[i][0] for i in seats[a]}
                        & {harness.dispute_requests[i][0] for i in seats[b]})
                if both and common is None:
                    common = (a, b, min(both))
    assert common is not None
    a, b, x = common
    paid = []
    for t in (a, b):
        (first,) = [i for i in seats[t] if harness.dispute_requests[i][0] != x]
        (late,) = [i for i in seats[t] if harness.dispute_requests[i][0] == x]
        harness.dispute_verdict(first, False)  # upheld at once
        assert harness.job.task_state(t) is not TaskState.DISPUTED
        before = len(harness.commands(CheckerFeeDue))
        harness.dispute_verdict(late, True)  # the second vote, at once
        paid.append(len([c for c in harness.commands(CheckerFeeDue)[before:] if c.checker == x]))
        request = harness.dispute_requests[late][1]
        assert fee_promised(0, market.verify_timeout_ms, request.fee_wei) == request.fee_wei
    assert paid == [1, 1], paid  # the node counted both



def test_a_late_check_verdict_during_a_confirmation_is_paid() -> None:
    """The requester's confirmation opens in the breath of the rejection: a slow first
    checker's verdict, due at any moment, comes during the dispute and is paid."""
    from ledger.fraud import result_signer
    from protocol.market import MarketConfig as MC
    from tests.protocol.market.test_confirmation import CID, ESCROW, STAKE_WEI, finish_signed
    harness = MarketHarness(frames=(1, 2), checkers=5, escrow=ESCROW, result_signer=result_signer)
    harness.start()
    harness.advance(MC().bid_window_ms)
    task_id = next(iter(harness.renders))
    harness.job.set_stake(harness.job._tasks[task_id].payee_address, STAKE_WEI)
    finish_signed(harness, task_id, CID)
    slow, first_request = harness.verifications.pop(task_id)
    harness.advance(TIMEOUT_MS)  # timed out; another checker is asked
    harness.verdict(task_id, False)  # and rejects: the confirmation opens at once
    assert harness.job.task_state(task_id) is TaskState.DISPUTED
    assert slow not in [c for c, _ in harness.dispute_requests]
    commands = harness.job.receive(slow, harness.make_verdict(slow, first_request, True),
                                   harness.now_ms)
    assert [c.late for c in commands if isinstance(c, CheckerFeeDue)] == [True]


def test_a_job_cancelled_with_an_orphaned_check_out_ends_with_nothing_reserved() -> None:
    harness, first, second = two_results(checkers=4, worker_prices_wei_per_ru=(100,),
                                         worker_slots=2)
    harness.verifications.pop(second)
    harness.verdict(first, False)  # the worker is shut out: `second` revoked, its check out
    assert harness.job.task_state(second) is TaskState.REVOKED
    assert harness.job._orphans
    out = harness.job.cancel(harness.now_ms)
    assert [c for c in out if isinstance(c, JobFinished)]
    assert harness.job.statistics().reserved_wei == 0


def test_a_fallback_seats_late_unsigned_pass_is_not_paid() -> None:
    """A fallback seat's late first verdict, an unsigned pass of an escrowed job, is
    refused as on the normal late path (second review of stop 39: it was paid)."""
    from dataclasses import replace

    from protocol.errors import IllegalMessage
    from tests.protocol.market.test_pass_sig import signing
    harness = signing(frames=(1, 2), checkers=3)
    task_id = next(iter(harness.verifications))
    slow, first_request = harness.verifications.pop(task_id)
    harness.advance(TIMEOUT_MS)
    harness.verdict(task_id, False)
    harness.dispute(task_id)
    assert harness.job.task_state(task_id) is TaskState.DISPUTED
    assert slow in [c for c, _ in harness.dispute_requests]  # the fallback seat
    unsigned = replace(harness.make_verdict(slow, first_request, True), pass_sig=None)
    try:
        commands = harness.job.receive(slow, unsigned, harness.now_ms)
    except IllegalMessage:
        return
    assert [c for c in commands if isinstance(c, CheckerFeeDue)] == [], commands
