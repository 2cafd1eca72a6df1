"""Protocol errors, named for whose fault they are (after h11).

``LocalProtocolError``: our own caller broke the rules (a bug on this side).
``RemoteProtocolError``: a peer sent something we refuse. It carries a
``penalty`` hint that the node's peer scorer adds to the sender's score, so a
peer that sends garbage is eventually disconnected while a peer whose clock is
merely off is only nudged.

``decode_envelope`` promises to raise nothing but ``RemoteProtocolError``
subclasses, whatever bytes it is given.
"""

from __future__ import annotations


class ProtocolError(Exception):
    """Base of every error the protocol layer raises on purpose."""


class LocalProtocolError(ProtocolError):
    """Our caller used the protocol wrongly (for example, an illegal command)."""


class IllegalTransition(LocalProtocolError):
    """A machine was asked to do something its state table does not allow."""


class RemoteProtocolError(ProtocolError):
    """A peer broke the protocol. ``penalty`` is a scoring hint (0..100)."""

    penalty: int = 10

    def __init__(self, message: str, *, penalty: int | None = None) -> None:
        super().__init__(message)
        if penalty is not None:
            self.penalty = penalty


class MalformedMessage(RemoteProtocolError):
    """The bytes are not canonical msgpack of the expected shape."""

    penalty = 25


class Oversize(MalformedMessage):
    """A message, string, bytes or collection is over its limit."""

    penalty = 50


class SchemaError(MalformedMessage):
    """Decodable, but the fields do not match the message schema."""


class UnknownMessageType(SchemaError):
    """The envelope names a message type this version does not define."""


class UnsupportedVersion(RemoteProtocolError):
    """The envelope's protocol version is not one we speak."""

    penalty = 1


class BadSignature(RemoteProtocolError):
    """The Ed25519 signature does not verify for the claimed sender."""

    penalty = 100


class ReplayDetected(RemoteProtocolError):
    """This (sender, nonce) was already accepted inside the skew window."""

    penalty = 20


class ClockSkew(RemoteProtocolError):
    """The envelope's timestamp is outside the accepted window around now."""

    penalty = 2


class IllegalMessage(RemoteProtocolError):
    """A well-formed, signed message that is not allowed in the machine's state."""

    penalty = 10


class BadBinding(RemoteProtocolError):
    """A node key / payment address binding does not verify."""

    penalty = 100
