"""Signed envelopes: the only thing that ever crosses the wire.

Wire form: canonical msgpack array of seven items::

    [version, type, sender, nonce, timestamp_ms, body, signature]

``version`` is :data:`protocol.topics.PROTOCOL_VERSION`; ``type`` a message
``TYPE`` string; ``sender`` the 32-byte Ed25519 public key; ``nonce`` a u64
the sender never reuses inside the skew window (random is fine);
``timestamp_ms`` the sender's clock; ``body`` the message as a map.
``signature`` is Ed25519 over ``SIGNING_DOMAIN || msgpack([first six items])``
— the domain prefix keeps an envelope signature from ever being valid as any
other Pictor signature (key bindings, job ids).

:func:`decode_envelope` checks, in order: size, canonical msgpack, shape,
version, signature (before any schema work on the body, so unsigned junk costs
little), then the body schema. It raises only ``RemoteProtocolError``
subclasses, for any input. Replay and clock checks need ``now`` and state, so
they live in :class:`protocol.replay.ReplayGuard`.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

from protocol.codec import DEFAULT_LIMITS, Limits, from_wire, packb, to_wire, unpackb
from protocol.errors import (
    LocalProtocolError,
    MalformedMessage,
    RemoteProtocolError,
    SchemaError,
    UnknownMessageType,
    UnsupportedVersion,
)
from protocol.identity import NodeId, NodeKey
from protocol.messages import MESSAGE_TYPES, Message
from protocol.topics import PROTOCOL_VERSION

SIGNING_DOMAIN = b"pictor/envelope/v1\x00"
_U64_MAX = 2**64 - 1
# The canonical wire is the signed part's array of six with the signature appended: an
# array's header (fixarray: 0x90 + its length) and a 64-byte bin's (0xc4, 64) are fixed,
# so neither side packs the envelope twice (tests/protocol/test_envelope.py: the same
# bytes as packing it whole).
_ARRAY_6, _ARRAY_7, _BIN_64 = b"\x96", b"\x97", b"\xc4\x40"
_SIGNATURE_TAIL = len(_BIN_64) + 64


@dataclass(frozen=True)
class Envelope:
    """A decoded envelope whose signature has been verified."""

    version: int
    sender: NodeId
    nonce: int
    timestamp_ms: int
    message: Message
    digest: bytes  # SHA-256 of the wire bytes: a stable id for this envelope
    # the wire bytes themselves, so a receiver can pass the signed original on
    # (the public work record carries a worker's Result and a checker's Verdict)
    wire: bytes = field(default=b"", repr=False, compare=False)

    @property
    def type(self) -> str:
        return type(self.message).TYPE


def encode_envelope(key: NodeKey, message: Message, *, nonce: int, now_ms: int) -> bytes:
    """Sign ``message`` as ``key`` and return the wire bytes."""
    msg_type = getattr(type(message), "TYPE", None)
    if MESSAGE_TYPES.get(msg_type) is not type(message):  # type: ignore[arg-type]
        raise LocalProtocolError(f"{type(message).__name__} is not a wire message")
    if not (0 <= nonce <= _U64_MAX and 0 <= now_ms <= _U64_MAX):
        raise LocalProtocolError("nonce and now_ms must be u64")
    head: list[Any] = [PROTOCOL_VERSION, msg_type, key.node_id.raw, nonce, now_ms, to_wire(message)]
    signed = packb(head)
    signature = key.sign(SIGNING_DOMAIN + signed)
    data = _ARRAY_7 + signed[1:] + _BIN_64 + signature  # packb([*head, signature])
    if len(data) > DEFAULT_LIMITS.max_message_bytes:
        raise LocalProtocolError(f"{msg_type} encodes to {len(data)} bytes, over the limit")
    return data


def decode_envelope(data: bytes, limits: Limits = DEFAULT_LIMITS) -> Envelope:
    """Verify and decode wire bytes; raises only ``RemoteProtocolError``."""
    try:
        return _decode(data, limits)
    except RemoteProtocolError:
        raise
    except Exception as exc:  # the promise: nothing but RemoteProtocolError escapes
        raise MalformedMessage(f"undecodable envelope: {type(exc).__name__}") from None


def _decode(data: bytes, limits: Limits) -> Envelope:
    obj = unpackb(data, limits)  # (refuses what is not bytes, bytearray or memoryview)
    data = bytes(data)
    if type(obj) is not list or len(obj) != 7:
        raise MalformedMessage("an envelope is an array of 7 items")
    version, msg_type, sender, nonce, timestamp_ms, body, signature = obj
    if version != PROTOCOL_VERSION or type(version) is not int:
        raise UnsupportedVersion(f"protocol version {version!r:.20} (we speak {PROTOCOL_VERSION})")
    if type(sender) is not bytes or len(sender) != 32:
        raise SchemaError("envelope sender must be 32 bytes")
    if type(signature) is not bytes or len(signature) != 64:
        raise SchemaError("envelope signature must be 64 bytes")
    for name, value in (("nonce", nonce), ("timestamp_ms", timestamp_ms)):
        if type(value) is not int or not 0 <= value <= _U64_MAX:
            raise SchemaError(f"envelope {name} must be a u64")
    sender_id = NodeId(sender)
    # canonical (unpackb compared it with its repacking), so the signed part's bytes are
    # the wire's, less the signature and with the array of six's header
    sender_id.verify(SIGNING_DOMAIN + _ARRAY_6 + data[1:-_SIGNATURE_TAIL], signature)
    cls = MESSAGE_TYPES.get(msg_type) if type(msg_type) is str else None
    if cls is None:
        raise UnknownMessageType(f"unknown message type {msg_type!r:.40}")
    message: Message = from_wire(cls, body, limits)
    digest = hashlib.sha256(data).digest()
    return Envelope(version, sender_id, nonce, timestamp_ms, message, digest, data)
