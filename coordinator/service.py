"""The coordinator: a public node that relays for nodes behind NAT.

It is an ordinary Pictor node (gossip, discovery, local API, no roles) run with
three more services: circuit relay v2 *hop* — reservations and circuits bounded
by ``RelayHopLimits`` — an AutoNAT v1 server that dials back on a fresh
connection (``node.net.reachability.DialBackAutoNAT``), and the Kademlia DHT
in server mode (``node.net.dht``, bounded stores). Nodes that list it as a
bootstrap peer learn the network through its gossip and its DHT (rendezvous
provider records: they find each other without a list naming them), learn
from it whether they are reachable, and reserve a slot there when they are
not.

Optional by construction: nodes that reach each other directly, or through
another coordinator, never need this one; it relays Noise-encrypted bytes and
forwards signed gossip, so it can drop messages but not forge or alter them.
Against strangers: relay slots only in the asker's own name and at most
``RelayHopLimits.reservations_per_ip`` per IP address (``BoundedHop``); AutoNAT
requests bounded in number, per IP, in time and in dial-backs
(``DialBackAutoNAT``); DHT records and streams bounded (``node.net.dht_store``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import trio

from node.app.run import RunningNode, run_until_signalled
from node.config import NodeConfig, load_config
from node.net.relay import RelayHopLimits


def coordinator_config(
    data_dir: Path, listen_addrs: tuple[str, ...], environ: dict[str, str] | None = None
) -> NodeConfig:
    """The node config a coordinator runs with: no roles, public, no mDNS."""
    overrides: dict[str, object] = {"mdns": False, "reachability": "public", "dht": "server"}
    if listen_addrs:
        overrides["listen_addrs"] = list(listen_addrs)
    config = load_config(data_dir, environ=environ, overrides=overrides)
    return replace(config, roles=())


def run_coordinator(
    config: NodeConfig,
    limits: RelayHopLimits,
    on_started: Callable[[RunningNode], None] | None = None,
) -> None:
    """Run until SIGINT/SIGTERM (``pictor coordinator run``)."""
    trio.run(run_until_signalled, config, on_started, limits)
