"""Canonical encoding and strict schema decoding."""

from __future__ import annotations

import dataclasses

import msgpack
import pytest
from hypothesis import given
from hypothesis import strategies as st

from protocol.codec import Limits, _check_depth, from_wire, packb, to_wire, unpackb
from protocol.errors import LocalProtocolError, MalformedMessage, Oversize, SchemaError
from protocol.messages import Bid, Heartbeat, JobAnnounce
from tests.protocol.strategies import any_message, strategy_for

plain = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**64 - 1) | st.text() | st.binary(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)


@given(any_message)
def test_every_message_round_trips(message: object) -> None:
    data = packb(to_wire(message))
    assert from_wire(type(message), unpackb(data)) == message


@given(plain)
def test_same_value_same_bytes_and_decode_accepts_them(value: object) -> None:
    data = packb(value)
    if isinstance(value, dict):  # a permuted dict is the same value
        assert packb(dict(reversed(list(value.items())))) == data
    assert packb(unpackb(data)) == data


@given(plain)
def test_decode_takes_the_canonical_packing_and_nothing_else(value: object) -> None:
    """``unpackb`` checks map order and leaf types, then packs the decoded data as it
    came (no sorted copy): a packing in any other key order, at any depth, is refused."""
    as_is = msgpack.packb(value, use_bin_type=True)  # maps in their insertion order
    if as_is == packb(value):
        assert unpackb(as_is) == value
    else:
        with pytest.raises(MalformedMessage, match="canonical"):
            unpackb(as_is)


def test_non_canonical_forms_are_refused() -> None:
    unsorted = msgpack.packb({"b": 1, "a": 2})
    wide_int = b"\xcd\x00\x01"  # uint16 holding 1, canonical is 0x01
    str_as_bin = msgpack.packb({"a": "x"}, use_bin_type=False)
    for data in (unsorted, wide_int):
        with pytest.raises(MalformedMessage, match="canonical"):
            unpackb(data)
    assert unpackb(str_as_bin) == {"a": "x"}  # short str is the same either way


def test_floats_and_ext_types_are_not_protocol() -> None:
    with pytest.raises(MalformedMessage):
        unpackb(msgpack.packb(1.5))
    for deep in ({"a": [1, {"b": 2.5}]}, [[0.0]], {"a": 1, "b": {"c": [None, 1.0]}}):
        with pytest.raises(MalformedMessage, match="floats"):
            unpackb(msgpack.packb(deep))
    with pytest.raises(MalformedMessage, match="keys must be str"):
        unpackb(msgpack.packb({"a": {b"k": 1}}, use_bin_type=True))
    with pytest.raises(MalformedMessage) as ext:
        unpackb(msgpack.packb(msgpack.ExtType(5, b"x")))
    assert not isinstance(ext.value, Oversize)  # not a size problem (penalty 25, not 50)
    with pytest.raises(LocalProtocolError):
        packb({"a": 0.5})


def test_limits_are_enforced() -> None:
    small = Limits(max_message_bytes=100, max_depth=3, max_collection_len=4, max_str_len=8)
    with pytest.raises(Oversize):
        unpackb(packb("x" * 200), small)
    with pytest.raises(Oversize):
        unpackb(packb([1, 2, 3, 4, 5]), small)
    with pytest.raises(Oversize):
        unpackb(packb([[[[1]]]]), small)
    with pytest.raises(Oversize):
        unpackb(packb("y" * 20), Limits(max_str_len=8, max_bytes_len=8))


def _bid_wire() -> dict[str, object]:
    bid = Bid(
        job_id=b"j" * 32,
        frames_wanted=3,
        price_wei_per_frame=10**18,
        eta_s_per_frame=30,
        payment_address=b"a" * 20,
    )
    wire = to_wire(bid)
    assert isinstance(wire, dict)
    return wire


