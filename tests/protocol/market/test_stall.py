"""Why a job is not moving: one reason per cause, with the figures to act on."""

from __future__ import annotations

from dataclasses import replace

from protocol.market.quote import Offer
from protocol.market.stall import JobFacts, Stall, why_stalled

BUILD = "blender-3.4.1"
ETH = 10**18
JOB = JobFacts(
    renderer_build=BUILD, max_price_wei_per_frame=2 * 10**16, ru_per_frame=10,
    deadline_ms=10_000_000, now_ms=1_000_000, frames_pending=3, frames_leased=0,
    frames_verifying=0, needs_checker=True, has_chain=True,
)  # fmt: skip
DEVNET = [Offer(f"w{i}", ETH // 10, (BUILD,), 1, 0) for i in range(3)]


def kinds(reasons: list) -> list[Stall]:
    return [r.kind for r in reasons]


def test_devnet_default_price_says_every_ask_is_above_it() -> None:
    reasons = why_stalled(JOB, DEVNET, checkers=1)
    assert kinds(reasons) == [Stall.PRICE_TOO_LOW]
    assert reasons[0].cheapest_ask_wei == ETH // 10


def test_a_job_in_flight_or_priced_right_has_no_reason() -> None:
    assert why_stalled(replace(JOB, frames_leased=1), DEVNET, 1) == []
    assert why_stalled(replace(JOB, max_price_wei_per_frame=ETH // 10), DEVNET, 1) == []
    assert why_stalled(replace(JOB, frames_pending=0), DEVNET, 1) == []


def test_no_workers_and_no_build() -> None:
    assert kinds(why_stalled(JOB, [], 1)) == [Stall.NO_WORKERS]
    other = [Offer("w", 1, ("blender-4.2.0",), 1, 0)]
    reasons = why_stalled(JOB, other, 1)
    assert kinds(reasons) == [Stall.NO_BUILD] and reasons[0].builds_seen == ("blender-4.2.0",)


def test_no_checker_and_no_chain_are_said_alongside() -> None:
    cheap = replace(JOB, max_price_wei_per_frame=ETH)
    assert kinds(why_stalled(replace(cheap, has_chain=False), DEVNET, 0)) == [
        Stall.NO_CHAIN, Stall.NO_CHECKER,
    ]  # fmt: skip
    waiting = replace(cheap, frames_pending=0, frames_verifying=2)
    assert kinds(why_stalled(waiting, DEVNET, 0)) == [Stall.NO_CHECKER]
    assert why_stalled(replace(waiting, needs_checker=False), DEVNET, 0) == []


def test_deadline_passed_or_too_short_for_the_fastest_worker() -> None:
    cheap = replace(JOB, max_price_wei_per_frame=ETH)
    assert kinds(why_stalled(replace(cheap, now_ms=cheap.deadline_ms), DEVNET, 1)) == [
        Stall.DEADLINE_PASSED
    ]
    slow = [Offer("slow", ETH // 10, (BUILD,), 1, 36), Offer("fast", ETH // 10, (BUILD,), 1, 360)]
    short = replace(cheap, deadline_ms=cheap.now_ms + 50_000)  # 50 s; the fastest needs 100 s
    reasons = why_stalled(short, slow, 1)
    assert kinds(reasons) == [Stall.DEADLINE_TOO_SHORT]
    assert (reasons[0].frame_s, reasons[0].left_s) == (100, 50)
    # workers without a benchmark (score 0) give no estimate: no claim is made
    assert why_stalled(short, DEVNET, 1) == []


def test_busy_workers() -> None:
    busy = [Offer("w", ETH // 10, (BUILD,), 0, 0)]
    assert kinds(why_stalled(replace(JOB, max_price_wei_per_frame=ETH), busy, 1)) == [
        Stall.WORKERS_BUSY
    ]
