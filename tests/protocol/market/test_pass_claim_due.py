"""A checker that passed a plant of an escrowed job and signed its pass makes the
requester's machine claim its stake (PassClaimDue); nothing else does, and never a
verdict whose cells the plant did not all change."""

from __future__ import annotations

import dataclasses

import pytest

from protocol.errors import IllegalMessage
from protocol.forced_errors import plant_covers
from protocol.fraud_evidence import PASS_CLAIM_PSNR_MILLIDB, may_sign_pass
from protocol.market import MarketConfig, PassClaimDue, PlantJudged, TaskState
from protocol.market.records import verdict_digest_of
from protocol.messages import TileEvidence, Verdict
from protocol.verification import DEFAULT_POLICY
from tests.protocol.market.harness import BUILD, MarketHarness, digests_for, tiles_for
from tests.protocol.market.test_result_sig import ESCROW

WINDOW_MS = MarketConfig().bid_window_ms
SECRET = b"\x42" * 32
ALWAYS = MarketConfig(plant_rate_ppm=1_000_000)
SIG = b"\x07" * 65  # the machine leaves the signature's check to its driver


def planted(*, escrowed: bool = True) -> MarketHarness:
    harness = MarketHarness(frames=(1,), checkers=3, market=ALWAYS, check_secret=SECRET,
                            escrow=ESCROW if escrowed else None)  # fmt: skip
    harness.start()
    harness.advance(WINDOW_MS)
    for task_id in list(harness.renders):
        harness.finish_render(task_id)
    return harness


def plant_verdict(harness: MarketHarness, passed: bool, pass_sig: bytes | None) -> Verdict:
    (task_id,) = harness.verifications
    checker, request = harness.plants.pop(task_id)
    verdict = Verdict(
        request.job_id, request.task_id, request.frame, request.worker, request.result_digest,
        passed, request.tile_secret, tiles_for(request), BUILD, "cpu-avx2",
        digests_for(request), pass_sig,
    )  # fmt: skip
    harness.send(checker, harness.requester, verdict)
    harness.pump()
    return verdict


def test_a_signed_pass_of_a_plant_is_claimed_against_its_checker() -> None:
    harness = planted()
    (task_id,) = harness.verifications
    lazy, request = harness.plants[task_id]
    verdict = plant_verdict(harness, True, SIG)
    (due,) = harness.commands(PassClaimDue)
    assert isinstance(due, PassClaimDue)
    assert (due.task_id, due.frame, due.frame_cid, due.checker) == (
        task_id, 1, request.frame_cid, lazy
    )  # fmt: skip
    assert due.checker_address == harness.checker_addresses[lazy]
    assert due.verdict == verdict and due.verdict.pass_sig == SIG


@pytest.mark.parametrize(
    ("escrowed", "passed", "pass_sig"),
    [(True, False, None), (True, True, None), (False, True, SIG)],
    ids=["rejected-plant", "unsigned-pass", "no-escrow"],
)
def test_no_pass_claim_otherwise(escrowed: bool, passed: bool, pass_sig: bytes | None) -> None:
    harness = planted(escrowed=escrowed)
    plant_verdict(harness, passed, pass_sig)
    (judged,) = harness.commands(PlantJudged)
    assert isinstance(judged, PlantJudged) and judged.missed == passed
    assert harness.commands(PassClaimDue) == []


def test_a_miss_is_decided_only_on_cells_the_plant_changed() -> None:
    """A plant changes every cell of the grid (``perturb``), and the machine takes a
    plant verdict only on the cells its draw selects, all grid cells: a claimed miss is
    always on perturbed cells. A verdict naming any other rectangle is refused before
    it can be judged, and ``plant_covers`` would not claim it either."""
    harness = planted()
    (task_id,) = harness.verifications
    checker, request = harness.plants[task_id]
    drawn = tiles_for(request)
    settings = harness.spec.settings
    tile_px = 16  # DEFAULT_POLICY's grid, the one plants are made on
    on_grid = Verdict(request.job_id, task_id, request.frame, request.worker,
                      request.result_digest, True, request.tile_secret, drawn, BUILD, "cpu",
                      digests_for(request), SIG)  # fmt: skip
    assert plant_covers(on_grid, settings.resolution_x, settings.resolution_y, tile_px)
    shifted = tuple(dataclasses.replace(t, x=t.x + 1) for t in drawn)
    off_grid = dataclasses.replace(on_grid, tiles=shifted)
    assert not plant_covers(off_grid, settings.resolution_x, settings.resolution_y, tile_px)
    assert not plant_covers(dataclasses.replace(on_grid, tiles=()), 320, 240, tile_px)
    harness.send(checker, harness.requester, off_grid)
    with pytest.raises(IllegalMessage):
        harness.pump()
    assert harness.commands(PassClaimDue) == [] and harness.job.plant_misses == {}


