"""The one cost model (protocol/cost.py): render units, frame times, absurd settings."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from protocol.cost import (
    MAX_RU_PER_FRAME,
    REFERENCE_PATHS,
    REFERENCE_PROBE,
    REFERENCE_PROBE_WORK,
    LightPaths,
    complexity_permille,
    effective_bounces,
    finishes_in_time,
    frame_time_ms,
    frame_work,
    ru_per_frame,
    settings_problem,
)


def test_the_reference_frame_is_one_render_unit() -> None:
    assert ru_per_frame(320, 240, 32, REFERENCE_PATHS) == 1
    assert ru_per_frame(640, 480, 32, REFERENCE_PATHS) == 4
    assert ru_per_frame(1920, 1080, 128, REFERENCE_PATHS) == 108
    assert ru_per_frame(64, 48, 8, REFERENCE_PATHS) == 1  # a thumbnail costs the minimum


def test_the_issue_s_absurd_frame_is_priced_as_what_it_is_and_refused() -> None:
    # On main it was announced at 10 RU, the price of a thumbnail.
    ru = ru_per_frame(16384, 16384, 1 << 20, REFERENCE_PATHS)
    assert ru == 114_532_462
    problem = settings_problem(16384, 16384, 1 << 20, REFERENCE_PATHS)
    assert problem is not None and "114,532,462 RU per frame" in problem
    assert "lower the resolution or the samples" in problem
    assert settings_problem(1920, 1080, 4096, REFERENCE_PATHS) is None


def test_fewer_bounces_cost_less() -> None:
    direct = LightPaths(max_bounces=0)
    assert effective_bounces(direct) == 0 and effective_bounces(REFERENCE_PATHS) == 12
    assert effective_bounces(LightPaths(max_bounces=64, diffuse=2, glossy=3, transmission=1)) == 3
    assert ru_per_frame(1920, 1080, 128, direct) < ru_per_frame(1920, 1080, 128, REFERENCE_PATHS)


def test_frame_time_follows_score_and_measured_complexity() -> None:
    assert frame_time_ms(1, 3600) == 1000
    assert frame_time_ms(10, 485) == 74_227  # rounded up
    assert frame_time_ms(10, 485, complexity_permille=2000) == 148_454
    assert complexity_permille(1_028, REFERENCE_PROBE_WORK, 1_028) == 1000  # the reference
    heavy = complexity_permille(2_413, REFERENCE_PROBE_WORK, 1_028)  # bench/cost_model.py
    assert heavy == 2347
    two_bounces = frame_work(*REFERENCE_PROBE, LightPaths(max_bounces=2))
    assert complexity_permille(1_028, two_bounces, 1_028) == 1263  # as slow with less work
    assert finishes_in_time(0, 1000, 1000) and not finishes_in_time(1, 1000, 1000)


@given(st.integers(1, 16384), st.integers(1, 16384), st.integers(1, 1 << 20),
       st.integers(0, 64))  # fmt: skip
def test_more_pixels_samples_or_bounces_never_cost_less(x: int, y: int, s: int, b: int) -> None:
    paths = LightPaths(max_bounces=b)
    ru = ru_per_frame(x, y, s, paths)
    assert 1 <= ru <= ru_per_frame(min(x + 1, 16384), y, s, paths)
    assert ru <= ru_per_frame(x, y, s + 1, paths) and ru <= ru_per_frame(x, y, s, LightPaths(b + 1))
    assert (settings_problem(x, y, s, paths) is None) == (ru <= MAX_RU_PER_FRAME)


def test_nonsense_is_a_caller_bug() -> None:
    with pytest.raises(ValueError):
        ru_per_frame(0, 1, 1, REFERENCE_PATHS)
    with pytest.raises(ValueError):
        frame_time_ms(1, 0)
