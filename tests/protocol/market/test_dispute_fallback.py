"""A dispute in a small network: the second check's rejection of what the first checker
passed needs ``dispute_checkers`` (2) checkers not yet used on the result. With three
checkers in all only one is left, the dispute could not be staffed, its timeout upheld
the rejection, and one lying checker took an honest worker's frame whenever it drew the
second check (stop 37's finding; tests/roles/test_slashing.py needed a fourth checker).
A dispute that reaches no fresh checker may now ask one used before on the result that
did not reject it (``JobMachine.dispute_fallback``): the first check's passer, on the
dispute's own tiles."""

from __future__ import annotations

from protocol.market import (
    CheckerFeeDue,
    DisputeResolved,
    FrameAccepted,
    MarketConfig,
    RequestVerification,
    TaskState,
)
from protocol.messages import Assurance, VerifyRequest
from protocol.tile_secret import CheckKind
from tests.protocol.market.harness import MarketHarness
from tests.protocol.market.test_second_checker import delivered, requests


def rejected_at_the_second_check(checkers: int) -> tuple[MarketHarness, bytes, bytes, bytes]:
    """A fresh worker's result at ``normal``: the first checker passes, the second
    rejects, the worker disputes."""
    harness, task_id = delivered(Assurance.NORMAL, checkers=checkers)
    passer, _ = harness.verifications[task_id]
    harness.verdict(task_id, True)
    rejecter, _ = harness.verifications[task_id]
    harness.verdict(task_id, False)
    assert harness.job.task_state(task_id) is TaskState.REJECTED
    harness.dispute(task_id)
    assert harness.job.task_state(task_id) is TaskState.DISPUTED
    return harness, task_id, passer, rejecter


def test_a_liars_rejection_at_the_second_check_is_overturned_among_three_checkers() -> None:
    # the attack: the liar draws the second check of an honest result, in a network of
    # three checkers; before, only one fresh checker was left, the dispute timed out
    # upheld and the honest worker lost the frame
    harness, task_id, passer, rejecter = rejected_at_the_second_check(checkers=3)
    asked = [c for c, _ in harness.dispute_requests]
    assert len(asked) == 2 and rejecter not in asked
    assert passer in asked  # the fresh one could not fill the dispute alone
    harness.dispute_verdict(0, True)
    harness.dispute_verdict(1, True)
    assert harness.job.task_state(task_id) is TaskState.OVERTURNED
    assert [c.task_id for c in harness.commands(FrameAccepted)] == [task_id]
    (resolved,) = harness.commands(DisputeResolved)
    assert not resolved.upheld and resolved.paid


def test_the_passer_asked_in_a_dispute_draws_the_disputes_tiles_and_is_paid_for_them() -> None:
    harness, task_id, passer, _ = rejected_at_the_second_check(checkers=3)
    first, again = [r for c, r in requests(harness, task_id) if c == passer]
    assert again.tile_secret != first.tile_secret
    assert again.tile_secret == harness.job._tile_secret(
        harness.job._tasks[task_id], passer, CheckKind.DISPUTE
    )
    before = [c.checker for c in harness.commands(CheckerFeeDue)].count(passer)
    index = [c for c, _ in harness.dispute_requests].index(passer)
    harness.dispute_verdict(index, True)
    assert [c.checker for c in harness.commands(CheckerFeeDue)].count(passer) == before + 1


def test_a_colluding_passer_cannot_overturn_an_honest_rejection_alone() -> None:
    # the colluder passed its partner's cheat; the honest second checker rejected it and
    # the cheater disputes: the colluder is asked again, the honest third rejects
    harness, task_id, colluder, _ = rejected_at_the_second_check(checkers=3)
    honest = next(i for i, (c, _) in enumerate(harness.dispute_requests) if c != colluder)
    ally = next(i for i, (c, _) in enumerate(harness.dispute_requests) if c == colluder)
    harness.dispute_verdict(ally, True)
    assert harness.job.task_state(task_id) is TaskState.DISPUTED  # one pass, one rejection
    harness.dispute_verdict(honest, False)
    assert harness.job.task_state(task_id) is TaskState.REJECTED
    (resolved,) = harness.commands(DisputeResolved)
    assert resolved.upheld
    assert not harness.commands(FrameAccepted)


def test_fresh_checkers_are_asked_before_a_passer() -> None:
    harness, task_id, passer, rejecter = rejected_at_the_second_check(checkers=4)
    asked = {c for c, _ in harness.dispute_requests}
    assert len(asked) == 2 and not asked & {passer, rejecter}
    assert harness.job.dispute_fallback(task_id) == {passer}


