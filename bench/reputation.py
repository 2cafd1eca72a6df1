"""What does reputation-driven checking save, and what detection does it keep?

    python bench/reputation.py                   # 3 seeds of cheaters_20pct, 6 simulated hours
    python bench/reputation.py --seeds 1 --hours 1 --json

Runs simulations/scenarios/cheaters_20pct.toml (20 % of workers cheat on half
their results, 30 % of cheats are partial renders faking 10 % of the frame,
3 sybil identities, 1 colluding checker in 6) three ways, same seeds:

* ``off`` — requesters keep no reputation (and so no public work record): every result is checked with the
  fresh-worker ``k`` (32 tiles at normal assurance), awards by price only;
* ``fresh network`` — reputation on, every identity new at the start (scores
  stay near 0: maturity takes 14 days, the run a few hours);
* ``established`` — reputation on, every requester starts knowing every first
  worker, *cheaters included*, with 500 accepted frames over 30 days (score
  ~0.98: checked on ~26 % of results with ``k`` = 8). The worst case for
  detection: the cheaters had behaved until now;
* ``established, cheaters new`` — the same, but only honest workers are
  known: the cheaters (and lazy workers, snipers, sybils) are new identities.

Printed per mode (summed over seeds): frames accepted; per accepted frame the
checks and tiles requested and the checker fees paid; cheats submitted /
caught / missed, detection = caught / (caught + missed); and the savings per
frame in tiles and fees against ``off``. Every figure is a
simulator counter (docs/SIMULATIONS.md); the decisions are the real
``protocol`` machines', the rendering and pixels are modelled.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
MODES: dict[str, dict[str, Any]] = {
    "off": {"verification.reputation": False},
    "fresh network": {"verification.reputation": True},
    "established": {"verification.reputation": True, "verification.prior_accepted": 500,
                    "verification.prior_age_days": 30.0},
    "established, cheaters new": {"verification.reputation": True,
                                  "verification.prior_accepted": 500,
                                  "verification.prior_age_days": 30.0,
                                  "verification.prior_cheaters": False},
}  # fmt: skip
# A long verify timeout keeps re-requests out of the spend. (With 16 px tiles once costed
# as 32 px ones, 0.07 of the frame each, a fresh worker's 24-tile check outlasted the
# scenario's 120 s on slow cards; tile_fraction is now protocol.cost's: 24 x 0.0175.)
COMMON: dict[str, Any] = {"market.verify_timeout_s": 3600.0}
KEYS = ("checks_requested", "tiles_requested", "checker_fees_wei", "results_unchecked",
        "frames_accepted", "cheats_submitted", "cheats_caught", "cheats_missed",
        "false_rejects")  # fmt: skip


def run(mode: str, seeds: int, hours: float) -> dict[str, Any]:
    sys.path.insert(0, str(ROOT))
    from simulations.runner import run_scenario
    from simulations.scenario import load_scenario

    totals = dict.fromkeys(KEYS, 0)
    started = time.perf_counter()
    for seed in range(1, seeds + 1):
        overrides = {**MODES[mode], **COMMON, "scenario.duration_s": hours * 3600}
        scenario = load_scenario(ROOT / "simulations/scenarios/cheaters_20pct.toml", overrides)
        summary = run_scenario(scenario, seed).summary
        for key in KEYS:
            totals[key] += summary[key]
    caught, missed = totals["cheats_caught"], totals["cheats_missed"]
    totals["detection"] = caught / (caught + missed) if caught + missed else 1.0
    totals["wall_s"] = round(time.perf_counter() - started, 1)
    return totals


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--hours", type=float, default=6.0)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    results = {mode: run(mode, args.seeds, args.hours) for mode in MODES}
    for r in results.values():
        frames = max(1, r["frames_accepted"])
        r["checks_per_frame"] = r["checks_requested"] / frames
        r["tiles_per_frame"] = r["tiles_requested"] / frames
        r["fees_wei_per_frame"] = r["checker_fees_wei"] // frames
    base = results["off"]
    for r in results.values():
        r["tiles_saved"] = 1 - r["tiles_per_frame"] / base["tiles_per_frame"]
        r["fees_saved"] = 1 - r["fees_wei_per_frame"] / base["fees_wei_per_frame"]
    if args.json:
        print(json.dumps(results, indent=2, sort_keys=True))
        return
    print(f"cheaters_20pct, {args.seeds} seed(s) x {args.hours:g} simulated hours")
    head = ("mode", "frames", "checks/frame", "tiles/frame", "fees wei/frame", "unchecked",
            "cheats", "caught", "missed", "detection", "tiles saved", "fees saved", "wall s")
    print(" | ".join(head))
    for mode, r in results.items():
        print(" | ".join(str(x) for x in (
            mode, r["frames_accepted"], f"{r['checks_per_frame']:.2f}",
            f"{r['tiles_per_frame']:.1f}", r["fees_wei_per_frame"], r["results_unchecked"],
            r["cheats_submitted"], r["cheats_caught"], r["cheats_missed"],
            f"{r['detection']:.1%}", f"{r['tiles_saved']:.1%}", f"{r['fees_saved']:.1%}",
            r["wall_s"],
        )))  # fmt: skip


if __name__ == "__main__":
    main()
