"""Disputes in the public record: an overturned rejection is no strike, and costs its checker.

Attacks first: a requester cannot overturn (or invent) a dispute without the
verdicts of checkers other than the worker, itself and the first checker,
all about the very result that was rejected; a stranger cannot speak for the
job; and a checker without stake (when stake counts) neither decides a
dispute nor has its lie counted.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from protocol import NodeKey, decode_envelope
from protocol.envelope import Envelope
from protocol.errors import LocalProtocolError, RemoteProtocolError
from protocol.messages import MAX_DISPUTE_VERDICTS, DisputeRecord, Result, WorkRecord
from protocol.record import Added, RecordConfig, open_dispute, overturned
from tests.protocol.test_record import World, signed
from tests.protocol.vectors_samples import NOW_MS


@dataclass
class Rejected:
    """A recorded rejection of one result, and what a dispute of it needs."""

    result: bytes
    record: Envelope

    @property
    def task_id(self) -> bytes:
        m = decode_envelope(self.result).message
        assert isinstance(m, Result)
        return m.task_id

    @property
    def verdict_digest(self) -> bytes:
        m = self.record.message
        assert isinstance(m, WorkRecord)
        return decode_envelope(m.verdict).digest


def rejected(w: World, frame: int, by: NodeKey | None = None) -> Rejected:
    result = w.result(frame)
    rec = WorkRecord(w.job, False, result, w.verdict(result, False, by))
    return Rejected(result, decode_envelope(signed(w.requester, rec)))


def dispute(
    w: World, r: Rejected, votes: list[tuple[NodeKey, bool]], *, by: NodeKey | None = None,
    result: bytes | None = None, digest: bytes | None = None,
) -> Envelope:  # fmt: skip
    wires = tuple(w.verdict(result or r.result, passed, key) for key, passed in votes)
    rec = DisputeRecord(w.job, r.task_id, digest or r.verdict_digest, result or r.result, wires)
    return decode_envelope(signed(by or w.requester, rec))


def test_overturned_when_passes_outnumber_rejections() -> None:
    assert overturned(True, [True, True])
    assert not overturned(True, [True, False])
    assert not overturned(True, [True])  # 1 against 1: no majority to overturn
    assert overturned(False, [True])  # the first checker does not count: one pass decides
    assert not overturned(False, [])


def test_an_overturned_rejection_is_no_strike_and_one_for_its_checker() -> None:
    w = World()
    book = w.book()
    for frame in range(1, 5):
        assert book.add(w.record(frame), NOW_MS) is Added.NEW
    r = rejected(w, 9)
    assert book.add(r.record, NOW_MS) is Added.NEW
    assert book.history(w.worker.node_id.raw, NOW_MS).rejected == 1
    assert book.checker_history(w.checker.node_id.raw).overruled == 0
    honest = [NodeKey.generate(), NodeKey.generate()]
    assert book.dispute(dispute(w, r, [(k, True) for k in honest])) is Added.NEW
    history = book.history(w.worker.node_id.raw, NOW_MS)
    assert (history.accepted, history.rejected) == (4, 0)
    assert book.checker_history(w.checker.node_id.raw).overruled == 1
    assert book.checker_history(w.checker.node_id.raw).verdicts == 5
    again = dispute(w, r, [(k, True) for k in honest])
    assert book.dispute(again) is Added.DUPLICATE


def test_an_upheld_dispute_leaves_the_strike() -> None:
    w = World()
    book = w.book()
    r = rejected(w, 3)
    book.add(r.record, NOW_MS)
    votes = [(NodeKey.generate(), True), (NodeKey.generate(), False)]
    assert book.dispute(dispute(w, r, votes)) is Added.NEW
    assert book.history(w.worker.node_id.raw, NOW_MS).rejected == 1
    assert book.checker_history(w.checker.node_id.raw).overruled == 0


def test_votes_must_be_about_the_rejected_result() -> None:
    """A requester cannot clear a worker with passes about another (honest) result of it."""
    w = World()
    book = w.book()
    r = rejected(w, 3)
    book.add(r.record, NOW_MS)
    other = w.result(3)  # same task and frame, another envelope: another result
    with pytest.raises(RemoteProtocolError):
        book.dispute(dispute(w, r, [(NodeKey.generate(), True)] * 1, result=other))
    with pytest.raises(RemoteProtocolError):  # a digest that is not the recorded rejection's
        book.dispute(dispute(w, r, [(NodeKey.generate(), True)], digest=bytes(32)))
    assert book.history(w.worker.node_id.raw, NOW_MS).rejected == 1


def test_the_first_checker_worker_and_requester_cannot_vote() -> None:
    w = World()
    book = w.book()
    r = rejected(w, 3)
    book.add(r.record, NOW_MS)
    with pytest.raises(RemoteProtocolError):  # the liar cannot "confirm" its own lie
        book.dispute(dispute(w, r, [(w.checker, False), (NodeKey.generate(), False)]))
    for puppet in (w.worker, w.requester):
        with pytest.raises(RemoteProtocolError):
            open_dispute(dispute(w, r, [(puppet, True), (NodeKey.generate(), True)]))
    twice = NodeKey.generate()
    with pytest.raises(RemoteProtocolError):
        open_dispute(dispute(w, r, [(twice, True), (twice, True)]))


def test_only_the_jobs_requester_records_its_disputes() -> None:
    w = World()
    book = w.book()
    r = rejected(w, 3)
    book.add(r.record, NOW_MS)
    stranger = NodeKey.generate()
    votes = [(NodeKey.generate(), True), (NodeKey.generate(), True)]
    with pytest.raises(RemoteProtocolError):
        book.dispute(dispute(w, r, votes, by=stranger))
    assert book.history(w.worker.node_id.raw, NOW_MS).rejected == 1


def test_a_dispute_of_an_acceptance_or_an_unknown_task_is_not_kept() -> None:
    w = World()
    book = w.book()
    r = rejected(w, 3)
    votes = [(NodeKey.generate(), True), (NodeKey.generate(), True)]
    assert book.dispute(dispute(w, r, votes)) is Added.UNKNOWN_TASK  # not recorded (yet)
    result = w.result(4)
    accepted = WorkRecord(w.job, True, result, w.verdict(result, True))
    book.add(decode_envelope(signed(w.requester, accepted)), NOW_MS)
    fake = Rejected(result, decode_envelope(signed(w.requester, accepted)))
    with pytest.raises(RemoteProtocolError):
        book.dispute(dispute(w, fake, votes))


def test_unstaked_checkers_neither_decide_nor_count() -> None:
    """With stake known, only staked checkers' verdicts count (protocol.record rule 5)."""
    w = World()
    staked = {w.checker.node_id.raw}
    sybils = [NodeKey.generate(), NodeKey.generate()]
    book = w.book(RecordConfig(checker_counts=staked.__contains__))
    r = rejected(w, 3)
    book.add(r.record, NOW_MS)
    book.dispute(dispute(w, r, [(k, True) for k in sybils]))  # puppets of the worker, no stake
    assert book.history(w.worker.node_id.raw, NOW_MS).rejected == 1
    staked.update(k.node_id.raw for k in sybils)  # once they stake, their verdicts count
    assert book.history(w.worker.node_id.raw, NOW_MS).rejected == 0


def test_a_dispute_record_is_bounded() -> None:
    w = World()
    r = rejected(w, 3)
    keys = [NodeKey.generate() for _ in range(MAX_DISPUTE_VERDICTS + 1)]
    with pytest.raises(LocalProtocolError):  # the schema's bound: no such envelope is signed
        dispute(w, r, [(k, True) for k in keys])
