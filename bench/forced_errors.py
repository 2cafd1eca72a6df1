"""What forced errors cost and what they take from lazy checkers (issue 17).

    python bench/forced_errors.py                          # lazy_checkers, 5 rates x 4 seeds
    python bench/forced_errors.py --scenario cheaters_20pct --rates 0,100000 --seeds 20
    python bench/forced_errors.py --json
    python bench/forced_errors.py --rates 100000 --after 20      # strategic lazy checkers
    python bench/forced_errors.py --rates 100000 --whitewash     # fresh key after each strike
    python bench/forced_errors.py --rates 100000 --whitewash --no-checker-stake

Runs a bundled scenario (default ``lazy_checkers``: 2 lazy checkers in 6, 10 %
cheating workers, 6 simulated hours) at each base plant rate
(``market.plant_rate_ppm``; a checker the requester does not know yet is
planted more often, ``protocol.forced_errors.plant_rate_ppm``) over the same
seeds, in parallel processes; ``--after N`` makes the lazy checkers strategic
(honest for their first N checks, ``adversaries.lazy_checker_after``), ``--whitewash``
makes them come back to a requester that struck them under a fresh key
(``adversaries.lazy_checker_whitewash``: probation again, N counted per requester
and key; a key costs only the stake it must bring). Checkers stake the escrow's
default SLASH_CAP and requesters ask only checkers that hold it, and a missed plant
is claimed against the checker's stake (``simulations/pass_claims.py``, the node's
defaults); ``--no-checker-stake`` runs without either (nobody stakes, nobody is
asked to). Printed per rate, as means per
run: the profit of a lazy and of an honest checker (fees due minus the
modelled cost of the re-renders it made, ``verification.check_cost_bps``:
6.2 % of the frame's price for 24 tiles, bench/verification.py, plus its shares
of claims it signed and minus the stake claims took from it), that stake part
alone, plants sent and missed, missed plants claimed, what the plants' fees cost the requesters against all fees and
against the frames' price, cheats submitted and missed (accepted), and
missed as a share of the cheats submitted. Every figure is a simulator
counter; the decisions are the real ``protocol`` machines'.
"""

from __future__ import annotations

import argparse
import json
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
KEYS = ("lazy_checker_profit_wei", "honest_checker_profit_wei", "colluding_checker_profit_wei",
        "lazy_checker_stake_net_wei", "honest_checker_stake_net_wei", "pass_claims", "plants_sent", "plants_missed", "plant_fees_wei", "checker_fees_wei", "paid_wei",
        "cheats_submitted", "cheats_caught", "cheats_missed", "cheats_revoked", "frames_accepted",
        "jobs_completed", "jobs_failed")  # fmt: skip


def one(args: tuple[str, int, int, int, bool, bool]) -> dict[str, Any]:
    scenario_name, rate, seed, after, whitewash, stake = args
    sys.path.insert(0, str(ROOT))
    from simulations.runner import run_scenario
    from simulations.scenario import load_scenario

    path = ROOT / "simulations/scenarios" / f"{scenario_name}.toml"
    summary = run_scenario(load_scenario(path, overrides(rate, after, whitewash, stake)), seed).summary
    return {key: summary[key] for key in KEYS}


def overrides(rate: int, after: int, whitewash: bool, stake: bool = True) -> dict[str, int | bool]:
    over: dict[str, int | bool] = {"market.plant_rate_ppm": rate}
    if not stake:  # nobody stakes, no requester asks for it
        over["nodes.checker_stake_wei"] = over["market.checker_stake_wei"] = 0
    if after:
        over["adversaries.lazy_checker_after"] = after
    if whitewash:
        over["adversaries.lazy_checker_whitewash"] = True
    return over


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--scenario", default="lazy_checkers")
    parser.add_argument("--rates", default="0,20000,50000,100000,200000")
    parser.add_argument("--seeds", type=int, default=4)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--after", type=int, default=0, help="lazy checkers render first N checks")
    parser.add_argument("--whitewash", action="store_true",
                        help="a struck lazy checker returns under a fresh key")  # fmt: skip
    parser.add_argument("--no-checker-stake", action="store_true",
                        help="checkers hold no stake and requesters ask none")  # fmt: skip
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    rates = [int(r) for r in args.rates.split(",")]
    seeds = range(1, args.seeds + 1)
    stake = not args.no_checker_stake
    jobs = [(args.scenario, rate, seed, args.after, args.whitewash, stake)
            for rate in rates for seed in seeds]  # fmt: skip
    with ProcessPoolExecutor(args.workers) as pool:
        runs = list(pool.map(one, jobs))
    results: dict[int, dict[str, Any]] = {}
    for (_, rate, *_), run in zip(jobs, runs, strict=True):
        point = results.setdefault(rate, dict.fromkeys(KEYS, 0))
        for key in KEYS:
            point[key] += run[key]
    for point in results.values():
        for key in KEYS:
            point[key] = point[key] / args.seeds
        # the slip figure (simulations.metrics.slip_ppm): of the cheats decided on
        decided = point["cheats_missed"] + point["cheats_caught"] + point["cheats_revoked"]
        point["missed_share"] = point["cheats_missed"] / decided if decided else 0.0
        fees = point["checker_fees_wei"]
        point["plant_fee_share"] = point["plant_fees_wei"] / fees if fees else 0.0
        paid = point["paid_wei"]
        point["plant_fees_per_price"] = point["plant_fees_wei"] / paid if paid else 0.0
    if args.json:
        print(json.dumps(results, indent=2, sort_keys=True))
        return
    strategy = f", lazy after {args.after} checks" if args.after else ""
    strategy += ", whitewashing" if args.whitewash else ""
    strategy += "" if stake else ", no checker stake"
    print(f"{args.scenario}{strategy}, {args.seeds} seed(s) per rate, means per run")
    head = ("plant ppm", "lazy profit wei", "of it: stake", "honest profit wei", "of it: claims",
            "plants", "missed", "claimed",
            "plant fees / fees", "plant fees / frame pay", "cheats", "missed", "slip (of decided)")
    print(" | ".join(head))
    for rate, p in results.items():
        print(" | ".join(str(x) for x in (
            rate, f"{p['lazy_checker_profit_wei']:.3g}", f"{p['lazy_checker_stake_net_wei']:.3g}",
            f"{p['honest_checker_profit_wei']:.3g}", f"{p['honest_checker_stake_net_wei']:.3g}",
            f"{p['plants_sent']:.1f}", f"{p['plants_missed']:.1f}", f"{p['pass_claims']:.1f}",
            f"{p['plant_fee_share']:.1%}", f"{p['plant_fees_per_price']:.2%}",
            f"{p['cheats_submitted']:.1f}", f"{p['cheats_missed']:.2f}",
            f"{p['missed_share']:.2%}",
        )))  # fmt: skip


if __name__ == "__main__":
    main()
