"""Where sweep runs execute: local processes, a Ray cluster, or a Dask cluster.

Every executor has one method, ``map(fn, items)``, returning one outcome per item
in item order — whatever order the runs finish in — so a sweep's output is the
same bytes on every engine for the same seeds. A run that fails inside the
engine (an exception in ``fn``, a worker process that died) comes back as a
:class:`TaskError` holding the trace's tail instead of aborting the others.
``progress(done, total)`` is called as runs finish.

Ray and Dask are optional (``pip install 'pictor[cluster]'``): given an
``address`` the executor joins that cluster (``ray.init(address=...)``,
``distributed.Client(address)``; its workers need this package installed);
without one it starts a local cluster of ``workers`` processes for the sweep
and stops it afterwards.
"""

from __future__ import annotations

import asyncio
import importlib
import time
import traceback
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

T = TypeVar("T")
R = TypeVar("R")
Progress = Callable[[int, int], None]
TRACE_TAIL_CHARS = 2000
EXECUTORS = ("local", "ray", "dask")


@dataclass(frozen=True)
class TaskError:
    """A run that failed in the engine; ``trace`` is the tail of its traceback."""

    trace: str


class Executor(Protocol):
    def map(self, fn: Callable[[T], R], items: Iterable[T]) -> Iterator[R | TaskError]: ...


def _tail(exc: BaseException) -> TaskError:
    text = "".join(traceback.format_exception(exc))
    return TaskError(text[-TRACE_TAIL_CHARS:])


def _no_progress(done: int, total: int) -> None:
    pass


class _Collector:
    """Outcomes by index as they finish, reported, then handed out in order."""

    def __init__(self, total: int, progress: Progress) -> None:
        self.outcomes: list[Any] = [None] * total
        self.done = 0
        self.total = total
        self.progress = progress

    def put(self, index: int, outcome: Any) -> None:
        self.outcomes[index] = outcome
        self.done += 1
        self.progress(self.done, self.total)


class ProcessExecutor:
    """Local processes; ``workers=1`` runs inline (handy under a debugger)."""

    def __init__(self, workers: int, progress: Progress = _no_progress) -> None:
        self.workers = workers
        self.progress = progress

    def map(self, fn: Callable[[T], R], items: Iterable[T]) -> Iterator[R | TaskError]:
        items = list(items)
        out = _Collector(len(items), self.progress)
        if self.workers <= 1:
            for i, item in enumerate(items):
                try:
                    out.put(i, fn(item))
                except Exception as exc:
                    out.put(i, _tail(exc))
            return iter(out.outcomes)
        broken: list[int] = []
        with ProcessPoolExecutor(max_workers=self.workers) as pool:
            futures: dict[Future[R], int] = {pool.submit(fn, x): i for i, x in enumerate(items)}
            for future in as_completed(futures):
                failure = future.exception()
                if isinstance(failure, BrokenProcessPool):
                    broken.append(futures[future])  # maybe not this run's fault: see below
                else:
                    out.put(futures[future], _tail(failure) if failure else future.result())
        # A worker that died (killed, out of memory) breaks the whole pool and every
        # unfinished run with it: run those again one by one, so only the culprit fails.
        for i in sorted(broken):
            with ProcessPoolExecutor(max_workers=1) as alone:
                try:
                    out.put(i, alone.submit(fn, items[i]).result())
                except Exception as exc:
                    out.put(i, _tail(exc))
        return iter(out.outcomes)


