"""A staked worker's rejected result is confirmed by the requester itself, so that a
cheater that never disputes is claimed too.

The attack: only an upheld dispute leads to a claim (SlashDue), and a worker disputes
only when it chooses to. A rational cheater knows which results it faked and never
disputes their rejections, so its stake was never at risk: a caught cheat cost it the
frame and nothing more (the simulator's cheaters dispute every rejection, so the
adversary table showed them slashed). Now the requester opens the dispute itself when
half the worker's confirmed stake is worth more than the dispute's fees: two more
checkers decide with the rejecter, as in a worker's dispute; upheld by their majority,
the stake is claimed; overturned, the worker is paid.
"""

from __future__ import annotations

import pytest

from ledger.fraud import result_ref, result_signer, sign
from protocol.market import (
    DisputeResolved,
    FrameAccepted,
    JobFinished,
    MarketConfig,
    RequestVerification,
    SlashDue,
    TaskState,
)
from protocol.slashing import slash_split, upheld_rejecters
from tests.protocol.market.harness import MarketHarness
from tests.protocol.market.test_result_sig import ESCROW, cid_of

WINDOW_MS = MarketConfig().bid_window_ms
CID = cid_of(b"a frame")
STAKE_WEI = 10**17


def rejected(stake_wei: int, **kwargs: object) -> tuple[MarketHarness, bytes]:
    """A signed result of an escrowed job, rejected by its checker; its worker holds
    ``stake_wei`` and does not dispute."""
    harness = MarketHarness(frames=(1,), checkers=4, escrow=ESCROW, result_signer=result_signer,
                            **kwargs)  # type: ignore[arg-type]
    harness.start()
    harness.advance(WINDOW_MS)
    task_id = next(iter(harness.renders))
    harness.job.set_stake(harness.job._tasks[task_id].payee_address, stake_wei)
    finish_signed(harness, task_id, CID)
    harness.verdict(task_id, False)
    return harness, task_id


def finish_signed(harness: MarketHarness, task_id: bytes, cid: str) -> None:
    worker = harness.renders[task_id]
    ref = result_ref(harness.spec, harness.job_id, task_id, harness.job._tasks[task_id].frame, cid)
    assert ref is not None
    harness.finish_render(task_id, cid=cid, result_sig=sign(ref, harness.payment_keys[worker]))


def dispute_asks(harness: MarketHarness, task_id: bytes) -> list[RequestVerification]:
    return [c for c in harness.commands(RequestVerification)
            if isinstance(c, RequestVerification) and c.task_id == task_id and c.exclude]  # fmt: skip


def test_a_staked_cheater_that_never_disputes_is_claimed() -> None:
    harness, task_id = rejected(STAKE_WEI)
    assert harness.job.task_state(task_id) is TaskState.DISPUTED  # on main: REJECTED, no more
    assert len(dispute_asks(harness, task_id)) == MarketConfig().dispute_checkers
    harness.dispute_verdict(0, False)  # the rejecter and one more: a majority
    (due,) = harness.commands(SlashDue)
    assert isinstance(due, SlashDue)
    task = harness.job._tasks[task_id]
    assert due.worker == task.worker and due.worker_address == task.payee_address
    assert len(due.rejecters) == 2


def test_a_worker_without_stake_is_not_confirmed_nor_one_whose_stake_is_worth_less() -> None:
    for stake_wei in (0, 1):
        harness, task_id = rejected(stake_wei)
        assert harness.job.task_state(task_id) is TaskState.REJECTED
        assert dispute_asks(harness, task_id) == []