def _pass(**changes: object) -> Verdict:
    tiles = (TileEvidence(0, 0, 16, 16, 60_000, 0), TileEvidence(16, 0, 16, 16, 60_000, 0))
    verdict = Verdict(b"j" * 32, b"t" * 32, 3, b"w" * 32, b"r" * 32, True, b"s" * 32, tiles,
                      BUILD, "cpu", (b"d" * 32, b"e" * 32), SIG)  # fmt: skip
    return dataclasses.replace(verdict, **changes)  # type: ignore[arg-type]


CAP = 10**17


def test_what_a_claimer_of_a_pass_checks() -> None:
    verdict = _pass()
    digests = (verdict_digest_of(verdict),)
    ok = dict(job_id=b"j" * 32, task_id=b"t" * 32, frame=3, verdict_digests=digests,
              amount_wei=CAP, max_at_risk_wei=CAP, max_cells=2)  # fmt: skip
    assert may_sign_pass(verdict, **ok) == ""  # type: ignore[arg-type]
    assert may_sign_pass(None, **ok)  # type: ignore[arg-type]
    assert may_sign_pass(_pass(passed=False, pass_sig=None), **ok)  # type: ignore[arg-type]
    assert may_sign_pass(verdict, **{**ok, "frame": 4})  # type: ignore[arg-type]
    assert may_sign_pass(verdict, **{**ok, "verdict_digests": digests * 2})  # type: ignore[arg-type]
    assert may_sign_pass(verdict, **{**ok, "amount_wei": CAP + 1})  # type: ignore[arg-type]
    assert "more cells" in may_sign_pass(verdict, **{**ok, "max_cells": 1})  # type: ignore[arg-type]
    # the signature is not part of what the claim commits to
    assert may_sign_pass(_pass(pass_sig=b"\x08" * 65), **ok) == ""  # type: ignore[arg-type]
    # after the render: exactly the accused's cells, found wrong
    off = (dataclasses.replace(verdict.tiles[1], psnr_millidb=51_900), verdict.tiles[0])
    wrong = _pass(passed=False, pass_sig=None, tiles=off)  # a plant's cell: 51.9 dB
    assert may_sign_pass(verdict, **ok, ours=wrong) == ""  # type: ignore[arg-type]
    # Review of stop 44: a frame on the 55 dB line (planted to pass on the accused's
    # device class and to fail by a hair on another's) is no claim: the margin
    for psnr in (54_990, PASS_CLAIM_PSNR_MILLIDB):
        hair = dataclasses.replace(wrong, tiles=(dataclasses.replace(off[0], psnr_millidb=psnr), off[1]))
        assert "less than a pass claim needs" in may_sign_pass(verdict, **ok, ours=hair)  # type: ignore[arg-type]
    right = dataclasses.replace(wrong, passed=True)
    assert "pass stands" in may_sign_pass(verdict, **ok, ours=right)  # type: ignore[arg-type]
    fewer = dataclasses.replace(wrong, tiles=wrong.tiles[:1])
    assert "exactly" in may_sign_pass(verdict, **ok, ours=fewer)  # type: ignore[arg-type]
    more = dataclasses.replace(wrong, tiles=(*wrong.tiles, TileEvidence(32, 0, 16, 16, 0, 9)))
    assert "exactly" in may_sign_pass(verdict, **ok, ours=more)  # type: ignore[arg-type]



STAKE_WEI = 10**17  # the escrow's cap: a quarter of it beats a dispute's two fees


