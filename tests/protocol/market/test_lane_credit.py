"""A payee's lane is funded ahead only as far as the job can lose it.

Money in a lane beyond its payee's need can only ever go to that payee, until the
refund after the deadline. Before, an award round funded each worker's lane with its
share of every pending frame at once: with bids at the cap and the node's own escrow,
one worker blocklisted after its first result (a cheat, one fresh identity) left its
share stranded in its lane and the job expired short by exactly that share (3 frames
and 3 workers: 2 done; 20 and 4: 15 done). Now a payee's advance is at most its credit:
what it has earned in this job, or for a worker what the requester's own checks accepted
of it before."""

from __future__ import annotations

import math

from protocol.market.commands import DisputeResolved, FundLanes
from protocol.market.config import MarketConfig
from protocol.market.quote import budget_wei
from protocol.market.tables import JobState, TaskState
from protocol.reputation import WorkerRecord

from .harness import MarketHarness

WINDOW_MS = MarketConfig().bid_window_ms
CAP_WEI = 1_000  # the workers bid 100 wei/RU x 10 RU: the cap, no headroom from prices


def _harness(frames: int, workers: int, **kwargs: object) -> MarketHarness:
    return MarketHarness(
        frames=tuple(range(1, frames + 1)), worker_prices_wei_per_ru=(100,) * workers,
        checkers=kwargs.pop("checkers", 2), max_price_wei_per_frame=CAP_WEI,  # type: ignore[arg-type]
        budget_wei=budget_wei(frames, CAP_WEI, 500), **kwargs,  # type: ignore[arg-type]
    )  # fmt: skip


def _run(harness: MarketHarness, cheat_first: bool) -> bytes | None:
    """Drive the job to its end: every check answered as it comes, every render finished
    (the first worker to render, if ``cheat_first``, cheats), time moved on when nothing
    is out."""
    cheat: bytes | None = None
    for _ in range(2_000):
        if harness.verifications:  # checks keep up with renders
            for task_id in list(harness.verifications):
                harness.verdict(task_id, harness.job._tasks[task_id].worker != cheat)
        elif harness.renders:
            for task_id in list(harness.renders):
                if cheat_first and cheat is None:
                    cheat = harness.renders[task_id]
                harness.finish_render(task_id)
        elif harness.job.state is JobState.OPEN and harness.now_ms < harness.spec.deadline_ms:
            harness.advance(30_000)
        else:
            break
    return cheat


def _accepted(harness: MarketHarness) -> int:
    return sum(t.state is TaskState.ACCEPTED for t in harness.job._tasks.values())


def test_a_cheat_blocklisted_after_its_lane_was_funded_ahead_strands_no_frame() -> None:
    for frames, workers in ((3, 3), (6, 3), (12, 3), (10, 2), (20, 4)):
        harness = _harness(frames, workers)
        harness.start()
        harness.advance(WINDOW_MS)
        cheat = _run(harness, cheat_first=True)
        assert cheat in harness.job.blocklisted()
        assert _accepted(harness) == frames, (frames, workers)
        assert harness.job.state is JobState.FINISHED
        # and its lane holds at most what it could lose: its need (nothing) and the headroom
        lanes = harness.job._lanes.lanes_wei
        cheat_address = next(a for a, n in harness.payee_owner.items() if n == cheat)
        assert lanes.get(cheat_address, 0) <= harness.spec.budget_wei - frames * CAP_WEI


def test_a_lone_honest_workers_lane_grows_with_what_it_earns() -> None:
    """Fresh: each funding about doubles the lane (1, 2, 4, ... frames: 7 for 40 frames,
    not one a frame), and the job completes."""
    fundings = _lone_workers_fundings(None)
    assert 2 <= fundings <= 1 + math.ceil(math.log2(40)), fundings


def test_a_cheat_with_a_padded_record_strands_no_frame_either() -> None:
    """The record the machine is fed merges the public one, whose accepted counts puppet
    identities can pad for each other: it buys no credit (review of stop 35: with it, a
    cheat with ``accepted = frames`` stranded its share, 20 frames and 4 workers: 17)."""
    for frames, workers in ((12, 3), (10, 2), (20, 4)):
        harness = _harness(frames, workers)
        for worker in harness.workers:
            harness.job.set_worker_record(worker, WorkerRecord(accepted=frames))
        harness.start()
        harness.advance(WINDOW_MS)
        cheat = _run(harness, cheat_first=True)
        assert cheat in harness.job.blocklisted()
        assert _accepted(harness) == frames, (frames, workers)
    # and a lone worker with a record is funded as a fresh one is
    assert _lone_workers_fundings(WorkerRecord(accepted=40, first_seen_ms=0)) == (
        _lone_workers_fundings(None)
    )


def test_frames_the_requesters_own_checks_accepted_fund_a_share_at_once() -> None:
    """The requester's own book (``own_accepted``, which puppets cannot pad) is credit:
    a lone worker with 40 frames accepted before is funded once for a 40-frame job."""
    assert _lone_workers_fundings(WorkerRecord(accepted=40, own_accepted=40)) == 1


def _lone_workers_fundings(record: WorkerRecord | None) -> int:
    """A 40-frame job's lone worker (with ``record`` fed before it bids): how many times
    its lane was funded, once the job completed."""
    harness = _harness(40, 1)
    if record is not None:
        harness.job.set_worker_record(next(iter(harness.workers)), record)
    harness.start()
    harness.advance(WINDOW_MS)
    _run(harness, cheat_first=False)
    assert harness.job.state is JobState.FINISHED
    address = next(iter(harness.payee_owner))
    return sum(any(a == address for a, _ in f.fundings) for f in harness.commands(FundLanes))  # type: ignore[attr-defined]


def test_a_rejected_workers_dispute_is_paid_from_its_own_lane_ahead() -> None:
    """The disputed price can only be paid into the worker's own lane: what that lane
    holds beyond its need counts for the dispute (it was refused "the budget cannot
    cover a dispute" while the worker's own advance sat there)."""
    harness = _harness(6, 3, checkers=3)
    harness.job.set_worker_record(next(iter(harness.workers)), WorkerRecord(accepted=6))
    harness.start()
    harness.advance(WINDOW_MS)
    first = next(iter(harness.workers))
    task_id = next(t for t, w in harness.renders.items() if w == first)
    harness.finish_render(task_id)
    harness.verdict(task_id, False)
    harness.dispute(task_id)
    refused = [
        r for r in harness.commands(DisputeResolved) if "budget" in r.reason  # type: ignore[attr-defined]
    ]
    assert not refused
    assert len(harness.dispute_requests) == 2
