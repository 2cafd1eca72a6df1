"""Stream exchanges for ``docs/vectors/streams.json`` (see ``vectors_gen``).

Recorded, bytes on the wire each way, from the node's own code:
``node.net.reqresp`` framing, the inbound ``Gate`` answering the market
protocol with the roles' 1-byte ``ACK`` (as ``Node._on_request`` and
``Roles.handle`` do), ``node.content.net`` serving a real ``ContentStore``,
and ``RecordService.serve`` paging a real store's work record (the node's
own record-sync handler) — over in-memory streams.
"""

from __future__ import annotations

import hashlib
import struct
import tempfile
from collections.abc import Awaitable, Callable
from functools import partial
from pathlib import Path
from typing import Any

import trio
import trio.testing

from node.api.metrics import NodeMetrics
from node.content.net import content_handler, content_limits
from node.content.source import StoreChunkSource
from node.content.store import ContentStore
from node.content.transfer import TransferConfig
from node.net.gate import Gate, Refusal
from node.net.peer_score import PeerScorer
from node.net.reqresp import FrameError, ReqRespLimits, serve_requests, write_frame
from node.record import store as record_rows
from node.record.service import RecordService
from node.record.sync import SYNC_LIMITS, encode_request
from node.roles.common import ACK, REFUSED
from node.store import open_store
from protocol import ReplayGuard, encode_envelope
from tests.protocol.vectors_samples import (
    ALICE,
    BOB,
    CAROL,
    LARGE_CONTENT_BYTES,
    NOW_MS,
    SMALL_CONTENT,
    TestIdentity,
    nonce_for,
    pattern_bytes,
    sample_messages,
)

INLINE_MAX_BYTES = 4096
ENVELOPE_LIMIT = 262_144
Handler = Callable[[str, bytes], Awaitable[bytes | None]]


class _Recorder:
    def __init__(self) -> None:
        self.data = b""

    async def send_all(self, data: bytes) -> None:
        self.data += data


def framed(payload: bytes) -> bytes:
    """The frame ``node.net.reqresp.write_frame`` puts on a stream."""
    recorder = _Recorder()
    trio.run(write_frame, recorder, payload)  # type: ignore[arg-type]
    return recorder.data


def _bytes_field(data: bytes) -> dict[str, Any]:
    if len(data) <= INLINE_MAX_BYTES:
        return {"hex": data.hex()}
    return {
        "length": len(data),
        "sha256": hashlib.sha256(data).hexdigest(),
        "prefix_hex": data[:16].hex(),
    }


async def _exchange(handler: Handler, limits: ReqRespLimits, peer: str, wire_in: bytes) -> bytes:
    client, server = trio.testing.memory_stream_pair()
    bad_frames: list[FrameError] = []
    serve = serve_requests(handler, limits, lambda _p, exc: bad_frames.append(exc))
    reply = b""
    async with trio.open_nursery() as nursery:
        nursery.start_soon(serve, peer, server)
        await client.send_all(wire_in)
        while chunk := await client.receive_some():
            reply += chunk
    assert not bad_frames, bad_frames
    return reply


def _market_handler() -> Handler:
    gate = Gate(
        PeerScorer(),
        ReplayGuard(),
        NodeMetrics(),
        now_s=lambda: 0.0,
        wall_ms=lambda: NOW_MS,
        on_ban=lambda _peer: None,
    )

    async def handle(peer: str, data: bytes) -> bytes | None:
        admitted = gate.admit(peer, data)
        if admitted is Refusal.BUSY:
            return None
        return REFUSED if admitted is Refusal.FINAL else ACK

    return handle


def envelope_of(name: str) -> tuple[TestIdentity, bytes]:
    for i, (vector_name, signer, message) in enumerate(sample_messages()):
        if vector_name == name:
            return signer, encode_envelope(signer.key, message, nonce=nonce_for(i), now_ms=NOW_MS)
    raise KeyError(name)


def market_exchanges() -> list[dict[str, Any]]:
    limits = ReqRespLimits(timeout_s=10.0)
    cases = [
        ("bid_accepted", "bid", BOB, ALICE, "accepted: a 1-byte ack frame, then close"),
        ("award_accepted", "award", ALICE, BOB, "accepted"),
        ("result_accepted", "result", BOB, ALICE, "accepted"),
        (
            "bid_relayed_refused",
            "bid",
            CAROL,
            ALICE,
            "bob's bid delivered by carol: sender mismatch, refused for good (0x01), then close",
        ),
    ]
    out = []
    for name, message_name, via, to, comment in cases:
        _signer, envelope = envelope_of(message_name)
        wire_in = framed(envelope)
        reply = trio.run(_exchange, _market_handler(), limits, via.key.node_id.text, wire_in)
        out.append(
            {
                "name": name,
                "protocol": "/pictor/market/1.0.0",
                "comment": comment,
                "opener": via.name,
                "responder": to.name,
                "opener_sends": _bytes_field(wire_in),
                "responder_sends": _bytes_field(reply),
            }
        )
    return out


