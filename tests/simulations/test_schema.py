"""Scenario schema errors name the offending key."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from simulations.scenario import load_scenario, scenario_from_dict
from simulations.schema import ScenarioError


@pytest.mark.parametrize(
    ("raw", "key"),
    [
        ({"network": {"lossy": 0.1}}, "network.lossy: unknown key"),
        ({"netwrok": {}}, "netwrok: unknown key"),
        ({"network": {"loss": 1.5}}, "network.loss: 1.5 is outside"),
        ({"network": {"loss": "high"}}, "network.loss: expected a number"),
        ({"nodes": {"workers": 2.5}}, "nodes.workers: expected an integer"),
        ({"nodes": {"workers": True}}, "nodes.workers: expected an integer"),
        ({"network": {"sign_gossip": 1}}, "network.sign_gossip: expected bool"),
        (
            {"network": {"partitions": [{"start_s": 1, "regionz": []}]}},
            "network.partitions[0].regionz: unknown key",
        ),
        ({"network": {"partitions": [{"regions": ["mars"]}]}}, "network.partitions[0].regions"),
        ({"rendering": {"gpu_classes": [{"vram_mib": -1}]}}, "rendering.gpu_classes[0].vram_mib"),
        ({"network": {"latency_ms": {"eu-mars": 5}}}, "network.latency_ms.eu-mars"),
        ({"workload": {"frames_min": 9, "frames_max": 3}}, "workload.frames_min"),
        ({"verification": {"assurance": "paranoid"}}, "verification.assurance"),
        ({"scenario": {"liveness_bound_s": 10}}, "scenario.liveness_bound_s"),
        ({"scenario": 3}, "scenario: expected a table"),
    ],
)
def test_error_names_the_bad_key(raw: dict[str, Any], key: str) -> None:
    with pytest.raises(ScenarioError, match=key.replace("[", r"\[").replace("]", r"\]")):
        scenario_from_dict(raw)


def test_override_is_validated_like_the_file(tmp_path: Path) -> None:
    path = tmp_path / "s.toml"
    path.write_text("[nodes]\nworkers = 3\n")
    assert load_scenario(path, {"network.loss": "0.25"}).network.loss == 0.25
    with pytest.raises(ScenarioError, match=r"network\.jitter: unknown key"):
        load_scenario(path, {"network.jitter": "5"})


def test_invalid_toml_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text("[nodes\nworkers = 3\n")
    with pytest.raises(ScenarioError, match="not valid TOML"):
        load_scenario(path)


def test_defaults_are_complete() -> None:
    scenario = scenario_from_dict({})
    assert scenario.nodes.workers > 0
    assert scenario.network.latency_ms["eu-us"] > 0


def test_a_fresh_workers_check_costs_what_the_bench_measured() -> None:
    """One value from protocol/: a tile costs its share of the frame's pixels at the
    workload's resolution (protocol.cost), and a check's fixed part is per check. The old
    default (1.75 % a tile at any resolution, from one Blender process per tile) made a
    24-tile check 42 % of a frame at 640 x 360, where bench/verification.py measures 3-5 %
    start-up included: the checkers of cheaters_20pct fell behind, results were given up
    unverified and honest workers went unpaid (docs/SIMULATIONS.md, Findings)."""
    from protocol.cost import tile_cost_ppm
    from protocol.messages import Assurance
    from protocol.verification import DEFAULT_POLICY, plan_check
    from simulations.scenario import tile_fraction

    scenario = scenario_from_dict({})
    tile_px = DEFAULT_POLICY.sampling.tile_px
    w, h = scenario.workload.resolution_x, scenario.workload.resolution_y
    assert tile_fraction(scenario) == tile_cost_ppm(tile_px, w, h) / 1e6 == 0.001111
    k = plan_check(Assurance.NORMAL, 0.0).k
    assert 0.02 < k * tile_fraction(scenario) < 0.05  # the tiles' share of a 24-tile check
    assert tile_cost_ppm(32, w, h) == 4 * tile_cost_ppm(16, w, h)  # area-scaled
    set_by_hand = scenario_from_dict({"verification": {"tile_fraction": 0.0026}})
    assert tile_fraction(set_by_hand) == 0.0026
