"""What every role driver shares: the market clock, the outbox, peer ids.

Theory of operation. The market machines take ``now_ms`` on the wall clock
(lease deadlines travel between nodes), while the node reads time only through
``trio.current_time()``. ``MarketClock`` maps one to the other with an offset
fixed at start, so every machine of a node sees one consistent, monotonic
millisecond clock and timers can be armed with ``trio.sleep_until``.

``Outbox`` signs and sends: a ``Send`` goes over the market stream protocol in
its own task (a slow peer must not stall the machine that produced it), a
``Publish`` goes on gossip. A send that fails is retried a few times and then
dropped: the machines' leases and timeouts already cover a lost message.
"""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Awaitable, Callable
from enum import Enum

import trio

from node.log import log_event
from node.net.port import NetworkError
from node.net.reqresp import ReqRespLimits, request
from node.runtime import Node
from protocol import encode_envelope
from protocol.identity import NodeId
from protocol.messages import Message
from protocol.topics import MARKET_ACK, MARKET_PROTOCOL, MARKET_REFUSED

logger = logging.getLogger(__name__)
ACK = MARKET_ACK
REFUSED = MARKET_REFUSED
SEND_ATTEMPTS = 4
SEND_BACKOFF_S = 0.5


class Delivery(Enum):
    """How a send ended."""

    ACKED = "acknowledged"
    REFUSED = "refused"  # final: the peer does not take it
    LOST = "not delivered"  # no path, a timeout, or the peer was busy: may be tried again


class MarketClock:
    """Wall-clock milliseconds derived from ``trio.current_time()``."""

    def __init__(self, wall_ms: Callable[[], int] | None = None) -> None:
        wall = wall_ms() if wall_ms else time.time_ns() // 1_000_000
        self._offset_ms = wall - int(trio.current_time() * 1000)

    def now_ms(self) -> int:
        return self._offset_ms + int(trio.current_time() * 1000)

    def trio_time_of(self, wall_ms: int) -> float:
        """A ``trio.current_time()`` at which the market clock reads ``wall_ms``: half a
        millisecond in, since ``n / 1000 * 1000`` is below ``n`` for some ``n`` (1001,
        1003, ...) and a timer woken there read the clock one ms early, re-armed for
        the same instant and spun forever under trio's autojump clock."""
        return (wall_ms - self._offset_ms + 0.5) / 1000


STAKE_TTL_S = 60  # seconds: a confirmed stake or open-lane count (or a failed count read) stands this long


def peer_of(node_id: bytes) -> str:
    return NodeId(node_id).text


def raw_of(peer: str) -> bytes:
    return NodeId.from_text(peer).raw


class Outbox:
    """Signs messages with the node key and delivers them without blocking the caller."""

    def __init__(self, node: Node, clock: MarketClock, nursery: trio.Nursery) -> None:
        self._node = node
        self._clock = clock
        self._nursery = nursery
        self._limits = ReqRespLimits(
            max_request_bytes=node.limits.max_request_bytes,
            max_response_bytes=1024,
            timeout_s=node.limits.timeout_s,
        )

    def encode(self, message: Message) -> bytes:
        return encode_envelope(
            self._node.key, message, nonce=secrets.randbits(64), now_ms=self._clock.now_ms()
        )

    def send(self, to: bytes, message: Message) -> None:
        self._nursery.start_soon(self._deliver, peer_of(to), message)

    async def deliver(self, to: bytes, message: Message) -> bool:
        """Send and wait: True once ``to`` acknowledged it (False: refused or not delivered)."""
        return await self._deliver(peer_of(to), message) is Delivery.ACKED

    async def post(self, to: bytes, message: Message) -> Delivery:
        """Send and wait; how it ended (node.roles.voucher_post tries a lost one again)."""
        return await self._deliver(peer_of(to), message)

    def publish(self, topic: str, message: Message) -> None:
        self._nursery.start_soon(self._publish, topic, message)

    async def _deliver(self, peer: str, message: Message) -> Delivery:
        for attempt in range(SEND_ATTEMPTS):
            try:
                # A fresh envelope per attempt: the replay guard refuses a resent nonce.
                data = self.encode(message)
                reply = await request(self._node.network, peer, MARKET_PROTOCOL, data, self._limits)
                if reply == REFUSED:  # final: a resend would be refused (and scored) again
                    log_event(logger, logging.WARNING, "message refused", peer=peer,
                              type=message.TYPE)  # fmt: skip
                    return Delivery.REFUSED
                metrics = self._node.metrics
                metrics.messages_out.labels(message.TYPE).inc()
                metrics.stream_messages.labels("out", message.TYPE).inc()
                metrics.stream_bytes.labels("out").inc(len(data))
                return Delivery.ACKED
            except NetworkError as exc:
                error = str(exc)
            await trio.sleep(SEND_BACKOFF_S * (attempt + 1))
        log_event(logger, logging.WARNING, "message not delivered", peer=peer,
                  type=message.TYPE, error=error)  # fmt: skip
        return Delivery.LOST

    async def _publish(self, topic: str, message: Message) -> None:
        try:
            await self._node.network.publish(topic, self.encode(message))
            self._node.metrics.messages_out.labels(message.TYPE).inc()
        except NetworkError as exc:
            log_event(logger, logging.WARNING, "not published", topic=topic, error=str(exc))


async def run_timer(
    clock: MarketClock,
    get_timer: Callable[[], int | None],
    fire: Callable[[int], Awaitable[None]],
    changed: Callable[[], trio.Event],
) -> None:
    """Arm a machine's timer forever: sleep until it is due or the machine changed."""
    while True:
        due_ms = get_timer()
        event = changed()
        if due_ms is not None and due_ms <= clock.now_ms():
            await fire(clock.now_ms())
            await trio.lowlevel.checkpoint()
            continue
        with trio.move_on_at(clock.trio_time_of(due_ms) if due_ms is not None else float("inf")):
            await event.wait()
