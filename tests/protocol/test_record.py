"""The public work record: the attacks first (defamation, puppets speaking for others), then bounds."""

from __future__ import annotations

import hashlib
import itertools
from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocol import NodeKey, decode_envelope, encode_envelope
from protocol.errors import RemoteProtocolError
from protocol.messages import (
    ClosedOutcome,
    JobAnnounce,
    JobClosed,
    Result,
    TileEvidence,
    Verdict,
    WorkRecord,
    job_id_of,
)
from protocol.record import Added, RecordBook, RecordConfig, open_record
from protocol.reputation import score
from tests.protocol.vectors_samples import NOW_MS, sample_spec

_nonces = itertools.count(1)
TILES = (TileEvidence(0, 0, 32, 32, 60_000, 0),)


def signed(key: NodeKey, message: object, now_ms: int = NOW_MS) -> bytes:
    return encode_envelope(key, message, nonce=next(_nonces), now_ms=now_ms)  # type: ignore[arg-type]


class World:
    """A requester's job, an honest worker and a checker; records built as the node builds them."""

    def __init__(self) -> None:
        self.requester, self.worker, self.checker = (NodeKey.generate() for _ in range(3))
        self.spec = replace(sample_spec(), requester=self.requester.node_id.raw,
                            frames=tuple(range(1, 101)))  # fmt: skip
        self.job = job_id_of(self.spec)
        self.announce = JobAnnounce(self.job, self.spec)

    def task(self, frame: int) -> bytes:
        return hashlib.sha256(self.job + frame.to_bytes(4, "big")).digest()

    def result(self, frame: int, worker: NodeKey | None = None, job: bytes | None = None) -> bytes:
        job = job or self.job
        task = hashlib.sha256(job + frame.to_bytes(4, "big")).digest()
        r = Result(job, task, frame, "bafkreiframe", 10, 1_000, "blender-3.4.1", "cpu")
        return signed(worker or self.worker, r)

    def verdict(self, result_wire: bytes, passed: bool, checker: NodeKey | None = None) -> bytes:
        r = decode_envelope(result_wire)
        m = r.message
        assert isinstance(m, Result)
        v = Verdict(m.job_id, m.task_id, m.frame, r.sender.raw, r.digest, passed, bytes(32),
                    TILES, "blender-3.4.1", "cpu", (bytes(32),) * len(TILES))  # fmt: skip
        return signed(checker or self.checker, v)

    def record(self, frame: int, passed: bool = True, *, by: NodeKey | None = None,
               worker: NodeKey | None = None, checker: NodeKey | None = None,
               now_ms: int = NOW_MS):  # fmt: skip
        result = self.result(frame, worker)
        rec = WorkRecord(self.job, passed, result, self.verdict(result, passed, checker))
        return decode_envelope(signed(by or self.requester, rec, now_ms))

    def book(self, config: RecordConfig | None = None) -> RecordBook:
        book = RecordBook(config)
        book.learn_job(self.announce, self.requester.node_id.raw)
        return book


def test_honest_records_build_a_worker_history() -> None:
    w = World()
    book = w.book()
    for frame in range(1, 11):
        assert book.add(w.record(frame, passed=frame != 5), NOW_MS) is Added.NEW
    history = book.history(w.worker.node_id.raw, NOW_MS + 14 * 86_400_000)
    assert (history.accepted, history.rejected) == (9, 1)
    assert score(history) > 0


def test_a_sybil_requester_cannot_record_for_someone_elses_job() -> None:
    """Defamation: a stranger signs a rejection of the honest worker's real result in a job
    it does not own (the result itself may be public: it was in an earlier record)."""
    w = World()
    book = w.book()
    stranger = NodeKey.generate()
    with pytest.raises(RemoteProtocolError):
        book.add(w.record(1, passed=False, by=stranger), NOW_MS)
    assert book.history(w.worker.node_id.raw, NOW_MS).rejected == 0


def test_a_sybil_checker_and_requester_cannot_defame_a_worker_that_never_worked_for_them() -> None:
    """The attacker owns a job, a checker and a verdict; the worker never signed a result for it."""
    w, attacker = World(), World()
    book = attacker.book()
    book.learn_job(w.announce, w.requester.node_id.raw)
    # a Result "by the honest worker" the attacker cannot sign: signed by a puppet instead
    forged = attacker.record(1, passed=False, worker=NodeKey.generate())
    assert book.add(forged, NOW_MS) is Added.NEW  # counts for the puppet, not the victim
    assert book.history(w.worker.node_id.raw, NOW_MS).rejected == 0
    # the victim's real result from another job, wrapped into the attacker's job: refused
    real = w.result(1)
    verdict = attacker.verdict(real, False)
    rec = WorkRecord(attacker.job, False, real, verdict)
    with pytest.raises(RemoteProtocolError):
        book.add(decode_envelope(signed(attacker.requester, rec)), NOW_MS)
    assert book.history(w.worker.node_id.raw, NOW_MS).rejected == 0


