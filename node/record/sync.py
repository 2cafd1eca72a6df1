"""``/pictor/record-sync/1.0.0``: a fresh node pulls the work record's history from peers.

Why a request/response and not only gossip history: gossipsub keeps a few
seconds of history, so a node that was offline (or new) would never learn a
worker's past; and the store alone knows only what this node heard. So a
node asks a few peers, once each, for the envelopes they keep, in their
store's order, a page at a time (docs/PROTOCOL.md §7.1)::

    request:  msgpack [after_seq: u64, limit: 1..256]
    response: msgpack [last_seq: u64, [envelope bytes, ...]]   (empty list: the end)

Nothing served is trusted: every envelope is verified like gossip (signature,
consistency, the job's requester) by ``RecordService.ingest``. A peer that
serves a bad one is penalised and not asked again; every bound is here:
page size, response bytes, pages per peer, peers per node.
"""

from __future__ import annotations

from node.net.reqresp import ReqRespLimits
from protocol.codec import DEFAULT_LIMITS, Limits, packb, unpackb

PAGE_ITEMS = 256
PAGE_BYTES = 1 << 20
MAX_PAGES_PER_PEER = 256  # 65,536 envelopes from one peer at most
SYNC_PEERS = 3  # peers a node pulls from (one at a time, each once per run)
SYNC_LIMITS = ReqRespLimits(max_request_bytes=32, max_response_bytes=PAGE_BYTES + 4096, timeout_s=30.0)
# a page may hold up to 1 MiB of envelopes, each up to the envelope limit
_PAGE_LIMITS = Limits(max_message_bytes=PAGE_BYTES + 4096, max_depth=3,
                      max_collection_len=PAGE_ITEMS, max_bytes_len=DEFAULT_LIMITS.max_message_bytes)  # fmt: skip


class SyncError(Exception):
    """A malformed sync request or response."""


def encode_request(after_seq: int, limit: int = PAGE_ITEMS) -> bytes:
    return packb([after_seq, limit])


def decode_request(data: bytes) -> tuple[int, int]:
    try:
        obj = unpackb(data, DEFAULT_LIMITS)
    except Exception as exc:
        raise SyncError(f"undecodable request: {type(exc).__name__}") from None
    if type(obj) is not list or len(obj) != 2 or not all(type(v) is int for v in obj):
        raise SyncError("a sync request is [after_seq, limit]")
    after_seq, limit = obj
    if not (0 <= after_seq < 2**63 and 1 <= limit <= PAGE_ITEMS):
        raise SyncError("after_seq or limit out of range")
    return after_seq, limit


def encode_response(last_seq: int, items: list[bytes]) -> bytes:
    return packb([last_seq, items])


def decode_response(data: bytes, after_seq: int) -> tuple[int, list[bytes]]:
    try:
        obj = unpackb(data, _PAGE_LIMITS)
    except Exception as exc:
        raise SyncError(f"undecodable response: {type(exc).__name__}") from None
    if type(obj) is not list or len(obj) != 2 or type(obj[0]) is not int or type(obj[1]) is not list:
        raise SyncError("a sync response is [last_seq, [envelope, ...]]")
    last_seq, items = obj
    if len(items) > PAGE_ITEMS or not all(type(i) is bytes for i in items):
        raise SyncError("too many items, or an item that is not bytes")
    if items and last_seq <= after_seq:
        raise SyncError("the cursor did not advance")  # or a peer could loop us forever
    return last_seq, items
