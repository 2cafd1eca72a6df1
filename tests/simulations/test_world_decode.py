"""The world hands each receiver the envelope made when the bytes were encoded
(``simulations.world.Signed``), not a decode of them: the same envelopes and the
same runs as decoding every delivery, as the node does."""

from __future__ import annotations

import json

import pytest

from simulations.runner import run_scenario
from simulations.scenario import load_scenario
from simulations.world import World
from tests.simulations.conftest import SCENARIOS, SMALL

BUNDLED = sorted(path.stem for path in SCENARIOS.glob("*.toml"))


def _check_every_delivery(world: World) -> None:
    world.check_decode = True  # set at the first event: every delivery comes after it


def _decode_every_delivery(world: World) -> None:
    world.decode_deliveries = True


@pytest.mark.parametrize("name", BUNDLED)
def test_runs_are_the_same_as_when_every_delivery_is_decoded(name: str) -> None:
    scenario = load_scenario(SCENARIOS / f"{name}.toml", SMALL)
    # each delivery's envelope is the decode of its bytes (World._deliver asserts it)
    checked = run_scenario(scenario, 1, hooks=[_check_every_delivery])
    assert checked.world.net.stats.messages > 100
    # and a run whose receivers decode the bytes themselves (no message object shared
    # between sender and receiver) is the same run
    decoded = run_scenario(scenario, 1, hooks=[_decode_every_delivery])
    assert decoded.events == checked.events
    assert json.dumps(decoded.summary, sort_keys=True, default=str) == json.dumps(
        checked.summary, sort_keys=True, default=str
    )
