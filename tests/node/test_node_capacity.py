"""A node's advert states its GPUs, renderer build, benchmark score, price and free slots."""

from __future__ import annotations

import json
from pathlib import Path

from node.net.memory import MemoryHub
from node.render.benchmark import CACHE_FILE, REFERENCE_VERSION
from node.roles.capacity import cached_score, probe_capacity
from protocol import NodeKey
from tests.node.node_helpers import make_config, running_node


def write_score(data_dir: Path, build: str, device: str, score: int) -> None:
    key = f"{build}/{device}/v{REFERENCE_VERSION}"
    (data_dir / CACHE_FILE).write_text(json.dumps({key: {"score_ru_per_hour": score}}))


def test_cached_score_matches_build_and_device(tmp_path: Path) -> None:
    assert cached_score(tmp_path, "blender-3.4.1", "cpu-x86_64-avx2") == 0  # none measured
    write_score(tmp_path, "blender-3.4.1", "cpu-x86_64-avx2", 485)
    assert cached_score(tmp_path, "blender-3.4.1", "cpu-x86_64-avx2") == 485
    assert cached_score(tmp_path, "blender-3.4.1", "cuda-sm90") == 0  # another device
    (tmp_path / CACHE_FILE).write_text("{not json")
    assert cached_score(tmp_path, "blender-3.4.1", "cpu-x86_64-avx2") == 0


async def test_advert_carries_probed_capacity(tmp_path: Path) -> None:
    write_score(tmp_path, "blender-3.4.1", "cpu-x86_64-avx2", 485)
    in_flight = [0]
    capacity = await probe_capacity(
        tmp_path, "blender-3.4.1", "cpu-x86_64-avx2", 7, lambda: 1 - in_flight[0]
    )
    assert capacity.gpus == ()  # no NVIDIA driver on CI machines: a clean CPU-only state
    hub = MemoryHub()
    key = NodeKey.generate()
    async with hub.open(key.node_id.text) as net, running_node(make_config(tmp_path), net, key) as node:
        assert node.make_advert().renderer_builds == ()  # before the roles say anything
        node.set_capacity(capacity)
        advert = node.make_advert()
        assert advert.renderer_builds == ("blender-3.4.1",)
        assert (advert.score_ru_per_hour, advert.price_wei_per_ru, advert.free_slots) == (485, 7, 1)
        in_flight[0] = 1
        assert node.make_advert().free_slots == 0


async def test_restart_restores_persisted_adverts_and_skips_bad_ones(tmp_path: Path) -> None:
    from node.store import open_store
    from tests.node.node_helpers import signed_advert, wall_ms

    good, forged, banned = NodeKey.generate(), NodeKey.generate(), NodeKey.generate()
    now = wall_ms()
    async with open_store(tmp_path / "node.sqlite3") as store:
        await store.save_advert(good.node_id.text, signed_advert(good, now), [], now)
        # An advert stored under another peer's id is not that peer's.
        await store.save_advert(forged.node_id.text, signed_advert(good, now), [], now)
        await store.save_advert(banned.node_id.text, signed_advert(banned, now), [], now)
        await store.ban_peer(banned.node_id.text, now + 3_600_000)
    key = NodeKey.generate()
    hub = MemoryHub()
    config = make_config(tmp_path)
    async with hub.open(key.node_id.text) as net, running_node(config, net, key) as node:
        assert set(node.capacity) == {good.node_id.text}
        seen = node.capacity[good.node_id.text]
        assert seen.received_ms == now and seen.advert.payment.node == good.node_id.raw
