"""The requester's tile secrets: one per request, unknown without the check secret,
the same on a replay (protocol.tile_secret)."""

from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocol.errors import LocalProtocolError
from protocol.market import MarketConfig, Send, TaskState
from protocol.messages import VerifyRequest
from protocol.tile_secret import CheckKind, aimed_tile_secret, request_tile_secret
from protocol.verification import cell_of, draw_includes, select_tiles
from tests.protocol.market.harness import MarketHarness, tiles_for

b32 = st.binary(min_size=32, max_size=32)
draws = st.tuples(b32, b32, b32, b32, st.sampled_from(CheckKind))


@given(draws, draws)
def test_each_request_gets_its_own_secret_and_a_replay_the_same(
    a: tuple[bytes, bytes, bytes, bytes, CheckKind], b: tuple[bytes, bytes, bytes, bytes, CheckKind]
) -> None:
    assert request_tile_secret(*a) == request_tile_secret(*a)
    assert (request_tile_secret(*a) == request_tile_secret(*b)) is (a == b)


@given(draws, st.integers(0, 4), st.integers(0, 255))
def test_every_part_of_the_request_changes_the_secret(
    a: tuple[bytes, bytes, bytes, bytes, CheckKind], part: int, flip: int
) -> None:
    """No part is ignored: one changed byte of any part (or another kind) gives another."""
    parts = list(a)
    if part == 4:
        parts[4] = CheckKind((a[4] + 1 + flip % 2) % len(CheckKind))
    else:
        value = bytearray(parts[part])  # type: ignore[arg-type]
        value[flip % 32] ^= 1 + flip // 32
        parts[part] = bytes(value)
    assert request_tile_secret(*parts) != request_tile_secret(*a)  # type: ignore[arg-type]


def test_malformed_parts_are_the_callers_bug() -> None:
    with pytest.raises(LocalProtocolError):
        request_tile_secret(b"\x01" * 31, b"\x02" * 32, b"\x03" * 32, b"\x04" * 32, CheckKind.CHECK)
    with pytest.raises(LocalProtocolError):
        request_tile_secret(b"\x01" * 32, b"\x02" * 32, b"\x03" * 32, b"\x04" * 20, CheckKind.CHECK)


def requests_of(check_secret: bytes) -> list[tuple[bytes, VerifyRequest]]:
    """Every VerifyRequest of a planted, rejected and disputed two-frame job, in order."""
    market = MarketConfig(plant_rate_ppm=1_000_000)
    harness = MarketHarness(frames=(1, 2), checkers=6, check_secret=check_secret, market=market)
    harness.start()
    harness.advance(market.bid_window_ms)
    for task_id in list(harness.renders):
        harness.finish_render(task_id)
    for task_id in sorted(harness.verifications):
        harness.verdict(task_id, False)
        harness.dispute(task_id)
    return [(s.command.to, s.command.message) for s in harness.log
            if isinstance(s.command, Send) and isinstance(s.command.message, VerifyRequest)]  # fmt: skip


@settings(max_examples=8, deadline=None)
@given(b32)
def test_a_jobs_checks_plants_and_disputes_each_draw_their_own_and_replay_identically(
    check_secret: bytes,
) -> None:
    sent = requests_of(check_secret)
    kinds = {(to, r.task_id, r.frame_cid) for to, r in sent}
    assert len({r.task_id for _, r in sent}) == 2
    assert len({r.frame_cid for _, r in sent}) == 3  # the worker's frame and two plants
    assert len(kinds) >= 2 * (1 + 2)  # each task: its check and two dispute checkers at least
    secrets = {(to, r.task_id, r.frame_cid): r.tile_secret for to, r in sent}
    assert len(set(secrets.values())) == len(secrets)  # no two requests share a secret
    assert requests_of(check_secret) == sent  # a replay sends the very same requests


@settings(max_examples=60, deadline=None)
@given(b32, b32, st.integers(1, 700), st.integers(1, 400), st.integers(0, 40), st.data())
def test_draw_includes_is_select_tiles_membership(
    digest: bytes, secret: bytes, width: int, height: int, k: int, data: st.DataObject
) -> None:
    tile_px = 16
    cells = -(-width // tile_px) * -(-height // tile_px)
    cell = data.draw(st.integers(0, cells - 1))
    picked = {cell_of(t, width, tile_px) for t in select_tiles(digest, secret, width, height, k, tile_px)}
    assert draw_includes(digest, secret, width, height, k, tile_px, cell) is (cell in picked)


@settings(max_examples=40, deadline=None)
@given(b32, b32, st.integers(1, 60), st.data())
def test_an_aimed_secret_draws_the_cell_it_aims_at(
    secret: bytes, digest: bytes, k: int, data: st.DataObject
) -> None:
    """A dispute checker's secret (protocol.tile_secret.aimed_tile_secret): its draw picks
    the rejecting verdict's worst cell, the same on a replay, and the secret itself when
    that draw already does."""
    width, height, tile_px = 640, 360, 16  # the simulator's frame: 920 cells
    cell = data.draw(st.integers(0, 919))
    aimed = aimed_tile_secret(secret, digest, width, height, k, tile_px, cell)
    assert draw_includes(digest, aimed, width, height, k, tile_px, cell)
    assert aimed == aimed_tile_secret(secret, digest, width, height, k, tile_px, cell)
    if draw_includes(digest, secret, width, height, k, tile_px, cell):
        assert aimed == secret
    assert aimed_tile_secret(secret, digest, width, height, k, tile_px, 920) == secret  # no such cell


def test_a_disputes_checkers_re_render_the_cell_the_rejecter_named() -> None:
    """The "overturned" misses (docs/VERIFICATION.md): a rejection of a partial fake went
    to dispute, a colluder passed it and an honest dispute checker's random tiles missed
    the fake. Each dispute checker's draw now holds the rejecting verdict's worst tile."""
    harness = MarketHarness(frames=(1,), checkers=4)
    harness.start()
    harness.advance(MarketConfig().bid_window_ms)
    (task_id,) = harness.renders
    harness.finish_render(task_id)
    checker, request = harness.verifications.pop(task_id)
    tiles = list(tiles_for(request))
    worst = 5  # the rejecter's evidence: one tile far below the threshold
    tiles[worst] = replace(tiles[worst], psnr_millidb=31_000, max_abs_diff=200)
    verdict = replace(harness.make_verdict(checker, request, False), tiles=tuple(tiles))
    harness.send(checker, harness.requester, verdict)
    harness.pump()
    harness.dispute(task_id)
    assert len(harness.dispute_requests) == 2
    named = (tiles[worst].y, tiles[worst].x)
    for _, ask in harness.dispute_requests:
        drawn = select_tiles(ask.result_digest, ask.tile_secret, 320, 240, ask.tiles, 16)
        assert named in {(t.y, t.x) for t in drawn}
    harness.dispute_verdict(0, True)  # the harness's checkers follow the aimed draw
    harness.dispute_verdict(1, True)
    assert harness.job.task_state(task_id) is TaskState.OVERTURNED
