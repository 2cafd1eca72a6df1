"""Content transfer over the node's ``Network`` port: one request/response per chunk.

Protocol ``/pictor/content/1.0.0`` on :mod:`node.net.reqresp` framing (length
prefix, size limits, deadline, bounded inbound concurrency are enforced there).
Requests are tiny binary records so a peer cannot make us parse much::

    b"M" + cid (ascii)                 -> the chunk manifest of cid
    b"C" + index (u32 big-endian) + cid -> chunk ``index`` of cid

Responses: ``b"\\x00" + payload``, or ``b"\\x01" + reason`` for a refusal (no
such content, bad request). Nothing served is trusted by the fetcher: it checks
manifests and chunks itself (:mod:`node.content.transfer`).
"""

from __future__ import annotations

import struct
from collections.abc import Awaitable, Callable

from node.content.cid import CidError, check_cid
from node.content.source import ChunkSourceError, StoreChunkSource
from node.net.port import Network, NetworkError
from node.net.reqresp import FrameError, ReqRespLimits, request, serve_requests

CONTENT_PROTOCOL = "/pictor/content/1.0.0"
_INDEX = struct.Struct(">I")
_OK, _REFUSED = b"\x00", b"\x01"


def content_limits(max_chunk_bytes: int, timeout_s: float = 30.0) -> ReqRespLimits:
    # A request is a letter, an index and a CID; a response at most one chunk.
    return ReqRespLimits(
        max_request_bytes=256, max_response_bytes=max_chunk_bytes + 1, timeout_s=timeout_s
    )


class PeerChunkSource:
    """A ``ChunkSource`` that asks one peer over the network."""

    def __init__(self, network: Network, peer: str, limits: ReqRespLimits) -> None:
        self._network = network
        self._peer = peer
        self._limits = limits

    @property
    def name(self) -> str:
        return self._peer

    async def _ask(self, body: bytes) -> bytes:
        try:
            reply = await request(self._network, self._peer, CONTENT_PROTOCOL, body, self._limits)
        except NetworkError as exc:
            raise ChunkSourceError(f"{self._peer}: {exc}") from exc
        if reply[:1] != _OK:
            reason = reply[1:200].decode("utf-8", "replace")
            raise ChunkSourceError(f"{self._peer} refused: {reason}")
        return reply[1:]

    async def get_manifest(self, cid: str) -> bytes:
        return await self._ask(b"M" + cid.encode())

    async def get_chunk(self, cid: str, index: int) -> bytes:
        return await self._ask(b"C" + _INDEX.pack(index) + cid.encode())


def content_handler(source: StoreChunkSource) -> Callable[[str, bytes], Awaitable[bytes | None]]:
    """Answer content requests from the local store."""

    async def handle(_peer: str, body: bytes) -> bytes | None:
        try:
            if body[:1] == b"M":
                return _OK + await source.get_manifest(check_cid(body[1:].decode("ascii")))
            if body[:1] == b"C" and len(body) > 1 + _INDEX.size:
                (index,) = _INDEX.unpack_from(body, 1)
                cid = check_cid(body[1 + _INDEX.size :].decode("ascii"))
                return _OK + await source.get_chunk(cid, index)
        except (CidError, UnicodeDecodeError):
            return _REFUSED + b"bad cid"
        except ChunkSourceError as exc:
            return _REFUSED + str(exc).encode()[:200]
        return _REFUSED + b"bad request"

    return handle


def serve_content(
    network: Network,
    source: StoreChunkSource,
    limits: ReqRespLimits,
    on_bad_frame: Callable[[str, FrameError], None],
) -> None:
    """Register the content protocol on ``network``; ``on_bad_frame`` feeds peer scoring."""
    handler = serve_requests(content_handler(source), limits, on_bad_frame)
    network.set_stream_handler(CONTENT_PROTOCOL, handler)
