"""Request/response over any ``ByteStream``: one length-prefixed frame each way.

Frame: 4-byte big-endian length, then that many bytes. The reader refuses a
frame over its limit before reading the body, so a peer cannot make us buffer
more than ``max_bytes``; every exchange runs under a deadline so a peer that
stalls mid-frame cannot hold a handler slot forever.

Inbound streams pass two stages, each bounded (issue 14: fresh identities
holding silent streams took all 64 shared slots, and 62 % of honest requests
were refused):

1. *Reading the request*, under ``read_timeout_s`` (an honest peer writes its
   request as soon as the stream opens). Pending reads are bounded per peer,
   per remote IP and in total; a new stream over a bound does not wait or get
   refused — it displaces the peer's own oldest pending read (over the
   per-peer bound) or the oldest read of the biggest holder (the IP, then the
   peer, with the most pending reads) on that IP or overall. An honest
   request is pending for milliseconds and one at a time, a silent stream
   until it times out, so the displaced one is the hoarder's. A displaced or timed-out read is
   reported to ``on_bad_frame`` (reason ``displaced`` or ``timeout``), so the
   node's scorer bans a peer that keeps doing it.
2. *Handling*: at most ``max_concurrent_inbound`` handlers in all and
   ``max_handling_per_peer`` per peer; over either, the stream is closed
   unanswered. Only a complete, well-framed request gets this far. A handler
   that raises (a bug, or the store closing under it at shutdown) is logged
   and its request goes unanswered; the exception never reaches the host.
   The exchange has ``timeout_s``: a handler of ours still running then (a
   chain read hanging) closes the stream unanswered without blaming the
   peer; a response write still blocked then (the peer does not read) is
   the peer's ``timeout``.
"""

from __future__ import annotations

import itertools
import logging
import struct
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import trio

from node.net.port import ByteStream, Network, NetworkError, StreamHandler

logger = logging.getLogger(__name__)
_HEADER = struct.Struct(">I")


class FrameError(NetworkError):
    """The peer broke framing: truncated, oversize, or too slow."""

    def __init__(self, message: str, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True)
class ReqRespLimits:
    max_request_bytes: int = 1 << 20
    max_response_bytes: int = 16 << 20
    timeout_s: float = 10.0
    max_concurrent_inbound: int = 64
    read_timeout_s: float = 3.0
    max_pending_reads: int = 256
    max_pending_per_peer: int = 4
    max_pending_per_ip: int = 64
    max_handling_per_peer: int = 4


async def _read_exactly(stream: ByteStream, n_bytes: int) -> bytes:
    chunks, left = [], n_bytes
    while left:
        chunk = await stream.receive_some(min(left, 65536))
        if not chunk:
            raise FrameError(f"stream ended {left} bytes short", "truncated")
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


async def read_frame(stream: ByteStream, max_bytes: int) -> bytes:
    (length,) = _HEADER.unpack(await _read_exactly(stream, _HEADER.size))
    if length > max_bytes:
        raise FrameError(f"frame of {length} bytes over the {max_bytes} limit", "oversize")
    return await _read_exactly(stream, length)


async def write_frame(stream: ByteStream, data: bytes) -> None:
    await stream.send_all(_HEADER.pack(len(data)) + data)


async def request(
    network: Network, peer: str, protocol_id: str, data: bytes, limits: ReqRespLimits
) -> bytes:
    """Send one request and return the response. Raises ``NetworkError``."""
    if len(data) > limits.max_request_bytes:
        raise NetworkError(f"request of {len(data)} bytes over the limit")
    with trio.move_on_after(limits.timeout_s) as scope:
        stream = await network.open_stream(peer, protocol_id)
        try:
            await write_frame(stream, data)
            return await read_frame(stream, limits.max_response_bytes)
        except (trio.BrokenResourceError, trio.ClosedResourceError) as exc:
            raise NetworkError(f"{peer} closed the stream: {exc!r}") from exc
        finally:
            with trio.CancelScope(shield=True):
                await stream.aclose()
    assert scope.cancelled_caught
    raise NetworkError(f"request to {peer} timed out after {limits.timeout_s} s")


def remote_host(stream: ByteStream) -> str | None:
    """The remote IP of a stream, where the network knows it (libp2p does)."""
    host = getattr(stream, "remote_host", None)
    return host if isinstance(host, str) else None


@dataclass
class _Pending:
    peer: str
    host: str | None
    scope: trio.CancelScope = field(default_factory=trio.CancelScope)
    displaced: bool = False