@pytest.mark.parametrize("flaw", ["other_result", "record_lies", "checker_is_worker",
                                  "requester_checks", "not_a_verdict"])  # fmt: skip
def test_inconsistent_records_are_refused_statelessly(flaw: str) -> None:
    w = World()
    result = w.result(1)
    if flaw == "other_result":
        rec = WorkRecord(w.job, False, result, w.verdict(w.result(2), False))
    elif flaw == "record_lies":  # the checker passed it; the requester says rejected
        rec = WorkRecord(w.job, False, result, w.verdict(result, True))
    elif flaw == "checker_is_worker":
        rec = WorkRecord(w.job, True, result, w.verdict(result, True, checker=w.worker))
    elif flaw == "requester_checks":
        rec = WorkRecord(w.job, True, result, w.verdict(result, True, checker=w.requester))
    else:
        rec = WorkRecord(w.job, True, result, result)
    with pytest.raises(RemoteProtocolError):
        open_record(decode_envelope(signed(w.requester, rec)))


def test_one_record_per_task_and_none_for_unknown_jobs() -> None:
    w = World()
    book = RecordBook()
    assert book.add(w.record(1, passed=False), NOW_MS) is Added.UNKNOWN_JOB
    book.learn_job(w.announce, w.requester.node_id.raw)
    assert book.add(w.record(1, passed=False), NOW_MS) is Added.NEW
    # the same task again, now "rejected" by a second checker: still one strike
    again = w.record(1, passed=False, checker=NodeKey.generate())
    assert book.add(again, NOW_MS) is Added.DUPLICATE
    assert book.history(w.worker.node_id.raw, NOW_MS).rejected == 1


def test_stake_hook_decides_which_checkers_count() -> None:
    w = World()
    staked = NodeKey.generate()
    config = RecordConfig(checker_counts=lambda checker: checker == staked.node_id.raw)
    book = w.book(config)
    book.add(w.record(1, passed=False), NOW_MS)  # an unstaked checker's rejection
    book.add(w.record(2, checker=staked), NOW_MS)
    history = book.history(w.worker.node_id.raw, NOW_MS)
    assert (history.accepted, history.rejected) == (1, 0)


def test_records_are_rate_limited_per_requester_and_the_book_is_bounded() -> None:
    w = World()
    book = w.book(RecordConfig(burst=5, rate_per_s=1.0, max_tasks=8))
    outcomes = [book.add(w.record(f), NOW_MS) for f in range(1, 9)]
    assert outcomes.count(Added.NEW) == 5 and outcomes[-1] is Added.OVER_RATE
    assert book.add(w.record(20), NOW_MS + 3_000) is Added.NEW  # tokens refill with time
    for f in range(30, 40):
        book.add(w.record(f), NOW_MS + 10_000 * f)
    assert len(book.tasks) == 8 and len(book.tasks_of(w.worker.node_id.raw)) == 8


def test_job_closed_only_by_its_requester_and_within_its_frames() -> None:
    w = World()
    book = w.book()
    stranger = NodeKey.generate()
    with pytest.raises(RemoteProtocolError):
        book.close(
            decode_envelope(signed(stranger, JobClosed(w.job, ClosedOutcome.COMPLETED, 1, 0))),
            NOW_MS,
        )
    with pytest.raises(RemoteProtocolError):
        book.close(
            decode_envelope(signed(w.requester, JobClosed(w.job, ClosedOutcome.COMPLETED, 101, 0))),
            NOW_MS,
        )
    closed = decode_envelope(signed(w.requester, JobClosed(w.job, ClosedOutcome.COMPLETED, 100, 0)))
    assert book.close(closed, NOW_MS) is Added.NEW
    assert book.jobs[w.job].closed is not None


_ONE_WORLD: list[World] = []


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=600), st.binary(max_size=600), st.booleans())
def test_any_bytes_in_a_record_raise_only_remote_errors(
    result: bytes, verdict: bytes, ok: bool
) -> None:
    if not _ONE_WORLD:
        _ONE_WORLD.append(World())
    w = _ONE_WORLD[0]
    env = decode_envelope(signed(w.requester, WorkRecord(w.job, ok, result, verdict)))
    with pytest.raises(RemoteProtocolError):
        w.book().add(env, NOW_MS)
