"""The slip figure over seeds: cheated results accepted, by cause, summed over runs.

    python bench/slip.py                                   # cheaters_20pct, seeds 1-6
    python bench/slip.py verification.checkers_fresh=2     # a plan's lever (dotted keys)
    python bench/slip.py market.checker_stake_wei=0 --seeds 3

Runs the scenario (default ``simulations/scenarios/cheaters_20pct.toml``, full length)
for each seed in parallel processes with the given overrides and prints the totals:
cheats submitted, missed by cause (``simulations.metrics.MISS_CAUSES``), the slip as
missed / decided (``cheat_slip_ppm``'s ratio over the totals), checker fees against
workers' pay, and the pass claims made and found impossible
(``simulations.pass_claims``), and what the checks cost in time: the mean over runs of
the median job time, jobs failed, results abandoned (no checker answered in time) and
tiles asked per accepted frame. Every figure is a simulator counter; the decisions are
the real ``protocol`` machines' (docs/SIMULATIONS.md, "The slip figure").
"""

from __future__ import annotations

import argparse
import json
import sys
from concurrent.futures import ProcessPoolExecutor
from functools import partial
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def _value(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return text


def run(path: str, overrides: dict[str, Any], seed: int) -> dict[str, Any]:
    from simulations.runner import run_scenario
    from simulations.scenario import load_scenario

    return run_scenario(load_scenario(path, overrides), seed).summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("overrides", nargs="*", metavar="KEY=VALUE")
    parser.add_argument("--scenario", default=str(ROOT / "simulations/scenarios/cheaters_20pct.toml"))
    parser.add_argument("--seeds", type=int, default=6, help="how many seeds (default 6)")
    parser.add_argument("--first", type=int, default=1, help="the first seed (default 1)")
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    from simulations.metrics import MISS_CAUSES

    overrides = {k: _value(v) for k, v in (o.split("=", 1) for o in args.overrides)}
    with ProcessPoolExecutor(args.workers) as pool:
        runs = list(pool.map(partial(run, args.scenario, overrides), range(args.first, args.first + args.seeds)))

    def total(key: str) -> int:
        return sum(int(r.get(key, 0)) for r in runs)

    missed = total("cheats_missed")
    decided = missed + total("cheats_caught") + total("cheats_revoked")
    causes = ", ".join(f"{c} {total(f'cheats_missed_{c}')}" for c in MISS_CAUSES
                       if total(f"cheats_missed_{c}"))  # fmt: skip
    last = args.first + args.seeds - 1
    print(f"{Path(args.scenario).name} seeds {args.first}-{last} {overrides or ''}")
    print(f"cheats submitted {total('cheats_submitted')}, decided {decided}, "
          f"missed {missed} ({causes or 'none'}): slip {100 * missed / max(1, decided):.2f} %")
    print(f"checker fees / workers' pay {100 * total('checker_fees_wei') / max(1, total('paid_wei')):.1f} %, "
          f"pass claims {total('pass_claims')} ({total('pass_claims_contradicted')} of contradicted passes), "
          f"impossible {total('pass_claims_impossible')}")  # fmt: skip
    p50 = sum(float(r["job_time_p50_s"]) for r in runs) / max(1, len(runs))
    print(f"what it costs: mean median job time {p50:.0f} s, jobs failed {total('jobs_failed')} "
          f"of {total('jobs_submitted')}, results abandoned {total('results_abandoned')}, "
          f"tiles asked per accepted frame {total('tiles_requested') / max(1, total('frames_accepted')):.1f}")  # fmt: skip


if __name__ == "__main__":
    main()
