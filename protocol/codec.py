"""Canonical msgpack and strict schema decoding.

Theory of operation
-------------------
A value has exactly one encoding: maps are written with their keys sorted by
their UTF-8 bytes, integers in their shortest form (msgpack does that), bytes
as ``bin`` and strings as ``str``; floats, ext types and non-string map keys
are not part of the protocol at all. On decode we re-encode what we read and
refuse the input unless the bytes are identical, so a signature covers one and
only one byte string (no malleability, and equal values hash equally).

Messages are frozen dataclasses. Each field's annotation is the schema: plain
``int``/``bool``/``str``/``bytes``, ``tuple[X, ...]``, nested dataclasses,
``StrEnum`` members and ``X | None``, bounded with ``Annotated[..., Range(..)]``
or ``Annotated[..., MaxLen(..)]`` / ``ExactLen(..)``. A field without an
explicit bound gets the default from :class:`Limits`. Unknown and missing
fields are refused, and so is a wrong type anywhere, with the field's path in
the error so a peer's author can see what they sent wrong.
"""

from __future__ import annotations

import dataclasses
import enum
import types
import typing
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Annotated, Any, TypeVar, Union

import msgpack

from protocol.errors import LocalProtocolError, MalformedMessage, Oversize, SchemaError


@dataclass(frozen=True)
class Limits:
    """Hard limits applied while decoding untrusted bytes."""

    max_message_bytes: int = 256 * 1024
    max_depth: int = 8
    max_collection_len: int = 10_000
    max_str_len: int = 4_096
    max_bytes_len: int = 64 * 1024


DEFAULT_LIMITS = Limits()


@dataclass(frozen=True)
class Range:
    """Inclusive bounds of an integer field."""

    lo: int
    hi: int


@dataclass(frozen=True)
class MaxLen:
    """Largest length of a str (in code points), bytes or tuple field."""

    n: int


@dataclass(frozen=True)
class ExactLen:
    """Exact length of a bytes field (keys, hashes, signatures)."""

    n: int


U16 = Annotated[int, Range(0, 2**16 - 1)]
U32 = Annotated[int, Range(0, 2**32 - 1)]
U64 = Annotated[int, Range(0, 2**64 - 1)]
U256 = Annotated[int, Range(0, 2**256 - 1)]
Bytes20 = Annotated[bytes, ExactLen(20)]
Bytes32 = Annotated[bytes, ExactLen(32)]
Bytes64 = Annotated[bytes, ExactLen(64)]
Bytes65 = Annotated[bytes, ExactLen(65)]
Name = Annotated[str, MaxLen(64)]
Text = Annotated[str, MaxLen(1024)]

# msgpack ints are at most 64 bits; larger integers (wei amounts) travel as
# 32-byte big-endian bin, chosen by the schema type, never by the value.
_BIG_INT_BYTES = 32
_MSGPACK_INT_MAX = 2**64 - 1

T = TypeVar("T")
Converter = Callable[[object, str], object]
Encoder = Callable[[object], object]


def packb(obj: object) -> bytes:
    """Canonical msgpack bytes of plain data (dicts, lists, ints, str, bytes, bool, None)."""
    return msgpack.packb(_sorted(obj), use_bin_type=True)  # type: ignore[no-any-return]


_LEAF_TYPES = frozenset({int, str, bytes, bool, type(None)})


def _sorted(obj: object) -> object:
    """``obj`` with every map's keys in the order of their UTF-8 bytes, which is the
    order of the str keys themselves (UTF-8 keeps code point order; tests/protocol/
    test_codec.py compares the two), leaves of the exact plain types returned at once:
    a 24-tile Verdict's envelope packs in 153 µs, not 268 (sorting by encoded keys;
    measured under load), and packing was about a sixth of a simulated run."""
    if type(obj) in _LEAF_TYPES:
        return obj
    if isinstance(obj, dict):
        for key in obj:
            if not isinstance(key, str):
                raise LocalProtocolError(f"map keys must be str, got {type(key).__name__}")
        return {k: _sorted(obj[k]) for k in sorted(obj)}
    if isinstance(obj, list | tuple):
        return [_sorted(v) for v in obj]
    if isinstance(obj, float):
        raise LocalProtocolError("floats are not part of the protocol; use integers with units")
    return obj


