"""docs/SIMULATIONS.md's adversary table: each adversary's scenario, run and booked.

Each row runs a bundled scenario (``simulations/scenarios/``) under the
protocol's default parameters, shortened (``SIZE``: 40 minutes of arrivals,
the scenario's own nodes) for ``SEEDS``, and prints per run (mean over the
seeds) the accounts of ``simulations.accounts``: the attacker's profit, what
as many honest peers made in the same run, the honest nodes' loss, what honest
workers' unpaid capacity-challenge renders cost them (``challenge_cost_wei``,
part of their costs), plus the jobs that failed and the frames accepted. ``bench/adversaries.py`` prints it;
tests/simulations/test_adversary_table.py checks that the doc shows exactly
what this prints.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

SCENARIOS = Path(__file__).resolve().parent / "scenarios"
SEEDS = (1, 2)
# Shorter than the scenario files (6 simulated hours), so that a test can run every row.
SIZE: dict[str, Any] = {
    "scenario.duration_s": 2400,
    "scenario.liveness_bound_s": 2400,
    "workload.jobs_per_hour": 6,
    "workload.first_job_s": 30,
    "workload.frames_min": 3,
    "workload.frames_max": 10,
    "workload.deadline_s": 1800,
}
STAKE_WEI = 10**17  # 0.1 ETH per worker (the escrow's default slash cap): rows that stake
ROWS: tuple[tuple[str, str, dict[str, Any]], ...] = (
    ("none (control)", "baseline", {}),
    ("requester clawback", "requester_clawback", {}),
    ("free riders", "free_riders", {}),
    ("lazy checkers", "lazy_checkers", {}),
    ("colluding checker quorum", "colluding_quorum", {}),
    ("lazy pair (two checkers comparing notes)", "lazy_pair", {}),
    ("sybil capacity flood (trial leases and capacity challenges)", "sybil_flood", {}),
    ("sybil capacity flood, neither", "sybil_flood", {"market.trial_leases": 0}),
    ("sybil capacity flood, honest workers staked", "sybil_flood",
     {"nodes.worker_stake_wei": STAKE_WEI}),
    ("cheating workers, staked", "cheaters_20pct", {"nodes.worker_stake_wei": STAKE_WEI}),
    ("cheating workers, staked, disputing none of their rejections", "cheaters_20pct",
     {"nodes.worker_stake_wei": STAKE_WEI, "adversaries.cheaters_dispute": False}),
    ("cheating workers, staked, slash quorum 2, checks at the measured cost", "cheaters_20pct",
     {"nodes.worker_stake_wei": STAKE_WEI, "chain.slash_quorum": 2,
      "verification.tile_fraction": 0.0026}),
)  # fmt: skip
KEYS = ("attacker_nodes", "attacker_profit_wei", "honest_margin_wei", "honest_loss_wei",
        "challenge_cost_wei", "slashed_wei", "jobs_failed", "jobs_submitted",
        "frames_accepted")  # fmt: skip
HEADER = (
    "| adversary | scenario | attacker identities | attacker's profit (µETH) "
    "| honest peers' (µETH) | honest nodes' loss (µETH) | honest challenge renders (µETH) "
    "| stake slashed (µETH) | jobs failed | frames accepted |\n|---|---|---|---|---|---|---|---|---|---|"
)
MICRO_ETH_WEI = 10**12


def run_row(row: tuple[str, str, dict[str, Any]], seed: int) -> dict[str, int]:
    from simulations.runner import run_scenario
    from simulations.scenario import load_scenario

    _, name, overrides = row
    summary = run_scenario(load_scenario(SCENARIOS / f"{name}.toml", SIZE | overrides), seed).summary
    return {key: int(summary[key]) for key in KEYS}


Runner = Callable[[tuple[str, str, dict[str, Any]], int], dict[str, int]]


def table(run: Runner = run_row) -> str:
    """The markdown table (``run`` may be a parallel map's; results are per row and seed)."""
    lines = [HEADER]
    for row in ROWS:
        runs = [run(row, seed) for seed in SEEDS]
        mean = {key: sum(r[key] for r in runs) // len(runs) for key in KEYS}
        label, name, overrides = row
        scenario = name + "".join(f", {k} = {_value(v)}" for k, v in overrides.items())
        failed = f"{sum(r['jobs_failed'] for r in runs)} of {sum(r['jobs_submitted'] for r in runs)}"
        lines.append(
            f"| {label} | `{scenario}` | {mean['attacker_nodes']} "
            f"| {micro_eth(mean['attacker_profit_wei'])} | {micro_eth(mean['honest_margin_wei'])} "
            f"| {micro_eth(mean['honest_loss_wei'])} | {micro_eth(mean['challenge_cost_wei'])} "
            f"| {micro_eth(mean['slashed_wei'])} "
            f"| {failed} | {mean['frames_accepted']} |"
        )
    return "\n".join(lines)


def _value(value: Any) -> str:
    """An override as the table shows it (a power of ten of wei as 10^n)."""
    if isinstance(value, int) and value >= 10**6 and str(value).rstrip("0") == "1":
        return f"10^{len(str(value)) - 1}"
    return str(value)


def micro_eth(wei: int) -> str:
    """Wei as µETH with one decimal, in integers (rounded toward zero)."""
    sign = "−" if wei < 0 else ""
    tenths = abs(wei) // (MICRO_ETH_WEI // 10)
    return f"{sign}{tenths // 10:,}.{tenths % 10}"
