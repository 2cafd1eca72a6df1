"""Forced errors in the job machine: plants test checkers and cost workers nothing."""

from __future__ import annotations

import dataclasses

import pytest

from protocol.errors import IllegalMessage
from protocol.forced_errors import plant_kept, plant_position, plant_rate_ppm
from protocol.market import (
    CheckerFeeDue,
    FrameState,
    JobFinished,
    MarketConfig,
    PlantJudged,
    RecordPayment,
    RefundDue,
    RequestPlant,
    RequestVerification,
    TaskState,
    WorkerJudged,
)
from protocol.messages import Verdict
from protocol.reputation import Judgement
from protocol.verification import Tile
from tests.protocol.market.harness import (
    BUILD,
    RU_PER_FRAME,
    MarketHarness,
    address_for,
    tiles_for,
)

WINDOW_MS = MarketConfig().bid_window_ms
SECRET = b"\x42" * 32
ALWAYS = MarketConfig(plant_rate_ppm=1_000_000)


def planted(**kwargs: object) -> MarketHarness:
    """A job whose every checked result also gets a plant, its results delivered."""
    options: dict[str, object] = {"frames": (1,), "checkers": 3, "market": ALWAYS,
                                  "check_secret": SECRET, **kwargs}  # fmt: skip
    harness = MarketHarness(**options)  # type: ignore[arg-type]
    harness.start()
    harness.advance(WINDOW_MS)
    for task_id in list(harness.renders):
        harness.finish_render(task_id)
    return harness


def fees_to(harness: MarketHarness, checker: bytes) -> int:
    return sum(c.fee_wei for c in harness.commands(CheckerFeeDue) if c.checker == checker)  # type: ignore[union-attr]


def test_a_plant_looks_like_the_real_request_but_for_the_frame() -> None:
    harness = planted()
    (task_id,) = harness.verifications
    real_checker, real = harness.verifications[task_id]
    plant_checker, plant = harness.plants[task_id]
    assert plant_checker not in (real_checker, real.worker)
    assert plant.frame_cid != real.frame_cid
    # everything the checker reads off the request is the real one's, but for the tile
    # secret: each request its own draw, as two real checks of one task have too
    assert plant.tile_secret != real.tile_secret
    alike = dataclasses.replace(plant, frame_cid=real.frame_cid, tile_secret=real.tile_secret)
    assert alike == real


def test_the_plant_is_asked_for_before_the_real_check() -> None:
    """Drivers carry commands out in order, so the plant's checker is picked first and
    the real check's pick excludes it: picked second, a plant never reached the checker
    that took a task's real check, and a checker that is always free (a lazy one) took
    nearly every first check once checks waited for room (stop 40)."""
    harness = planted()
    (task_id,) = harness.verifications
    kinds = [type(s.command) for s in harness.log]
    assert kinds.index(RequestPlant) < kinds.index(RequestVerification)
    plant_checker, _ = harness.plants[task_id]
    assert plant_checker in harness.job.checkers_refused(task_id)


def test_no_plant_goes_out_for_a_result_no_longer_being_verified() -> None:
    """A plant that waited for a checker with room while its result was decided (or
    abandoned) is not sent: its fee would test a checker on a dead result (review of
    stop 41: every abandoned result's plant still went out)."""
    harness = planted()
    (task_id,) = harness.verifications
    plant_checker, _ = harness.plants[task_id]
    harness.plant_verdict(task_id, passed=False)
    harness.verdict(task_id, passed=True)
    if task_id in harness.verifications:  # a second checker, where one is left to ask
        harness.verdict(task_id, passed=True)
    assert harness.job.task_state(task_id) is TaskState.ACCEPTED
    address = harness.checker_addresses[plant_checker]
    late = harness.job.assign_plant(task_id, plant_checker, "bafkreiplantlate", harness.now_ms,
                                    address)  # fmt: skip
    assert late == []


def test_a_lazy_checker_that_passes_a_plant_loses_its_fee_and_is_struck() -> None:
    harness = planted()
    (task_id,) = harness.verifications
    lazy, _ = harness.plants[task_id]
    harness.plant_verdict(task_id, passed=True)
    (judged,) = harness.commands(PlantJudged)
    assert isinstance(judged, PlantJudged)
    assert (judged.checker, judged.missed) == (lazy, True)
    assert fees_to(harness, lazy) == 0
    assert harness.job.plant_misses == {lazy: 1}
    # the worker's real result is untouched by the plant: still being verified
    assert harness.job.task_state(task_id) is TaskState.VERIFYING
    harness.verdict(task_id, passed=True)
    assert set(harness.job.frame_states().values()) == {FrameState.ACCEPTED}
    # the fee withheld is refunded to the requester: nothing of it in the books
    (refund,) = harness.commands(RefundDue)
    assert isinstance(refund, RefundDue)
    spent = sum(harness.job.owed_wei_by_payee().values()) + sum(
        c.fee_wei
        for c in harness.commands(CheckerFeeDue)  # type: ignore[union-attr]
    )
    assert refund.refund_wei == harness.budget_wei - spent