def unpackb(data: bytes, limits: Limits = DEFAULT_LIMITS) -> Any:
    """Decode untrusted bytes; raise only ``MalformedMessage``/``Oversize``."""
    if not isinstance(data, bytes | bytearray | memoryview):
        raise MalformedMessage(f"expected bytes, got {type(data).__name__}")
    data = bytes(data)
    if len(data) > limits.max_message_bytes:
        raise Oversize(f"message of {len(data)} bytes exceeds {limits.max_message_bytes}")
    try:
        obj = msgpack.unpackb(
            data,
            raw=False,
            strict_map_key=True,
            use_list=True,
            max_str_len=max(limits.max_str_len, limits.max_bytes_len),
            max_bin_len=limits.max_bytes_len,
            max_array_len=limits.max_collection_len,
            max_map_len=limits.max_collection_len,
            max_ext_len=0,
            ext_hook=_refuse_ext,
            timestamp=0,
        )
    except MalformedMessage:
        raise
    except ValueError as exc:
        # max_ext_len=0 makes msgpack report any ext value as "exceeds": it is
        # a type that is not part of the protocol, not an oversize one.
        if "exceeds" in str(exc) and "max_ext_len" not in str(exc):
            raise Oversize(f"undecodable: {exc}") from None
        raise MalformedMessage(f"undecodable: {exc}") from None
    except Exception as exc:  # msgpack raises a zoo of types; all mean the same
        raise MalformedMessage(f"undecodable: {type(exc).__name__}: {exc}") from None
    _check_depth(obj, limits.max_depth)
    try:
        in_order = _check_plain(obj)
    except LocalProtocolError as exc:
        raise MalformedMessage(f"not canonical: {exc}") from None
    # maps in key order (checked): the decoded object packs as it came, without the copy
    # that ``packb`` sorts into
    if not in_order or msgpack.packb(obj, use_bin_type=True) != data:
        raise MalformedMessage("not canonical msgpack (key order, int width or str/bin form)")
    return obj


def _check_plain(obj: object) -> bool:
    """Raise ``LocalProtocolError`` where ``_sorted`` would (a map key not a str, a
    float); whether every map's keys are in ``_sorted``'s order. Decoded data that
    passes packs as it came (``msgpack`` keeps a map's order) to what ``packb`` makes of
    it, without ``_sorted``'s copy of every map and list. Only containers go on the
    stack."""
    if type(obj) is not dict and type(obj) is not list:
        if type(obj) is float:
            raise LocalProtocolError("floats are not part of the protocol; use integers with units")
        return True
    in_order = True
    stack: list[dict[Any, Any] | list[Any]] = [obj]
    while stack:
        item = stack.pop()
        if type(item) is dict:
            keys = list(item)
            for key in keys:
                if type(key) is not str:
                    raise LocalProtocolError(f"map keys must be str, got {type(key).__name__}")
            if in_order and keys != sorted(keys):
                in_order = False  # (a float or key type deeper still raises, as before)
            values: Iterable[object] = item.values()
        else:
            values = item
        for child in values:
            kind = type(child)
            if kind is dict or kind is list:
                stack.append(child)  # type: ignore[arg-type]
            elif kind is float:
                raise LocalProtocolError(
                    "floats are not part of the protocol; use integers with units"
                )
    return in_order


def _refuse_ext(code: int, data: bytes) -> object:
    raise MalformedMessage(f"msgpack ext type {code} is not part of the protocol")


def _check_depth(obj: object, max_depth: int) -> None:
    """Raise ``Oversize`` when a map or list sits ``max_depth`` levels deep. Only
    containers go on the stack (every leaf did: this was ~40 % slower, and decoding
    runs it on every message)."""
    if not isinstance(obj, dict | list):
        return
    stack: list[tuple[dict[object, object] | list[object], int]] = [(obj, 0)]
    while stack:
        item, depth = stack.pop()
        if depth >= max_depth:
            raise Oversize(f"nesting deeper than {max_depth}")
        for child in item.values() if isinstance(item, dict) else item:
            if isinstance(child, dict | list):
                stack.append((child, depth + 1))


# ---------------------------------------------------------------- schemas


