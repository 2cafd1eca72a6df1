"""Discovery: dial bootstrap addresses and known peers, redial with backoff.

Candidates come from the config's bootstrap list, from peers persisted in the
store (so a restarted node finds its network again without bootstrap), and
from the addresses peers put in their signed CapacityAdverts (so nodes that
only know a bootstrap node soon connect to each other directly). mDNS, when
enabled, is py-libp2p's own and feeds its peerstore.

A failed dial doubles the wait before the next try, up to a maximum; a
connected peer is only re-checked, never redialled.

Dial policy (issue 14: an advert's addresses are a stranger's words, and
dialling them all let an attacker make every node dial whatever it chose):

* an advert contributes only addresses of its own signer (``.../p2p/<origin>``),
  at most ``max_addrs_per_peer``, and only plausible ones: a known transport
  (ip4/ip6/dns with tcp or udp, or the in-process ``/memory`` test network),
  a port in 1..65535, no unspecified, multicast or broadcast address;
* the table holds at most ``max_candidates`` peers; an advert candidate that
  failed ``max_advert_failures`` dials in a row is forgotten, and a new one
  replaces the worst advert candidate or is dropped — bootstrap peers stay;
* with ``prefer_quic`` a peer's QUIC addresses are tried before its others,
  so a failed QUIC dial falls back to TCP;
* dialling stops once ``max_peers`` connections are open, at most
  ``max_in_flight`` dials run at once, and all dials together spend a token
  bucket (``dial_rate_per_s``, ``dial_burst``): whatever the adverts say, a node
  makes about one new dial a second, and none when it has enough peers.
"""

from __future__ import annotations

import ipaddress
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
_IP = ("ip4", "ip6")
_NAMES = ("dns", "dns4", "dns6")
_PORTS = ("tcp", "udp")


def redial_delay_s(failures: int, max_s: float, base_s: float = 1.0) -> float:
    """Exponential backoff: 1, 2, 4 ... seconds, capped at ``max_s``."""
    return float(min(max_s, base_s * 2 ** max(0, failures - 1)))


def plausible_addr(addr: str) -> bool:
    """Whether a full multiaddr names something a peer could listen on (see module doc)."""
    parts = addr.split("/")
    if len(parts) < 4 or parts[0] != "" or "/p2p/" not in addr:
        return False
    if parts[1] == "memory":
        return True
    if parts[1] not in _IP + _NAMES or len(parts) < 6 or parts[3] not in _PORTS:
        return False
    if not parts[4].isdigit() or not 0 < int(parts[4]) < 65536:
        return False
    if parts[1] in _NAMES:
        return 0 < len(parts[2]) <= 253
    try:
        ip = ipaddress.ip_address(parts[2])
    except ValueError:
        return False
    if ip.version != (4 if parts[1] == "ip4" else 6):
        return False
    broadcast = ip.version == 4 and ip == ipaddress.IPv4Address("255.255.255.255")
    return not (ip.is_unspecified or ip.is_multicast or broadcast)


def _answered_first(row: dict[str, object]) -> tuple[bool, int]:
    answered = row.get("last_dial_ms") is not None and row.get("dial_failures") == 0
    last_seen_ms = row.get("last_seen_ms")
    return (not answered, -(last_seen_ms if isinstance(last_seen_ms, int) else 0))


@dataclass(frozen=True)
class DialPolicy:
    max_candidates: int = 256
    max_addrs_per_peer: int = 4
    max_advert_failures: int = 3
    max_in_flight: int = 4
    dial_rate_per_s: float = 1.0
    dial_burst: float = 8.0
    prefer_quic: bool = False  # dial a peer's QUIC addresses first, then the others (TCP)


