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


def test_tile_fraction_is_the_protocols_cost_of_its_tile_size() -> None:
    """One value from protocol/: the simulator costs a tile as protocol.cost does, for the
    tile size the protocol checks (16 px), not a 32 px tile's share."""
    from protocol.cost import tile_cost_ppm
    from protocol.verification import DEFAULT_POLICY
    from simulations.scenario import Verification

    tile_px = DEFAULT_POLICY.sampling.tile_px
    assert tile_px == 16
    assert Verification().tile_fraction == tile_cost_ppm(tile_px) / 1_000_000 == 0.0175
    assert tile_cost_ppm(32) == 4 * tile_cost_ppm(16)  # area-scaled
    assert 24 * Verification().tile_fraction < 0.5  # a fresh worker's check: under half a frame