@dataclass(frozen=True)
class _Schema:
    decode: Converter
    encode: Encoder


_CACHE: dict[object, _Schema] = {}


def to_wire(value: object) -> object:
    """Plain msgpack-ready data for a message dataclass (validates bounds too)."""
    return schema_for(type(value)).encode(value)


def from_wire(cls: type[T], obj: object, limits: Limits = DEFAULT_LIMITS) -> T:
    """Build ``cls`` from decoded data, or raise ``SchemaError`` naming the path."""
    return typing.cast(T, _schema(cls, limits).decode(obj, cls.__name__))


def schema_for(tp: object) -> _Schema:
    return _schema(tp, DEFAULT_LIMITS)


def _schema(tp: object, limits: Limits) -> _Schema:
    key = (tp, limits)
    found = _CACHE.get(key)
    if found is None:
        found = _compile(tp, (), limits)
        _CACHE[key] = found
    return found


def _compile(tp: object, extras: tuple[object, ...], limits: Limits) -> _Schema:
    origin = typing.get_origin(tp)
    if origin is Annotated:
        base, *meta = typing.get_args(tp)
        return _compile(base, (*extras, *meta), limits)
    if origin in (Union, types.UnionType):
        return _optional(tp, extras, limits)
    if origin is tuple:
        return _tuple(tp, extras, limits)
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        return _dataclass(tp, limits)
    if isinstance(tp, type) and issubclass(tp, enum.StrEnum):
        return _enum(tp)
    if tp is bool:
        return _Schema(_expect(bool), _check_type(bool))
    if tp is int:
        return _int(_find(extras, Range))
    if tp is str:
        return _str(_bound(extras, limits.max_str_len))
    if tp is bytes:
        return _bytes(_find(extras, ExactLen), _bound(extras, limits.max_bytes_len))
    raise TypeError(f"type {tp!r} is not supported in protocol messages")


def _find(extras: tuple[object, ...], kind: type[T]) -> T | None:
    for item in extras:
        if isinstance(item, kind):
            return item
    return None


def _bound(extras: tuple[object, ...], default: int) -> int:
    found = _find(extras, MaxLen)
    return found.n if found is not None else default


def _expect(kind: type) -> Converter:
    def decode(obj: object, path: str) -> object:
        if type(obj) is not kind:
            raise SchemaError(f"{path}: expected {kind.__name__}, got {type(obj).__name__}")
        return obj

    return decode


def _check_type(kind: type) -> Encoder:
    def encode(value: object) -> object:
        if type(value) is not kind:
            raise LocalProtocolError(f"expected {kind.__name__}, got {type(value).__name__}")
        return value

    return encode


def _int(bounds: Range | None) -> _Schema:
    lo, hi = (bounds.lo, bounds.hi) if bounds else (-(2**63), 2**64 - 1)
    big = hi > _MSGPACK_INT_MAX
    if big and lo < 0:
        raise TypeError("signed integers wider than 64 bits are not supported")

    def decode(obj: object, path: str) -> object:
        if big:
            if type(obj) is not bytes or len(obj) != _BIG_INT_BYTES:
                raise SchemaError(f"{path}: expected a 32-byte big-endian integer")
            obj = int.from_bytes(obj, "big")
        elif type(obj) is not int:
            raise SchemaError(f"{path}: expected int, got {type(obj).__name__}")
        assert isinstance(obj, int)
        if not lo <= obj <= hi:
            raise SchemaError(f"{path}: {obj} outside [{lo}, {hi}]")
        return obj

    def encode(value: object) -> object:
        if type(value) is not int or not lo <= value <= hi:
            raise LocalProtocolError(f"integer {value!r} outside [{lo}, {hi}]")
        return value.to_bytes(_BIG_INT_BYTES, "big") if big else value

    return _Schema(decode, encode)


def _str(max_len: int) -> _Schema:
    def decode(obj: object, path: str) -> object:
        if type(obj) is not str:
            raise SchemaError(f"{path}: expected str, got {type(obj).__name__}")
        if len(obj) > max_len:
            raise Oversize(f"{path}: string of {len(obj)} > {max_len}")
        return obj

    def encode(value: object) -> object:
        if type(value) is not str or len(value) > max_len:
            raise LocalProtocolError(f"string {value!r:.40} is not a str of at most {max_len}")
        return value

    return _Schema(decode, encode)


