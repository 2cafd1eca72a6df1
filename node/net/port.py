"""The ``Network`` port: what the node needs from a peer-to-peer network.

Peers are named by their peer id text ("12D3KooW..."), which is also the
``str()`` of the sender's ``NodeId`` in every signed envelope, so the network
layer and the protocol layer agree on who is who without a lookup.

Gossip handlers are synchronous and return a ``Verdict`` (gossipsub's
validation result): ACCEPT delivers and forwards; IGNORE drops without
blame (stale history, a message over a rate limit); REJECT drops and blames
the peer that *forwarded* it — the only peer we know sent us the bytes, since
an origin id costs an attacker nothing. The libp2p implementation runs
handlers as gossipsub topic validators, so a message the node refuses is not
forwarded to the rest of the mesh. A handler that needs to do async work
hands the message on through a bounded channel. ``True``/``False`` are still
understood as ACCEPT/REJECT.

Request/response is built on streams, the same way for every implementation,
in :mod:`node.net.reqresp`, so framing and size limits are enforced (and
abuse scored) by our code rather than differently by each transport.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Awaitable, Callable
from typing import Protocol

logger = logging.getLogger(__name__)


class Verdict(enum.Enum):
    ACCEPT = "accept"
    IGNORE = "ignore"
    REJECT = "reject"


# (topic, origin peer, data, forwarding peer) -> verdict
GossipHandler = Callable[[str, str, bytes, str], "Verdict | bool"]


def accepted(verdict: Verdict | bool) -> bool:
    return verdict is Verdict.ACCEPT or verdict is True


class PeerWatchers:
    """The callbacks of ``Network.watch_peers``, for a network to tell."""

    def __init__(self) -> None:
        self._callbacks: list[Callable[[], None]] = []

    def add(self, callback: Callable[[], None]) -> None:
        self._callbacks.append(callback)

    def tell(self) -> None:
        for callback in self._callbacks:
            try:
                callback()
            except Exception:  # one watcher's bug must not stop the others, nor the caller
                logger.exception("peer watcher failed")


class NetworkError(Exception):
    """A send, dial or request failed (unreachable peer, timeout, reset)."""


class ByteStream(Protocol):
    """A reliable byte stream to one peer (the subset of ``trio.abc.Stream`` we use)."""

    async def send_all(self, data: bytes) -> None: ...

    async def receive_some(self, max_bytes: int | None = None) -> bytes:
        """Return some bytes, or ``b""`` once the peer has closed its side."""
        ...

    async def aclose(self) -> None: ...


StreamHandler = Callable[[str, ByteStream], Awaitable[None]]  # (peer, stream)


class Network(Protocol):
    @property
    def local_peer(self) -> str: ...

    def listen_addrs(self) -> list[str]:
        """Full multiaddrs (with ``/p2p/<id>``) other nodes can dial."""
        ...

    def connected_peers(self) -> list[str]: ...

    def watch_peers(self, callback: Callable[[], None]) -> None:
        """Call ``callback()`` after each connection is made or ends (either side's
        doing; on libp2p a banned peer's, refused as soon as made, too):
        ``connected_peers`` may have changed (a second connection to a peer changes
        nothing there)."""
        ...

    async def connect(self, addr: str) -> str:
        """Dial a full multiaddr; return the peer id. Raises ``NetworkError``."""
        ...

    async def disconnect(self, peer: str) -> None: ...

    def block(self, peer: str) -> None:
        """Refuse this peer's gossip and connections until unblocked (a ban)."""
        ...

    def unblock(self, peer: str) -> None:
        """Take this peer's gossip and connections again (its ban ended)."""
        ...

    async def subscribe(self, topic: str, handler: GossipHandler) -> None: ...

    async def publish(self, topic: str, data: bytes) -> None: ...

    def set_stream_handler(self, protocol_id: str, handler: StreamHandler) -> None: ...

    async def open_stream(self, peer: str, protocol_id: str) -> ByteStream: ...
