"""Signed envelopes: round trips, tampering, and hostile bytes."""

from __future__ import annotations

import time

import msgpack
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from protocol import NodeKey, RemoteProtocolError, decode_envelope, encode_envelope
from protocol.codec import packb
from protocol.envelope import SIGNING_DOMAIN
from protocol.errors import (
    BadSignature,
    LocalProtocolError,
    MalformedMessage,
    Oversize,
    UnknownMessageType,
    UnsupportedVersion,
)
from protocol.messages import Heartbeat, Result
from tests.protocol.strategies import any_message

KEY = NodeKey(bytes(range(32)))
OTHER = NodeKey(bytes(range(1, 33)))


def result_message() -> Result:
    return Result(
        job_id=b"j" * 32,
        task_id=b"t" * 32,
        frame=7,
        frame_cid="bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku",
        frame_size_bytes=1_234_567,
        render_time_ms=31_000,
        renderer_build="blender-3.4.1",
        device_class="cpu-avx2",
    )


@given(any_message, st.integers(0, 2**64 - 1), st.integers(0, 2**64 - 1))
def test_every_message_round_trips_through_a_signed_envelope(msg, nonce, now_ms) -> None:
    env = decode_envelope(encode_envelope(KEY, msg, nonce=nonce, now_ms=now_ms))
    assert (env.message, env.sender, env.nonce, env.timestamp_ms) == (
        msg,
        KEY.node_id,
        nonce,
        now_ms,
    )


@given(any_message, st.integers(0, 2**64 - 1))
def test_the_wire_is_the_whole_envelope_packed_and_signed(msg, nonce) -> None:
    """``encode_envelope`` appends the signature to the signed part's bytes and
    ``decode_envelope`` verifies the wire's own bytes, neither packing twice: the same
    bytes and signature as packing the seven items whole."""
    wire = encode_envelope(KEY, msg, nonce=nonce, now_ms=5)
    items = msgpack.unpackb(wire, raw=False)
    assert packb(items) == wire
    KEY.node_id.verify(SIGNING_DOMAIN + packb(items[:6]), items[6])


@settings(suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_flipping_any_byte_breaks_verification(data) -> None:
    wire = encode_envelope(KEY, result_message(), nonce=1, now_ms=2)
    index = data.draw(st.integers(0, len(wire) - 1))
    xor = data.draw(st.integers(1, 255))
    tampered = wire[:index] + bytes([wire[index] ^ xor]) + wire[index + 1 :]
    with pytest.raises(RemoteProtocolError):
        decode_envelope(tampered)


def test_a_signature_by_another_key_is_refused() -> None:
    wire = encode_envelope(KEY, result_message(), nonce=1, now_ms=2)
    items = msgpack.unpackb(wire)
    items[6] = OTHER.sign(SIGNING_DOMAIN + packb(items[:6]))
    with pytest.raises(BadSignature):
        decode_envelope(packb(items))


def test_signature_is_domain_separated() -> None:
    wire = encode_envelope(KEY, result_message(), nonce=1, now_ms=2)
    items = msgpack.unpackb(wire)
    items[6] = KEY.sign(packb(items[:6]))  # right key, no domain prefix
    with pytest.raises(BadSignature):
        decode_envelope(packb(items))


def _resigned(items: list[object]) -> bytes:
    items[6] = KEY.sign(SIGNING_DOMAIN + packb(items[:6]))
    return packb(items)


def test_unknown_type_version_and_fields_are_refused_even_when_signed() -> None:
    items = msgpack.unpackb(encode_envelope(KEY, result_message(), nonce=1, now_ms=2))
    with pytest.raises(UnknownMessageType):
        decode_envelope(_resigned([*items[:1], "teleport", *items[2:]]))
    with pytest.raises(UnsupportedVersion):
        decode_envelope(_resigned([2, *items[1:]]))
    body = dict(items[5])
    body["extra"] = 1
    with pytest.raises(RemoteProtocolError, match="unknown field"):
        decode_envelope(_resigned([*items[:5], body, items[6]]))


def test_encode_refuses_what_is_not_a_wire_message() -> None:
    with pytest.raises(LocalProtocolError):
        encode_envelope(KEY, "hello", nonce=1, now_ms=2)  # type: ignore[arg-type]
    with pytest.raises(LocalProtocolError):
        encode_envelope(KEY, result_message(), nonce=-1, now_ms=2)


HOSTILE = [
    b"",
    b"\x97",  # array of 7, truncated
    b"\xdd\xff\xff\xff\xff",  # array claiming 4 billion items
    b"\xdb\xff\xff\xff\xff" + b"a" * 10,  # str claiming 4 GB
    b"\xc6\x7f\xff\xff\xff",  # bin claiming 2 GB
    b"\x91" * 5000 + b"\x00",  # nesting 5000 deep
    b"\x81" * 3000 + b"\xa1a" * 3000,  # nested maps
    b"\xcb" + b"\x7f" * 8,  # a float
    b"\xc1",  # reserved byte
    b"\x00" * (300 * 1024),  # over the size limit
]


@pytest.mark.parametrize("data", HOSTILE)
def test_hostile_inputs_raise_only_remote_errors_quickly(data: bytes) -> None:
    # CPU time of this process, not wall time: under CI's parallel workers the nested
    # maps read 0.68 s of wall time once (stop 42) while their decode is milliseconds
    started = time.process_time()
    with pytest.raises(RemoteProtocolError):
        decode_envelope(data)
    assert time.process_time() - started < 0.5


def test_oversize_is_its_own_error() -> None:
    with pytest.raises(Oversize):
        decode_envelope(b"\x00" * (300 * 1024))
    with pytest.raises(MalformedMessage):
        decode_envelope(b"\x91" * 5000 + b"\x00")


@given(st.binary(max_size=2048))
def test_arbitrary_bytes_raise_only_remote_protocol_errors(data: bytes) -> None:
    with pytest.raises(RemoteProtocolError):
        decode_envelope(data)


@given(st.lists(st.integers(0, 255), min_size=1, max_size=16), st.data())
def test_truncations_and_splices_of_valid_envelopes(cuts, data) -> None:
    wire = encode_envelope(KEY, Heartbeat(b"j" * 32, b"t" * 32, 5), nonce=9, now_ms=9)
    cut = data.draw(st.integers(0, len(wire) - 1))
    for candidate in (wire[:cut], wire[:cut] + bytes(cuts), bytes(cuts) + wire):
        with pytest.raises(RemoteProtocolError):
            decode_envelope(candidate)


def test_decode_accepts_bytearray_and_memoryview() -> None:
    wire = encode_envelope(KEY, result_message(), nonce=1, now_ms=2)
    assert decode_envelope(bytearray(wire)).message == result_message()  # type: ignore[arg-type]
    assert decode_envelope(memoryview(wire)).message == result_message()  # type: ignore[arg-type]
    for not_bytes in ("not bytes", list(wire), 10**4):  # (an int is not a size to allocate)
        with pytest.raises(MalformedMessage, match="expected bytes"):
            decode_envelope(not_bytes)  # type: ignore[arg-type]
