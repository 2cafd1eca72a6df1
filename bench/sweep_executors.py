"""What does a sweep executor cost? The same seeds of one scenario through the
local process pool, Ray and Dask, in one session on one box, with each
engine's wall time as a ratio of the local pool's.

    python bench/sweep_executors.py                      # baseline, 40 seeds, 2 workers
    python bench/sweep_executors.py --seeds 100 --executors local dask

Each executor runs as ``pictor sim sweep`` does (``simulations.sweep``), its
cluster's start and stop included: the honest figure for a researcher's sweep.
The runs' outcomes must be equal across executors (the sweep's output bytes
are; tests/simulations/test_executors.py checks that at a small size), and the
bench says so. CPU seconds are not reported: Ray's and Dask's workers are not
this process's children. Run it on an otherwise idle box; the order of the
executors alternates between repetitions (``--reps``) so a drifting load
favours none.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from statistics import median

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from simulations.executors import EXECUTORS, make_executor
from simulations.sweep import RunResult, grid_specs, sweep

SCENARIO = ROOT / "simulations" / "scenarios" / "baseline.toml"


def timed_sweep(kind: str, seeds: int, workers: int) -> tuple[float, list[RunResult]]:
    specs = grid_specs(str(SCENARIO), [("network.loss", ["0"])], seeds)
    started = time.perf_counter()
    results = sweep(make_executor(kind, workers), specs)
    return time.perf_counter() - started, results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=40)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--reps", type=int, default=1, help="repetitions, order alternating")
    parser.add_argument("--executors", nargs="*", default=list(EXECUTORS), choices=EXECUTORS)
    args = parser.parse_args()
    if "local" not in args.executors:
        parser.error("the local executor is the baseline: keep it in --executors")
    walls: dict[str, list[float]] = {k: [] for k in args.executors}
    outcomes: dict[str, list[RunResult]] = {}
    for rep in range(args.reps):
        order = args.executors if rep % 2 == 0 else list(reversed(args.executors))
        for kind in order:
            wall_s, results = timed_sweep(kind, args.seeds, args.workers)
            walls[kind].append(wall_s)
            outcomes.setdefault(kind, results)
            failed = sum(r.error is not None or r.violation is not None for r in results)
            print(f"{kind:>5}: {args.seeds} seeds on {args.workers} workers in {wall_s:,.1f} s "
                  f"wall ({wall_s * args.workers / args.seeds:.1f} worker-s a run), "
                  f"{failed} failed or violated", flush=True)  # fmt: skip
    base = median(walls["local"])
    for kind in args.executors:
        same = outcomes[kind] == outcomes["local"]
        print(f"{kind:>5}: median {median(walls[kind]):,.1f} s wall, "
              f"{median(walls[kind]) / base:.2f}× local; outcomes "
              f"{'equal to' if same else 'DIFFER from'} local's")  # fmt: skip


if __name__ == "__main__":
    main()
