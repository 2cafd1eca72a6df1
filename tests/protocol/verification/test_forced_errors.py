"""Plants: every cell of a plant fails an honest check; tile digests commit to pixels."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocol.errors import LocalProtocolError
from protocol.forced_errors import perturb, plant_key, should_plant
from protocol.fraud_evidence import PASS_CLAIM_PSNR_MILLIDB
from protocol.verification import (
    DEFAULT_POLICY,
    compare_tile,
    psnr_millidb,
    tile_digest,
    tile_grid,
)

TILE_PX = DEFAULT_POLICY.sampling.tile_px
POLICY = DEFAULT_POLICY.comparison


@settings(max_examples=40, deadline=None)
@given(
    width=st.integers(1, 70),
    height=st.integers(1, 50),
    channels=st.sampled_from([1, 3, 4]),
    wide=st.booleans(),
    seed=st.binary(min_size=32, max_size=32),
    flat=st.sampled_from([None, 0, 255]),
)
def test_every_cell_of_a_plant_fails_both_comparison_rules(
    width: int, height: int, channels: int, wide: bool, seed: bytes, flat: int | None
) -> None:
    """Whatever tiles an honest checker draws, each one rejects the plant: exact and
    cross-build rules alike, saturated and flat images included."""
    dtype = np.uint16 if wide and channels == 1 else np.uint8
    peak = int(np.iinfo(dtype).max)
    rng = np.random.default_rng(int.from_bytes(seed[:8], "big"))
    if flat is None:
        image = rng.integers(0, peak + 1, size=(height, width, channels), dtype=dtype)
    else:
        image = np.full((height, width, channels), flat * peak // 255, dtype=dtype)
    plant = perturb(image, seed, TILE_PX)
    assert plant.dtype == image.dtype and plant.shape == image.shape
    if channels == 4:
        assert np.array_equal(plant[:, :, 3], image[:, :, 3])  # alpha untouched
    for cell in tile_grid(width, height, TILE_PX):
        rows, cols = slice(cell.y, cell.y + cell.height), slice(cell.x, cell.x + cell.width)
        for same_build in (True, False):
            check = compare_tile(image[rows, cols], plant[rows, cols], same_build, POLICY, cell)
            assert not check.passed, (cell, same_build, check.evidence)


def test_a_plant_is_keyed_and_deterministic() -> None:
    image = np.zeros((32, 48, 3), dtype=np.uint8)
    a, b = hashlib.sha256(b"a").digest(), hashlib.sha256(b"b").digest()
    assert np.array_equal(perturb(image, a, TILE_PX), perturb(image, a, TILE_PX))
    assert not np.array_equal(perturb(image, a, TILE_PX), perturb(image, b, TILE_PX))
    with pytest.raises(LocalProtocolError):
        perturb(image, b"short", TILE_PX)


def test_the_plant_draw_follows_the_rate_and_the_secret() -> None:
    secret = b"\x07" * 32
    digests = [hashlib.sha256(i.to_bytes(4, "big")).digest() for i in range(4_000)]
    assert not any(should_plant(secret, d, 0) for d in digests)
    assert all(should_plant(secret, d, 1_000_000) for d in digests)
    share = sum(should_plant(secret, d, 100_000) for d in digests) / len(digests)
    assert 0.085 < share < 0.115  # 10 %, binomial sd 0.5 %
    mine = [should_plant(secret, d, 100_000) for d in digests[:400]]
    assert mine != [should_plant(b"\x08" * 32, d, 100_000) for d in digests[:400]]
    assert plant_key(secret, digests[0]) != plant_key(secret, digests[1])


def test_tile_digests_commit_to_exact_pixels() -> None:
    tile = np.arange(16 * 16 * 4, dtype=np.uint32).reshape(16, 16, 4).astype(np.uint8)
    same = tile.copy()
    assert tile_digest(tile) == tile_digest(same)
    same[3, 4, 1] ^= 1
    assert tile_digest(tile) != tile_digest(same)
    # shape and sample width are part of what is committed
    assert tile_digest(tile[:, :8]) != tile_digest(tile.reshape(16, 8, 8)[:, :, :4])
    assert tile_digest(tile[:, :, :1].astype(np.uint16)) != tile_digest(tile[:, :, :1])
    check = compare_tile(tile, tile, True, POLICY)
    assert check.digest == tile_digest(tile)  # the re-render's digest, as committed


def test_every_cell_of_a_plant_is_off_by_what_a_pass_claim_needs() -> None:
    """A claim on a checker's pass is signed only for a cell under
    ``PASS_CLAIM_PSNR_MILLIDB`` (the margin below 55 dB that a requester framing an honest
    checker cannot cross): every cell of a real plant, edge cells included, RGBA and RGB,
    8 and 16 bits, reads under it against the frame it was made from."""
    rng = np.random.default_rng(7)
    for shape, dtype in (((50, 70, 4), np.uint8), ((50, 70, 3), np.uint8), ((33, 40, 4), np.uint16)):
        top = np.iinfo(dtype).max
        frame = rng.integers(0, top, size=shape, endpoint=True).astype(dtype)
        plant = perturb(frame, b"k" * 32, 16)
        for cell in tile_grid(shape[1], shape[0], 16):
            rows, cols = slice(cell.y, cell.y + cell.height), slice(cell.x, cell.x + cell.width)
            assert psnr_millidb(frame[rows, cols], plant[rows, cols]) < PASS_CLAIM_PSNR_MILLIDB
