"""Reputation: monotone, bounded, and a fresh identity is never better off."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from protocol.errors import LocalProtocolError
from protocol.reputation import (
    DAY_MS,
    FRESH,
    WorkerHistory,
    award_weight,
    blocklisted,
    score,
)

counts = st.integers(0, 10**6)
histories = st.builds(WorkerHistory, counts, counts, counts, counts, st.integers(0, 10**12))


@given(histories)
def test_bounded(h: WorkerHistory) -> None:
    assert 0.0 <= score(h) < 1.0


@given(histories, st.integers(1, 10**4))
def test_monotone_in_accepted_and_age(h: WorkerHistory, more: int) -> None:
    assert score(
        WorkerHistory(h.accepted + more, h.rejected, h.failed, h.timed_out, h.age_ms)
    ) >= score(h)
    assert score(
        WorkerHistory(h.accepted, h.rejected, h.failed, h.timed_out, h.age_ms + more)
    ) >= score(h)


@given(histories, st.integers(1, 10**4))
def test_anti_monotone_in_every_bad_counter(h: WorkerHistory, more: int) -> None:
    base = score(h)
    assert (
        score(WorkerHistory(h.accepted, h.rejected + more, h.failed, h.timed_out, h.age_ms)) <= base
    )
    assert (
        score(WorkerHistory(h.accepted, h.rejected, h.failed + more, h.timed_out, h.age_ms)) <= base
    )
    assert (
        score(WorkerHistory(h.accepted, h.rejected, h.failed, h.timed_out + more, h.age_ms)) <= base
    )


@given(histories)
def test_whitewashing_never_helps(h: WorkerHistory) -> None:
    """A new identity is treated no better than any existing one, however bad."""
    assert score(FRESH) == 0.0
    assert score(FRESH) <= score(h)
    assert award_weight(score(FRESH)) <= award_weight(score(h))


def test_reputation_takes_work_and_time() -> None:
    young = WorkerHistory(accepted=1000, age_ms=DAY_MS)
    assert score(young) < 0.1  # lots of work, no history yet
    old_idle = WorkerHistory(accepted=0, age_ms=365 * DAY_MS)
    assert score(old_idle) == 0.0  # time alone earns nothing
    established = WorkerHistory(accepted=90, age_ms=30 * DAY_MS)
    assert score(established) == pytest.approx(0.9)


def test_one_rejection_costs_more_than_many_failures() -> None:
    base = WorkerHistory(accepted=200, age_ms=30 * DAY_MS)
    one_reject = WorkerHistory(accepted=200, rejected=1, age_ms=30 * DAY_MS)
    ten_failures = WorkerHistory(accepted=200, failed=10, age_ms=30 * DAY_MS)
    assert score(one_reject) < score(ten_failures) < score(base)


def test_blocklist_needs_repeats_and_a_share() -> None:
    assert not blocklisted(WorkerHistory(rejected=2))
    assert blocklisted(WorkerHistory(rejected=3))
    assert not blocklisted(WorkerHistory(accepted=1000, rejected=3))  # 0.3 %: bad luck
    assert blocklisted(WorkerHistory(accepted=20, rejected=3))


def test_history_refuses_negative_counts() -> None:
    with pytest.raises(LocalProtocolError):
        WorkerHistory(accepted=-1)
    with pytest.raises(LocalProtocolError):
        award_weight(1.5)


def test_the_book_folds_judgements_and_a_won_dispute_strikes_a_rejection() -> None:
    from protocol.reputation import Judgement, ReputationBook

    book = ReputationBook()
    w = b"w" * 32
    assert book.history(w, 5) == FRESH
    for judgement in (Judgement.ACCEPTED, Judgement.REJECTED, Judgement.FAILED,
                      Judgement.TIMED_OUT):  # fmt: skip
        book.judge(w, judgement, 1_000)
    assert book.history(w, 1_000 + DAY_MS) == WorkerHistory(1, 1, 1, 1, DAY_MS)
    book.judge(w, Judgement.CLEARED, 2_000)
    book.judge(w, Judgement.CLEARED, 2_000)  # never below zero
    record = book.record(w)
    assert record is not None and record.rejected == 0 and record.first_seen_ms == 1_000


def test_the_book_is_bounded_and_drops_the_least_recently_judged() -> None:
    from protocol.reputation import Judgement, ReputationBook

    book = ReputationBook(max_workers=3)
    ids = [bytes([i]) * 32 for i in range(5)]
    for worker in ids[:3]:
        book.judge(worker, Judgement.ACCEPTED, 0)
    book.judge(ids[0], Judgement.ACCEPTED, 1)  # judged again: most recent now
    book.judge(ids[3], Judgement.ACCEPTED, 2)
    book.judge(ids[4], Judgement.ACCEPTED, 3)
    assert len(book) == 3
    assert book.record(ids[1]) is None and book.record(ids[2]) is None
    assert book.history(ids[0], 1).accepted == 2
