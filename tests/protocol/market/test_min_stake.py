"""Issue 17: a requester may require a minimum stake of its workers and checkers,
and of checkers what a claim of their pass takes (``set_pass_claim_stake``).

Stake is fed by the driver (``set_stake``: what the chain confirms for a payment
address); a bidder without enough gets no award however cheap, a checker
without enough is not asked. Attack: 1,000 fresh identities bidding 1 wei with
no stake get nothing.
"""

from __future__ import annotations

import pytest

from protocol.errors import IllegalTransition, LocalProtocolError
from protocol.identity import NodeKey
from protocol.market import FundLanes, MarketConfig, RequestVerification, Send, TaskState
from protocol.market.awarding import (
    checker_qualifies,
    lanes_elsewhere,
    new_lanes,
    planned_unmined,
    stake_qualifies,
)
from protocol.messages import Award, Bid, VerifyRequest
from tests.protocol.market.harness import MarketHarness, address_for

MIN_WEI = 10**18
STAKED = MarketConfig(min_stake_wei=MIN_WEI)


def harness_with(stakes: dict[str, int], **kwargs: object) -> MarketHarness:
    harness = MarketHarness(market=STAKED, **kwargs)  # type: ignore[arg-type]
    for name, stake_wei in stakes.items():
        harness.job.set_stake(address_for(name), stake_wei)
    harness.start()
    harness.advance(STAKED.bid_window_ms)
    return harness


def test_only_workers_with_the_minimum_stake_are_awarded() -> None:
    # worker0 (cheapest) never staked, worker1 below the minimum, worker2 at it.
    harness = harness_with({"worker1": MIN_WEI - 1, "worker2": MIN_WEI, "checker0": MIN_WEI,
                            "checker1": MIN_WEI}, frames=(1, 2, 3), worker_slots=3)  # fmt: skip
    winners = {award.worker for _, award in harness.awards()}
    assert winners == {list(harness.workers)[2]}
    assert len(harness.awards()) == 3


def test_a_checker_below_the_minimum_is_not_asked() -> None:
    harness = harness_with({"worker0": MIN_WEI, "checker0": MIN_WEI - 1, "checker1": MIN_WEI},
                           frames=(1,), worker_prices_wei_per_ru=(100,))  # fmt: skip
    (task_id,) = harness.renders
    harness.finish_render(task_id)
    assert harness.commands(RequestVerification)
    asked = [checker for checker, _ in harness.verifications.values()]
    assert asked == [harness.checker_ids[1]]
    # Assigning the unstaked one anyway changes nothing (no request, no fee owed).
    commands = harness.job.assign_checker(task_id, harness.checker_ids[0], harness.now_ms,
                                          address_for("checker0"))  # fmt: skip
    assert not any(isinstance(getattr(c, "message", None), VerifyRequest) for c in commands)
    assert harness.job.task_state(task_id) is TaskState.VERIFYING


def test_without_a_minimum_nobody_needs_stake() -> None:
    harness = MarketHarness(frames=(1,))
    harness.start()
    harness.advance(STAKED.bid_window_ms)
    assert len(harness.awards()) == 1
    assert stake_qualifies(None, 0) and not stake_qualifies(None, 1)
    assert stake_qualifies(5, 5) and not stake_qualifies(4, 5)


def test_a_thousand_unstaked_identities_bidding_one_wei_get_nothing() -> None:
    harness = harness_with({"worker0": MIN_WEI, "checker0": MIN_WEI, "checker1": MIN_WEI},
                           frames=(1, 2, 3), worker_prices_wei_per_ru=(100,))  # fmt: skip
    (task_id,) = harness.renders  # its one staked worker holds a frame; two wait for it
    sent = []
    for i in range(1_000):
        sybil = NodeKey.generate().node_id.raw
        bid = Bid(harness.job_id, 10, 1, 1, address_for(f"sybil{i}"))
        sent += harness.job.receive(sybil, bid, harness.now_ms)
    assert not [c for c in sent if isinstance(getattr(c, "message", None), Award)]
    harness.finish_render(task_id)  # the staked worker's slot frees: the next frame is its
    assert {award.worker for _, award in harness.awards()} == {next(iter(harness.workers))}


CAP_WEI = 10**17  # the escrow's default SLASH_CAP: what one claim of a pass takes
CLAIMABLE = MarketConfig(plant_rate_ppm=1_000_000)  # every checked result planted


