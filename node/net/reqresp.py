"""Request/response over any ``ByteStream``: one length-prefixed frame each way.

Frame: 4-byte big-endian length, then that many bytes. The reader refuses a
frame over its limit before reading the body, so a peer cannot make us buffer
more than ``max_bytes``; every exchange runs under a deadline so a peer that
stalls mid-frame cannot hold a handler slot forever. Inbound concurrency is
bounded by a semaphore; over the limit a new stream is closed unanswered.
"""

from __future__ import annotations

import struct
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import trio

from node.net.port import ByteStream, Network, NetworkError, StreamHandler

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
        finally:
            with trio.CancelScope(shield=True):
                await stream.aclose()
    assert scope.cancelled_caught
    raise NetworkError(f"request to {peer} timed out after {limits.timeout_s} s")


def serve_requests(
    handler: Callable[[str, bytes], Awaitable[bytes | None]],
    limits: ReqRespLimits,
    on_bad_frame: Callable[[str, FrameError], None],
) -> StreamHandler:
    """A stream handler answering each request with ``handler(peer, request)``.

    ``None`` from the handler closes the stream without a response (a refused
    request). ``on_bad_frame`` hears about peers that break framing.
    """
    slots = trio.Semaphore(limits.max_concurrent_inbound)

    async def serve(peer: str, stream: ByteStream) -> None:
        try:
            slots.acquire_nowait()
        except trio.WouldBlock:
            await stream.aclose()
            return
        try:
            with trio.move_on_after(limits.timeout_s) as scope:
                request_bytes = await read_frame(stream, limits.max_request_bytes)
                response = await handler(peer, request_bytes)
                if response is not None:
                    await write_frame(stream, response)
            if scope.cancelled_caught:
                on_bad_frame(peer, FrameError("request too slow", "timeout"))
        except FrameError as exc:
            on_bad_frame(peer, exc)
        except (NetworkError, trio.BrokenResourceError, trio.ClosedResourceError):
            pass  # the peer went away; nothing to answer
        finally:
            slots.release()
            with trio.CancelScope(shield=True):
                await stream.aclose()

    return serve
