"""How fast does the simulator go? Events/s, wall time and peak memory for a
1,000- and a 10,000-node network over one simulated day.

    python bench/sim_scale.py                 # 1k and 10k nodes, a full day each
    python bench/sim_scale.py --quick 0.1     # 10 % of a day, extrapolated (labelled)
    python bench/sim_scale.py --nodes 1000    # one size only
    python bench/sim_scale.py --quick 0.25 --nodes 1000 --baseline /tmp/wt-281 --runs 3
        # and the same runs of another checkout, alternating: the ratio of events per CPU s

Each size runs in its own process, so its peak RSS (``resource.getrusage``,
no tracemalloc overhead) is its own. CPU seconds are printed next to wall
seconds: a run is single-threaded, so on an otherwise idle 2-core machine the
two agree, and on a shared machine CPU time is the figure to compare. The network is the gossip-scale setup of
docs/SIMULATIONS.md: unsigned gossip (``network.sign_gossip = false``; market
messages stay signed), a job announce reaching 50 workers, heartbeats every
60 s, invariants on. Goal: 10,000 nodes × 1 day < 10 min on 2 cores.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path
from statistics import median
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
DAY_S = 86_400


def scale_scenario(nodes: int, day_fraction: float) -> dict[str, Any]:
    """A network of ``nodes``: 90 % workers, 5 % checkers, 5 % requesters."""
    duration_s = DAY_S * day_fraction
    return {
        "scenario": {"name": f"scale-{nodes}", "duration_s": duration_s,
                     "liveness_bound_s": 4 * 3600, "sample_interval_s": 900},
        "nodes": {"workers": nodes * 90 // 100, "checkers": max(1, nodes * 5 // 100),
                  "requesters": max(1, nodes * 5 // 100)},
        "network": {"sign_gossip": False, "gossip_reach": 50, "advert_interval_s": 30,
                    "loss": 0.001, "duplication": 0.001},
        "market": {"heartbeat_interval_s": 60, "lease_s": 240},
        # 320×180: select_tiles builds the whole tile grid on every check.
        "workload": {"jobs_per_hour": nodes / 100, "frames_min": 5, "frames_max": 40,
                     "deadline_s": 3 * 3600, "resolution_x": 320, "resolution_y": 180},
        "churn": {"crash_per_hour": nodes / 500, "join_per_hour": nodes / 1000,
                  "leave_per_hour": nodes / 1000},
    }  # fmt: skip


def run_one(nodes: int, day_fraction: float, seed: int, root: Path = ROOT) -> dict[str, Any]:
    """One run of the simulator found under ``root`` (this checkout, or a baseline's)."""
    sys.path.insert(0, str(root))
    from simulations.runner import run_scenario
    from simulations.scenario import scenario_from_dict

    scenario = scenario_from_dict(scale_scenario(nodes, day_fraction))
    started = time.perf_counter()
    cpu_started = time.process_time()
    outcome = run_scenario(scenario, seed)
    wall_s = time.perf_counter() - started
    cpu_s = time.process_time() - cpu_started
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    s = outcome.summary
    return {
        "nodes": nodes, "day_fraction": day_fraction, "events": outcome.events,
        "wall_s": round(wall_s, 1), "cpu_s": round(cpu_s, 1),
        "events_per_s": round(outcome.events / wall_s),
        "events_per_cpu_s": round(outcome.events / cpu_s),
        "peak_rss_mib": round(peak_mib), "jobs": s["jobs_submitted"],
        "frames": s["frames_accepted"], "messages": s["messages"],
        "sim_hours": s["sim_hours"],
    }  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--nodes", type=int, nargs="*", default=[1000, 10_000])
    parser.add_argument("--quick", type=float, default=1.0, metavar="DAY_FRACTION",
                        help="simulate this fraction of a day and extrapolate")  # fmt: skip
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--baseline", type=Path, metavar="CHECKOUT",
                        help="also run the simulator of this checkout (e.g. a git worktree of an "
                             "older commit) on the same scenario, alternating, and print the "
                             "ratio of events per CPU s")  # fmt: skip
    parser.add_argument("--runs", type=int, default=1, help="runs of each (alternating)")
    parser.add_argument("--one", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--root", type=Path, default=ROOT, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(run_one(args.nodes[0], args.quick, args.seed, args.root)))
        return
    for nodes in args.nodes:
        if args.baseline is None:
            for _ in range(args.runs):
                report(run_child(nodes, args, ROOT), args.quick)
            continue
        # Speed is a ratio against a baseline measured in the same session: CPU seconds
        # on a shared box drift with the load, so the two alternate.
        rates: dict[str, list[int]] = {"this": [], "baseline": []}
        for _ in range(args.runs):
            for name, root in (("baseline", args.baseline.resolve()), ("this", ROOT)):
                r = run_child(nodes, args, root)
                print(f"{name:>8}: ", end="")
                report(r, args.quick)
                rates[name].append(r["events_per_cpu_s"])
        this, base = rates["this"], rates["baseline"]
        print(
            f"{nodes:>6} nodes: events per CPU s, this {min(this):,}-{max(this):,}, baseline "
            f"{min(base):,}-{max(base):,}: ratio of medians {median(this) / median(base):.3f}"
        )


def run_child(nodes: int, args: argparse.Namespace, root: Path) -> dict[str, Any]:
    """One run in its own process, so its peak RSS is its own."""
    cmd = [sys.executable, __file__, "--one", "--nodes", str(nodes), "--quick", str(args.quick),
           "--seed", str(args.seed), "--root", str(root)]  # fmt: skip
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    result: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    return result


def report(r: dict[str, Any], quick: float) -> None:
    nodes = r["nodes"]
    line = (
        f"{nodes:>6} nodes: {r['events']:>9,} events in {r['wall_s']:.1f} s wall "
        f"({r['cpu_s']:.1f} s CPU) = {r['events_per_s']:,} events/s "
        f"({r['events_per_cpu_s']:,} per CPU s); peak RSS {r['peak_rss_mib']} MiB; "
        f"{r['jobs']} jobs, {r['frames']} frames, {r['sim_hours']} simulated h"
    )
    print(line)
    if quick < 1.0:
        # Scale by simulated hours actually run (the liveness tail included).
        per_day = 24 / r["sim_hours"]
        wall_day_s, cpu_day_s = r["wall_s"] * per_day, r["cpu_s"] * per_day
        print(
            f"        EXTRAPOLATED from {r['sim_hours']:.2f} simulated h "
            f"(--quick {quick}): about {wall_day_s:,.0f} s wall "
            f"({cpu_day_s:,.0f} s CPU) per simulated day"
        )


if __name__ == "__main__":
    main()