def test_a_checker_without_what_a_pass_claim_takes_is_never_asked() -> None:
    """The attack (issue 17): a lazy checker whose missed plant costs only its fee comes
    back under a fresh key and out-earns an honest one (docs/VERIFICATION.md). With the
    requirement set, a checker under it — unstaked, unread or one wei short — gets no
    check and no plant, however often the requester asks; the job's own minimum is 0."""
    harness = MarketHarness(market=CLAIMABLE, frames=(1, 2, 3), checkers=4,
                            check_secret=b"\x42" * 32)  # fmt: skip
    harness.job.set_pass_claim_stake(CAP_WEI)
    harness.job.set_stake(address_for("checker0"), CAP_WEI - 1)
    harness.job.set_stake(address_for("checker1"), 0)  # checker2: never read
    harness.job.set_stake(address_for("checker3"), CAP_WEI)
    harness.start()
    harness.advance(CLAIMABLE.bid_window_ms)
    for _ in range(3):
        for task_id in list(harness.renders):
            harness.finish_render(task_id)
        harness.advance(CLAIMABLE.verify_timeout_ms)
    asked = {checker for checker, _ in harness.verifications.values()}
    asked |= {checker for checker, _ in harness.plants.values()}
    assert asked == {harness.checker_ids[3]}
    for i in range(3):  # assigning one anyway changes nothing: no request, no fee
        task_id = next(iter(harness.verifications))
        checker, address = harness.checker_ids[i], address_for(f"checker{i}")
        commands = harness.job.assign_checker(task_id, checker, harness.now_ms, address)
        commands += harness.job.assign_plant(task_id, checker, "bafkplant", harness.now_ms, address)
        assert not any(isinstance(getattr(c, "message", None), VerifyRequest) for c in commands)


def test_the_pass_claim_requirement_is_the_checkers_alone() -> None:
    """Workers need only the job's minimum (0 here): the pass-claim stake is a checker's."""
    harness = MarketHarness(frames=(1,))
    harness.job.set_pass_claim_stake(CAP_WEI)
    harness.start()
    harness.advance(STAKED.bid_window_ms)
    assert len(harness.awards()) == 1
    assert checker_qualifies(CAP_WEI, 0, CAP_WEI) and not checker_qualifies(CAP_WEI - 1, 0, CAP_WEI)
    assert checker_qualifies(None, 0, 0) and not checker_qualifies(None, 0, 1)
    assert not checker_qualifies(MIN_WEI - 1, MIN_WEI, CAP_WEI)  # the larger of the two
    with pytest.raises(IllegalTransition):
        harness.job.set_pass_claim_stake(-1)


def test_a_stake_backing_other_jobs_must_hold_the_minimum_for_each() -> None:
    """One stake, many jobs: a bidder open in two other jobs needs three minimums."""
    assert stake_qualifies(3 * MIN_WEI, MIN_WEI, 2) and not stake_qualifies(3 * MIN_WEI - 1, MIN_WEI, 2)
    assert stake_qualifies(0, 0, 1000)  # no minimum asked: nothing to back
    assert lanes_elsewhere(3, True) == 2 and lanes_elsewhere(3, False) == 3
    assert lanes_elsewhere(0, True) == 0  # a count read before our own lane was mined
    assert lanes_elsewhere(3, True, 2) == 4  # plus our other jobs' lanes not yet mined
    with pytest.raises(LocalProtocolError):
        lanes_elsewhere(3, False, -1)


def test_a_first_funding_is_a_new_lane_until_its_job_sees_it_mined() -> None:
    """Stop 44: the lanes one job of ours plans and has not yet seen mined count in our
    other jobs (``planned_unmined``); which fundings open a lane (``new_lanes``): those
    whose lane total is the funding itself, not top-ups, not zero fundings."""
    a, b, c = (address_for(n) for n in ("worker0", "worker1", "checker0"))
    commands = [FundLanes(b"j" * 32, ((a, 5), (b, 3), (c, 0)), ((a, 5), (b, 7), (c, 0))),
                Send(a, Bid(b"j" * 32, 1, 0, 1, a))]  # fmt: skip
    assert new_lanes(commands) == {a}  # b was topped up, c funded nothing
    assert new_lanes([]) == set()
    planned = {a: 5, b: 7, c: 0}
    assert planned_unmined(planned, {b}) == {a}  # c has no lane: nothing to count
    assert planned_unmined(planned, {a, b}) == set()


def test_a_bidder_whose_stake_backs_other_jobs_gets_no_award_until_it_holds_enough() -> None:
    harness = MarketHarness(market=STAKED, frames=(1,), worker_prices_wei_per_ru=(100,))
    for name in ("checker0", "checker1"):
        harness.job.set_stake(address_for(name), MIN_WEI)
    harness.job.set_stake(address_for("worker0"), 2 * MIN_WEI, lanes_elsewhere=2)
    harness.start()
    harness.advance(STAKED.bid_window_ms)
    assert not harness.awards()
    # Read late (after the bid, which stands): the award goes out with the reading.
    commands = harness.job.stake_confirmed(address_for("worker0"), 3 * MIN_WEI, 2, harness.now_ms)
    harness._requester_commands(commands)
    harness.pump()
    assert len(harness.awards()) == 1
    with pytest.raises(IllegalTransition):
        harness.job.set_stake(address_for("worker0"), MIN_WEI, lanes_elsewhere=-1)
