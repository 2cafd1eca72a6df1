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
    # Each dispute of a false rejection is won with p ~ 0.38 (its two checkers must
    # both pass 24 tiles at 2 % false rejects each): one seed's 7 disputes all lost
    # once (p ~ 0.035), so two seeds, deterministic (7 and 13 disputes, 2 won).
    runs = [run_scenario(scenario, seed).summary for seed in (1, 2)]
    total = {key: sum(r[key] for r in runs) for key in runs[0] if isinstance(runs[0][key], int)}
    assert total["false_rejects"] > 0
    assert total["disputes_resolved"] > 0
    assert 0 < total["disputes_overturned"] <= total["disputes_resolved"]
    assert total["jobs_unfinished"] == 0