class RayExecutor:
    def __init__(self, workers: int, address: str | None = None,
                 progress: Progress = _no_progress) -> None:  # fmt: skip
        self.workers, self.address, self.progress = workers, address, progress

    def map(self, fn: Callable[[T], R], items: Iterable[T]) -> Iterator[R | TaskError]:
        ray: Any = importlib.import_module("ray")  # optional, untyped
        items = list(items)
        out = _Collector(len(items), self.progress)
        started = not ray.is_initialized()
        if started:
            if self.address:
                ray.init(address=self.address, log_to_driver=False)
            else:
                ray.init(num_cpus=self.workers, include_dashboard=False, log_to_driver=False)
        try:
            remote = ray.remote(num_cpus=1, max_retries=0)(fn)
            refs = [remote.remote(item) for item in items]
            index = {ref: i for i, ref in enumerate(refs)}
            pending = list(refs)
            while pending:
                ready, pending = ray.wait(pending, num_returns=1)
                for ref in ready:
                    try:
                        out.put(index[ref], ray.get(ref))
                    except Exception as exc:  # RayTaskError (fn raised), WorkerCrashedError, ...
                        out.put(index[ref], _tail(exc))
        finally:
            if started:
                ray.shutdown()
        return iter(out.outcomes)


HEARTBEAT_DRAIN_S = 10.0  # at most this long for a worker's last heartbeat to be answered


async def _stop_heartbeats(dask_worker: Any) -> None:
    """Run on each worker of a local cluster just before it is closed.

    ``Worker.close`` stops the heartbeat timer but then closes the worker's
    connections under a heartbeat still awaiting the scheduler's answer, and that
    heartbeat logs a ``CommClosedError`` trace ("Failed to communicate with
    scheduler during heartbeat"), at ERROR, though nothing is lost. Stopping the
    timer first and letting the last heartbeat be answered (the scheduler is still
    up) leaves nothing in flight for the close to cut."""
    dask_worker.periodic_callbacks["heartbeat"].stop()
    pool = dask_worker.rpc  # the worker's own calls out: on an idle worker, its heartbeat
    deadline = time.monotonic() + HEARTBEAT_DRAIN_S
    # active: calls awaiting an answer; _connecting: one still opening its connection
    while (pool.active or getattr(pool, "_connecting", None)) and time.monotonic() < deadline:
        await asyncio.sleep(0.005)


class DaskExecutor:
    def __init__(self, workers: int, address: str | None = None,
                 progress: Progress = _no_progress) -> None:  # fmt: skip
        self.workers, self.address, self.progress = workers, address, progress

    def map(self, fn: Callable[[T], R], items: Iterable[T]) -> Iterator[R | TaskError]:
        dask: Any = importlib.import_module("distributed")  # optional, untyped
        items = list(items)
        out = _Collector(len(items), self.progress)
        cluster = None
        if self.address:
            client = dask.Client(self.address)
        else:
            cluster = dask.LocalCluster(n_workers=self.workers, threads_per_worker=1, processes=True,
                                   dashboard_address=None)  # fmt: skip
            client = dask.Client(cluster)
        try:
            futures = client.map(fn, items, pure=False, retries=0)
            index = {f.key: i for i, f in enumerate(futures)}
            for future in dask.as_completed(futures):
                if future.status == "error":
                    out.put(index[future.key], _tail(future.exception()))
                else:
                    out.put(index[future.key], future.result())
            if cluster is not None:  # no heartbeat in flight at the close: see _stop_heartbeats
                client.run(_stop_heartbeats, on_error="ignore")  # never worth the results
        finally:
            client.close()
            if cluster is not None:
                cluster.close()
        return iter(out.outcomes)


def make_executor(kind: str, workers: int, address: str | None = None,
                  progress: Progress = _no_progress) -> Executor:  # fmt: skip
    """``local``, ``ray`` or ``dask``; ``address`` joins an existing cluster."""
    if kind == "local":
        if address:
            raise ValueError("--address names a Ray or Dask cluster; the local executor has none")
        return ProcessExecutor(workers, progress)
    if kind not in EXECUTORS:
        raise ValueError(f"executor {kind!r}: one of {', '.join(EXECUTORS)}")
    module = {"ray": "ray", "dask": "distributed"}[kind]
    try:
        importlib.import_module(module)
    except ImportError:
        raise ValueError(
            f"the {kind} executor needs {module}: pip install 'pictor[cluster]'"
        ) from None
    cls = RayExecutor if kind == "ray" else DaskExecutor
    return cls(workers, address, progress)
