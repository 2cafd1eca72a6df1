"""Reachability: is this node dialable from the internet, and if not, hold a relay slot.

Theory of operation. ``keep_reachable`` runs as one of the node's services:

* ``reachability = "public"``: nothing to do; the node lists its own addresses.
* ``"private"`` (the operator knows the node is behind NAT): reserve a slot at
  each configured relay, list only the ``/p2p-circuit`` addresses, and
  re-reserve whenever a relay connection is lost.
* ``"auto"``: ask the relays with AutoNAT v1 to dial us back; a relay that
  reached us says public, one that could not says private (then as above); no
  answer leaves the node as it is and asks again later.

AutoNAT in py-libp2p 0.8.1, as measured behind the nft NAT of tests/netns: its
server "dials back" with ``host.connect``, which returns at once when a
connection to the peer exists — and the request itself arrives on one — so
it answers OK to every peer, NAT or not (docs/NODE.md has the repro).
``DialBackAutoNAT`` (what the coordinator serves) dials a fresh connection
instead. Its client sends our listen addresses, which behind NAT are private
ones that the server (rightly) refuses to dial; ``ask_reachability`` sends our
listen ports at the address the server observed us at instead, as go-libp2p
does, so the answer is about the address others would dial.
"""

from __future__ import annotations

import contextlib
import logging
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

import multiaddr
import trio
from libp2p.host.autonat import AutoNATService
from libp2p.host.autonat.pb.autonat_pb2 import Message
from libp2p.peer.id import ID
from libp2p.peer.peerinfo import info_from_p2p_addr
from libp2p.utils.varint import encode_varint_prefixed

from node.log import log_event
from node.net.port import NetworkError
from node.net.relay import Relaying

logger = logging.getLogger(__name__)
MODES = ("auto", "public", "private")
DIAL_BACK_TIMEOUT_S = 5.0
MAX_DIAL_BACK_ADDRS = 4
REQUEST_DEADLINE_S = 10.0 + MAX_DIAL_BACK_ADDRS * DIAL_BACK_TIMEOUT_S


class DialBackAutoNAT(AutoNATService):
    """An AutoNAT v1 server whose dial-back is a new connection, not the one asking.

    Bounded, since any stranger may ask: at most ``max_active`` requests are
    served at once and ``per_ip`` from one IP address (others are answered
    E_DIAL_REFUSED at once), a request is served for at most
    ``REQUEST_DEADLINE_S`` (py-libp2p reads the request without a timeout), and
    at most ``MAX_DIAL_BACK_ADDRS`` of its addresses are dialled (py-libp2p
    dials every address at the asker's IP, 5 s each).
    """

    def __init__(self, host: Any, max_active: int = 8, per_ip: int = 2) -> None:
        super().__init__(host)
        self.max_active = max_active
        self.per_ip = per_ip
        self._active: Counter[str | None] = Counter()
        self.refused = 0

    async def handle_stream(self, stream: Any) -> None:
        ip = self._observed_ip(stream)
        busy = sum(self._active.values()) >= self.max_active or self._active[ip] >= self.per_ip
        if busy:
            self.refused += 1
            refusal = Message(type=Message.DIAL_RESPONSE)
            refusal.dialResponse.status = Message.E_DIAL_REFUSED
            refusal.dialResponse.statusText = "busy"
            with contextlib.suppress(Exception):
                await stream.write(encode_varint_prefixed(refusal.SerializeToString()))
            with contextlib.suppress(Exception):
                await stream.close()
            return
        self._active[ip] += 1
        try:
            with trio.move_on_after(REQUEST_DEADLINE_S) as scope:
                await super().handle_stream(stream)
            if scope.cancelled_caught:
                with contextlib.suppress(Exception):
                    await stream.reset()
        finally:
            self._active[ip] -= 1
            if self._active[ip] <= 0:
                del self._active[ip]

    async def _try_dial(self, peer_id: ID, addrs: list[bytes]) -> bytes | None:
        swarm: Any = self.host.get_network()
        for raw in addrs[:MAX_DIAL_BACK_ADDRS]:
            try:
                with trio.fail_after(DIAL_BACK_TIMEOUT_S):
                    conn = await swarm.dial_addr(multiaddr.Multiaddr(raw), peer_id)
            except Exception:  # refused, reset, timed out: not reachable there
                continue
            with trio.move_on_after(1.0):
                await conn.close()
            return bytes(raw)
        return None


