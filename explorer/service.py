"""Compose and run the explorer: index, passive peer, chain follower, website.

Start order: the index (schema migrated) → the passive peer subscribed →
the chain follower opened on its persisted cursor → the stats sampler → the
website, which reports its URL only once hypercorn is listening. Stop is one
``trio.Event``: the web server drains, then the nursery cancels the rest;
the index closes shielded, so a commit in flight completes.

Everything non-deterministic is injected for tests: the network (memory or
libp2p), the Web3 (embedded chain) and the wall clock.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING, Any, cast

import trio
from hypercorn.config import Config
from hypercorn.trio import serve

if TYPE_CHECKING:
    from trio_typing import TaskStatus

from explorer import queries
from explorer.indexer.chain import ChainIndexer, ChainSettings
from explorer.indexer.db import IndexDb, open_index
from explorer.indexer.gossip import GossipIndexer, keep_dialled
from explorer.web.app import create_app
from explorer.web.reader import WebSettings
from node.log import log_event
from node.net.libp2p_net import Libp2pSettings, open_libp2p_network
from node.net.port import Network
from protocol import NodeKey

logger = logging.getLogger(__name__)
DRAIN_S = 3.0


def wall_ms() -> int:
    # Epoch time: envelope timestamps and "online" windows are wall-clock facts.
    return time.time_ns() // 1_000_000


@dataclass(frozen=True)
class ExplorerConfig:
    """Every option of ``pictor explorer serve``, defaults resolved."""

    db_url: str = "explorer.db"
    bootstrap: tuple[str, ...] = ()
    listen_addrs: tuple[str, ...] = ("/ip4/0.0.0.0/tcp/0",)
    chain_rpc: str = ""
    chain_id: int | None = None
    contract: str = ""
    start_block: int = 0
    confirmations: int = 2
    chain_poll_s: float = 2.0
    host: str = "127.0.0.1"
    port: int = 8080
    stats_interval_s: float = 60.0
    web: WebSettings = field(default_factory=WebSettings)

    def __post_init__(self) -> None:
        if self.chain_rpc and not self.contract:
            raise ValueError("--chain-rpc needs --contract (the escrow to follow)")
        if not 0 <= self.port <= 65535:
            raise ValueError(f"port {self.port} out of range")
        if self.stats_interval_s <= 0 or self.chain_poll_s <= 0:
            raise ValueError("intervals must be positive")


@dataclass
class Explorer:
    """Handles to the running parts (tests wait on them)."""

    db: IndexDb
    gossip: GossipIndexer
    chain: ChainIndexer | None
    url: str


async def sample_stats(
    db: IndexDb, settings: WebSettings, every_s: float, clock: Callable[[], int]
) -> None:
    """Record the overview every ``every_s`` so the charts have a history."""
    bucket_ms = max(1, int(every_s * 1000))
    while True:
        now_ms = clock()

        def record(tx: Any, now_ms: int = now_ms) -> None:
            queries.record_stats(tx, queries.overview(tx, now_ms, settings.read), bucket_ms)

        await db.write(record)
        await trio.sleep(every_s)


async def serve_web(
    app: Any,
    host: str,
    port: int,
    stop: trio.Event,
    *,
    task_status: TaskStatus[str] = trio.TASK_STATUS_IGNORED,
) -> None:
    config = Config()
    config.bind = [f"{host}:{port}"]
    config.accesslog = None
    config.errorlog = logging.getLogger("explorer.web")
    config.graceful_timeout = 2.0
    config.keep_alive_timeout = 30.0
    async with trio.open_nursery() as nursery:
        binds = await nursery.start(
            partial(serve, cast(Any, app), config, shutdown_trigger=stop.wait)
        )
        task_status.started(str(binds[0]))


@asynccontextmanager
async def _network(config: ExplorerConfig, given: Network | None) -> AsyncIterator[Network]:
    if given is not None:
        yield given
        return
    # A fresh identity per run: the explorer signs nothing, so its key is disposable.
    settings = Libp2pSettings(listen_addrs=config.listen_addrs)
    async with open_libp2p_network(NodeKey.generate(), settings) as network:
        yield network


def _connect_chain(config: ExplorerConfig) -> Any:
    from ledger.backends import connect

    return connect(config.chain_rpc, config.chain_id)


async def run_explorer(
    config: ExplorerConfig,
    stop: trio.Event,
    *,
    network: Network | None = None,
    w3: Any = None,
    clock: Callable[[], int] = wall_ms,
    task_status: TaskStatus[Explorer] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Run until ``stop`` is set. ``network``/``w3`` override the configured ones."""
    async with open_index(config.db_url) as db, _network(config, network) as net:
        gossip = GossipIndexer(net, db, wall_ms=clock)
        if w3 is None and config.chain_rpc:
            w3 = await trio.to_thread.run_sync(_connect_chain, config)
        chain = None
        if w3 is not None and config.contract:
            chain_settings = ChainSettings(
                config.contract, config.chain_poll_s, config.confirmations, config.start_block
            )
            chain = ChainIndexer(db, w3, chain_settings)
            await chain.open()
        async with trio.open_nursery() as nursery:
            await nursery.start(gossip.run)
            nursery.start_soon(keep_dialled, net, config.bootstrap)
            if chain is not None:
                nursery.start_soon(chain.run)
            nursery.start_soon(sample_stats, db, config.web, config.stats_interval_s, clock)
            app = create_app(db, config.web, clock)
            web_stop = trio.Event()
            async with trio.open_nursery() as web:
                url = await web.start(serve_web, app, config.host, config.port, web_stop)
                log_event(
                    logger,
                    logging.INFO,
                    "explorer listening",
                    url=url,
                    peer=net.local_peer,
                    addrs=net.listen_addrs(),
                )
                task_status.started(Explorer(db, gossip, chain, url))
                await stop.wait()
                web_stop.set()  # hypercorn drains open requests...
                web.cancel_scope.deadline = trio.current_time() + DRAIN_S  # ...for this long
            nursery.cancel_scope.cancel()