def test_the_rejecter_is_never_a_fallback_and_two_checkers_cannot_staff_a_dispute() -> None:
    harness, task_id, passer, rejecter = rejected_at_the_second_check(checkers=2)
    assert harness.job.dispute_fallback(task_id) == {passer} - {
        c for c, _ in harness.dispute_requests
    }
    assert [c for c, _ in harness.dispute_requests] == [passer]
    assert rejecter not in harness.job.dispute_fallback(task_id)
    harness.dispute_verdict(0, True)  # one pass against the rejection: no majority
    harness.advance(MarketConfig().verify_timeout_ms)
    assert harness.job.task_state(task_id) is TaskState.REJECTED


def test_the_passers_first_verdict_resent_during_the_dispute_is_neither_a_vote_nor_a_fault() -> None:
    harness, task_id, passer, _ = rejected_at_the_second_check(checkers=3)
    _, first_pass = next((c, v) for c, v in harness.verdicts if c == passer)
    assert harness.strict  # a refusal would raise: a resend must not be scored
    harness.send(passer, harness.requester, first_pass)
    harness.pump()
    assert harness.job.task_state(task_id) is TaskState.DISPUTED
    assert passer not in harness.job._tasks[task_id].dispute_votes
    fresh = next(i for i, (c, _) in enumerate(harness.dispute_requests) if c != passer)
    harness.dispute_verdict(fresh, True)
    assert harness.job.task_state(task_id) is TaskState.DISPUTED  # the resend did not count


def test_a_result_not_in_dispute_has_no_fallback() -> None:
    harness, task_id = delivered(Assurance.NORMAL, checkers=3)
    harness.verdict(task_id, True)
    assert harness.job.dispute_fallback(task_id) == frozenset()
    ask = [c for c in harness.commands(RequestVerification) if c.task_id == task_id][-1]
    assert ask.exclude  # the second check still excludes the passer


def silent_then_rejected(checkers: int) -> tuple[MarketHarness, bytes, bytes, VerifyRequest]:
    """A result whose first checker stays silent (its request kept) and is not asked
    again, then passed and rejected by two others and disputed; the dispute's fallback
    seat goes to the silent one: (harness, task, the silent one, its first request)."""
    harness, task_id = delivered(Assurance.NORMAL, checkers=checkers)
    silent, request = harness.verifications.pop(task_id)  # asked, and slow
    pick = harness._pick_checker

    def steered(worker: bytes, exclude: frozenset[bytes]) -> bytes | None:
        if harness.job.task_state(task_id) is not TaskState.DISPUTED:
            return pick(worker, exclude | {silent})
        if silent not in exclude:  # the fallback pick (exclude less dispute_fallback)
            return silent
        return pick(worker, exclude)

    harness._pick_checker = steered  # type: ignore[method-assign]
    harness.advance(MarketConfig().verify_timeout_ms)
    harness.verdict(task_id, True)
    harness.verdict(task_id, False)
    harness.dispute(task_id)
    return harness, task_id, silent, request


def test_a_silent_checker_asked_in_the_dispute_is_not_scored_for_its_late_first_answer() -> None:
    # review of stop 38 (MEDIUM): the silent one is a fallback too; its slow answer to
    # its first request then came on the check's tiles, not the dispute's, and was
    # refused with 50 points, pushing an honest slow checker towards a ban
    harness, task_id, silent, request = silent_then_rejected(checkers=3)
    assert silent in {c for c, _ in harness.dispute_requests}
    late = harness.make_verdict(silent, request, True)  # its first request's tiles
    harness.send(silent, harness.requester, late)
    harness.pump()  # strict: a refusal would raise
    assert silent not in harness.job._tasks[task_id].dispute_votes
    assert harness.job.task_state(task_id) is TaskState.DISPUTED


def test_checkers_used_before_take_at_most_half_the_disputes_seats() -> None:
    # the passer and the silent one are both fallbacks, but with the rejecter's verdict
    # two of them would be the majority without any fresh checker
    harness, task_id, silent, _ = silent_then_rejected(checkers=3)
    task = harness.job._tasks[task_id]
    assert [c for c, _ in harness.dispute_requests] == [silent]  # no fresh checker left
    assert task.passed_by and not task.passed_by & task.dispute_checkers  # the passer: no seat
    assert harness.job.dispute_fallback(task_id) == frozenset()


def test_a_checker_assigned_to_the_dispute_twice_is_asked_once() -> None:
    # a driver's race: two requests pick the same checker (review of stop 38)
    harness, task_id, _, _ = rejected_at_the_second_check(checkers=4)
    first, _ = harness.dispute_requests[0]
    address = harness.checker_addresses[first]
    assert harness.job.assign_checker(task_id, first, harness.now_ms, address) == []