def test_an_honest_checker_that_rejects_a_plant_is_paid_and_the_worker_is_not_charged() -> None:
    harness = planted()
    (task_id,) = harness.verifications
    honest, request = harness.plants[task_id]
    harness.plant_verdict(task_id, passed=False)
    (judged,) = harness.commands(PlantJudged)
    assert isinstance(judged, PlantJudged) and not judged.missed
    assert fees_to(harness, honest) == request.fee_wei
    assert harness.job.plant_misses == {}
    # a plant's rejection is no worker strike, no failed attempt, no revoked lease
    assert not [c for c in harness.commands(WorkerJudged)
                if c.judgement is not Judgement.ACCEPTED]  # type: ignore[union-attr]  # fmt: skip
    assert harness.job.task_state(task_id) is TaskState.VERIFYING
    harness.verdict(task_id, passed=True)
    payments = {c.payee_address: c.cumulative_wei for c in harness.commands(RecordPayment)}  # type: ignore[union-attr]
    price = harness.worker_prices_wei_per_ru[0] * RU_PER_FRAME
    assert payments[address_for("worker0")] == price  # its price, once, as without plants
    assert harness.commands(JobFinished)


def test_a_plant_verdict_must_commit_to_every_tile() -> None:
    harness = planted()
    (task_id,) = harness.verifications
    checker, request = harness.plants[task_id]
    short = Verdict(request.job_id, task_id, request.frame, request.worker, request.result_digest,
                    True, bytes(32), tiles_for(request), BUILD, "cpu", ())  # fmt: skip
    harness.send(checker, harness.requester, short)
    with pytest.raises(IllegalMessage):
        harness.pump()
    assert harness.job.plant_misses == {}


def test_a_job_ends_only_when_its_plants_are_decided() -> None:
    harness = planted()
    (task_id,) = harness.verifications
    harness.verdict(task_id, passed=True)
    assert set(harness.job.frame_states().values()) == {FrameState.ACCEPTED}
    assert harness.commands(JobFinished) == []  # the plant's verdict may still be owed
    checker, request = harness.plants[task_id]
    harness.plant_verdict(task_id, passed=False)
    assert harness.commands(JobFinished)
    assert fees_to(harness, checker) == request.fee_wei


def test_an_unanswered_plant_owes_nothing_and_strikes_nobody() -> None:
    harness = planted()
    (task_id,) = harness.verifications
    harness.verdict(task_id, passed=True)
    harness.plants.clear()  # its checker never answers
    harness.advance(MarketConfig().verify_timeout_ms + 1)
    assert harness.commands(PlantJudged) == []
    assert harness.job.plant_misses == {}
    (refund,) = harness.commands(RefundDue)
    spent = sum(harness.job.owed_wei_by_payee().values()) + sum(
        c.fee_wei
        for c in harness.commands(CheckerFeeDue)  # type: ignore[union-attr]
    )
    assert isinstance(refund, RefundDue) and refund.refund_wei == harness.budget_wei - spent


def test_the_plant_rate_is_the_requesters_draw() -> None:
    none = planted(frames=(1, 2, 3), market=MarketConfig(plant_rate_ppm=0))
    assert none.commands(RequestPlant) == []
    # The machine draws at probation's highest rate (one in two at the default 10 %)
    # and names the draw, so the driver can keep the plant at its checker's rate.
    some = planted(frames=tuple(range(1, 13)), market=MarketConfig())
    asked = {c.task_id: c.position for c in some.commands(RequestPlant)}  # type: ignore[union-attr]
    positions = {task_id: plant_position(SECRET, request.result_digest)
                 for task_id, (_, request) in some.verifications.items()}  # fmt: skip
    highest = plant_rate_ppm(0, MarketConfig().plant_rate_ppm)
    assert highest == 500_000
    assert asked == {t: p for t, p in positions.items() if plant_kept(p, highest)}
    assert 0 < len(asked) < len(positions)
    no_secret = planted(frames=(1, 2, 3), check_secret=None)
    assert no_secret.commands(RequestPlant) == []