@pytest.mark.parametrize("worker_disputes", [False, True])
def test_an_honest_result_rejected_by_one_checker_is_paid_when_the_confirmation_passes_it(
    worker_disputes: bool,
) -> None:
    """The worker was offline and did not dispute a false rejection (or disputed while
    the confirmation was open: it is heard already): the requester's confirmation
    overturns it, and the frame is accepted and paid from it, as after a won dispute
    (not buying it back would spare nothing: a rational cheater disputes too, and an
    honest worker whose own dispute came late lost the frame)."""
    harness, task_id = rejected(STAKE_WEI)
    if worker_disputes:
        harness.dispute(task_id)
    harness.dispute_verdict(0, True)
    harness.dispute_verdict(1, True)
    assert harness.commands(SlashDue) == []
    assert [c.task_id for c in harness.commands(FrameAccepted)] == [task_id]  # type: ignore[union-attr]
    (resolved,) = harness.commands(DisputeResolved)
    assert isinstance(resolved, DisputeResolved) and not resolved.upheld and resolved.paid


def test_a_rejection_that_ends_the_job_is_still_confirmed() -> None:
    """The rejection used the frame's last attempt: the job settled at once and a
    confirmation opened after it found the job closed (review of stop 36)."""
    harness, task_id = rejected(STAKE_WEI, market=MarketConfig(max_attempts_per_frame=1))
    assert harness.commands(JobFinished) == []  # it waits for the confirmation
    assert harness.job.task_state(task_id) is TaskState.DISPUTED
    harness.dispute_verdict(0, False)
    assert len(harness.commands(SlashDue)) == 1
    (finished,) = harness.commands(JobFinished)
    assert isinstance(finished, JobFinished)


def test_a_job_waits_for_its_open_dispute_before_it_ends() -> None:
    """The rejected frame was rendered again and accepted before the confirmation's
    verdicts came: the job ended at once and its dispute with it, upheld unheard, so the
    cheat's last frame could never be claimed."""
    harness, task_id = rejected(STAKE_WEI)
    (retry,) = [t for t in harness.renders if t != task_id]
    finish_signed(harness, retry, cid_of(b"the frame again"))
    harness.verdict(retry, True)
    assert harness.commands(JobFinished) == []  # the dispute is open
    harness.dispute_verdict(0, False)
    assert len(harness.commands(SlashDue)) == 1
    (finished,) = harness.commands(JobFinished)
    assert isinstance(finished, JobFinished)


def test_a_job_waiting_for_a_dispute_past_its_deadline_ends_it_there() -> None:
    """Checks slower than the job (verify timeout past its deadline): the job that waited
    for its dispute had nothing left to do at the deadline, and its timer fired there for
    ever (the simulator hung in tests/simulations/test_disputes.py)."""
    slow = MarketConfig(verify_timeout_ms=10 * 3_600_000)
    harness, task_id = rejected(STAKE_WEI, market=slow)
    (retry,) = [t for t in harness.renders if t != task_id]
    finish_signed(harness, retry, cid_of(b"the frame again"))
    harness.verdict(retry, True)
    assert harness.commands(JobFinished) == []
    harness.advance(harness.spec.deadline_ms - harness.now_ms + 1)
    (finished,) = harness.commands(JobFinished)
    assert isinstance(finished, JobFinished)
    (resolved,) = harness.commands(DisputeResolved)
    assert isinstance(resolved, DisputeResolved) and resolved.upheld
    assert harness.commands(SlashDue) == []  # no majority: nothing claimed


def test_the_confirmation_weighs_the_requesters_part_of_a_slash() -> None:
    """What an executed claim pays the requester is a quarter of the taken stake (half is
    burned, half of the rest goes to the claimers: ``protocol.slashing.slash_split``); a
    confirmation is opened only when that part is worth more than the dispute's fees."""
    probe, task_id = rejected(0)
    fees_wei = MarketConfig().dispute_checkers * probe.job._tasks[task_id].fee_wei
    claimers = upheld_rejecters(MarketConfig().dispute_checkers)
    worth = next(s for s in range(4 * fees_wei, 4 * fees_wei + 8)
                 if slash_split(s, claimers).requester_wei > fees_wei)  # fmt: skip
    for stake_wei, confirmed in ((worth - 1, False), (worth, True)):
        harness, task_id = rejected(stake_wei)
        assert (harness.job.task_state(task_id) is TaskState.DISPUTED) is confirmed
