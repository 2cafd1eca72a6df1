"""An explorer on a trio thread, fed through an in-memory network, for browser tests.

Browser tests drive Playwright's synchronous API from the test thread, so the
explorer (trio) runs in its own thread; the test publishes gossip into it
with ``publish`` (``trio.from_thread``), as a peer on the same memory hub.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import trio

from explorer.queries import ReadSettings
from explorer.service import Explorer, ExplorerConfig, run_explorer
from explorer.web.reader import WebSettings
from node.net.memory import MemoryHub, MemoryNetwork
from protocol import NodeKey
from protocol.topics import CAPACITY_TOPIC


@dataclass
class LiveServer:
    url: str
    explorer: Explorer
    token: trio.lowlevel.TrioToken
    publishers: dict[str, MemoryNetwork]

    def publish(self, key: NodeKey, topic: str, data: bytes) -> int:
        """Gossip ``data`` as ``key``'s node; return once the explorer indexed it."""
        net = self.publishers[key.node_id.text]

        async def go() -> int:
            before = self.explorer.gossip.indexed
            await net.publish(topic, data)
            with trio.fail_after(10):
                await self.explorer.gossip.wait_indexed(before + 1)
            return self.explorer.gossip.indexed

        return trio.from_thread.run(go, trio_token=self.token)


@contextmanager
def live_server(tmp: Path, keys: list[NodeKey]) -> Iterator[LiveServer]:
    ready: queue.Queue[LiveServer | BaseException] = queue.Queue()
    done = threading.Event()
    config = ExplorerConfig(
        db_url=str(tmp / "browser.db"),
        port=0,
        stats_interval_s=0.5,
        web=WebSettings(read=ReadSettings(), live_poll_ms=300),
    )

    async def main() -> None:
        hub, stop = MemoryHub(), trio.Event()
        async with hub.open(NodeKey.generate().node_id.text) as net:
            publishers: dict[str, MemoryNetwork] = {}
            async with trio.open_nursery() as nursery:
                for key in keys:
                    pub = await nursery.start(_peer, hub, key.node_id.text)
                    await pub.connect(net.listen_addrs()[0])
                    publishers[key.node_id.text] = pub
                explorer = await nursery.start(
                    lambda task_status: run_explorer(
                        config, stop, network=net, task_status=task_status
                    )
                )
                token = trio.lowlevel.current_trio_token()
                ready.put(LiveServer(explorer.url, explorer, token, publishers))
                await trio.to_thread.run_sync(done.wait)
                stop.set()
                await trio.lowlevel.checkpoint()
                nursery.cancel_scope.cancel()

    def thread() -> None:
        try:
            trio.run(main)
        except BaseException as exc:  # surfaced to the test thread below
            ready.put(exc)

    worker = threading.Thread(target=thread, daemon=True)
    worker.start()
    started = ready.get(timeout=30)
    if isinstance(started, BaseException):
        raise started
    try:
        yield started
    finally:
        done.set()
        worker.join(timeout=10)


async def _peer(hub: MemoryHub, peer: str, *, task_status: trio.TaskStatus[MemoryNetwork]) -> None:
    async with hub.open(peer) as net:
        await net.subscribe(CAPACITY_TOPIC, lambda *_: True)
        task_status.started(net)
        await trio.sleep_forever()
