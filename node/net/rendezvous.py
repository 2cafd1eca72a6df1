"""Rendezvous over the DHT: publish where we can be dialled, find the others.

``run_rendezvous`` runs as one of the node's services when the DHT is on
(see ``node.net.dht`` for why provider records). Each round it puts the DHT
servers it is connected to (a coordinator, public nodes) into the routing
table, publishes its dialable addresses under the network key and under its
own peer key when they changed or ``republish_s`` passed (records live
``DhtLimits.provider_ttl_s`` at a server), and hands the providers it finds
to ``add_candidates`` — ``Discovery.add_candidate`` with ``pinned=False``,
so the dial policy that bounds advert addresses bounds these too.

Rounds are ``fast_s`` apart until a publish has been taken and peers have
been found ``fast_rounds`` times, then ``slow_s``: a new node finds the
network within seconds, an old one costs a server one lookup a minute.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import trio

from node.log import log_event
from node.net.dht import BoundedDHT, peer_key

logger = logging.getLogger(__name__)


async def run_rendezvous(
    dht: BoundedDHT,
    local_peer: str,
    listen_addrs: Callable[[], list[str]],
    connected_peers: Callable[[], list[str]],
    add_candidates: Callable[[list[str]], None],
    key: bytes,
    *,
    fast_s: float = 5.0,
    slow_s: float = 60.0,
    fast_rounds: int = 6,
    republish_s: float = 600.0,
) -> None:
    published: list[str] = []
    publish_due_s = 0.0
    settled = 0
    while True:
        try:
            await dht.join(connected_peers())
            addrs = sorted(listen_addrs())
            now_s = trio.current_time()
            if addrs and (addrs != published or now_s >= publish_due_s):
                taken = await dht.provide_addrs(key, addrs)
                await dht.provide_addrs(peer_key(local_peer), addrs)
                if taken:
                    published, publish_due_s = addrs, now_s + republish_s
                    log_event(logger, logging.INFO, "dht: published", servers=taken, addrs=addrs)
            found = await dht.providers_of(key)
        except Exception as exc:  # a server's answer must never stop the node
            log_event(logger, logging.WARNING, "dht: rendezvous round failed", error=repr(exc))
            found = {}
        for addrs_of_peer in found.values():
            add_candidates(addrs_of_peer)
        if found and published:
            settled += 1
        await trio.sleep(fast_s if settled < fast_rounds else slow_s)
