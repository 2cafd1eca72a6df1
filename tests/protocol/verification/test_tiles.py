"""Tile selection: deterministic, unpredictable without the secret, auditable."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from protocol.errors import LocalProtocolError
from protocol.verification import Tile, select_tiles, should_check, tile_grid, tile_seed

DIGEST = hashlib.sha256(b"result").digest()
SECRET = bytes(range(32))

dims = st.integers(1, 700)
digests = st.binary(min_size=32, max_size=32)


@given(dims, dims, st.integers(8, 64))
def test_grid_covers_the_frame_exactly_once(width: int, height: int, tile_px: int) -> None:
    covered = np.zeros((height, width), dtype=np.int32)
    grid = tile_grid(width, height, tile_px)
    assert len(grid) == -(-width // tile_px) * -(-height // tile_px)
    for t in grid:
        assert 0 <= t.x < t.x + t.width <= width and 0 <= t.y < t.y + t.height <= height
        covered[t.y : t.y + t.height, t.x : t.x + t.width] += 1
    assert (covered == 1).all()


@given(digests, digests, dims, dims, st.integers(0, 40), st.integers(8, 64))
def test_selection_is_deterministic_distinct_and_from_the_grid(
    digest: bytes, secret: bytes, width: int, height: int, k: int, tile_px: int
) -> None:
    a = select_tiles(digest, secret, width, height, k, tile_px)
    assert a == select_tiles(digest, secret, width, height, k, tile_px)
    grid = set(tile_grid(width, height, tile_px))
    assert len(a) == min(k, len(grid)) == len(set(a))
    assert set(a) <= grid
    assert list(a) == sorted(a)


def test_secret_changes_the_choice() -> None:
    choices = {select_tiles(DIGEST, bytes([i]) * 32, 640, 480, 4, 32) for i in range(50)}
    assert len(choices) == 50  # 300 cells choose 4: collisions would be astronomically rare


def test_digest_changes_the_choice() -> None:
    other = hashlib.sha256(b"other").digest()
    assert select_tiles(DIGEST, SECRET, 640, 480, 6, 32) != select_tiles(
        other, SECRET, 640, 480, 6, 32
    )


def test_selection_is_roughly_uniform_over_cells() -> None:
    counts: dict[Tile, int] = {}
    trials = 3000
    for i in range(trials):
        for t in select_tiles(DIGEST, i.to_bytes(32, "big"), 128, 64, 2, 32):  # 8 cells
            counts[t] = counts.get(t, 0) + 1
    assert len(counts) == 8
    expected = trials * 2 / 8
    assert all(abs(c - expected) < 0.15 * expected for c in counts.values())


def test_seed_is_domain_separated_sha256() -> None:
    assert (
        tile_seed(DIGEST, SECRET)
        == hashlib.sha256(b"pictor/verify/tiles/v1\x00" + DIGEST + SECRET).digest()
    )
    with pytest.raises(LocalProtocolError):
        tile_seed(b"short", SECRET)


def test_k_larger_than_grid_takes_every_cell() -> None:
    assert set(select_tiles(DIGEST, SECRET, 64, 48, 99, 32)) == set(tile_grid(64, 48, 32))


def test_should_check_follows_the_probability() -> None:
    draws = [hashlib.sha256(i.to_bytes(4, "big")).digest() for i in range(4000)]
    assert all(should_check(d, 1.0) for d in draws)
    assert not any(should_check(d, 0.0) for d in draws)
    share = sum(should_check(d, 0.25) for d in draws) / len(draws)
    assert 0.22 < share < 0.28
    with pytest.raises(LocalProtocolError):
        should_check(b"1234", 0.5)
