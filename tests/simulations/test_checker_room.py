"""Checks wait at the requester for a checker with room (protocol.verification.with_room,
``market.checks_per_checker``): the simulator's failure it answers, as a test."""

from __future__ import annotations

from typing import Any

from simulations.runner import run_scenario
from simulations.scenario import load_scenario
from tests.simulations.conftest import SCENARIOS


def test_a_burst_of_checks_waits_for_room_instead_of_going_stale(small: dict[str, Any]) -> None:
    """Three checkers (one lazy, struck early) for twelve workers, 12 jobs an hour: with
    every check sent at once (``checks_per_checker`` unbounded, as before) most went
    stale in the slow checker's queue, were asked again, and results were abandoned and
    rendered again. Job arrivals have a stream of their own, so both runs of a seed get
    the same jobs."""
    small["workload.jobs_per_hour"] = 12
    keys = ("results_abandoned", "jobs_failed", "checks_requested")
    waited, flooded = dict.fromkeys(keys, 0), dict.fromkeys(keys, 0)
    for seed in (2, 3):
        for books, cap in ((waited, 1), (flooded, 10**6)):
            overrides = small | {"market.checks_per_checker": cap}
            s = run_scenario(
                load_scenario(SCENARIOS / "lazy_checkers.toml", overrides), seed
            ).summary
            for key in keys:
                books[key] += s[key]
    # measured (shares balanced, 24 tiles): 0 results abandoned against 108, 14 of 23 jobs
    # failed against 18, 287 checks asked against 941
    assert waited["results_abandoned"] * 5 < flooded["results_abandoned"]
    assert waited["jobs_failed"] < flooded["jobs_failed"]
    assert waited["checks_requested"] * 2 < flooded["checks_requested"]
