"""Which verdicts go in the public work record (protocol.record_trigger): one rule for the
node's JobRecord and the simulator's PublicRecord."""

from __future__ import annotations

from protocol.market import (
    CheckerFeeDue,
    Command,
    FrameAccepted,
    PlantJudged,
    RequestVerification,
)
from protocol.record_trigger import VerdictUse, accepted_on_held, verdict_use

JOB, TASK, OTHER_TASK = b"j" * 32, b"t" * 32, b"u" * 32
CHECKER, OTHER_CHECKER, WORKER = b"c" * 32, b"d" * 32, b"w" * 32
PAID = CheckerFeeDue(JOB, TASK, CHECKER, 10)


def use(commands: list[Command], recorded: bool = False) -> VerdictUse:
    return verdict_use(TASK, CHECKER, commands, recorded=recorded)


def test_the_verdict_whose_fee_is_paid_is_the_tasks_record_then_a_dispute_vote() -> None:
    assert use([PAID]) is VerdictUse.WORK
    assert use([PAID], recorded=True) is VerdictUse.DISPUTE


def test_an_unpaid_verdict_or_one_paid_to_another_checker_or_task_is_not_public() -> None:
    assert use([]) is VerdictUse.NONE
    assert use([CheckerFeeDue(JOB, TASK, OTHER_CHECKER, 10)]) is VerdictUse.NONE
    assert use([CheckerFeeDue(JOB, OTHER_TASK, CHECKER, 10)]) is VerdictUse.NONE


def test_a_pass_before_the_plans_next_checker_is_held_until_the_task_is_decided() -> None:
    ask = RequestVerification(TASK, 1, WORKER, b"r" * 32, "bafkframe")
    assert use([PAID, ask]) is VerdictUse.HELD
    assert use([PAID, ask], recorded=True) is VerdictUse.NONE
    other = RequestVerification(OTHER_TASK, 2, WORKER, b"r" * 32, "bafkframe")
    assert use([PAID, other]) is VerdictUse.WORK


def test_a_task_accepted_with_no_further_verdict_is_recorded_with_its_held_pass() -> None:
    # no other checker could be asked (JobMachine.checkers_exhausted): the frame is
    # accepted on the pass it had, and that pass is what the public record is told
    accepted = FrameAccepted(JOB, 1, TASK, WORKER, "bafkframe", 100)
    assert accepted_on_held([accepted], [TASK, OTHER_TASK]) == [TASK]
    assert accepted_on_held([accepted], [OTHER_TASK]) == []  # accepted on a verdict: its own
    assert accepted_on_held([PAID], [TASK]) == []


def test_a_verdict_on_a_plant_is_never_public() -> None:
    """A plant's verdict is paid too (when it rejected the plant), but it is a test of the
    checker, not a word about the worker: the record would tell checkers which was real."""
    judged = PlantJudged(JOB, TASK, CHECKER, False, b"v" * 32)
    assert use([PAID, judged]) is VerdictUse.NONE
    assert use([PAID, judged], recorded=True) is VerdictUse.NONE
