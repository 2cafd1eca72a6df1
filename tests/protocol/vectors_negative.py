"""Negative vectors for ``docs/vectors/negative.json`` (see ``vectors_gen``).

Built here by hand, byte by byte, and each states the outcome the spec
(docs/PROTOCOL.md §4, §6, §9) requires: the generator does *not* ask the code
what happens. ``tests/protocol/test_vectors_gate.py`` feeds every one to the
real gate and to a running node and checks the stated outcome.
"""

from __future__ import annotations

import dataclasses
import struct
from typing import Any

import msgpack

from protocol import NodeKey, encode_envelope
from protocol.codec import packb, to_wire
from protocol.envelope import SIGNING_DOMAIN
from protocol.identity import BIND_ADDRESS_DOMAIN
from protocol.messages import AwardDeclined, Bid, CapacityAdvert, Heartbeat, JobAnnounce
from tests.protocol.vectors_samples import ALICE, BOB, CAROL, NOW_MS, TestIdentity, sample_messages
from tests.protocol.vectors_streams import ENVELOPE_LIMIT, envelope_of


def _sig_over(key: NodeKey, domain: bytes, head: bytes) -> bytes:
    return packb(key.sign(domain + head))


def assemble(key: NodeKey, parts: list[bytes], *, domain: bytes = SIGNING_DOMAIN) -> bytes:
    """An envelope from pre-encoded items 0..5, signed over exactly those bytes."""
    head = bytes([0x90 | len(parts)]) + b"".join(parts)
    return bytes([0x90 | (len(parts) + 1)]) + b"".join(parts) + _sig_over(key, domain, head)


def _parts(
    ident: TestIdentity, msg_type: str, body: object, *, nonce: int = 7, ts: int = NOW_MS
) -> list[bytes]:
    return [
        packb(1),
        packb(msg_type),
        packb(ident.key.node_id.raw),
        packb(nonce),
        packb(ts),
        msgpack.packb(body, use_bin_type=True),
    ]


def _body(message: object) -> dict[str, Any]:
    wire = to_wire(message)
    assert isinstance(wire, dict)
    return dict(sorted(wire.items(), key=lambda kv: kv[0].encode()))


def _heartbeat() -> Heartbeat:
    return next(m for n, _s, m in sample_messages() if n == "heartbeat")  # type: ignore[return-value]


def _bid() -> Bid:
    return next(m for n, _s, m in sample_messages() if n == "bid")  # type: ignore[return-value]


# (error class, reason label, penalty): what the spec says a receiver does
MALFORMED = ("MalformedMessage", "malformed_message", 25)
SCHEMA = ("SchemaError", "schema_error", 25)
OVERSIZE = ("Oversize", "oversize", 50)
UNKNOWN_TYPE = ("UnknownMessageType", "unknown_message_type", 25)
BAD_SIGNATURE = ("BadSignature", "bad_signature", 100)
SKEW = ("ClockSkew", "clock_skew", 2)
FRAME_OVERSIZE = ("FrameError", "oversize", 50)
Outcome = tuple[str, str, int]


def _neg(
    name: str,
    comment: str,
    data: bytes | dict[str, Any],
    outcome: Outcome,
    *,
    path: str = "envelope",
    peer: TestIdentity = BOB,
    prelude: tuple[bytes, ...] = (),
    origin: TestIdentity | None = None,
    verdict: str = "REJECT",
) -> dict[str, Any]:
    error, reason, penalty = outcome
    vector = {
        "name": name,
        "comment": comment,
        "path": path,
        "delivered_by": peer.name,
        "prelude": [p.hex() for p in prelude],
        "input": {"hex": data.hex()} if isinstance(data, bytes) else data,
        "error": error,
        "reason": reason,
        "penalty": penalty,
    }
    if path.startswith("gossip_"):  # who signed the pubsub message, and gossipsub's verdict
        vector |= {"origin": (origin or peer).name, "verdict": verdict}
    return vector


def _with(parts: list[bytes], index: int, item: bytes) -> list[bytes]:
    """``parts`` with envelope item ``index`` replaced by the raw msgpack ``item``."""
    return [*parts[:index], item, *parts[index + 1 :]]


