"""compare_tile: exact for the same build, PSNR tolerance across builds."""

from __future__ import annotations

import numpy as np
import pytest

from protocol.errors import LocalProtocolError
from protocol.verification import (
    PSNR_IDENTICAL_MILLIDB,
    ComparisonPolicy,
    Tile,
    compare_tile,
    psnr_millidb,
)

POLICY = ComparisonPolicy()
rng = np.random.default_rng(1)
REF = rng.integers(0, 256, size=(32, 32, 4), dtype=np.uint8)


def test_identical_tiles_pass_both_ways_with_infinite_psnr() -> None:
    for same_build in (True, False):
        check = compare_tile(REF, REF.copy(), same_build, POLICY, Tile(64, 32, 32, 32))
        assert check.passed
        assert check.evidence.psnr_millidb == PSNR_IDENTICAL_MILLIDB
        assert check.evidence.max_abs_diff == 0
        assert (check.evidence.x, check.evidence.y) == (32, 64)


def test_one_lsb_in_one_pixel_fails_exact_but_passes_tolerance() -> None:
    cand = REF.copy()
    cand[5, 7, 0] ^= 1
    assert not compare_tile(REF, cand, True, POLICY).passed
    loose = compare_tile(REF, cand, False, POLICY)
    assert loose.passed and loose.evidence.max_abs_diff == 1
    # MSE = 1/4096 -> PSNR = 10 log10(255^2 * 4096) = 84.254 dB
    assert loose.evidence.psnr_millidb == 84_254


def test_cheat_level_noise_fails_tolerance() -> None:
    noise = rng.normal(0, 8, size=REF.shape)  # ~30 dB: in the measured cheat band
    cand = np.clip(REF.astype(float) + noise, 0, 255).astype(np.uint8)
    check = compare_tile(REF, cand, False, POLICY)
    assert not check.passed
    assert 25_000 < check.evidence.psnr_millidb < 40_000


def test_threshold_is_inclusive() -> None:
    cand = REF.copy()
    cand[0, 0, 0] = REF[0, 0, 0] ^ 0x10
    measured = psnr_millidb(REF, cand)
    assert compare_tile(REF, cand, False, ComparisonPolicy(min_psnr_millidb=measured)).passed
    assert not compare_tile(
        REF, cand, False, ComparisonPolicy(min_psnr_millidb=measured + 1)
    ).passed


def test_sixteen_bit_peak() -> None:
    ref = rng.integers(0, 65536, size=(8, 8), dtype=np.uint16)
    cand = ref.copy()
    cand[0, 0] = ref[0, 0] ^ 1
    # MSE = 1/64 over a 65535 peak
    assert psnr_millidb(ref, cand) == int(10_000 * np.log10(65535.0**2 * 64))


def test_shape_or_dtype_mismatch_is_the_callers_bug() -> None:
    with pytest.raises(LocalProtocolError):
        compare_tile(REF, REF[:, :, :3], True, POLICY)
    with pytest.raises(LocalProtocolError):
        compare_tile(REF.astype(np.float32), REF.astype(np.float32), True, POLICY)
    with pytest.raises(LocalProtocolError):
        compare_tile(REF, REF, True, POLICY, Tile(0, 0, 16, 32))