def content_exchanges() -> list[dict[str, Any]]:
    from node.content.cid import cid_of_bytes

    small, large = SMALL_CONTENT, pattern_bytes(LARGE_CONTENT_BYTES)
    small_cid, large_cid = cid_of_bytes(small), cid_of_bytes(large)
    cases = [
        ("manifest_small", b"M" + small_cid.encode(), "0x00 + manifest"),
        ("chunk_small_0", b"C" + struct.pack(">I", 0) + small_cid.encode(), "0x00 + chunk 0"),
        ("manifest_large", b"M" + large_cid.encode(), "0x00 + manifest of 3 chunks"),
        (
            "chunk_large_2",
            b"C" + struct.pack(">I", 2) + large_cid.encode(),
            "0x00 + the last, short chunk (2,500,000 - 2 x 1 MiB bytes)",
        ),
        (
            "refused_chunk_out_of_range",
            b"C" + struct.pack(">I", 3) + large_cid.encode(),
            "0x01 + reason",
        ),
        (
            "refused_unknown_content",
            b"M" + cid_of_bytes(b"nobody has this").encode(),
            "0x01 + reason",
        ),
        ("refused_bad_cid_upper_case", b"M" + small_cid.upper().encode(), "0x01 bad cid"),
        ("refused_bad_request_letter", b"X" + small_cid.encode(), "0x01 bad request"),
    ]
    limits = content_limits(TransferConfig().max_chunk_bytes)
    out = []
    with tempfile.TemporaryDirectory() as tmp:
        store = ContentStore(Path(tmp) / "content", 1 << 30)
        store.put_bytes(small)
        store.put_bytes(large)
        handler = content_handler(StoreChunkSource(store))
        for name, request, comment in cases:
            wire_in = framed(request)
            reply = trio.run(_exchange, handler, limits, ALICE.key.node_id.text, wire_in)
            out.append(
                {
                    "name": name,
                    "protocol": "/pictor/content/1.0.0",
                    "comment": comment,
                    "request": request.decode("ascii", "replace")
                    if request[:1] == b"M"
                    else request.hex(),
                    "opener_sends": _bytes_field(wire_in),
                    "responder_sends": _bytes_field(reply),
                }
            )
    return out


class _SyncPeer:
    """What ``RecordService.serve`` reads of its ``Node``: scorer, gate, store."""

    def __init__(self, store: Any) -> None:
        self.scorer = PeerScorer()
        self.gate = Gate(self.scorer, ReplayGuard(), NodeMetrics(), now_s=lambda: 0.0,
                         wall_ms=lambda: NOW_MS, on_ban=lambda _peer: None)  # fmt: skip
        self.store = store


RECORD_KINDS = {"job_announce": record_rows.ANNOUNCE, "work_record": record_rows.WORK,
                "dispute_record": record_rows.DISPUTE, "job_closed": record_rows.CLOSED}  # fmt: skip


async def _sync_replies(frames: list[bytes]) -> list[bytes]:
    rows = []
    for name, kind in RECORD_KINDS.items():
        _signer, envelope = envelope_of(name)
        job_id = bytes(32)  # the table's job column; not on the wire
        rows.append((hashlib.sha256(envelope).digest(), kind, job_id, envelope, NOW_MS))
    with tempfile.TemporaryDirectory() as tmp:
        async with open_store(Path(tmp) / "node.db", inline=True) as store:
            await store.call(partial(record_rows.save, rows=rows, keep=100))
            service = RecordService(_SyncPeer(store))  # type: ignore[arg-type]
            return [
                await _exchange(service.serve, SYNC_LIMITS, CAROL.key.node_id.text, frame)
                for frame in frames
            ]


def record_sync_exchanges() -> list[dict[str, Any]]:
    cases = [
        ("sync_first_page", encode_request(0), "[0, 256] -> [4, [announce, work_record, "
         "dispute_record, job_closed]]: everything after position 0, oldest first"),
        ("sync_two_items", encode_request(0, 2), "[0, 2] -> [2, [announce, work_record]]"),
        ("sync_next_page", encode_request(2, 2), "[2, 2] -> [4, [dispute_record, job_closed]]"),
        ("sync_end", encode_request(4), "[4, 256] -> [4, []]: an empty list is the end"),
    ]  # fmt: skip
    replies = trio.run(_sync_replies, [framed(request) for _n, request, _c in cases])
    return [
        {
            "name": name,
            "protocol": "/pictor/record-sync/1.0.0",
            "comment": comment,
            "request": request.hex(),
            "opener_sends": _bytes_field(framed(request)),
            "responder_sends": _bytes_field(reply),
        }
        for (name, request, comment), reply in zip(cases, replies, strict=True)
    ]


def stream_vectors() -> dict[str, Any]:
    return {
        "comment": "Bytes on the wire each way after multistream-select has chosen the protocol. "
        "Frames are a 4-byte big-endian length then the payload. A 'responder_sends' of '' means "
        "the responder closed without a reply. Long payloads are given by length and sha256.",
        "now_ms": NOW_MS,
        "market": market_exchanges(),
        "content": content_exchanges(),
        "record_sync": record_sync_exchanges(),
    }