def _envelope_negatives() -> list[dict[str, Any]]:
    hb = _heartbeat()
    body, key = _body(hb), BOB.key
    parts = _parts(BOB, "heartbeat", body)
    good = assemble(key, parts)

    def hb_with(**fields: object) -> bytes:
        return assemble(key, _parts(BOB, "heartbeat", {**body, **fields}))

    deep: object = 1
    for _ in range(9):
        deep = [deep]
    unsorted = msgpack.packb(dict(reversed(list(body.items()))), use_bin_type=True)
    missing = {k: v for k, v in body.items() if k != "progress_permille"}
    bad_sig = bytes([*good[:-1], good[-1] ^ 0x01])
    too_long = AwardDeclined(hb.job_id, hb.task_id, "x" * 1025)
    oversize_input = {"prefix_hex": "c6", "fill_hex": "00", "length": ENVELOPE_LIMIT + 1}
    n = _neg
    return [
        n("not_msgpack", "0xc1 is never used in msgpack", b"\xc1", MALFORMED),
        n("empty", "no bytes at all", b"", MALFORMED),
        n("map_keys_unsorted", "body keys in descending order, correctly signed",
          assemble(key, _with(parts, 5, unsorted)), MALFORMED),
        n("int_not_shortest", "nonce 7 as uint64 (0xcf), correctly signed",
          assemble(key, _with(parts, 3, b"\xcf" + (7).to_bytes(8, "big"))), MALFORMED),
        n("str_header_not_shortest", "type as str8 (0xd9) instead of fixstr",
          assemble(key, _with(parts, 1, b"\xd9\x09heartbeat")), MALFORMED),
        n("float", "a float where an int belongs", hb_with(progress_permille=500.0), MALFORMED),
        n("ext_type", "a msgpack ext value",
          hb_with(progress_permille=msgpack.ExtType(1, b"x")), MALFORMED),
        n("array_of_6", "the signature item missing", bytes([0x96]) + b"".join(parts), MALFORMED),
        n("too_deep", "arrays nested 9 deep in the body", hb_with(progress_permille=deep),
          OVERSIZE),
        n("envelope_over_limit", "262,145 bytes: refused on size before decoding",
          oversize_input, OVERSIZE),
        n("version_2", "envelope version 2, correctly signed",
          assemble(key, _with(parts, 0, packb(2))), ("UnsupportedVersion",
                                                     "unsupported_version", 1)),
        n("sender_31_bytes", "sender one byte short",
          assemble(key, _with(parts, 2, packb(key.node_id.raw[:31]))), SCHEMA),
        n("negative_nonce", "nonce -1 is not a u64", assemble(key, _with(parts, 3, packb(-1))),
          SCHEMA),
        n("timestamp_as_str", "timestamp_ms as text",
          assemble(key, _with(parts, 4, packb(str(NOW_MS)))), SCHEMA),
        n("no_signing_domain", "signed over msgpack(items 0..5) without the domain prefix",
          assemble(key, parts, domain=b""), BAD_SIGNATURE),
        n("binding_domain", "signed with the payment-binding domain instead",
          assemble(key, parts, domain=BIND_ADDRESS_DOMAIN), BAD_SIGNATURE),
        n("signed_by_another_key", "sender is bob, signature is carol's",
          assemble(CAROL.key, parts), BAD_SIGNATURE),
        n("signature_bit_flipped", "last signature byte xor 1", bad_sig, BAD_SIGNATURE),
        n("unknown_type", "type 'ping' is not defined in v1",
          assemble(key, _parts(BOB, "ping", {})), UNKNOWN_TYPE),
        n("type_as_bin", "type sent as bin, not str",
          assemble(key, _with(parts, 1, packb(b"heartbeat"))), UNKNOWN_TYPE),
        n("unknown_field", "an extra body field", hb_with(zzz=1), SCHEMA),
        n("missing_field", "progress_permille left out",
          assemble(key, _parts(BOB, "heartbeat", missing)), SCHEMA),
        n("u256_as_int", "price_wei_per_frame as a msgpack int, not bin 32",
          assemble(key, _parts(BOB, "bid", {**_body(_bid()), "price_wei_per_frame": 10**16})),
          SCHEMA),
        n("out_of_range", "progress_permille 1001 (range 0..1000)",
          hb_with(progress_permille=1001), SCHEMA),
        n("string_over_field_limit", "award_declined reason of 1,025 code points (max 1,024)",
          encode_envelope_unchecked(key, too_long), OVERSIZE),
        n("clock_skew_past", "timestamp 60,001 ms before now",
          assemble(key, _parts(BOB, "heartbeat", body, ts=NOW_MS - 60_001)), SKEW),
        n("clock_skew_future", "timestamp 60,001 ms after now",
          assemble(key, _parts(BOB, "heartbeat", body, ts=NOW_MS + 60_001)), SKEW),
        n("replay", "the prelude envelope again", good,
          ("ReplayDetected", "replay_detected", 20), prelude=(good,)),
        n("sender_mismatch", "bob's valid heartbeat delivered by carol", good,
          ("RemoteProtocolError", "sender_mismatch", 100), peer=CAROL),
    ]  # fmt: skip


