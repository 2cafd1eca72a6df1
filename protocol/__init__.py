"""Pictor's sans-I/O protocol core.

Identities, the canonical codec, signed envelopes, every wire message, and the
market / verification machines. Nothing here reads a clock, a socket, a file
or a random source of its own: time comes in as ``now``, randomness as an
explicit ``random.Random`` or a seed derived from message bytes, and I/O goes
out as returned commands. ``tests/protocol/test_purity.py`` enforces it.

Stable entry points for other code and outside tools::

    encode_envelope(key, message, nonce=..., now_ms=...) -> bytes
    decode_envelope(data) -> Envelope   # or raises a RemoteProtocolError subclass
"""

from protocol.envelope import Envelope, decode_envelope, encode_envelope
from protocol.errors import (
    LocalProtocolError,
    ProtocolError,
    RemoteProtocolError,
)
from protocol.identity import NodeId, NodeKey, PaymentBinding
from protocol.replay import ReplayGuard

__all__ = [
    "Envelope",
    "LocalProtocolError",
    "NodeId",
    "NodeKey",
    "PaymentBinding",
    "ProtocolError",
    "RemoteProtocolError",
    "ReplayGuard",
    "decode_envelope",
    "encode_envelope",
]