def checked(
    *, escrowed: bool = True, checkers: int = 4, plant_rate_ppm: int = 0
) -> tuple[MarketHarness, bytes]:
    """A fresh worker's one frame at ``normal`` (two checkers), no plants unless asked,
    every checker holding the cap: (harness, task)."""
    market = MarketConfig(plant_rate_ppm=plant_rate_ppm)
    harness = MarketHarness(frames=(1,), checkers=checkers, check_secret=SECRET, market=market,
                            verification=DEFAULT_POLICY,
                            escrow=ESCROW if escrowed else None)  # fmt: skip
    for address in harness.checker_addresses.values():
        harness.job.set_stake(address, STAKE_WEI)
    harness.start()
    harness.advance(WINDOW_MS)
    (task_id,) = list(harness.renders)
    harness.finish_render(task_id)
    return harness, task_id


def real_verdict(harness: MarketHarness, task_id: bytes, passed: bool) -> tuple[bytes, Verdict]:
    checker, request = harness.verifications.pop(task_id)
    verdict = Verdict(
        request.job_id, request.task_id, request.frame, request.worker, request.result_digest,
        passed, request.tile_secret, tiles_for(request), BUILD, "cpu-avx2",
        digests_for(request), SIG if passed else None,
    )  # fmt: skip
    harness.send(checker, harness.requester, verdict)
    harness.pump()
    return checker, verdict


def test_a_pass_a_dispute_shows_false_is_claimed_against_its_checker() -> None:
    """Stop 46: a colluding checker passes its partner's fake, the second checker rejects
    it. The worker is an unstaked sybil, so only the pass is worth a claim: the requester
    confirms the rejection itself, and once a majority upholds it the pass is claimed (its
    claimers re-render its own cells of that frame), as a plant's miss is. 12 of the 14
    cheats that slipped at the default did so behind such a pass, when the honest
    checker's tiles missed the fake instead."""
    harness, task_id = checked()
    frame_cid = harness.verifications[task_id][1].frame_cid
    first, passed = real_verdict(harness, task_id, True)
    second, _ = real_verdict(harness, task_id, False)
    assert second != first and harness.commands(PassClaimDue) == []  # one rejection: nothing
    assert harness.job.task_state(task_id) is TaskState.DISPUTED  # confirmed for the pass
    harness.dispute_verdict(0, False)  # the rejecter and one more: a majority
    (due,) = harness.commands(PassClaimDue)
    assert isinstance(due, PassClaimDue)
    assert (due.task_id, due.frame, due.frame_cid, due.checker, due.verdict) == (
        task_id, 1, frame_cid, first, passed
    )  # fmt: skip
    assert due.checker_address == harness.checker_addresses[first]
    harness.dispute_verdict(1, False)  # a late vote: no second claim
    assert len(harness.commands(PassClaimDue)) == 1


def test_a_lone_liar_cannot_have_an_honest_pass_claimed() -> None:
    """Review of stop 46: claimed at the rejection, a lying second checker set claimers
    rendering against an honest pass and showed its signed verdict to every pick. Now the
    dispute overturns the lie and nothing is claimed."""
    harness, task_id = checked()
    real_verdict(harness, task_id, True)
    real_verdict(harness, task_id, False)  # a lie
    harness.dispute_verdict(0, True)
    harness.dispute_verdict(1, True)
    assert harness.job.task_state(task_id) is TaskState.OVERTURNED
    assert harness.commands(PassClaimDue) == []
    assert harness.job._tasks[task_id].passes == {}


def test_a_pass_nobody_stakes_for_is_not_worth_a_confirmation() -> None:
    harness, task_id = checked()
    first = harness.verifications[task_id][0]
    harness.job.set_stake(harness.checker_addresses[first], 0)
    real_verdict(harness, task_id, True)
    real_verdict(harness, task_id, False)
    assert harness.job.task_state(task_id) is TaskState.REJECTED  # no dispute, no claim
    assert harness.commands(PassClaimDue) == []


