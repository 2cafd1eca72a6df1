"""Ray and Dask run a sweep on a local 2-worker cluster and write the same bytes as
local processes; a failing run is reported with its trace and the others finish."""

from __future__ import annotations

from pathlib import Path

import pytest

from simulations.executors import (
    DaskExecutor,
    ProcessExecutor,
    RayExecutor,
    TaskError,
    make_executor,
)
from simulations.sweep import grid_specs, parse_params, summarise, sweep, write_sweep
from tests.simulations.tasks import die, double_or_fail
from tests.simulations.test_sweep import TINY

ENGINES = {
    "local": lambda progress: ProcessExecutor(2, progress),
    "ray": lambda progress: RayExecutor(2, progress=progress),
    "dask": lambda progress: DaskExecutor(2, progress=progress),
}


def engine(name: str, progress: object = None) -> object:
    if name != "local":
        pytest.importorskip({"ray": "ray", "dask": "distributed"}[name])
    return ENGINES[name](progress or (lambda done, total: None))


def sweep_bytes(executor: object, tmp_path: Path, name: str) -> dict[str, bytes]:
    scenario = tmp_path / "tiny.toml"
    scenario.write_text(TINY)
    specs = grid_specs(str(scenario), parse_params(["network.loss=0,0.05"]), seeds=2)
    results = sweep(executor, specs)  # type: ignore[arg-type]
    paths = write_sweep(tmp_path / name, summarise(results), results)
    return {p.name: p.read_bytes() for p in paths}


@pytest.mark.slow
@pytest.mark.parametrize("name", ["ray", "dask"])
def test_a_cluster_sweep_writes_the_same_bytes_as_local_processes(
    name: str, tmp_path: Path
) -> None:
    seen: list[tuple[int, int]] = []
    cluster = sweep_bytes(engine(name, lambda d, t: seen.append((d, t))), tmp_path, name)
    local = sweep_bytes(engine("local"), tmp_path, "local")
    assert cluster == local
    assert seen == [(i, 4) for i in range(1, 5)]  # progress as each run finished


@pytest.mark.slow
@pytest.mark.parametrize("name", ["local", "ray", "dask"])
def test_a_failing_run_comes_back_with_its_trace_and_the_others_finish(name: str) -> None:
    outcomes = list(engine(name).map(double_or_fail, range(5)))  # type: ignore[attr-defined]
    assert [o for i, o in enumerate(outcomes) if i != 2] == [0, 2, 6, 8]
    assert isinstance(outcomes[2], TaskError) and "run 2 blew up" in outcomes[2].trace


def test_a_worker_process_that_dies_is_one_failed_run() -> None:
    """A dead worker breaks a process pool and every unfinished run with it."""
    outcomes = list(ProcessExecutor(2).map(die, range(5)))
    assert [o for i, o in enumerate(outcomes) if i != 1] == [0, 2, 3, 4]
    assert isinstance(outcomes[1], TaskError) and "terminated abruptly" in outcomes[1].trace


def test_inline_runs_report_failures_too() -> None:
    outcomes = list(ProcessExecutor(1).map(double_or_fail, range(4)))
    assert outcomes[:2] == [0, 2] and isinstance(outcomes[2], TaskError) and outcomes[3] == 6


def test_executor_choice_is_checked() -> None:
    with pytest.raises(ValueError, match="one of local, ray, dask"):
        make_executor("spark", 2)
    with pytest.raises(ValueError, match="local executor has none"):
        make_executor("local", 2, "tcp://somewhere:8786")