def test_a_late_plant_verdict_is_neither_penalised_nor_taken_for_the_real_one() -> None:
    """Review finding: once a plant timed out, its checker's late verdict (a rejection:
    an honest checker rejects every plant) read as a verdict from a node we did not ask
    (penalty 50), and, had that checker since been asked for the real check, as the
    real check's verdict: an honest result rejected. Its holder is never asked for the
    real check, and its verdicts stay plant verdicts."""
    harness = planted()
    (task_id,) = harness.verifications
    holder, _ = harness.plants[task_id]
    harness.advance(MarketConfig().verify_timeout_ms + 1)  # plant and real check time out
    assert holder in harness.job.checkers_refused(task_id)
    address = harness.checker_addresses[holder]
    assert harness.job.assign_checker(task_id, holder, harness.now_ms, address) == []
    harness.plant_verdict(task_id, passed=False)  # late: unpaid, unpunished, no effect
    assert harness.rejected == []
    assert harness.commands(PlantJudged) == []
    assert fees_to(harness, holder) == 0
    assert harness.job.task_state(task_id) is TaskState.VERIFYING
    harness.verdict(task_id, passed=True)
    assert set(harness.job.frame_states().values()) == {FrameState.ACCEPTED}
    assert harness.commands(JobFinished)


def test_a_resent_plant_verdict_is_not_penalised() -> None:
    harness = planted()
    (task_id,) = harness.verifications
    harness.plant_verdict(task_id, passed=False)
    checker, verdict = harness.verdicts[-1]
    harness.send(checker, harness.requester, verdict)  # resent (a lost acknowledgement)
    harness.pump()
    assert harness.rejected == []
    assert len(harness.commands(PlantJudged)) == 1


def test_a_judged_plant_holder_may_sit_in_its_tasks_dispute_and_its_resend_is_no_vote() -> None:
    """Holders barred for good starved disputes: with three checkers, a liar's rejection
    and a plant at the third left one checker for a dispute of two, which ended "no
    majority before the timeout" against an honest worker (a flaky role test, one run in
    ten). Once its plant is judged the holder may sit in the dispute; a resend of its
    plant verdict then still counts for nothing."""
    harness = planted()
    (task_id,) = harness.verifications
    holder, _ = harness.plants[task_id]
    harness.plant_verdict(task_id, passed=False)  # judged: an honest holder rejects it
    plant_checker, plant_verdict = harness.verdicts[-1]
    harness.verdict(task_id, passed=False)  # the real checker lies
    harness.dispute(task_id)
    harness.pump()
    asked = {checker for checker, _ in harness.dispute_requests}
    assert len(asked) == 2 and holder in asked
    harness.send(plant_checker, harness.requester, plant_verdict)  # the plant verdict, resent
    harness.pump()
    assert harness.rejected == [] and harness.job.task_state(task_id) is TaskState.DISPUTED
    harness.dispute_verdict(0, True)
    harness.dispute_verdict(1, True)
    assert harness.job.task_state(task_id) is TaskState.OVERTURNED


def test_an_unjudged_plant_holder_sits_in_no_dispute_of_its_task() -> None:
    harness = planted()
    (task_id,) = harness.verifications
    holder, _ = harness.plants[task_id]  # its plant verdict is still due
    harness.verdict(task_id, passed=False)
    harness.dispute(task_id)
    harness.pump()
    assert holder not in {checker for checker, _ in harness.dispute_requests}
    assert holder in harness.job.checkers_refused(task_id)


def test_a_holder_that_passed_its_plant_gets_no_vote_in_the_tasks_dispute() -> None:
    """Review finding: once judged, any holder could sit in its task's dispute, a lazy
    one too (node and simulator leave struck checkers out; the machine did not)."""
    harness = planted()
    (task_id,) = harness.verifications
    holder, _ = harness.plants[task_id]
    harness.plant_verdict(task_id, passed=True)  # a miss
    harness.verdict(task_id, passed=False)
    harness.dispute(task_id)
    harness.pump()
    assert holder not in {checker for checker, _ in harness.dispute_requests}
    assert holder in harness.job.checkers_refused(task_id)


@pytest.mark.parametrize("changed", [0, 1])
def test_a_pass_that_looked_only_where_the_plant_changed_nothing_is_no_miss(changed: int) -> None:
    """Stop 45: a plant leaves blank the cells a transparent film shows nothing in
    (protocol.forced_errors.blank_cells). A pass whose cells were all blank is right
    about them: paid, no strike, no test (``void``); one changed cell among them makes
    it a miss (a claim needs every cell wrong: test_forced_errors.py -k transparent)."""
    harness = planted()
    (task_id,) = harness.verifications
    lazy, request = harness.plants[task_id]
    drawn = [Tile(t.y, t.x, t.width, t.height) for t in tiles_for(request)]
    plant = harness.job._plants[task_id]
    harness.job._plants[task_id] = dataclasses.replace(plant, blank=frozenset(drawn[changed:]))
    harness.plant_verdict(task_id, passed=True)
    (judged,) = harness.commands(PlantJudged)
    assert isinstance(judged, PlantJudged)
    assert (judged.missed, judged.void) == (bool(changed), not changed)
    assert (fees_to(harness, lazy) > 0) is not bool(changed)
    assert harness.job.plant_misses == ({lazy: 1} if changed else {})
