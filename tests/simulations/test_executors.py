"""Ray and Dask run a sweep on a local 2-worker cluster and write the same bytes as
local processes; a failing run is reported with its trace and the others finish."""

from __future__ import annotations

import asyncio
import logging
import threading
from pathlib import Path
from typing import Any

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


HEARTBEAT_HOLD_S = 1.0  # how late the scheduler below answers a worker's heartbeat


class Errors(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.mark.slow
def test_a_local_dask_cluster_closes_without_tracebacks(
    tmp_path: Path, capfd: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A worker whose heartbeat is still unanswered when it closes logged a
    CommClosedError trace ("Failed to communicate with scheduler during heartbeat"):
    Worker.close stops the heartbeats but closes its connections under the one in
    flight. On a loaded box that happens by chance; here the scheduler answers every
    heartbeat late, and the sweep's last progress call holds the close until both
    workers wait on one, so the close always meets them in flight."""
    distributed = pytest.importorskip("distributed")
    local_cluster = distributed.LocalCluster
    pending: set[str] = set()  # workers whose heartbeat the scheduler holds now
    changed = threading.Condition()

    def slow_heartbeats(*args: Any, **kwargs: Any) -> Any:
        cluster = local_cluster(*args, **kwargs)
        answer = cluster.scheduler.handlers["heartbeat_worker"]

        async def late(**msg: Any) -> dict[str, Any]:
            with changed:
                pending.add(msg["address"])
                changed.notify_all()
            await asyncio.sleep(HEARTBEAT_HOLD_S)  # a slow scheduler, not a wait
            with changed:
                pending.discard(msg["address"])
            # the next heartbeat right away: one is in flight nearly all the time
            return {**answer(**msg), "heartbeat-interval": 0.001}

        cluster.scheduler.handlers["heartbeat_worker"] = late
        return cluster

    held: list[bool] = []

    def progress(done: int, total: int) -> None:
        if done == total:  # the close comes next
            with changed:
                held.append(changed.wait_for(lambda: len(pending) == 2, timeout=30))

    catch = Errors()  # this process's: the scheduler's, the nannies', the client's
    logging.getLogger("distributed").addHandler(catch)
    monkeypatch.setattr(distributed, "LocalCluster", slow_heartbeats)
    try:
        scenario = tmp_path / "tiny.toml"
        scenario.write_text(TINY)
        specs = grid_specs(str(scenario), parse_params(["network.loss=0"]), seeds=2)
        results = sweep(DaskExecutor(2, progress=progress), specs)
    finally:
        logging.getLogger("distributed").removeHandler(catch)
    assert held == [True]  # both workers had a heartbeat in flight as the close began
    assert [r.error for r in results] == [None, None]
    out, err = capfd.readouterr()  # the workers' logs: their processes write to fd 2
    for text in ("Traceback", "CommClosedError", " - ERROR - "):
        assert text not in out + err, err[-3000:]
    assert [r.getMessage() for r in catch.records] == []


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
