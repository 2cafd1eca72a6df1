"""``pictor sim run`` / ``sim sweep`` end to end, on a tiny scenario."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from node.cli.sim import app

TINY = """
[scenario]
name = "cli-tiny"
duration_s = 1200
liveness_bound_s = 2400
[nodes]
workers = 6
checkers = 2
requesters = 1
[workload]
jobs_per_hour = 6
first_job_s = 30
frames_min = 2
frames_max = 4
deadline_s = 1800
"""


def test_run_writes_metrics_and_plots(tmp_path: Path) -> None:
    scenario = tmp_path / "tiny.toml"
    scenario.write_text(TINY)
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["run", str(scenario), "--seed", "3", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "events/s" in result.output
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["seed"] == 3 and metrics["scenario"] == "cli-tiny"
    assert (out / "utilisation.png").stat().st_size > 1000


def test_bad_scenario_names_the_key(tmp_path: Path) -> None:
    scenario = tmp_path / "bad.toml"
    scenario.write_text("[nodes]\nworkerz = 3\n")
    result = CliRunner().invoke(app, ["run", str(scenario)])
    assert result.exit_code == 2
    assert "nodes.workerz: unknown key" in result.output


def test_sweep_writes_summary(tmp_path: Path) -> None:
    scenario = tmp_path / "tiny.toml"
    scenario.write_text(TINY)
    out = tmp_path / "sweep"
    args = ["sweep", str(scenario), "--param", "network.loss=0,0.02", "--seeds", "2",
            "--workers", "1", "--out", str(out)]  # fmt: skip
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert (out / "sweep.csv").read_text().count("\n") == 3  # header + 2 grid points
    assert (out / "sweep_frames_per_hour.png").exists()


def test_sweep_refuses_a_bad_param(tmp_path: Path) -> None:
    scenario = tmp_path / "tiny.toml"
    scenario.write_text(TINY)
    result = CliRunner().invoke(app, ["sweep", str(scenario), "--param", "network.lossy=0.1"])
    assert result.exit_code == 2
    assert "network.lossy" in result.output


def test_sweep_refuses_an_unknown_executor_and_an_address_for_local(tmp_path: Path) -> None:
    scenario = tmp_path / "tiny.toml"
    scenario.write_text(TINY)
    base = ["sweep", str(scenario), "--param", "network.loss=0", "--seeds", "1"]
    result = CliRunner().invoke(app, [*base, "--executor", "spark"])
    assert result.exit_code == 2 and "one of local, ray, dask" in result.output
    result = CliRunner().invoke(app, [*base, "--address", "tcp://h:8786"])
    assert result.exit_code == 2 and "local executor has none" in result.output
