"""Shared helpers: bundled scenarios shrunk to a few simulated minutes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

SCENARIOS = Path(__file__).resolve().parents[2] / "simulations" / "scenarios"

# Every bundled scenario, cut down so that safety + liveness take about a second.
SMALL: dict[str, Any] = {
    "scenario.duration_s": 2400,
    "scenario.liveness_bound_s": 2400,
    "scenario.sample_interval_s": 300,
    "nodes.workers": 12,
    "nodes.checkers": 3,
    "nodes.requesters": 2,
    "workload.jobs_per_hour": 6,
    "workload.first_job_s": 30,
    "workload.frames_min": 3,
    "workload.frames_max": 10,
    "workload.deadline_s": 1800,
}


@pytest.fixture
def small() -> dict[str, Any]:
    return dict(SMALL)
