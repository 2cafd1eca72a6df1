"""Capacity challenges in the simulator (issue 20): the node's challenger and answerer
(protocol.challenge) over modelled renders, with the node's default trial leases."""

from __future__ import annotations

from pathlib import Path

from node.config import NodeConfig
from simulations.adversary_table import SIZE
from simulations.challenges import Challenger
from simulations.runner import run_scenario
from simulations.scenario import Market, load_scenario
from tests.simulations.conftest import SCENARIOS


def test_the_simulators_trial_leases_are_the_nodes() -> None:
    assert Market().trial_leases == NodeConfig(Path("unused")).trial_leases == 2


def test_challenges_catch_the_flood_and_pass_honest_workers() -> None:
    outcome = run_scenario(load_scenario(SCENARIOS / "sybil_flood.toml", SIZE), 1)
    world, s = outcome.world, outcome.summary
    assert s["challenges_caught"] > 0 and s["challenges_passed"] > 0
    now_ms = world.epoch_ms()
    judged: dict[str, set[str]] = {"passed": set(), "caught": set()}
    for node in world.nodes:
        if node.role != "requester":
            continue
        assert isinstance(node.driver.challenges, Challenger)  # type: ignore[union-attr]
        book = node.driver.challenges.book  # type: ignore[union-attr]
        for worker in world.workers:
            result = book.outcome(worker.node_id, now_ms)
            if result is not None and result.decides:
                judged["passed" if result.passed else "caught"].add(worker.behaviour)
    assert judged == {"passed": {"honest"}, "caught": {"flood"}}
    assert s["challenge_cost_wei"] > 0  # the honest workers' unpaid renders
    # without trial leases (and so challenges) the flood takes nearly every frame and fails it
    without = run_scenario(load_scenario(SCENARIOS / "sybil_flood.toml",
                                         SIZE | {"market.trial_leases": 0}), 1).summary  # fmt: skip
    assert s["frames_accepted"] > 2 * without["frames_accepted"]
    assert without["challenges_sent"] == 0