def encode_envelope_unchecked(key: NodeKey, message: object) -> bytes:
    """Sign a message the encoder would refuse (field over its limit)."""
    wire = dataclasses.asdict(message)  # type: ignore[call-overload]
    body = {k: v for k, v in sorted(wire.items())}
    return assemble(key, _parts(BOB, type(message).TYPE, body))  # type: ignore[attr-defined]


def _advert_negatives() -> list[dict[str, Any]]:
    advert = next(m for n, _s, m in sample_messages() if n == "capacity_advert")
    assert isinstance(advert, CapacityAdvert)
    alien = dataclasses.replace(advert, payment=ALICE.binding)
    forged_binding = dataclasses.replace(
        BOB.binding, address_signature=ALICE.binding.address_signature
    )
    forged = dataclasses.replace(advert, payment=forged_binding)
    bad_binding = ("BadBinding", "bad_binding", 100)
    return [
        _neg("binding_for_another_node", "bob's advert carrying alice's (valid) binding",
             encode_envelope(BOB.key, alien, nonce=11, now_ms=NOW_MS), bad_binding,
             path="gossip_capacity"),
        _neg("binding_address_signature_forged",
             "bob's binding, address signature over alice's text",
             encode_envelope(BOB.key, forged, nonce=12, now_ms=NOW_MS), bad_binding,
             path="gossip_capacity"),
    ]  # fmt: skip


def _gossip_negatives() -> list[dict[str, Any]]:
    """Gossip: REJECTs are the forwarder's fault (carol forwards here), stale or replayed
    messages are IGNOREd unpenalised (docs/PROTOCOL.md §4, §5)."""
    advert = next(m for n, _s, m in sample_messages() if n == "capacity_advert")
    announce = next(m for n, _s, m in sample_messages() if n == "job_announce")
    assert isinstance(announce, JobAnnounce)
    fresh = encode_envelope(BOB.key, advert, nonce=21, now_ms=NOW_MS)
    stale = encode_envelope(BOB.key, advert, nonce=22, now_ms=NOW_MS - 60_001)
    wrong_id = dataclasses.replace(announce, job_id=bytes(32))
    ignored = ("ClockSkew", "stale", 0)
    return [
        _neg("gossip_stale_advert", "bob's advert 60,001 ms old (gossip history), forwarded by "
             "carol: IGNORE, nobody penalised (the forwarder's 'stale' count goes up)", stale,
             ignored, path="gossip_capacity", peer=CAROL, origin=BOB, verdict="IGNORE"),
        _neg("gossip_replayed_advert", "bob's advert again (the prelude), forwarded by carol: "
             "IGNORE, nobody penalised", fresh, ("ReplayDetected", "replay_ignored", 0),
             path="gossip_capacity", peer=CAROL, origin=BOB, verdict="IGNORE", prelude=(fresh,)),
        _neg("gossip_origin_mismatch", "bob's valid advert in a pubsub message whose origin "
             "(from) is alice, forwarded by carol: carol pays", fresh,
             ("RemoteProtocolError", "sender_mismatch", 100), path="gossip_capacity", peer=CAROL,
             origin=ALICE),
        _neg("announce_job_id_not_spec_hash", "alice's announce with job_id = 32 zero bytes, "
             "forwarded by carol", encode_envelope(ALICE.key, wrong_id, nonce=23, now_ms=NOW_MS),
             ("IllegalMessage", "illegal_message", 50), path="gossip_jobs", peer=CAROL,
             origin=ALICE),
        _neg("announce_not_by_requester", "alice's job announced (signed) by bob, forwarded by "
             "carol", encode_envelope(BOB.key, announce, nonce=24, now_ms=NOW_MS),
             ("IllegalMessage", "illegal_message", 10), path="gossip_jobs", peer=CAROL,
             origin=BOB),
    ]  # fmt: skip


