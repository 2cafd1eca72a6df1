"""Shared helpers for node tests: keys, signed adverts, libp2p test networks."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager

from node.net.libp2p_net import Libp2pNetwork, Libp2pSettings, open_libp2p_network
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
