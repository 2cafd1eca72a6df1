"""Why a job is not moving: the reasons a requester can see from the market.

Theory of operation
-------------------
A job moves while some frame is leased or being verified. When frames wait
and none is in flight, the requester can tell why from what it knows: the
job's spec (renderer build, max price, deadline, assurance), whether it has a
chain to escrow on, and the workers' and checkers' adverts. The same bid rule
as the worker's machine decides (:mod:`protocol.market.quote`): a worker bids
when it runs the build and its ask is within the max price. :func:`why_stalled`
returns every reason that applies, most fundamental first, each with the
figures a person needs to act (the cheapest ask, the time a frame takes);
an empty list means nothing explains a stall (or the job moves).
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass

from protocol.market.quote import Offer, eligible


class Stall(enum.Enum):
    NO_CHAIN = "no chain"
    DEADLINE_PASSED = "deadline passed"
    DEADLINE_TOO_SHORT = "deadline too short"
    NO_WORKERS = "no workers"
    NO_BUILD = "no worker with this renderer build"
    PRICE_TOO_LOW = "every ask above the max price"
    WORKERS_BUSY = "workers busy"
    NO_CHECKER = "no checker"


@dataclass(frozen=True)
class JobFacts:
    """What the requester knows of its job at ``now_ms``."""

    renderer_build: str
    max_price_wei_per_frame: int
    ru_per_frame: int
    deadline_ms: int
    now_ms: int
    frames_pending: int
    frames_leased: int
    frames_verifying: int
    needs_checker: bool
    has_chain: bool


@dataclass(frozen=True)
class StallReason:
    kind: Stall
    cheapest_ask_wei: int | None = None  # PRICE_TOO_LOW: the ask to meet
    frame_s: int | None = None  # DEADLINE_TOO_SHORT: the fastest worker's time per frame
    left_s: int | None = None  # DEADLINE_TOO_SHORT: time left until the deadline
    builds_seen: tuple[str, ...] = ()  # NO_BUILD: what the workers run instead


def frame_time_s(offer: Offer, ru_per_frame: int) -> int | None:
    """The worker's own estimate of one frame (as its bid's ETA); None without a benchmark."""
    if offer.score_ru_per_hour < 1:
        return None
    return -(-ru_per_frame * 3_600 // offer.score_ru_per_hour)


def why_stalled(job: JobFacts, workers: Sequence[Offer], checkers: int) -> list[StallReason]:
    """Every reason the job is not moving (see the module docstring)."""
    reasons: list[StallReason] = []
    if not job.has_chain:
        reasons.append(StallReason(Stall.NO_CHAIN))
    if job.frames_verifying and not job.frames_leased and job.needs_checker and checkers == 0:
        reasons.append(StallReason(Stall.NO_CHECKER))
    if job.frames_pending == 0 or job.frames_leased:
        return reasons
    if job.needs_checker and checkers == 0 and not any(r.kind is Stall.NO_CHECKER for r in reasons):
        reasons.append(StallReason(Stall.NO_CHECKER))
    left_ms = job.deadline_ms - job.now_ms
    if left_ms <= 0:
        return [*reasons, StallReason(Stall.DEADLINE_PASSED)]
    if not workers:
        return [*reasons, StallReason(Stall.NO_WORKERS)]
    ranked = eligible(workers, job.renderer_build)
    if not ranked:
        builds = sorted({b for w in workers for b in w.renderer_builds})
        return [*reasons, StallReason(Stall.NO_BUILD, builds_seen=tuple(builds))]
    within = [o for o in ranked if o.ask_wei_per_frame <= job.max_price_wei_per_frame]
    if not within:
        cheapest = ranked[0].ask_wei_per_frame
        return [*reasons, StallReason(Stall.PRICE_TOO_LOW, cheapest_ask_wei=cheapest)]
    times = [t for t in (frame_time_s(o, job.ru_per_frame) for o in within) if t is not None]
    if times and min(times) * 1_000 > left_ms:
        reasons.append(StallReason(Stall.DEADLINE_TOO_SHORT, frame_s=min(times),
                                   left_s=left_ms // 1_000))  # fmt: skip
    if all(o.free_slots == 0 for o in within):
        reasons.append(StallReason(Stall.WORKERS_BUSY))
    return reasons
