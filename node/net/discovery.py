"""Discovery: dial bootstrap addresses and known peers, redial with backoff.

Candidates come from the config's bootstrap list, from peers persisted in the
store (so a restarted node finds its network again without bootstrap), and
from the addresses peers put in their signed CapacityAdverts (so nodes that
only know a bootstrap node soon connect to each other directly). mDNS, when
enabled, is py-libp2p's own and feeds its peerstore.

A failed dial doubles the wait before the next try, up to a maximum; a
connected peer is only re-checked, never redialled.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import trio

if TYPE_CHECKING:
    # py-libp2p pulls in trio-typing, whose trio-stubs shadow trio's own types
    # and lack trio.TaskStatus; its TaskStatus is the same protocol.
    from trio_typing import TaskStatus

from node.log import log_event
from node.net.port import Network, NetworkError
from node.store import Store

logger = logging.getLogger(__name__)


def redial_delay_s(failures: int, max_s: float, base_s: float = 1.0) -> float:
    """Exponential backoff: 1, 2, 4 ... seconds, capped at ``max_s``."""
    return float(min(max_s, base_s * 2 ** max(0, failures - 1)))


@dataclass
class _Candidate:
    addrs: list[str]
    failures: int = 0
    next_due_s: float = 0.0
    dialling: bool = False


class Discovery:
    def __init__(
        self,
        network: Network,
        store: Store,
        *,
        max_backoff_s: float,
        is_banned: Callable[[str], bool],
        wall_ms: Callable[[], int],
        max_peers: int = 50,
    ) -> None:
        self._network = network
        self._store = store
        self._max_backoff_s = max_backoff_s
        self._is_banned = is_banned
        self._wall_ms = wall_ms
        self._max_peers = max_peers
        self._candidates: dict[str, _Candidate] = {}
        self._wake = trio.Event()

    def add_candidate(self, addrs: list[str] | tuple[str, ...]) -> None:
        """Learn full multiaddrs (``.../p2p/<peer>``); wakes the dial loop."""
        for addr in addrs:
            peer = addr.rsplit("/p2p/", 1)[-1]
            if "/p2p/" not in addr or peer == self._network.local_peer:
                continue
            candidate = self._candidates.setdefault(peer, _Candidate(addrs=[]))
            if addr not in candidate.addrs:
                candidate.addrs.append(addr)
                self._wake.set()

    async def load_known_peers(self) -> None:
        now_ms = self._wall_ms()
        for peer in await self._store.list_peers():
            banned_until_ms = peer["banned_until_ms"]
            assert isinstance(banned_until_ms, int)
            if banned_until_ms <= now_ms:
                addrs = peer["addrs"]
                assert isinstance(addrs, list)
                self.add_candidate([f"{a}/p2p/{peer['peer_id']}" for a in addrs])

    async def run(self, *, task_status: TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        await self.load_known_peers()
        task_status.started()
        async with trio.open_nursery() as nursery:
            while True:
                self._wake = trio.Event()
                next_due_s = self._start_due_dials(nursery)
                with trio.move_on_at(next_due_s):
                    await self._wake.wait()

    def _start_due_dials(self, nursery: trio.Nursery) -> float:
        now_s = trio.current_time()
        connected = set(self._network.connected_peers())
        next_due_s = now_s + 30.0  # re-check connections now and then
        for peer, candidate in self._candidates.items():
            if peer in connected or candidate.dialling or self._is_banned(peer):
                continue
            if candidate.next_due_s <= now_s and len(connected) < self._max_peers:
                candidate.dialling = True
                nursery.start_soon(self._dial, peer, candidate)
            else:
                next_due_s = min(next_due_s, max(candidate.next_due_s, now_s + 0.1))
        return next_due_s

    async def _dial(self, peer: str, candidate: _Candidate) -> None:
        ok = False
        for addr in list(candidate.addrs):
            try:
                await self._network.connect(addr)
            except NetworkError as exc:
                log_event(
                    logger, logging.DEBUG, "dial failed", peer=peer, addr=addr, error=str(exc)
                )
                continue
            ok = True
            break
        candidate.failures = 0 if ok else candidate.failures + 1
        delay_s = 30.0 if ok else redial_delay_s(candidate.failures, self._max_backoff_s)
        candidate.next_due_s = trio.current_time() + delay_s
        candidate.dialling = False
        now_ms = self._wall_ms()
        listen = [a.rsplit("/p2p/", 1)[0] for a in candidate.addrs]
        await self._store.upsert_peer(peer, listen if ok else [], now_ms)
        await self._store.record_dial(peer, ok, now_ms)
        self._wake.set()
