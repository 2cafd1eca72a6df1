"""Parameter sweeps: a grid of scenario overrides × seeds over local processes.

Runs go through the :class:`~simulations.executors.Executor` protocol
(``map(fn, items)`` in item order): local processes, Ray or Dask
(simulations/executors.py). Each run is a pure function of (scenario file,
overrides, seed), so the results — and the files written — do not depend on
which engine or process ran what. A run that violates an invariant comes back
as a failure with its seed and a ready-to-paste regression entry
(tests/simulations/regressions.toml); a run that crashes comes back with its
seed and the tail of its trace, and the others still finish.
"""

from __future__ import annotations

import csv
import io
import itertools
import json
import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from simulations.executors import Executor, ProcessExecutor, TaskError
from simulations.loop import InvariantViolation
from simulations.schema import ScenarioError, parse_value

HEADLINE = (
    "frames_per_hour",
    "utilisation",
    "makespan_s",
    "price_wei_per_ru",
    "cheats_caught",
    "cheats_missed",
    "false_rejects",
    "gas_per_frame",
)
# Student t, two-sided 95 %, by degrees of freedom (1..30); 1.96 beyond.
_T95 = (
    12.71,
    4.30,
    3.18,
    2.78,
    2.57,
    2.45,
    2.36,
    2.31,
    2.26,
    2.23,
    2.20,
    2.18,
    2.16,
    2.14,
    2.13,
    2.12,
    2.11,
    2.10,
    2.09,
    2.09,
    2.08,
    2.07,
    2.07,
    2.06,
    2.06,
    2.06,
    2.05,
    2.05,
    2.05,
    2.04,
)


__all__ = ["Executor", "ProcessExecutor"]


@dataclass(frozen=True)
class RunSpec:
    scenario_path: str
    overrides: tuple[tuple[str, str], ...]
    seed: int


@dataclass(frozen=True)
class RunResult:
    spec: RunSpec
    summary: dict[str, Any] | None
    violation: str | None
    error: str | None = None  # the run crashed: the tail of its trace


def parse_params(params: Sequence[str]) -> list[tuple[str, list[str]]]:
    """``["network.loss=0,0.05"]`` -> ``[("network.loss", ["0", "0.05"])]``."""
    grid = []
    for param in params:
        key, sep, values = param.partition("=")
        if not sep or not key or not values:
            raise ScenarioError(f"--param {param!r}: expected key=v1,v2,...")
        grid.append((key.strip(), [v.strip() for v in values.split(",")]))
    return grid


def grid_specs(
    scenario_path: str, grid: list[tuple[str, list[str]]], seeds: int, first_seed: int = 1
) -> list[RunSpec]:
    keys = [k for k, _ in grid]
    specs = []
    for combo in itertools.product(*(vals for _, vals in grid)):
        for seed in range(first_seed, first_seed + seeds):
            specs.append(RunSpec(scenario_path, tuple(zip(keys, combo, strict=True)), seed))
    return specs


def run_spec(spec: RunSpec) -> RunResult:
    """Run one grid point (in a worker process); never raises for a violation."""
    from simulations.runner import run_scenario
    from simulations.scenario import load_scenario

    scenario = load_scenario(spec.scenario_path, dict(spec.overrides))
    try:
        outcome = run_scenario(scenario, spec.seed)
    except InvariantViolation as exc:
        return RunResult(spec, None, exc.report())
    return RunResult(spec, outcome.summary, None)


def sweep(executor: Executor, specs: list[RunSpec]) -> list[RunResult]:
    """Every spec's result in spec order; a crashed run is kept as an error."""
    return [
        RunResult(spec, None, None, outcome.trace) if isinstance(outcome, TaskError) else outcome
        for spec, outcome in zip(specs, executor.map(run_spec, specs), strict=True)
    ]


def mean_ci95(values: Sequence[float]) -> tuple[float, float]:
    """Mean and half-width of its 95 % confidence interval (Student t)."""
    if not values:
        return (math.nan, math.nan)
    mean = statistics.fmean(values)
    if len(values) < 2:
        return (mean, 0.0)
    t = _T95[len(values) - 2] if len(values) - 1 <= len(_T95) else 1.96
    return (mean, t * statistics.stdev(values) / math.sqrt(len(values)))


def summarise(results: list[RunResult]) -> list[dict[str, Any]]:
    """One row per grid point: the overrides, run counts and mean ± CI per metric."""
    points: dict[tuple[tuple[str, str], ...], list[RunResult]] = {}
    for r in results:
        points.setdefault(r.spec.overrides, []).append(r)
    rows = []
    for overrides, runs in points.items():
        ok = [r.summary for r in runs if r.summary is not None]
        row: dict[str, Any] = {k: parse_value(v) for k, v in overrides}
        row["runs"] = len(runs)
        row["violations"] = sum(1 for r in runs if r.violation)
        row["errors"] = sum(1 for r in runs if r.error)
        for metric in HEADLINE:
            mean, half = mean_ci95([float(s[metric]) for s in ok])
            row[metric] = round(mean, 4)
            row[f"{metric}_ci95"] = round(half, 4)
        rows.append(row)
    return rows


def regression_entry(result: RunResult) -> str:
    """A TOML block to paste into tests/simulations/regressions.toml."""
    overrides = ", ".join(f'"{k}" = {v}' for k, v in result.spec.overrides)
    return (
        "[[regression]]\n"
        f'scenario = "{Path(result.spec.scenario_path).name}"\n'
        f"seed = {result.spec.seed}\n"
        f"overrides = {{ {overrides} }}\n"
        'reason = "found by pictor sim sweep: <describe the failure>"\n'
    )


def write_sweep(out_dir: Path, rows: list[dict[str, Any]], results: list[RunResult]) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    buf = io.StringIO()
    if rows:
        writer = csv.DictWriter(buf, fieldnames=list(rows[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    runs = [
        {
            "overrides": dict(r.spec.overrides),
            "seed": r.spec.seed,
            "summary": r.summary,
            "violation": r.violation,
            "error": r.error,
        }
        for r in results
    ]
    files = {
        "sweep.csv": buf.getvalue(),
        "sweep.json": json.dumps({"points": rows, "runs": runs}, indent=2, sort_keys=True) + "\n",
    }
    failing = [regression_entry(r) for r in results if r.violation]
    if failing:
        files["regressions.toml"] = "\n".join(failing)
    for name, text in files.items():
        (out_dir / name).write_text(text)
    return [out_dir / name for name in files]
