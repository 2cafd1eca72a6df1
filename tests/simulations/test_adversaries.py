"""The adversaries of issue 20 against the simulator's chain and accounts: lanes keep
a clawback off the workers' pay, a free rider's gain is its workers' loss."""

from __future__ import annotations

from typing import Any

from ledger.voucher_book import Lane
from simulations.accounts import payee_income
from simulations.adversary_table import SIZE
from simulations.chain import ChainModel
from simulations.lanes import sock_puppet
from simulations.loop import EventLoop
from simulations.runner import run_scenario
from simulations.scenario import Chain, load_scenario
from tests.simulations.conftest import SCENARIOS

REQUESTER, WORKER, OTHER, JOB = b"\x0a" * 20, b"\x0b" * 20, b"\x0d" * 20, b"\x0c" * 32
WEI = 10**15


def funded_chain() -> tuple[EventLoop, ChainModel]:
    loop = EventLoop(seed=1)
    chain = ChainModel(loop, Chain())
    chain.mint(REQUESTER, 100 * WEI)
    chain.deposit(REQUESTER, JOB, 10 * WEI, 3_600_000, None)
    loop.run_until(60_000)
    return loop, chain


def test_a_voucher_pays_up_to_its_lane_and_lanes_never_exceed_the_deposit() -> None:
    loop, chain = funded_chain()
    mined: list[bool] = []
    chain.open_lanes(REQUESTER, JOB, [(WORKER, 3 * WEI)], mined.append)
    chain.open_lanes(REQUESTER, JOB, [(OTHER, 5 * WEI), (WORKER, 5 * WEI)], mined.append)
    loop.run_until(loop.now_ms + 20_000)
    assert mined == [True, False]  # all or nothing: 10 more would pass the 7 unallocated
    assert chain.lane(JOB, OTHER) == Lane(0, 0)
    chain.issued.add((JOB, WORKER, 4 * WEI))
    chain.redeem_batch([(JOB, WORKER, 4 * WEI)], None)
    loop.run_until(loop.now_ms + 20_000)
    assert chain.balances.get(WORKER) == 3 * WEI  # the lane's 3, not the voucher's 4
    assert chain.secured(JOB, WORKER).problem(token=bytes(20), cumulative_wei=4 * WEI,
                                              redeem_by_s=0) is not None  # fmt: skip


def test_a_stranger_cannot_fund_lanes_of_someone_elses_job() -> None:
    loop, chain = funded_chain()
    mined: list[bool] = []
    chain.open_lanes(OTHER, JOB, [(OTHER, WEI)], mined.append)
    loop.run_until(loop.now_ms + 20_000)
    assert mined == [False] and chain.lane(JOB, OTHER) == Lane(0, 0)


def test_clawback_takes_only_what_no_lane_holds(small: dict[str, Any]) -> None:
    small["nodes.requesters"] = 1
    small["adversaries.clawback_fraction"] = 1.0
    # lanes, not trial frames: with them on (the default) a seed's job may make no award
    # after the clawback, so no worker meets a short lane
    small["market.trial_leases"] = 0
    declined = 0
    # two seeds: whether an award meets a short lane in one short run is timing (main's
    # seed 3 declined none; with probation plants, seed 1 none either)
    for seed in (1, 2):
        outcome = run_scenario(load_scenario(SCENARIOS / "requester_clawback.toml", small), seed)
        world, s = outcome.world, outcome.summary
        requester = next(n for n in world.nodes if n.role == "requester")
        assert requester.behaviour == "clawback"
        assert world.chain.balances.get(sock_puppet(requester.address), 0) > 0  # it clawed back
        declined += s["awards_declined"]
        income = payee_income(world)
        for (job_id, payee), owed in world.metrics.owed_wei.items():  # funded pay is paid
            covered = min(owed, world.chain.jobs[job_id].lanes.get(payee, 0))
            assert income.get((job_id, payee), 0) >= covered
        assert s["attacker_profit_wei"] == s["honest_loss_wei"]  # what it gains, they lose
    assert declined > 0  # workers saw their lanes short and declined


