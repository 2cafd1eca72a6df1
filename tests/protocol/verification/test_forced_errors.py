"""Plants: every cell of a plant fails an honest check; tile digests commit to pixels."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocol.errors import LocalProtocolError
from protocol.forced_errors import (
    blank_cells,
    cells_bitmap,
    cells_of_bitmap,
    perturb,
    plant_covers,
    plant_key,
    plant_missed,
    should_plant,
)
from protocol.fraud_evidence import PASS_CLAIM_PSNR_MILLIDB
from protocol.messages import TileEvidence, Verdict
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
    """Whatever tiles an honest checker draws, each one rejects the plant where it
    changed a cell (every cell but the blank ones: fewer visible pixels than a plant
    changes, under alpha 0), exact and cross-build rules alike, saturated and flat
    images included; a blank cell is the frame's, untouched."""
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
        hidden = image[:, :, 3] == 0
        assert np.array_equal(plant[hidden], image[hidden])  # nothing under alpha 0
    blank = blank_cells(image, TILE_PX)
    if channels != 4:
        assert not blank
    for cell in tile_grid(width, height, TILE_PX):
        rows, cols = slice(cell.y, cell.y + cell.height), slice(cell.x, cell.x + cell.width)
        if cell in blank:
            assert np.array_equal(plant[rows, cols], image[rows, cols])
            continue
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


def test_a_plant_under_a_transparent_film_changes_nothing_a_renderer_leaves_blank() -> None:
    """Review of stop 44: specks under alpha 0, where a renderer writes 0 or 1, told a
    lone lazy checker the plant with no render (tests/verify/test_plant_alpha.py plays it
    on Blender frames). Now a plant changes visible pixels only; a cell with fewer than a
    plant changes is blank, and a pass whose cells are all blank is no miss nor claim."""
    image = np.zeros((40, 48, 4), dtype=np.uint8)  # 3 x 3 cells of 16 px, edges short
    image[:16, :16] = (200, 120, 40, 255)  # one opaque cell
    image[16:32, 16:32, 3] = 0  # a transparent cell, colour 0 under alpha 0 (as rendered)
    image[16, 16] = (9, 9, 9, 128)  # with three visible pixels: too few to plant on
    image[17, 17] = image[18, 18] = (9, 9, 9, 128)
    image[32:40, 32:48] = (1, 0, 1, 3)  # a short edge cell, faint but visible
    plant = perturb(image, hashlib.sha256(b"k").digest(), TILE_PX)
    hidden = image[:, :, 3] == 0
    assert np.array_equal(plant[hidden], image[hidden])
    blank = blank_cells(image, TILE_PX)
    grid = list(tile_grid(48, 40, TILE_PX))
    assert blank == frozenset(grid) - {grid[0], grid[8]}
    assert not np.array_equal(plant[:16, :16], image[:16, :16])
    assert not np.array_equal(plant[32:40, 32:48], image[32:40, 32:48])

    def passing(*cells: int) -> Verdict:
        tiles = tuple(TileEvidence(grid[i].x, grid[i].y, grid[i].width, grid[i].height, 0, 0)
                      for i in cells)  # fmt: skip
        return Verdict(b"j" * 32, b"t" * 32, 1, b"w" * 32, b"d" * 32, True, b"s" * 32, tiles,
                       "b", "c", (b"x" * 32,) * len(tiles))  # fmt: skip

    assert not plant_missed(passing(4, 5), blank)  # nothing changed where it looked
    assert plant_missed(passing(4, 0), blank) and plant_missed(passing(4, 5))  # (no alpha known)
    assert not plant_covers(passing(4, 0), 48, 40, TILE_PX, blank)  # a claim needs all wrong
    assert plant_covers(passing(0, 8), 48, 40, TILE_PX, blank)
    bits = cells_bitmap(blank, 48, 40, TILE_PX)
    assert len(bits) == 2 and cells_of_bitmap(bits, 48, 40, TILE_PX) == blank
    with pytest.raises(LocalProtocolError):
        cells_of_bitmap(bits, 128, 128, TILE_PX)


def test_a_plant_specks_opaque_pixels_where_a_cell_has_enough() -> None:
    """An edge pixel of low alpha leaves less margin against cross-device noise (review of
    stop 45): with four opaque pixels or more in a cell, the specks go there."""
    image = np.zeros((16, 16, 4), dtype=np.uint8)
    image[:, :] = (100, 100, 100, 20)  # faint everywhere
    image[5, 3:9] = (100, 100, 100, 255)  # six opaque pixels
    plant = perturb(image, hashlib.sha256(b"edge").digest(), TILE_PX)
    changed = np.argwhere((plant != image).any(axis=2))
    assert len(changed) == 4 and all(y == 5 and 3 <= x < 9 for y, x in changed)
