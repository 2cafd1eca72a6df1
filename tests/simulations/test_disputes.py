"""Simulated workers contest rejections through their machines (issue 16), and the
simulator's checker choice honours a dispute's exclusions (``assign_checker``
refuses a used checker with ``IllegalTransition``, which would end the run)."""

from __future__ import annotations

from typing import Any

from simulations.runner import run_scenario
from simulations.scenario import load_scenario
from tests.simulations.conftest import SCENARIOS


def test_simulated_workers_dispute_and_false_rejections_are_overturned(
    small: dict[str, Any],
) -> None:
    overrides = {
        **small,
        "verification.false_reject_rate": 0.02,  # ~40 % of honest frames falsely rejected
        "market.verify_timeout_s": 3600.0,  # checks finish: disputes reach a majority
    }
    scenario = load_scenario(SCENARIOS / "cheaters_20pct.toml", overrides)
    summary = run_scenario(scenario, 1).summary  # deterministic: 13 disputes, 6 won
    assert summary["false_rejects"] > 0
    assert summary["disputes_resolved"] > 0
    assert 0 < summary["disputes_overturned"] <= summary["disputes_resolved"]
    assert summary["jobs_unfinished"] == 0