def test_unknown_missing_and_mistyped_fields_name_the_path() -> None:
    wire = _bid_wire()
    with pytest.raises(SchemaError, match="unknown field"):
        from_wire(Bid, {**wire, "bonus": 1})
    with pytest.raises(SchemaError, match="missing field"):
        from_wire(Bid, {k: v for k, v in wire.items() if k != "job_id"})
    with pytest.raises(SchemaError, match=r"Bid\.frames_wanted"):
        from_wire(Bid, {**wire, "frames_wanted": "3"})
    with pytest.raises(SchemaError, match=r"Bid\.frames_wanted"):
        from_wire(Bid, {**wire, "frames_wanted": True})  # bool is not an int here
    with pytest.raises(SchemaError, match=r"Bid\.job_id"):
        from_wire(Bid, {**wire, "job_id": b"short"})


def test_integer_bounds_both_ways() -> None:
    with pytest.raises(SchemaError, match="outside"):
        from_wire(Heartbeat, {"job_id": b"j" * 32, "task_id": b"t" * 32, "progress_permille": 1001})
    with pytest.raises(LocalProtocolError):
        to_wire(Heartbeat(job_id=b"j" * 32, task_id=b"t" * 32, progress_permille=-1))


def test_wei_amounts_travel_as_32_byte_integers() -> None:
    wire = _bid_wire()
    assert wire["price_wei_per_frame"] == (10**18).to_bytes(32, "big")
    with pytest.raises(SchemaError, match="32-byte"):
        from_wire(Bid, {**wire, "price_wei_per_frame": 5})


@given(strategy_for(JobAnnounce))
def test_cross_field_checks_become_schema_errors(message: JobAnnounce) -> None:
    wire = to_wire(message)
    assert isinstance(wire, dict) and isinstance(wire["spec"], dict)
    repeated = {**wire, "spec": {**wire["spec"], "frames": [1, 1]}}
    with pytest.raises(SchemaError, match="repeats"):
        from_wire(JobAnnounce, repeated)
    assert dataclasses.is_dataclass(message)


def _packb_by_encoded_keys(obj: object) -> bytes:
    """The canonical form as first written: map keys sorted by their UTF-8 bytes."""

    def canon(o: object) -> object:
        if isinstance(o, dict):
            return {k: canon(o[k]) for k in sorted(o, key=lambda k: k.encode())}
        if isinstance(o, list | tuple):
            return [canon(v) for v in o]
        return o

    return msgpack.packb(canon(obj), use_bin_type=True)  # type: ignore[no-any-return]


plain = st.recursive(
    st.none() | st.booleans() | st.integers(0, 2**64 - 1) | st.binary(max_size=8) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=6),
    max_leaves=30,
)


@given(plain)
def test_keys_in_str_order_are_keys_in_utf8_byte_order(value: object) -> None:
    """packb sorts map keys as str, not by their encoded bytes: the same bytes, for any
    keys (astral and surrogate-free text included: UTF-8 keeps code point order)."""
    assert packb(value) == _packb_by_encoded_keys(value)


def test_key_order_across_utf8_lengths() -> None:
    keys = {"\U0001f600": 1, "\uffff": 2, "\u00e9": 3, "z": 4, "": 5, "\u0800": 6}
    assert packb(keys) == _packb_by_encoded_keys(keys)
    assert list(unpackb(packb(keys))) == ["", "z", "\u00e9", "\u0800", "\uffff", "\U0001f600"]


def _depth_refused_as_first_written(obj: object, max_depth: int) -> bool:
    stack: list[tuple[object, int]] = [(obj, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict | list):
            if depth >= max_depth:
                return True
            children = item.values() if isinstance(item, dict) else item
            stack.extend((child, depth + 1) for child in children)
    return False


@given(plain, st.integers(0, 6))
def test_the_depth_check_refuses_what_it_refused(value: object, max_depth: int) -> None:
    """_check_depth keeps only containers on its stack: the same values refused."""
    refused = False
    try:
        _check_depth(value, max_depth)
    except Oversize:
        refused = True
    assert refused == _depth_refused_as_first_written(value, max_depth)
