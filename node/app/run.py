"""Compose and run one node until told to stop (``pictor node run``).

Order of start: keys (refusing unsafe files), store (migrated), libp2p host,
``Node`` services, then the API — so the API never answers for a half-started
node. Stop is the reverse: the API stops accepting, the node drains its
persister with a deadline, the host closes, the store checkpoints and closes.
A watchdog bounds the whole shutdown so a stuck peer cannot keep the process
alive after SIGTERM.
"""

from __future__ import annotations

import dataclasses
import logging
import secrets
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import trio

if TYPE_CHECKING:
    # py-libp2p pulls in trio-typing, whose trio-stubs shadow trio's own types
    # and lack trio.TaskStatus; its TaskStatus is the same protocol.
    from trio_typing import TaskStatus

from node.api.app import create_app
from node.api.jobs_routes import add_job_routes
from node.api.server import serve_api
from node.api.views import NodeApiView
from node.config import NodeConfig
from node.keyfile import read_key_file, read_payment_key_file, read_secret_file
from node.log import log_event
from node.net.dht import network_key
from node.net.libp2p_net import Libp2pNetwork, Libp2pSettings, open_libp2p_network
from node.net.reachability import DialBackAutoNAT, keep_reachable
from node.net.relay import RelayHopLimits
from node.net.rendezvous import run_rendezvous
from node.roles.service import run_roles
from node.runtime import Node
from node.store import open_store
from node.ui.routes import add_ui_routes

logger = logging.getLogger(__name__)
SHUTDOWN_MARGIN_S = 3.0


def wall_ms() -> int:
    # Epoch time for envelope timestamps; the node's logic reads trio.current_time().
    return time.time_ns() // 1_000_000


def random_nonce() -> int:
    return secrets.randbits(64)


@dataclass(frozen=True)
class RunningNode:
    node: Node
    api_url: str


def libp2p_settings(config: NodeConfig, relay_hop: RelayHopLimits | None = None) -> Libp2pSettings:
    return Libp2pSettings(
        relay_hop=relay_hop,
        listen_addrs=config.listen_addrs,
        mdns=config.mdns,
        gossip_rate_per_s=config.gossip_rate_per_s,
        gossip_queue_len=config.gossip_queue_len,
        hole_punch=config.hole_punch,
        dht=config.dht_mode,
        quic=config.quic,
    )


async def run_node(
    config: NodeConfig,
    stop: trio.Event,
    *,
    relay_hop: RelayHopLimits | None = None,
    task_status: TaskStatus[RunningNode] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Run until ``stop`` is set, then shut down gracefully."""
    key = read_key_file(config.key_path)
    payment_key = read_payment_key_file(config.payment_key_path)
    token = read_secret_file(config.api_token_path)
    async with open_store(config.db_path) as store:
        await store.save_config(
            {f.name: str(getattr(config, f.name)) for f in dataclasses.fields(config)}
        )
        async with open_libp2p_network(key, libp2p_settings(config, relay_hop)) as network:
            if relay_hop is not None:  # a relay also tells nodes whether they need one
                DialBackAutoNAT(network.host)
            node = Node(
                config, key, payment_key, network, store, wall_ms=wall_ms, nonce=random_nonce
            )
            async with trio.open_nursery() as nursery:
                await nursery.start(node.run)
                reach = trio.CancelScope()
                nursery.start_soon(_keep_reachable, reach, network, config, node)
                meet = trio.CancelScope()
                nursery.start_soon(_rendezvous, meet, network, config, node)
                roles = await nursery.start(run_roles, node, config, payment_key)
                api_stop = trio.Event()
                app = create_app(NodeApiView(node), token)
                add_job_routes(app, roles, token)
                add_ui_routes(app, roles, token)
                url = await nursery.start(
                    serve_api, app, config.api_port, api_stop, config.api_addr_path
                )
                log_event(logger, logging.INFO, "api listening", url=url)
                task_status.started(RunningNode(node, url))
                await stop.wait()
                log_event(logger, logging.INFO, "stopping", grace_s=config.shutdown_grace_s)
                api_stop.set()
                roles.stop()
                reach.cancel()
                meet.cancel()
                node.stop()
    config.api_addr_path.unlink(missing_ok=True)


async def _keep_reachable(
    scope: trio.CancelScope, network: Libp2pNetwork, config: NodeConfig, node: Node
) -> None:
    if network.relaying is None:
        return
    with scope:
        await keep_reachable(network, network.relaying, config.relays or config.bootstrap,
                             config.reachability, node.addresses_changed)  # fmt: skip


async def _rendezvous(
    scope: trio.CancelScope, network: Libp2pNetwork, config: NodeConfig, node: Node
) -> None:
    if network.dht is None:
        return
    with scope:
        await run_rendezvous(network.dht, network.local_peer, network.listen_addrs,
                             network.connected_peers,
                             lambda addrs: node.discovery.add_candidate(addrs, pinned=False),
                             network_key(config.chain_id))  # fmt: skip


async def run_until_signalled(
    config: NodeConfig,
    on_started: Callable[[RunningNode], None] | None = None,
    relay_hop: RelayHopLimits | None = None,
) -> None:
    """``run_node`` with SIGINT/SIGTERM as the stop trigger and a bounded shutdown."""
    stop = trio.Event()
    async with trio.open_nursery() as nursery:

        async def watch_signals() -> None:
            with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
                async for signum in signals:
                    log_event(logger, logging.INFO, "signal", signal=signal.Signals(signum).name)
                    stop.set()
                    break
            # Second line of defence: never outlive the grace period by much.
            await trio.sleep(config.shutdown_grace_s + SHUTDOWN_MARGIN_S)
            log_event(logger, logging.ERROR, "shutdown deadline passed; cancelling")
            nursery.cancel_scope.cancel()

        async def run_then_finish(*, task_status: TaskStatus[RunningNode]) -> None:
            await run_node(config, stop, relay_hop=relay_hop, task_status=task_status)
            nursery.cancel_scope.cancel()  # drained: stop the watchdog too

        nursery.start_soon(watch_signals)
        running = await nursery.start(run_then_finish)
        if on_started is not None:
            on_started(running)
