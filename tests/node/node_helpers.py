"""Shared helpers for node tests: keys, signed adverts, libp2p test networks."""

from __future__ import annotations

import itertools
import time
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import Any

import trio

from node.config import NodeConfig
from node.net.libp2p_net import Libp2pNetwork, Libp2pSettings, open_libp2p_network
from node.net.port import Network
from node.runtime import Node
from node.store import open_store
from protocol import NodeKey, PaymentBinding, encode_envelope
from protocol.messages import CapacityAdvert, Role

_nonces = itertools.count(1)


def make_advert(key: NodeKey, addrs: tuple[str, ...] = ()) -> CapacityAdvert:
    return CapacityAdvert(
        roles=(Role.WORKER,),
        gpus=(),
        renderer_builds=(),
        score_ru_per_hour=0,
        price_wei_per_ru=0,
        stake_wei=0,
        payment=PaymentBinding.create(key, b"\x11" * 32),
        addrs=addrs,
        free_slots=1,
    )


def signed_advert(key: NodeKey, now_ms: int, nonce: int | None = None) -> bytes:
    nonce = next(_nonces) if nonce is None else nonce
    return encode_envelope(key, make_advert(key), nonce=nonce, now_ms=now_ms)


@asynccontextmanager
async def libp2p_nodes(
    count: int, settings: Libp2pSettings | None = None
) -> AsyncIterator[list[tuple[NodeKey, Libp2pNetwork]]]:
    async with AsyncExitStack() as stack:
        nodes = []
        for _ in range(count):
            key = NodeKey.generate()
            net = await stack.enter_async_context(
                open_libp2p_network(key, settings or Libp2pSettings())
            )
            nodes.append((key, net))
        yield nodes


def wall_ms() -> int:
    return time.time_ns() // 1_000_000


def make_config(data_dir: Path, **overrides: Any) -> NodeConfig:
    values: dict[str, Any] = {
        "listen_addrs": ("/ip4/127.0.0.1/tcp/0",),
        "mdns": False,
        "api_port": 0,
        "advert_interval_s": 30.0,
        "shutdown_grace_s": 2.0,
    }
    values.update(overrides)
    return NodeConfig(data_dir=data_dir, **values)


@asynccontextmanager
async def running_node(config: NodeConfig, network: Network, key: NodeKey) -> AsyncIterator[Node]:
    """A ``Node`` over the given network, with its own store, run in a nursery."""
    async with open_store(config.db_path) as store, trio.open_nursery() as nursery:
        node = Node(
            config, key, b"\x22" * 32, network, store, wall_ms=wall_ms, nonce=lambda: next(_nonces)
        )
        await nursery.start(node.run)
        try:
            yield node
        finally:
            node.stop()