def _observed_ips(host: Any) -> list[str]:
    manager = getattr(host, "_observed_addr_manager", None)
    if manager is None:
        return []
    ips = []
    for addr in manager.addrs(min_observers=1):
        try:
            ips.append(str(addr.value_for_protocol("ip4")))
        except Exception:
            continue
    return ips


def _tcp_ports(host: Any) -> list[int]:
    ports = []
    for addr in host.get_addrs():
        try:
            ports.append(int(addr.value_for_protocol("tcp")))
        except Exception:
            continue
    return ports


async def ask_reachability(host: Any, server: str, timeout_s: float = 15.0) -> str | None:
    """AutoNAT v1 against ``server`` (peer id): "public", "private", or None for no answer."""
    ips = _observed_ips(host)
    ports = _tcp_ports(host)
    addrs = [
        multiaddr.Multiaddr(f"/ip4/{ip}/tcp/{port}").to_bytes() for ip in ips for port in ports
    ]
    client = AutoNATService(host, serve=False)
    try:
        status, _ = await client.query_server(
            ID.from_base58(server), addrs or None, timeout=timeout_s
        )
    except Exception as exc:  # no AutoNAT there, or it went away
        log_event(logger, logging.DEBUG, "autonat: no answer", server=server, error=repr(exc))
        return None
    if status == Message.OK:
        return "public"
    if status in (Message.E_DIAL_ERROR, Message.E_DIAL_REFUSED):
        return "private"
    return None


def _peer_of(addr: str) -> str | None:
    try:
        return str(info_from_p2p_addr(multiaddr.Multiaddr(addr)).peer_id.to_base58())
    except Exception:  # multiaddr raises a zoo of types for bad text
        return None


async def _ask_relays(network: Any, relays: dict[str, str]) -> str | None:
    """The first answer a relay gives over AutoNAT, or None when none answers."""
    for relay, peer in relays.items():
        try:
            await network.connect(relay)
        except NetworkError:
            continue
        answer = await ask_reachability(network.host, peer)
        if answer is not None:
            log_event(logger, logging.INFO, "reachability", answer=answer, by=relay)
            return answer
    return None


async def keep_reachable(
    network: Any,
    relaying: Relaying,
    relays: Sequence[str],
    mode: str,
    on_change: Callable[[], None],
    *,
    recheck_s: float = 10.0,
    max_backoff_s: float = 300.0,
) -> None:
    """Hold relay reservations while the node is private (see module docstring).

    Every ``recheck_s`` a relay whose connection is gone loses its address and
    is asked again; one that refuses is retried after 10, 20, 40 ... s (at most
    ``max_backoff_s``), so a bootstrap peer that is no relay costs little.
    """
    valid = {relay: peer for relay in relays if (peer := _peer_of(relay)) is not None}
    for bad in set(relays) - set(valid):
        log_event(logger, logging.WARNING, "not a relay multiaddr with /p2p/", relay=bad)
    if mode == "public" or not valid:
        return
    while mode == "auto":
        answer = await _ask_relays(network, valid)
        if answer == "private":
            break
        await trio.sleep(recheck_s * 60)  # public, or nobody to ask: ask again much later
    network.private = True
    on_change()
    failures: dict[str, int] = {}
    due_s: dict[str, float] = {}
    while True:
        connected = set(network.connected_peers())
        changed = False
        for relay, peer in valid.items():
            if peer in relaying.relays():
                if peer in connected:
                    continue
                relaying.forget(peer)  # its relay address leads nowhere now
                changed = True
            if due_s.get(relay, 0.0) > trio.current_time():
                continue
            try:
                circuit = await relaying.reserve(relay)
            except NetworkError as exc:
                failures[relay] = failures.get(relay, 0) + 1
                wait_s = min(max_backoff_s, recheck_s * 2 ** (failures[relay] - 1))
                due_s[relay] = trio.current_time() + wait_s
                log_event(logger, logging.WARNING, "relay reservation failed", relay=relay,
                          error=str(exc), retry_s=wait_s)  # fmt: skip
                continue
            failures.pop(relay, None)
            log_event(logger, logging.INFO, "relay reserved", circuit=circuit)
            changed = True
        if changed:
            on_change()
        await trio.sleep(recheck_s)