@dataclass
class _Candidate:
    addrs: list[str]
    pinned: bool = False  # bootstrap: never forgotten
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
        policy: DialPolicy | None = None,
    ) -> None:
        self._network = network
        self._store = store
        self._max_backoff_s = max_backoff_s
        self._is_banned = is_banned
        self._wall_ms = wall_ms
        self._max_peers = max_peers
        self.policy = policy or DialPolicy()
        self._candidates: dict[str, _Candidate] = {}
        self._wake = trio.Event()
        self._in_flight = 0
        self._tokens = self.policy.dial_burst
        self._tokens_at_s = trio.current_time()
        self.dials = 0  # attempts made, for tests and metrics

    def candidates(self) -> dict[str, list[str]]:
        return {peer: list(c.addrs) for peer, c in self._candidates.items()}

    def add_candidate(self, addrs: list[str] | tuple[str, ...], *, pinned: bool = True) -> None:
        """Learn full multiaddrs (``.../p2p/<peer>``); wakes the dial loop.

        ``pinned`` candidates (bootstrap, the operator's word) are kept however
        often they fail; others (from adverts or the store) are bounded.
        """
        for addr in addrs:
            peer = addr.rsplit("/p2p/", 1)[-1]
            if "/p2p/" not in addr or peer == self._network.local_peer:
                continue
            candidate = self._candidates.get(peer)
            if candidate is None:
                if not pinned and not plausible_addr(addr):
                    continue
                if len(self._candidates) >= self.policy.max_candidates and not self._make_room():
                    continue
                candidate = self._candidates[peer] = _Candidate(addrs=[], pinned=pinned)
            candidate.pinned |= pinned
            limit = self.policy.max_addrs_per_peer
            if addr not in candidate.addrs and (pinned or len(candidate.addrs) < limit):
                if pinned or plausible_addr(addr):
                    first = self.policy.prefer_quic and "/quic-v1/" in addr
                    candidate.addrs.insert(0, addr) if first else candidate.addrs.append(addr)
                    self._wake.set()

    def add_advertised(self, origin: str, addrs: tuple[str, ...]) -> None:
        """An advert's addresses: only the signer's own, plausible ones, a few."""
        own = [a for a in addrs if a.endswith("/p2p/" + origin) and plausible_addr(a)]
        self.add_candidate(own[: self.policy.max_addrs_per_peer], pinned=False)

    def _make_room(self) -> bool:
        connected = set(self._network.connected_peers())
        evictable = [
            (c.failures, -c.next_due_s, peer)
            for peer, c in self._candidates.items()
            if not c.pinned and not c.dialling and peer not in connected
        ]
        if not evictable:
            return False
        del self._candidates[max(evictable)[2]]
        return True

    async def load_known_peers(self) -> None:
        now_ms = self._wall_ms()
        rows = await self._store.list_peers()
        # Peers that answered a dial before come first; the cap keeps the rest.
        rows.sort(key=_answered_first)
        for peer in rows[: self.policy.max_candidates]:
            banned_until_ms = peer["banned_until_ms"]
            assert isinstance(banned_until_ms, int)
            if banned_until_ms <= now_ms:
                addrs = peer["addrs"]
                assert isinstance(addrs, list)
                self.add_advertised(
                    str(peer["peer_id"]), tuple(f"{a}/p2p/{peer['peer_id']}" for a in addrs)
                )

    async def run(self, *, task_status: TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        await self.load_known_peers()
        task_status.started()
        async with trio.open_nursery() as nursery:
            while True:
                self._wake = trio.Event()
                next_due_s = self._start_due_dials(nursery)
                with trio.move_on_at(next_due_s):
                    await self._wake.wait()

    def _take_token(self, now_s: float) -> bool:
        refill = (now_s - self._tokens_at_s) * self.policy.dial_rate_per_s
        self._tokens = min(self.policy.dial_burst, self._tokens + max(0.0, refill))
        self._tokens_at_s = now_s
        if self._tokens < 1.0:
            return False
        self._tokens -= 1.0
        return True

    def _start_due_dials(self, nursery: trio.Nursery) -> float:
        now_s = trio.current_time()
        connected = set(self._network.connected_peers())
        next_due_s = now_s + 30.0  # re-check connections now and then
        room = self._max_peers - len(connected) - self._in_flight
        for peer, candidate in list(self._candidates.items()):
            if peer in connected or candidate.dialling or self._is_banned(peer):
                continue
            if candidate.next_due_s > now_s:
                next_due_s = min(next_due_s, max(candidate.next_due_s, now_s + 0.1))
                continue
            if room <= 0 or self._in_flight >= self.policy.max_in_flight:
                continue  # woken when a dial ends
            if not self._take_token(now_s):
                wait_s = (1.0 - self._tokens) / self.policy.dial_rate_per_s
                next_due_s = min(next_due_s, now_s + max(wait_s, 0.01))
                break
            candidate.dialling = True
            self._in_flight += 1
            room -= 1
            nursery.start_soon(self._dial, peer, candidate)
        return next_due_s

    async def _dial(self, peer: str, candidate: _Candidate) -> None:
        ok = False
        self.dials += 1
        try:
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
        finally:
            self._in_flight -= 1
            candidate.dialling = False
            self._wake.set()
        candidate.failures = 0 if ok else candidate.failures + 1
        delay_s = 30.0 if ok else redial_delay_s(candidate.failures, self._max_backoff_s)
        candidate.next_due_s = trio.current_time() + delay_s
        if not candidate.pinned and candidate.failures >= self.policy.max_advert_failures:
            self._candidates.pop(peer, None)
        now_ms = self._wall_ms()
        if ok:  # a stranger's address that never answered is not worth a row
            listen = [a.rsplit("/p2p/", 1)[0] for a in candidate.addrs]
            await self._store.upsert_peer(peer, listen, now_ms)
        await self._store.record_dial(peer, ok, now_ms)