@pytest.mark.parametrize("escrowed", [True, False], ids=["both-passed", "no-escrow"])
def test_no_claim_on_a_pass_nobody_contradicted_or_without_escrow(escrowed: bool) -> None:
    harness, task_id = checked(escrowed=escrowed)
    real_verdict(harness, task_id, True)
    real_verdict(harness, task_id, escrowed)  # escrowed: both pass; else the second rejects
    assert harness.commands(PassClaimDue) == [] and harness.job._tasks[task_id].passes == {}


def test_a_task_whose_plant_is_still_out_leaves_the_claim_to_the_plant() -> None:
    """The node keeps one pass claim a task: a contradicted pass claimed first would drop
    the plant's claim, the surer one, should its holder pass the plant late (review of
    stop 46). With the plant out no pass is claimable, so the unstaked worker's rejection
    is not worth a confirmation either (second review of stop 46)."""
    harness, task_id = checked(checkers=6, plant_rate_ppm=1_000_000)
    assert task_id in harness.plants  # out, unanswered
    real_verdict(harness, task_id, True)
    real_verdict(harness, task_id, False)
    assert harness.job.task_state(task_id) is TaskState.REJECTED and not harness.dispute_requests
    assert harness.commands(PassClaimDue) == []


def test_a_rejection_first_claims_nothing() -> None:
    harness, task_id = checked()
    real_verdict(harness, task_id, False)
    assert harness.commands(PassClaimDue) == []


def test_a_dispute_checker_outvoted_on_its_pass_is_claimed_too() -> None:
    """A colluder in a dispute seat passes its partner's fake and is outvoted: its pass,
    whose cells include the rejection's worst one (the aimed draw), is claimed like the
    first checker's."""
    harness, task_id = checked(checkers=5)
    real_verdict(harness, task_id, True)
    real_verdict(harness, task_id, False)
    colluder = harness.dispute_requests[0][0]
    harness.dispute_verdict(0, True)
    assert harness.commands(PassClaimDue) == []  # not decided yet
    harness.dispute_verdict(1, False)
    assert harness.job.task_state(task_id) is TaskState.REJECTED
    (due,) = harness.commands(PassClaimDue)  # one a task (the node's store): the seat's first
    assert isinstance(due, PassClaimDue) and due.checker == colluder


def test_a_first_checker_reused_in_a_dispute_seat_yields_the_claim_to_the_seat_that_passed() -> None:
    """Second review of stop 46: with three checkers the dispute reuses the first check's
    passer P in a seat (``dispute_fallback``); P now rejects, a fresh seat F passes and is
    outvoted. P's earlier pass (an honest miss) ranked with the seats and won on node id,
    so F, the colluder, was never claimed. The pass given in a seat comes first."""
    harness, task_id = checked(checkers=3)
    first, _ = real_verdict(harness, task_id, True)
    real_verdict(harness, task_id, False)
    seats = [checker for checker, _ in harness.dispute_requests]
    assert first in seats  # the fallback seat: no fresh checker left for it
    order = {checker: i for i, (checker, _) in enumerate(harness.dispute_requests)}
    fresh = next(c for c in seats if c != first)
    harness.dispute_verdict(order[fresh], True)  # the colluder passes
    harness.dispute_verdict(order[first], False)  # the first passer, rendering again, rejects
    assert harness.job.task_state(task_id) is TaskState.REJECTED
    (due,) = harness.commands(PassClaimDue)
    assert isinstance(due, PassClaimDue) and due.checker == fresh


def test_a_dispute_upheld_by_its_seats_silence_claims_no_pass() -> None:
    """Only a majority's verdicts claim (second review of stop 46: nothing tested it): a
    confirmation whose seats never answer ends upheld on the rejecter's word alone."""
    harness, task_id = checked()
    real_verdict(harness, task_id, True)
    real_verdict(harness, task_id, False)
    assert harness.job.task_state(task_id) is TaskState.DISPUTED
    for checker, _ in harness.dispute_requests:
        harness.silence(checker)
    harness.advance(10 * MarketConfig().verify_timeout_ms)
    assert harness.job.task_state(task_id) is TaskState.REJECTED
    assert harness.commands(PassClaimDue) == [] and harness.job._tasks[task_id].passes == {}
