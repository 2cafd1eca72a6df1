"""The job machine follows the check plan and the reputation view (issue 16).

A result is checked as ``plan_frame_check`` says (share and ``k`` from the
assurance and the worker's record, the draw from the job's secret), the
checker is told ``k``, awards weigh reputation with price, a worker whose
record blocklists it gets nothing, and what the machine judged comes out as
``WorkerJudged`` for the driver's ``ReputationBook``.
"""

from __future__ import annotations

import hashlib

from protocol.market import FrameAccepted, JobMachine, MarketConfig, WorkerJudged
from protocol.messages import Assurance
from protocol.reputation import DAY_MS, Judgement, ReputationBook, WorkerRecord, score
from protocol.verification import plan_check, plan_frame_check
from tests.protocol.market.harness import START_MS, MarketHarness

WINDOW_MS = MarketConfig().bid_window_ms
SECRET = hashlib.sha256(b"the requester's check secret").digest()
TRUSTED = WorkerRecord(accepted=2_000, first_seen_ms=START_MS - 60 * DAY_MS)
OFFENDER = WorkerRecord(accepted=10, rejected=3, first_seen_ms=START_MS - 60 * DAY_MS)


def harness_with(
    records: dict[int, WorkerRecord], *, secret: bytes | None = SECRET, **kwargs: object
) -> MarketHarness:
    harness = MarketHarness(**kwargs)  # type: ignore[arg-type]
    harness.job = JobMachine(
        harness.job_id, harness.spec, harness.market, harness.now_ms, check_secret=secret
    )
    workers = list(harness.workers)
    for index, record in records.items():
        harness.job.set_worker_record(workers[index], record)
    harness.start()
    harness.advance(WINDOW_MS)
    return harness


def run_to_end(harness: MarketHarness) -> None:
    for _ in range(1_000):
        if not harness.renders and not harness.verifications:
            return
        for task_id in list(harness.renders):
            harness.finish_render(task_id)
        for task_id in list(harness.verifications):
            harness.verdict(task_id, True)
    raise AssertionError("the job never settled")


def test_a_trusted_worker_is_sampled_as_planned_never_zero() -> None:
    harness = harness_with(
        {0: TRUSTED}, frames=tuple(range(40)), worker_prices_wei_per_ru=(100,), worker_slots=4
    )
    asked: dict[bytes, int] = {}
    for _ in range(100):
        if not harness.renders and not harness.verifications:
            break
        for task_id in list(harness.renders):
            harness.finish_render(task_id)
        for task_id, (_, request) in list(harness.verifications.items()):
            asked[task_id] = request.tiles
            harness.verdict(task_id, True)
    accepted = harness.commands(FrameAccepted)
    assert len(accepted) == 40
    reputation = score(TRUSTED.history(harness.now_ms))
    plan = plan_check(Assurance.NORMAL, reputation)
    assert 0.25 <= plan.check_probability < 0.27 and plan.k == 8
    expected = {
        c.task_id: plan_frame_check(
            Assurance.NORMAL, score(TRUSTED.history(harness.now_ms)), SECRET,
            harness.job._tasks[c.task_id].result_digest,
        )
        for c in accepted
    }  # fmt: skip
    assert asked == {t: k for t, k in expected.items() if k}  # exactly the planned ones, k = 8
    assert 0 < len(asked) < 40  # sampled: some checked, not all


def test_a_fresh_worker_has_every_result_checked_with_k_fresh() -> None:
    harness = harness_with({}, worker_prices_wei_per_ru=(100,), worker_slots=4)
    for task_id in list(harness.renders):
        harness.finish_render(task_id)
    tiles = [request.tiles for _, request in harness.verifications.values()]
    assert tiles == [32, 32, 32]  # normal's k_fresh, for each of its two checkers


def test_without_a_secret_every_result_is_checked() -> None:
    harness = harness_with({0: TRUSTED}, secret=None, worker_prices_wei_per_ru=(100,))
    run_to_end(harness)
    judged = [c for c in harness.commands(WorkerJudged) if isinstance(c, WorkerJudged)]
    assert [c.judgement for c in judged] == [Judgement.ACCEPTED] * 3


def awarded_to(harness: MarketHarness) -> set[bytes]:
    return {award.worker for _, award in harness.awards()}


def test_reputation_changes_an_award() -> None:
    prices = (100, 110)  # worker 0 is the cheaper bid
    cheap, dear = MarketHarness(worker_prices_wei_per_ru=prices).workers
    plain = harness_with({}, frames=(1,), worker_prices_wei_per_ru=prices)
    assert awarded_to(plain) == {cheap}
    trusted_dear = harness_with({1: TRUSTED}, frames=(1,), worker_prices_wei_per_ru=prices)
    assert awarded_to(trusted_dear) == {dear}
    award = next(a for _, a in trusted_dear.awards())
    assert award.price_wei == 110 * 10  # pay-as-bid: the weight ranks, never pays


def test_a_worker_blocklisted_by_its_record_is_never_awarded() -> None:
    harness = harness_with({0: OFFENDER}, worker_prices_wei_per_ru=(100, 110), worker_slots=3)
    run_to_end(harness)
    offender = next(iter(harness.workers))
    assert offender not in awarded_to(harness) and len(harness.commands(FrameAccepted)) == 3


def test_judgements_come_out_for_the_drivers_book() -> None:
    harness = harness_with({}, frames=(1, 2), worker_prices_wei_per_ru=(100, 110, 120))
    rendered, failed = list(harness.renders)
    harness.finish_render(rendered)
    harness.fail_render(failed)
    harness.verdict(rendered, False)
    judged = [(c.worker, c.judgement) for c in harness.commands(WorkerJudged)]  # type: ignore[attr-defined]
    cheat, flaky = harness.job._tasks[rendered].worker, harness.job._tasks[failed].worker
    assert (cheat, Judgement.REJECTED) in judged and (flaky, Judgement.FAILED) in judged
    book = ReputationBook()
    for worker, judgement in judged:
        book.judge(worker, judgement, harness.now_ms)
    assert book.history(cheat, harness.now_ms).rejected == 1
    assert book.history(flaky, harness.now_ms).failed == 1


def test_a_verdict_on_fewer_tiles_than_asked_is_refused() -> None:
    import dataclasses

    import pytest

    from protocol.errors import IllegalMessage
    from protocol.market import TaskState
    from tests.protocol.market.harness import tiles_for

    harness = harness_with({}, frames=(1,), worker_prices_wei_per_ru=(100,))
    (task_id,) = list(harness.renders)
    harness.finish_render(task_id)
    checker, request = harness.verifications[task_id]
    assert request.tiles == 32
    skimped = dataclasses.replace(request, tiles=4)  # a checker that looked at 4 of 32
    harness.verifications[task_id] = (checker, skimped)
    with pytest.raises(IllegalMessage):
        harness.verdict(task_id, True)
    assert harness.job.task_state(task_id) is TaskState.VERIFYING  # nothing changed
    assert tiles_for(request) and len(tiles_for(request)) == 32
    harness.verifications[task_id] = (checker, request)
    harness.verdict(task_id, True)
    assert harness.job.task_state(task_id) is TaskState.ACCEPTED