def _bytes(exact: ExactLen | None, max_len: int) -> _Schema:
    def ok(obj: object) -> bool:
        if type(obj) is not bytes:
            return False
        return len(obj) == exact.n if exact else len(obj) <= max_len

    want = f"exactly {exact.n}" if exact else f"at most {max_len}"

    def decode(obj: object, path: str) -> object:
        if not ok(obj):
            raise SchemaError(f"{path}: expected bytes of {want} bytes")
        return obj

    def encode(value: object) -> object:
        if not ok(value):
            raise LocalProtocolError(f"expected bytes of {want} bytes, got {value!r:.40}")
        return value

    return _Schema(decode, encode)


def _enum(tp: type[enum.StrEnum]) -> _Schema:
    def decode(obj: object, path: str) -> object:
        try:
            return tp(obj)  # type: ignore[arg-type]
        except ValueError:
            allowed = ", ".join(m.value for m in tp)
            raise SchemaError(f"{path}: {obj!r:.40} is not one of {allowed}") from None

    def encode(value: object) -> object:
        if not isinstance(value, tp):
            raise LocalProtocolError(f"expected {tp.__name__}, got {value!r:.40}")
        return value.value

    return _Schema(decode, encode)


def _optional(tp: object, extras: tuple[object, ...], limits: Limits) -> _Schema:
    args = [a for a in typing.get_args(tp) if a is not type(None)]
    if len(args) != 1 or len(typing.get_args(tp)) != 2:
        raise TypeError(f"only `X | None` unions are supported, got {tp!r}")
    inner = _compile(args[0], extras, limits)

    def decode(obj: object, path: str) -> object:
        return None if obj is None else inner.decode(obj, path)

    def encode(value: object) -> object:
        return None if value is None else inner.encode(value)

    return _Schema(decode, encode)


def _tuple(tp: object, extras: tuple[object, ...], limits: Limits) -> _Schema:
    args = typing.get_args(tp)
    if len(args) != 2 or args[1] is not Ellipsis:
        raise TypeError(f"only tuple[X, ...] is supported, got {tp!r}")
    item = _compile(args[0], (), limits)
    max_len = _bound(extras, limits.max_collection_len)

    def decode(obj: object, path: str) -> object:
        if type(obj) is not list:
            raise SchemaError(f"{path}: expected array, got {type(obj).__name__}")
        if len(obj) > max_len:
            raise Oversize(f"{path}: {len(obj)} items > {max_len}")
        return tuple(item.decode(v, f"{path}[{i}]") for i, v in enumerate(obj))

    def encode(value: object) -> object:
        if not isinstance(value, tuple) or len(value) > max_len:
            raise LocalProtocolError(f"expected a tuple of at most {max_len} items")
        return [item.encode(v) for v in value]

    return _Schema(decode, encode)


def _dataclass(cls: type, limits: Limits) -> _Schema:
    hints = typing.get_type_hints(cls, include_extras=True)
    fields = [f.name for f in dataclasses.fields(cls)]
    subs = {name: _compile(hints[name], (), limits) for name in fields}
    names = frozenset(fields)

    def decode(obj: object, path: str) -> object:
        if type(obj) is not dict:
            raise SchemaError(f"{path}: expected map, got {type(obj).__name__}")
        unknown = obj.keys() - names
        if unknown:
            raise SchemaError(f"{path}: unknown field(s) {sorted(map(str, unknown))}")
        missing = names - obj.keys()
        if missing:
            raise SchemaError(f"{path}: missing field(s) {sorted(missing)}")
        values = {n: subs[n].decode(obj[n], f"{path}.{n}") for n in fields}
        try:
            return cls(**values)
        except (ValueError, TypeError) as exc:  # __post_init__ cross-field checks
            raise SchemaError(f"{path}: {exc}") from None

    def encode(value: object) -> object:
        if type(value) is not cls:
            raise LocalProtocolError(f"expected {cls.__name__}, got {type(value).__name__}")
        return {n: subs[n].encode(getattr(value, n)) for n in fields}

    return _Schema(decode, encode)