def shortfalls(outcome: Any, role: str) -> int:
    """What honest payees of ``role`` earned and their vouchers do not pay on chain."""
    world, income = outcome.world, payee_income(outcome.world)
    short = 0
    for (job_id, payee), owed in world.metrics.owed_wei.items():
        node = world.by_address.get(payee)
        if node is not None and node.role == role and node.behaviour == "honest":
            short += max(0, owed - income.get((job_id, payee), 0))
    return short


def test_clawback_takes_nothing_from_honest_workers(small: dict[str, Any]) -> None:
    """A worker's pay check counted vouchers received and renders in flight, not results
    delivered and still waiting for their voucher, so it started frames its lane no
    longer covered (20-72 uETH lost per run); ``WorkerMachine.pay_needed_wei`` counts them."""
    small["nodes.requesters"] = 1
    small["adversaries.clawback_fraction"] = 1.0
    outcome = run_scenario(load_scenario(SCENARIOS / "requester_clawback.toml", small), 1)
    assert shortfalls(outcome, "worker") == 0


def test_clawback_takes_nothing_from_honest_checkers(small: dict[str, Any]) -> None:
    """Honest checkers lost a check fee or two per run here (11-12 uETH each, seed 1; a
    strict xfail until the cause was found): a plant's checker, once the plant timed
    out, could be asked for the real check of the same task (two requests naming one
    task), and a late plant verdict read as the real one's (the machine now keeps
    each task's plant holder: JobMachine.checkers_refused, PlantDesk)."""
    small["nodes.requesters"] = 1
    small["adversaries.clawback_fraction"] = 1.0
    outcome = run_scenario(load_scenario(SCENARIOS / "requester_clawback.toml", small), 1)
    assert shortfalls(outcome, "checker") == 0


def test_a_free_riders_gain_is_its_workers_loss(small: dict[str, Any]) -> None:
    outcome = run_scenario(load_scenario(SCENARIOS / "free_riders.toml", small), 1)
    s = outcome.summary
    assert s["unpaid_wei"] > 0
    assert s["attacker_profit_wei"] == s["honest_loss_wei"] == s["unpaid_wei"]


def test_accounts_of_an_honest_network_are_zero(small: dict[str, Any]) -> None:
    s = run_scenario(load_scenario(SCENARIOS / "baseline.toml", small), 2).summary
    assert s["frames_accepted"] > 0
    assert (s["attacker_nodes"], s["attacker_profit_wei"], s["honest_loss_wei"]) == (0, 0, 0)


STAKED: dict[str, Any] = {
    "nodes.worker_stake_wei": 10**17,
    "verification.tile_fraction": 0.0026,  # checks at bench/verification.py's cost: disputes end
}


def test_a_dispute_majority_slashes_only_cheaters_and_conserves_money() -> None:
    overrides = SIZE | STAKED | {"chain.slash_quorum": 2}
    outcome = run_scenario(load_scenario(SCENARIOS / "cheaters_20pct.toml", overrides), 2)
    world, s = outcome.world, outcome.summary
    assert s["slashes"] > 0 and s["slashed_wei"] > 0  # invariants (money conserved) held
    slashed = [world.by_address[a] for a, wei in world.chain.slashed.items() if wei]
    assert {n.behaviour for n in slashed if n.role == "worker"} <= {"cheater", "sybil"}
    # a checker loses stake only to a claim of a plant it passed: its colluder did
    assert {n.behaviour for n in slashed if n.role == "checker"} <= {"colluder", "lazy_checker"}
    # claimers and requesters get the half that is not burned
    assert sum(world.chain.credits.values()) + world.chain.burned_wei == s["slashed_wei"]
    assert world.chain.burned_wei > 0


def test_a_dispute_majority_can_slash_under_the_default_quorum() -> None:
    """A dispute resolves on its first failing verdict, so a SlashDue names 2 rejecters:
    the escrow's default quorum is that many (it was 3, and this was a strict xfail)."""
    overrides = SIZE | STAKED
    s = run_scenario(load_scenario(SCENARIOS / "cheaters_20pct.toml", overrides), 2).summary
    assert s["slashes_impossible"] == 0 < s["slashes"]
