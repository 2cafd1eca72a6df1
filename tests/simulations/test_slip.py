"""The slip figure's books (docs/SIMULATIONS.md, "The slip figure"): every cheated result
is accounted for by what became of it, a miss by its cause; at the default check cost the
checkers keep up, so no result is given up unverified and honest nodes are paid for their
work; a second checker per result (normal's for a fresh worker) closes what a colluding
checker lets through."""

from __future__ import annotations

from typing import Any

from simulations.metrics import MISS_CAUSES, slip_ppm
from simulations.runner import run_scenario
from simulations.scenario import load_scenario
from tests.simulations.conftest import SCENARIOS

# cheaters_20pct cut to 2 simulated hours of arrivals: its nodes, a third of its length
SHORT: dict[str, Any] = {"scenario.duration_s": 7200, "scenario.liveness_bound_s": 14400 + 60}


def _run(seed: int, **overrides: Any) -> dict[str, Any]:
    scenario = load_scenario(SCENARIOS / "cheaters_20pct.toml", {**SHORT, **overrides})
    return run_scenario(scenario, seed).summary


def test_every_cheat_is_booked() -> None:
    s = _run(1)
    decided = s["cheats_caught"] + s["cheats_missed"] + s["cheats_revoked"]
    assert 0 < decided + s["cheats_unverified"] <= s["cheats_submitted"]
    assert sum(s[f"cheats_missed_{c}"] for c in MISS_CAUSES) == s["cheats_missed"]
    assert s["cheat_slip_ppm"] == slip_ppm(s["cheats_missed"], s["cheats_caught"],
                                           s["cheats_revoked"])  # fmt: skip


def test_checkers_keep_up_at_the_measured_cost() -> None:
    """(A strict xfail on the probation-plants branch: seed 1 fell behind there with 91
    plants in 624 checks; with lane fundings merged and judged plant holders allowed
    in disputes, on main, it keeps up.)"""
    s = _run(1)
    # With a 24-tile check at 42 % of a frame (the old tile cost) the checkers fell behind:
    # results were given up unverified, their honest workers went unpaid, checkers lost
    # fees to verify timeouts (main, seed 1 of the full scenario: 0 of 32 jobs completed).
    # Since stop 37 a fresh worker's result meets two checkers at normal, and the six
    # checkers carry twice the checks: seed 1 gives up two cheated results unverified
    # (their frames are rendered again, nobody goes unpaid), against hundreds at the old cost
    assert s["cheats_unverified"] <= 2
    assert s["honest_checker_profit_wei"] > 0
    # an honest node loses at most about a frame's pay a run (a job that ends with a frame
    # in flight); with the old cost each lost 30x that (2 h run: -4.4e15 wei per node)
    w = load_scenario(SCENARIOS / "cheaters_20pct.toml").workload
    frame_wei = int(w.ru_per_frame_max * w.price_wei_per_ru * w.max_price_factor)
    assert s["honest_margin_wei"] > -frame_wei * s["attacker_nodes"]


def test_the_colluder_is_what_slips_with_one_checker_and_normals_second_one_stops_it() -> None:
    # seeds 1-3 summed: one seed may give the colluder no partner's cheat to pass. One
    # checker per fresh worker's result was normal's plan until stop 37 (6.08 % slipped
    # in the full scenario, seeds 1-20, 26 of the 41 misses the colluder's).
    one = [_run(seed, **{"verification.checkers_fresh": 1}) for seed in (1, 2, 3)]
    two = [_run(seed) for seed in (1, 2, 3)]
    assert sum(s["cheats_missed_colluder"] for s in one) > 0
    assert sum(s["cheats_missed_colluder"] for s in two) == 0
    assert sum(s["cheats_missed"] for s in two) < sum(s["cheats_missed"] for s in one)


# An established network: every requester knows the first workers with 100 accepted
# frames over 30 days, the cheaters among them (they behaved until now: the long con).
ESTABLISHED: dict[str, Any] = {
    "verification.prior_accepted": 100, "verification.prior_age_days": 30,
    "verification.assurance": "high",
}  # fmt: skip


def test_at_high_a_cheater_with_a_history_still_meets_two_checkers() -> None:
    """A trusted worker's result at ``high`` had one checker, so the colluder passed the
    long con's cheats: full scenario, seeds 1-20, 41 of 666 slipped (32 by the colluder,
    6.2 %); with two checkers at every reputation 2 of 884 (0.23 %, fees 13.5 -> 25.0 %)."""
    runs = [_run(seed, **ESTABLISHED) for seed in (1, 2, 3)]
    assert sum(s["cheats_caught"] for s in runs) > 0  # the long con was played
    assert sum(s["cheats_missed_colluder"] for s in runs) == 0


def test_a_cheat_an_honest_checker_missed_and_a_colluder_passed_is_the_colluders() -> None:
    """Two checkers passed a partial fake: the honest one's tiles missed it, the colluder
    never looked. Booked by the first pass it read "sampled" (seeds 29 and 50 of
    cheaters_20pct, stop 46), hiding the colluder behind normal's second checker."""
    from types import SimpleNamespace

    from simulations.metrics import Metrics
    from simulations.slip import CheatFates

    nodes = {b"h": SimpleNamespace(behaviour="honest"), b"c": SimpleNamespace(behaviour="colluder")}
    world = SimpleNamespace(result_kind={b"t1": "partial", b"t2": "partial"}, by_id=nodes,
                            pair_passed=set(), metrics=Metrics())  # fmt: skip
    fates = CheatFates(world)  # type: ignore[arg-type]
    fates.passed(b"t1", b"h")
    fates.passed(b"t1", b"c")
    fates.accepted(b"t1", checked=True)
    fates.passed(b"t2", b"h")
    fates.passed(b"t2", b"h")  # a resent pass
    fates.accepted(b"t2", checked=True)
    assert world.metrics.cheats_missed_by == {"colluder": 1, "sampled": 1}
