"""Capacity challenges in the simulator (issue 20): the node's challenger and answerer
(protocol.challenge) over modelled renders, with the node's default trial leases."""

from __future__ import annotations

from pathlib import Path
from typing import Any

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
    # without trial leases (and so challenges) the flood takes nearly every frame and fails
    # it: every job fails, where with them most complete. (Frames accepted were compared
    # until the two runs' job arrivals drifted apart: 24 of 4 jobs against 20 of 7 failed
    # ones. With them a job still misses its deadline now and then, its frame given to one
    # flood identity after another: 9 of 72 jobs over seeds 1-16 in stop 41, 7 to 10 with
    # other check plans; seed 1 drew 1 of 3 there, 0 before.)
    without = run_scenario(load_scenario(SCENARIOS / "sybil_flood.toml",
                                         SIZE | {"market.trial_leases": 0}), 1).summary  # fmt: skip
    assert 0 <= 2 * s["jobs_failed"] < s["jobs_submitted"]
    assert without["jobs_failed"] == without["jobs_submitted"] > 0
    assert without["challenges_sent"] == 0


def _one_job(**overrides: Any) -> int:
    """The makespan (ms) of one 2-frame job on one worker with the node's trial leases
    (the worker is challenged on its bid; both frames are trial frames)."""
    values: dict[str, Any] = {
        "scenario.duration_s": 600, "scenario.liveness_bound_s": 1800,
        "scenario.sample_interval_s": 60, "nodes.workers": 1, "nodes.checkers": 1,
        "nodes.requesters": 1, "workload.jobs_per_hour": 1e-6, "workload.first_job_s": 10,
        "workload.frames_min": 2, "workload.frames_max": 2, "workload.ru_per_frame_min": 1,
        "workload.ru_per_frame_max": 1, "workload.deadline_s": 1200,
        "rendering.failure_rate": 0.0, "rendering.gpu_classes": [
            {"name": "one", "weight": 1.0, "score_ru_per_hour": 3600, "vram_mib": 65_536}],
        "network.loss": 0.0, "chain.block_time_s": 0.1, "chain.confirmations": 0,
    } | {k.replace("__", "."): v for k, v in overrides.items()}  # fmt: skip
    outcome = run_scenario(load_scenario(SCENARIOS / "baseline.toml", values), 1)
    assert outcome.summary["challenges_sent"] == 1
    job = next(iter(outcome.metrics.jobs.values()))
    assert job.finished_ms is not None and job.frames_accepted == 2
    return job.finished_ms - job.submitted_ms


def test_a_frame_awarded_while_its_workers_challenge_renders_waits_for_it() -> None:
    """The node renders a challenge in the job's one warm Blender process: a trial frame
    awarded meanwhile starts after the answer's render (here 2 minutes longer than a
    frame; the award comes within the bid window and the lanes' funding of the challenge)."""
    quick = _one_job()
    slow = _one_job(rendering__challenge_start_s=120.0)
    assert slow - quick >= 90_000, (quick, slow)


def test_the_requesters_preflight_comes_before_its_deposit() -> None:
    base = _one_job()
    assert abs(_one_job(rendering__preflight_s=20.0) - base - 20_000) <= 200
