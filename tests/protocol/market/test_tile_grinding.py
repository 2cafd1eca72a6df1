"""A checker must not choose its cells (issue 17): the requester draws the tile secret.

The attack: a worker fakes the last 10 % of a frame's cells; a checker colluding with it
redraws its own secret until ``select_tiles`` misses every faked cell, "re-renders" those
honest cells and signs a passing verdict that is consistent in every way a third party
can check. Before the requester drew the secret, its job machine accepted that verdict
and paid the worker; now it refuses a verdict whose secret is not the request's, and one
on other cells than the request's secret selects.
"""

from __future__ import annotations

import hashlib

import pytest

from protocol.errors import IllegalMessage
from protocol.market import CheckerFeeDue, MarketConfig, TaskState, WorkerJudged
from protocol.messages import TileEvidence, Verdict, VerifyRequest
from protocol.verification import DEFAULT_POLICY, PSNR_IDENTICAL_MILLIDB, Tile, select_tiles
from tests.protocol.market.harness import BUILD, MarketHarness

W, H, TILE_PX = 320, 240, DEFAULT_POLICY.sampling.tile_px  # the harness's frame: 300 cells
COLUMNS = -(-W // TILE_PX)
CELLS = COLUMNS * -(-H // TILE_PX)
FAKED_FROM = CELLS - CELLS // 10  # the worker faked the last 10 % of the cells (row-major)


def faked(tile: Tile) -> bool:
    return (tile.y // TILE_PX) * COLUMNS + tile.x // TILE_PX >= FAKED_FROM


def passing_verdict(request: VerifyRequest, secret: bytes, tiles: tuple[Tile, ...]) -> Verdict:
    """A clean verdict on ``tiles``: identical pixels, digests of honest renders."""
    evidence = tuple(
        TileEvidence(t.x, t.y, t.width, t.height, PSNR_IDENTICAL_MILLIDB, 0) for t in tiles
    )
    digests = tuple(hashlib.sha256(b"honest %d %d" % (t.x, t.y)).digest() for t in tiles)
    return Verdict(request.job_id, request.task_id, request.frame, request.worker,
                   request.result_digest, True, secret, evidence, BUILD, "cpu-avx2",
                   digests)  # fmt: skip


def grind(request: VerifyRequest) -> tuple[bytes, tuple[Tile, ...], int]:
    """The colluding checker's loop: its own secrets until no selected cell is faked."""
    for attempt in range(100_000):
        secret = hashlib.sha256(b"grind %d" % attempt).digest()
        tiles = select_tiles(request.result_digest, secret, W, H, request.tiles, TILE_PX)
        if not any(faked(t) for t in tiles):
            return secret, tiles, attempt + 1
    raise AssertionError("no secret misses the fake")


def checked() -> tuple[MarketHarness, bytes, bytes, VerifyRequest]:
    """A job of three frames, plants off, whose first checked result waits for a verdict."""
    harness = MarketHarness(frames=(1, 2, 3), checkers=2, check_secret=b"\x17" * 32,
                            market=MarketConfig(plant_rate_ppm=0))  # fmt: skip
    harness.start()
    harness.advance(MarketConfig().bid_window_ms)
    for task_id in list(harness.renders):
        harness.finish_render(task_id)
    task_id = sorted(harness.verifications)[0]
    checker, request = harness.verifications[task_id]
    assert request.tiles == 24  # a fresh worker's plan: 24 of 300 cells
    return harness, task_id, checker, request


def test_a_checker_grinding_its_secret_past_a_partial_fake_is_refused() -> None:
    harness, task_id, checker, request = checked()
    secret, tiles, attempts = grind(request)
    assert secret != request.tile_secret and attempts > 1  # it had to redraw
    harness.send(checker, harness.requester, passing_verdict(request, secret, tiles))
    with pytest.raises(IllegalMessage, match="tile secret"):
        harness.pump()
    assert harness.job.task_state(task_id) is TaskState.VERIFYING  # nothing accepted
    assert not harness.commands(CheckerFeeDue) and not harness.commands(WorkerJudged)


def test_a_checker_keeping_the_secret_but_choosing_its_cells_is_refused() -> None:
    """The secret revealed is the request's, the tiles named are the grind's."""
    harness, task_id, checker, request = checked()
    _, tiles, _ = grind(request)
    harness.send(checker, harness.requester, passing_verdict(request, request.tile_secret, tiles))
    with pytest.raises(IllegalMessage, match="other tiles"):
        harness.pump()
    assert harness.job.task_state(task_id) is TaskState.VERIFYING


def test_a_verdict_on_the_requests_own_draw_is_taken() -> None:
    """The same checker, on the cells the requester's secret selects: accepted."""
    harness, task_id, checker, request = checked()
    tiles = select_tiles(request.result_digest, request.tile_secret, W, H, request.tiles, TILE_PX)
    harness.send(checker, harness.requester, passing_verdict(request, request.tile_secret, tiles))
    harness.pump()
    assert harness.job.task_state(task_id) is TaskState.ACCEPTED
    assert len(harness.commands(CheckerFeeDue)) == 1
