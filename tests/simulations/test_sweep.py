"""A 2 × 2 parameter grid × 2 seeds over 2 processes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from simulations.schema import ScenarioError
from simulations.sweep import (
    ProcessExecutor,
    RunResult,
    RunSpec,
    grid_specs,
    mean_ci95,
    parse_params,
    regression_entry,
    summarise,
    sweep,
    write_sweep,
)
from tests.simulations.conftest import SCENARIOS, SMALL

TINY = """
[scenario]
name = "tiny"
duration_s = 1800
liveness_bound_s = 2400
[nodes]
workers = 8
checkers = 2
requesters = 2
[workload]
jobs_per_hour = 6
first_job_s = 30
frames_min = 2
frames_max = 6
deadline_s = 1800
"""  # the grid's cheaters are not what this test is about: known_cheater_invariant off
TINY = TINY.replace('name = "tiny"', 'name = "tiny"\nknown_cheater_invariant = false')


def test_sweep_two_params_two_seeds_two_processes(tmp_path: Path) -> None:
    path = tmp_path / "tiny.toml"
    path.write_text(TINY)
    grid = parse_params(["network.loss=0,0.05", "adversaries.cheater_fraction=0,0.25"])
    specs = grid_specs(str(path), grid, seeds=2)
    assert len(specs) == 8
    results = sweep(ProcessExecutor(2), specs)
    assert [r.spec for r in results] == specs  # results come back in grid order
    assert all(r.violation is None for r in results)
    rows = summarise(results)
    assert len(rows) == 4
    assert {(r["network.loss"], r["adversaries.cheater_fraction"]) for r in rows} == {
        (0, 0), (0, 0.25), (0.05, 0), (0.05, 0.25)
    }  # fmt: skip
    assert all(r["runs"] == 2 and r["violations"] == 0 for r in rows)
    assert all(r["frames_per_hour_ci95"] >= 0 for r in rows)
    paths = write_sweep(tmp_path / "out", rows, results)
    data = json.loads((tmp_path / "out" / "sweep.json").read_text())
    assert len(data["runs"]) == 8 and len(paths) == 2


def test_inline_and_process_executors_agree(tmp_path: Path) -> None:
    path = tmp_path / "tiny.toml"
    path.write_text(TINY)
    specs = grid_specs(str(path), parse_params(["network.loss=0.01"]), seeds=2)
    assert sweep(ProcessExecutor(1), specs) == sweep(ProcessExecutor(2), specs)


def test_confidence_interval() -> None:
    mean, half = mean_ci95([1.0, 2.0, 3.0])
    assert mean == 2.0
    assert half == pytest.approx(4.30 * 1.0 / 3**0.5, rel=1e-3)
    assert mean_ci95([5.0]) == (5.0, 0.0)


def test_bad_param_is_refused() -> None:
    with pytest.raises(ScenarioError, match="expected key=v1"):
        parse_params(["network.loss"])


def test_regression_entry_is_pasteable() -> None:
    import tomllib

    spec = RunSpec(str(SCENARIOS / "baseline.toml"), (("network.loss", "0.05"),), 17)
    entry = regression_entry(RunResult(spec, None, "invariant violated: ..."))
    parsed = tomllib.loads(entry)["regression"][0]
    assert parsed["scenario"] == "baseline.toml" and parsed["seed"] == 17
    assert parsed["overrides"] == {"network.loss": 0.05}
    assert SMALL  # the regression runner shrinks entries the same way