class InboundLimiter:
    """The bookkeeping of both stages (see module doc); synchronous, no I/O."""

    def __init__(self, limits: ReqRespLimits) -> None:
        self.limits = limits
        self._pending: dict[int, _Pending] = {}  # insertion order = age
        self._ids = itertools.count()
        self._handling: Counter[str] = Counter()
        self.handling = 0
        self.displaced = 0
        self.refused = 0

    def start_read(self, peer: str, host: str | None) -> tuple[int, _Pending]:
        """Register a stream waiting for its request, displacing others over a bound."""
        limits = self.limits
        own = [k for k, p in self._pending.items() if p.peer == peer]
        for key in own[: max(0, len(own) - limits.max_pending_per_peer + 1)]:
            self._displace(key)  # a peer over its own bound pays itself
        if host is not None:
            same_ip = [k for k, p in self._pending.items() if p.host == host]
            if len(same_ip) >= limits.max_pending_per_ip:
                self._displace_hoarder(same_ip)
        if len(self._pending) >= limits.max_pending_reads:
            self._displace_hoarder(list(self._pending))
        key, pending = next(self._ids), _Pending(peer, host)
        self._pending[key] = pending
        return key, pending

    def end_read(self, key: int) -> None:
        self._pending.pop(key, None)

    def _displace(self, key: int) -> None:
        pending = self._pending.pop(key)
        pending.displaced = True
        pending.scope.cancel()
        self.displaced += 1

    def _displace_hoarder(self, keys: list[int]) -> None:
        """Displace the oldest read of the biggest holder (IP, then peer) among ``keys``."""
        group = [(k, self._pending[k]) for k in keys]
        hosts = Counter(p.host for _, p in group if p.host is not None)
        peers = Counter(p.peer for _, p in group)

        def holding(item: tuple[int, _Pending]) -> tuple[int, int, int]:
            key, p = item
            return (hosts[p.host] if p.host is not None else 0, peers[p.peer], -key)

        self._displace(max(group, key=holding)[0])

    def try_handle(self, peer: str) -> bool:
        limits = self.limits
        if (
            self.handling >= limits.max_concurrent_inbound
            or self._handling[peer] >= limits.max_handling_per_peer
        ):
            self.refused += 1
            return False
        self.handling += 1
        self._handling[peer] += 1
        return True

    def end_handle(self, peer: str) -> None:
        self.handling -= 1
        self._handling[peer] -= 1
        if not self._handling[peer]:
            del self._handling[peer]

    def statistics(self) -> dict[str, int]:
        return {
            "pending": len(self._pending),
            "handling": self.handling,
            "displaced": self.displaced,
            "refused": self.refused,
        }


def serve_requests(
    handler: Callable[[str, bytes], Awaitable[bytes | None]],
    limits: ReqRespLimits,
    on_bad_frame: Callable[[str, FrameError], None],
    limiter: InboundLimiter | None = None,
) -> StreamHandler:
    """A stream handler answering each request with ``handler(peer, request)``.

    ``None`` from the handler closes the stream without a response (a refused
    request). ``on_bad_frame`` hears about peers that break framing, stay
    silent past ``read_timeout_s`` or hold streams that get displaced (a small
    fault: the displaced stream is the biggest holder's).
    """
    inbound = limiter or InboundLimiter(limits)

    async def serve(peer: str, stream: ByteStream) -> None:
        try:
            request_bytes = await _read_request(peer, stream)
            if request_bytes is None or not inbound.try_handle(peer):
                return
            writing = False
            try:
                with trio.move_on_after(limits.timeout_s) as scope:
                    try:
                        response = await handler(peer, request_bytes)
                    except Exception:
                        # A handler's bug, or its store closing under it at shutdown:
                        # this request goes unanswered; the host's streams go on.
                        logger.exception("request handler failed", extra={"peer": peer})
                        return
                    if response is not None:
                        writing = True
                        await write_frame(stream, response)
                if scope.cancelled_caught and writing:  # the peer did not read its answer
                    on_bad_frame(peer, FrameError("response not read in time", "timeout"))
                elif scope.cancelled_caught:  # our own handler was slow: not the peer's fault
                    logger.warning("request handler too slow", extra={"peer": peer})
            finally:
                inbound.end_handle(peer)
        except FrameError as exc:
            on_bad_frame(peer, exc)
        except (NetworkError, trio.BrokenResourceError, trio.ClosedResourceError):
            pass  # the peer went away; nothing to answer
        finally:
            with trio.CancelScope(shield=True):
                await stream.aclose()

    async def _read_request(peer: str, stream: ByteStream) -> bytes | None:
        key, pending = inbound.start_read(peer, remote_host(stream))
        try:
            with pending.scope:
                pending.scope.deadline = trio.current_time() + limits.read_timeout_s
                return await read_frame(stream, limits.max_request_bytes)
        finally:
            inbound.end_read(key)
            if pending.scope.cancelled_caught:  # no request: displaced, or silent too long
                if pending.displaced:
                    on_bad_frame(peer, FrameError("stream displaced by newer ones", "displaced"))
                else:
                    on_bad_frame(peer, FrameError("no request in time", "timeout"))
        return None

    return serve
