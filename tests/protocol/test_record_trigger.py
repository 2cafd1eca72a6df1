"""Which verdicts go in the public work record (protocol.record_trigger): one rule for the
node's JobRecord and the simulator's PublicRecord."""

from __future__ import annotations

from ledger.fraud import result_signer
from protocol.market import (
    CheckerFeeDue,
    Command,
    FrameAccepted,
    PlantJudged,
    RequestVerification,
    Send,
    SlashDue,
    TaskState,
)
from protocol.messages import LeaseRevoked
from protocol.record_trigger import VerdictUse, accepted_on_held, verdict_use
from tests.protocol.market.harness import MarketHarness
from tests.protocol.market.test_confirmation import CID, STAKE_WEI, WINDOW_MS, finish_signed
from tests.protocol.market.test_late_verdicts import two_results
from tests.protocol.market.test_result_sig import ESCROW

JOB, TASK, OTHER_TASK = b"j" * 32, b"t" * 32, b"u" * 32
CHECKER, OTHER_CHECKER, WORKER = b"c" * 32, b"d" * 32, b"w" * 32
PAID = CheckerFeeDue(JOB, TASK, CHECKER, 10)
DECIDED = FrameAccepted(JOB, 1, TASK, WORKER, "bafkframe", 100)


def use(commands: list[Command], recorded: bool = False) -> VerdictUse:
    return verdict_use(TASK, CHECKER, commands, recorded=recorded)


def test_the_verdict_whose_fee_is_paid_is_the_tasks_record_then_a_dispute_vote() -> None:
    assert use([PAID, DECIDED]) is VerdictUse.WORK
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
    assert use([PAID, other, DECIDED]) is VerdictUse.WORK


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


def test_a_paid_verdict_that_decides_nothing_is_not_public() -> None:
    """Found by tests/e2e/test_dispute.py under load (stop 39): the liar rejected a lone
    worker's result, the worker was shut out, and its other result, still being checked,
    was revoked; the liar's verdict on that one came later and was paid (an orphaned
    check: the checker could not know) but decided nothing. It went in the public record
    as a rejection no dispute could answer (the worker had been told "blocklisted", not
    rejected), and stood after the worker's dispute cleared it."""
    revoked = Send(WORKER, LeaseRevoked(JOB, TASK, "rejected by a checker", b"v" * 32))
    accepted = FrameAccepted(JOB, 1, TASK, WORKER, "bafkframe", 100)
    assert use([PAID, revoked]) is VerdictUse.WORK  # a rejection: the worker may dispute it
    assert use([PAID, accepted]) is VerdictUse.WORK  # a pass that accepts the frame
    assert use([PAID]) is VerdictUse.NONE  # paid, undecided: an orphaned check's verdict
    other = Send(WORKER, LeaseRevoked(JOB, OTHER_TASK, "rejected by a checker", b"v" * 32))
    assert use([PAID, other]) is VerdictUse.NONE
    plain = Send(WORKER, LeaseRevoked(JOB, TASK, "blocklisted"))  # no verdict to contest
    assert use([PAID, plain]) is VerdictUse.NONE
    assert use([PAID], recorded=True) is VerdictUse.DISPUTE  # a dispute's vote decides nothing alone


def test_the_machines_orphaned_verdict_is_not_public() -> None:
    """The attack above on the real machine: one worker, two results out for checks;
    the first is rejected and the worker shut out; the second's rejecting verdict, on a
    revoked task, is paid and must not become its WorkRecord."""
    harness, first, second = two_results(checkers=4, worker_prices_wei_per_ru=(100,),
                                         worker_slots=2)  # fmt: skip
    harness.verdict(first, False)
    assert harness.job.task_state(second) is TaskState.REVOKED  # shut out while checked
    checker, request = harness.verifications.pop(second)
    verdict = harness.make_verdict(checker, request, False)
    commands = harness.job.receive(checker, verdict, harness.now_ms)
    assert any(isinstance(c, CheckerFeeDue) for c in commands)  # its fee is still paid
    assert verdict_use(second, checker, commands, recorded=False) is VerdictUse.NONE


def test_a_rejection_that_opens_the_requesters_confirmation_is_the_tasks_record() -> None:
    """The requester disputes a staked worker's rejection itself (its confirmation): the
    rejection asks the dispute's checkers in the same breath, and it is still the task's
    WorkRecord, the votes its DisputeRecord's (review of stop 39: with the decision test
    after the next-checker test, an upheld confirmation left no record at all)."""
    harness = MarketHarness(frames=(1,), checkers=4, escrow=ESCROW, result_signer=result_signer)
    harness.start()
    harness.advance(WINDOW_MS)
    (task_id,) = harness.renders
    harness.job.set_stake(harness.job._tasks[task_id].payee_address, STAKE_WEI)
    finish_signed(harness, task_id, CID)
    checker, request = harness.verifications.pop(task_id)
    commands = harness.job.receive(checker, harness.make_verdict(checker, request, False),
                                   harness.now_ms)  # fmt: skip
    assert any(isinstance(c, RequestVerification) for c in commands)  # the confirmation
    assert verdict_use(task_id, checker, commands, recorded=False) is VerdictUse.WORK
    harness._requester_commands(commands)
    harness.pump()
    voter, ask = harness.dispute_requests[0]
    votes = harness.job.receive(voter, harness.make_verdict(voter, ask, False), harness.now_ms)
    assert any(isinstance(c, SlashDue) for c in votes)  # upheld by the majority
    assert verdict_use(task_id, voter, votes, recorded=True) is VerdictUse.DISPUTE
