"""Hypothesis strategies built from the message schemas themselves.

Reading the same annotations the codec reads means a new message or field is
covered by the round-trip tests without anyone remembering to add it.
"""

from __future__ import annotations

import dataclasses
import enum
import types
import typing
from typing import Annotated, Any, Union

from hypothesis import strategies as st

from protocol.codec import DEFAULT_LIMITS, ExactLen, MaxLen, Range
from protocol.messages import MESSAGE_CLASSES

# Keep generated values small so examples stay fast; the limits themselves are
# tested directly in test_codec.py.
_SMALL = 6


def strategy_for(tp: Any, extras: tuple[object, ...] = ()) -> st.SearchStrategy[Any]:
    origin = typing.get_origin(tp)
    if origin is Annotated:
        base, *meta = typing.get_args(tp)
        return strategy_for(base, (*extras, *meta))
    if origin in (Union, types.UnionType):
        inner = next(a for a in typing.get_args(tp) if a is not type(None))
        return st.none() | strategy_for(inner, extras)
    if origin is tuple:
        item = strategy_for(typing.get_args(tp)[0])
        cap = min(_find(extras, MaxLen, DEFAULT_LIMITS.max_collection_len), _SMALL)
        return st.lists(item, max_size=cap).map(tuple)
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        return _dataclass(tp)
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        return st.sampled_from(list(tp))
    if tp is bool:
        return st.booleans()
    if tp is int:
        bounds = next((e for e in extras if isinstance(e, Range)), Range(-(2**63), 2**64 - 1))
        return st.integers(bounds.lo, bounds.hi)
    if tp is str:
        cap = min(_find(extras, MaxLen, DEFAULT_LIMITS.max_str_len), 40)
        return st.text(max_size=cap)
    if tp is bytes:
        exact = next((e for e in extras if isinstance(e, ExactLen)), None)
        if exact is not None:
            return st.binary(min_size=exact.n, max_size=exact.n)
        return st.binary(max_size=min(_find(extras, MaxLen, 64), 64))
    raise TypeError(f"no strategy for {tp!r}")


def _find(extras: tuple[object, ...], kind: type, default: int) -> int:
    return next((e.n for e in extras if isinstance(e, kind)), default)  # type: ignore[attr-defined]


def _dataclass(cls: type) -> st.SearchStrategy[Any]:
    hints = typing.get_type_hints(cls, include_extras=True)
    fields = {f.name: strategy_for(hints[f.name]) for f in dataclasses.fields(cls)}
    if cls.__name__ == "JobSpec":  # its frames must be non-empty and unique
        fields["frames"] = st.lists(
            st.integers(0, 1_000_000), min_size=1, max_size=_SMALL, unique=True
        ).map(tuple)
    return st.builds(cls, **fields)


any_message = st.one_of([_dataclass(cls) for cls in MESSAGE_CLASSES])
