"""Benchmark score: measured from the generated reference scene, cached per build/device."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from node.render import benchmark
from node.render.benchmark import (
    BenchmarkResult,
    load_cache,
    save_result,
    score,
    score_from_render_s,
)
from node.render.blender import BlenderBackend, BlenderConfig
from node.render.sandbox import SandboxInfo
from tests.render.conftest import needs_blender

pytestmark = needs_blender


@pytest.mark.slow
async def test_first_run_measures_then_cache_answers(
    sandbox_info: SandboxInfo, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    backend = BlenderBackend(BlenderConfig(), sandbox_info)
    # Keep the suite fast: a smaller reference (the real one is 320x240 at 32 samples).
    monkeypatch.setattr(
        benchmark, "REFERENCE_SETTINGS", benchmark.REFERENCE_SETTINGS.__class__(
            "CYCLES", 80, 60, 8, 0, "PNG_RGBA8"
        ),
    )  # fmt: skip
    first = await score(backend, tmp_path)
    assert first.build.startswith("blender-") and first.device_class.startswith("cpu-")
    assert first.runs == 2
    # Exact: the score is a function of the stored time (it once used the unrounded mean
    # and failed about one run in three).
    assert first.score_ru_per_hour == score_from_render_s(first.render_s)
    assert first.score_ru_per_hour == pytest.approx(3600 / first.render_s, rel=1e-3)
    cached = json.loads((tmp_path / "benchmark.json").read_text())
    assert cached[first.key]["score_ru_per_hour"] == first.score_ru_per_hour

    calls = []

    async def must_not_render(_backend: BlenderBackend) -> BenchmarkResult:
        calls.append(1)
        raise AssertionError("cached score should have been used")

    monkeypatch.setattr(benchmark, "run_benchmark", must_not_render)
    assert await score(backend, tmp_path) == first
    assert calls == []


def test_cache_is_keyed_by_build_device_and_reference_version(tmp_path: Path) -> None:
    a = BenchmarkResult("blender-3.4.1", "cpu-x86_64-avx2", 7.5, 2, 480, 1)
    b = BenchmarkResult("blender-3.4.1", "cuda-sm90", 0.05, 2, 72000, 1)
    save_result(tmp_path, a)
    save_result(tmp_path, b)
    cache = load_cache(tmp_path)
    assert set(cache) == {a.key, b.key}
    assert a.key != BenchmarkResult("blender-3.4.1", "cpu-x86_64-avx2", 7.5, 2, 480, 2).key
    (tmp_path / "benchmark.json").write_text("{not json")
    assert load_cache(tmp_path) == {}  # a damaged cache means "measure again"


def test_score_follows_the_stored_time_for_any_time() -> None:
    for render_s in (1e-6, 0.0123456, 0.05, 0.123449, 7.5, 3600.0, 1e6):
        s = score_from_render_s(render_s)
        assert s >= 1
        assert abs(s - 3600 / render_s) <= 0.5 or s == 1