def _sync_negatives() -> list[dict[str, Any]]:
    sync = "record_sync_stream"
    return [
        _neg("sync_limit_zero", "a record-sync request [0, 0] (limit 1..256): closed unanswered",
             struct.pack(">I", 3) + packb([0, 0]), ("SyncError", "bad_sync_request", 25),
             path=sync),
        _neg("sync_not_canonical", "[0, 1] with 0 as uint8 (0xcc00): not canonical",
             struct.pack(">I", 4) + bytes.fromhex("92cc0001"), ("SyncError", "bad_sync_request",
                                                                 25), path=sync),
        _neg("sync_request_over_limit", "a 33-byte record-sync request (limit 32)",
             struct.pack(">I", 33) + bytes(33), FRAME_OVERSIZE, path=sync),
    ]  # fmt: skip


def leb128(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _frame_negatives() -> list[dict[str, Any]]:
    _signer, bid = envelope_of("bid")
    big_envelope = {
        "prefix_hex": struct.pack(">I", ENVELOPE_LIMIT + 1).hex() + "c6",
        "fill_hex": "00",
        "length": ENVELOPE_LIMIT + 5,
    }
    market = "market_stream"
    return [
        _neg("frame_over_limit", "a market frame announcing 1 GiB",
             struct.pack(">I", 1 << 30) + b"junk", FRAME_OVERSIZE, path=market),
        _neg("frame_varint_length", "LEB128 length prefix (the old spec's mistake): read as "
             "a 4-byte big-endian length it is far over the limit",
             leb128(len(bid)) + bid, FRAME_OVERSIZE, path=market),
        _neg("frame_truncated", "announces 100 bytes, sends 10, closes",
             struct.pack(">I", 100) + bytes(10), ("FrameError", "truncated", 25), path=market),
        _neg("frame_envelope_over_limit", "a 262,145-byte envelope in a legal (< 1 MiB) frame",
             big_envelope, OVERSIZE, path=market),
        _neg("content_request_over_limit", "a 257-byte content request (limit 256)",
             struct.pack(">I", 257) + b"M" + bytes(256), FRAME_OVERSIZE, path="content_stream"),
    ]  # fmt: skip


def negative_vectors() -> dict[str, Any]:
    return {
        "comment": "Inputs a receiver must refuse. 'path': envelope = the bytes of one envelope "
        "as received on a stream (framed as on the market protocol); gossip_capacity / "
        "gossip_jobs = an envelope on /pictor/1/capacity / /pictor/1/jobs, in a pubsub message "
        "whose origin ('from') is 'origin', forwarded by 'delivered_by'; market_stream / "
        "content_stream / record_sync_stream = raw bytes on a fresh stream of that protocol. "
        "'prelude' envelopes are received (and accepted) first, the same way (a market stream "
        "from the same peer, or gossip with the same origin and forwarder). 'error' is the reference's error class, 'reason' its metrics label, 'penalty' "
        "the points charged to the delivering peer (on gossip the forwarder), 'verdict' "
        "gossipsub's validation result (REJECT or IGNORE: either way not forwarded) "
        "(docs/PROTOCOL.md §4, §9). An input of prefix_hex/fill_hex/length is "
        "prefix_hex followed by fill_hex repeated up to length bytes. A whole market frame the "
        "gate refuses is answered 0x01 (refused for good, §6.1), then closed; broken framing, "
        "refused content requests and refused record-sync requests are closed without a reply.",
        "now_ms": NOW_MS,
        "vectors": _envelope_negatives() + _advert_negatives() + _gossip_negatives()
        + _frame_negatives() + _sync_negatives(),
    }
