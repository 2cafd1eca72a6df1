"""Replays every entry of regressions.toml: each must run both phases cleanly.

An entry with ``xfail = "why"`` is a known, still-open bug (in protocol/ or
the simulator): it is expected to raise ``InvariantViolation`` and turns into
an XPASS, not a failure, once fixed — then delete its ``xfail`` line.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import pytest

from simulations.loop import InvariantViolation
from simulations.runner import run_scenario
from simulations.scenario import load_scenario
from tests.simulations.conftest import SCENARIOS, SMALL

ENTRIES: list[dict[str, Any]] = tomllib.loads(
    (Path(__file__).parent / "regressions.toml").read_text()
)["regression"]


@pytest.mark.parametrize("entry", ENTRIES, ids=lambda e: f"{e['scenario']}-seed{e['seed']}")
def test_regression(entry: dict[str, Any], request: pytest.FixtureRequest) -> None:
    if "xfail" in entry:
        mark = pytest.mark.xfail(reason=entry["xfail"], raises=InvariantViolation, strict=False)
        request.applymarker(mark)
    name = entry["scenario"].removesuffix(".toml")
    overrides = dict(SMALL) if entry.get("small", True) else {}
    if name == "partition":
        overrides["scenario.duration_s"] = 3600
    overrides.update(entry.get("overrides", {}))
    outcome = run_scenario(load_scenario(SCENARIOS / f"{name}.toml", overrides), entry["seed"])
    assert outcome.summary["jobs_unfinished"] == 0
