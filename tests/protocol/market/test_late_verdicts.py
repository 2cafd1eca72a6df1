"""Late verdicts (protocol.market.verifying, VerifyDesk._keep_late_checks): a checker
whose request timed out, or a dispute checker whose vote came after the majority, is
paid for the verdict it sends within a verify timeout after the last ask's deadline.

The attack on liveness this answers (found with the simulator: ``baseline``, seed 3):
such a verdict went unpaid, the checker counted its fee as promised all the same, its
lane was topped up only to the requester's figure, and it refused every later check of
the job as unsecured until the job expired (531 checks refused, 3 of 26 jobs expired in
that one run with no adversary at all)."""

from __future__ import annotations

from protocol.market import CheckerFeeDue, JobFinished, MarketConfig, TaskState
from protocol.messages import VerifyRequest
from protocol.record_trigger import VerdictUse, verdict_use
from tests.protocol.market.harness import MarketHarness

TIMEOUT_MS = MarketConfig().verify_timeout_ms


def decided_without_its_first_checker() -> tuple[MarketHarness, bytes, bytes, VerifyRequest]:
    """Frame 1's first checker stays silent past its verify timeout; other checkers
    pass the result and it is accepted; frame 2 keeps the job open."""
    harness = MarketHarness(frames=(1, 2), checkers=4)
    harness.start()
    harness.advance(MarketConfig().bid_window_ms)
    task_id, other = list(harness.renders)
    harness.finish_render(task_id)
    harness.finish_render(other)
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
