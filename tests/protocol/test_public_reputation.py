"""A requester's awards follow the public work record, not only its own book (issue 16).

A fresh requester has judged nobody; what another requester recorded about a
worker (signed results, signed verdicts of other checkers) reaches its
machine through ``protocol.reputation.with_public`` and changes who gets the
frame. Verdicts of checkers that do not count (no confirmed stake, once stake
is known) change nothing.
"""

from __future__ import annotations

import itertools
from dataclasses import replace

from protocol import NodeKey, decode_envelope, encode_envelope
from protocol.messages import JobAnnounce, Result, TileEvidence, Verdict, WorkRecord, job_id_of
from protocol.record import RecordBook, RecordConfig
from protocol.reputation import DAY_MS, FRESH, WorkerHistory, WorkerRecord, with_public
from tests.protocol.market.harness import START_MS, MarketHarness
from tests.protocol.market.test_check_plan import awarded_to, harness_with
from tests.protocol.vectors_samples import sample_spec

PRICES = (100, 110)  # worker 0 is the cheaper bid
TILES = (TileEvidence(0, 0, 16, 16, 60_000, 0),)
_nonces = itertools.count(1)


def others_record(
    worker: NodeKey, checker: NodeKey, frames: int, config: RecordConfig
) -> RecordBook:
    """Another requester's job, 60 days ago: ``frames`` results of ``worker``, all passed."""
    other = NodeKey.generate()
    spec = replace(sample_spec(), requester=other.node_id.raw, frames=tuple(range(1, frames + 1)))
    job = job_id_of(spec)
    book = RecordBook(config)
    book.learn_job(JobAnnounce(job, spec), other.node_id.raw)
    at_ms = START_MS - 60 * DAY_MS

    def sign(key: NodeKey, message: object) -> bytes:
        return encode_envelope(key, message, nonce=next(_nonces), now_ms=at_ms)  # type: ignore[arg-type]

    for frame in spec.frames:
        task = frame.to_bytes(32, "big")
        result = sign(worker, Result(job, task, frame, "bafkreiframe", 10, 1_000, "blender-3.4.1",
                                     "cpu"))  # fmt: skip
        digest = decode_envelope(result).digest
        verdict = sign(checker, Verdict(job, task, frame, worker.node_id.raw, digest, True,
                                        bytes(32), TILES, "blender-3.4.1", "cpu",
                                        (bytes(32),) * len(TILES)))  # fmt: skip
        book.add(decode_envelope(sign(other, WorkRecord(job, True, result, verdict))), at_ms)
    return book


def test_a_fresh_requester_awards_by_another_requesters_record() -> None:
    probe = MarketHarness(worker_prices_wei_per_ru=PRICES)
    cheap, dear = probe.workers
    assert awarded_to(harness_with({}, frames=(1,), worker_prices_wei_per_ru=PRICES)) == {cheap}
    book = others_record(probe.keys[dear], NodeKey.generate(), 20, RecordConfig())
    public = book.history(dear, START_MS)
    assert public.accepted == 20 and public.age_ms == 60 * DAY_MS
    record = with_public(None, public, START_MS)  # this requester never judged it
    assert record is not None
    chosen = harness_with({1: record}, frames=(1,), worker_prices_wei_per_ru=PRICES)
    assert awarded_to(chosen) == {dear}


def test_verdicts_of_checkers_without_stake_do_not_move_the_award() -> None:
    probe = MarketHarness(worker_prices_wei_per_ru=PRICES)
    cheap, dear = probe.workers
    staked: set[bytes] = set()  # stake is known, and this puppet checker has none
    book = others_record(probe.keys[dear], NodeKey.generate(), 20, RecordConfig(
        checker_counts=staked.__contains__))  # fmt: skip
    assert with_public(None, book.history(dear, START_MS), START_MS) is None
    unmoved = harness_with({}, frames=(1,), worker_prices_wei_per_ru=PRICES)
    assert awarded_to(unmoved) == {cheap}


def test_own_and_public_counts_merge_without_counting_twice() -> None:
    now_ms = START_MS
    own = WorkerRecord(accepted=5, rejected=1, failed=2, timed_out=1, first_seen_ms=now_ms - 1_000)
    public = WorkerHistory(accepted=12, rejected=0, age_ms=5_000)  # holds our 5 and 7 others'
    merged = with_public(own, public, now_ms)
    assert merged == WorkerRecord(12, 1, 2, 1, now_ms - 5_000, own_accepted=5)
    assert with_public(own, FRESH, now_ms) == replace(own, own_accepted=5)
    assert with_public(None, FRESH, now_ms) is None


def test_only_the_own_books_accepted_frames_are_own() -> None:
    """``own_accepted`` (a lane's credit, protocol.market.lanes) is what this requester's
    own checks accepted: the public record's counts, which puppets can pad, never."""
    padded = WorkerHistory(accepted=500, rejected=0, failed=0, timed_out=0, age_ms=DAY_MS)
    mine = WorkerRecord(accepted=3, first_seen_ms=START_MS - DAY_MS)
    assert with_public(None, padded, START_MS).own_accepted == 0  # type: ignore[union-attr]
    merged = with_public(mine, padded, START_MS)
    assert merged is not None and (merged.accepted, merged.own_accepted) == (500, 3)
    alone = with_public(mine, FRESH, START_MS)
    assert alone is not None and (alone.accepted, alone.own_accepted) == (3, 3)
