"""A small, strict schema for scenario files: frozen dataclasses are the spec.

Each section of a scenario is a frozen dataclass whose field annotations and
``field(metadata=...)`` bounds say what a value may be. :func:`build` walks a
parsed TOML table against a dataclass and refuses unknown keys, wrong types and
out-of-range numbers with a :class:`ScenarioError` naming the dotted key
(``network.loss``), so a typo never silently becomes a default (ddht style, not
hypercorn's). The same dotted keys are what ``pictor sim sweep --param`` takes.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from typing import Any, TypeVar

T = TypeVar("T")


class ScenarioError(ValueError):
    """A scenario file or override is invalid; the message names the key."""


def bounded(default: Any, lo: float | None = None, hi: float | None = None) -> Any:
    """A dataclass field with inclusive numeric bounds checked by :func:`build`."""
    return dataclasses.field(default=default, metadata={"lo": lo, "hi": hi})


def build(cls: type[T], table: Any, path: str) -> T:
    """Build dataclass ``cls`` from a TOML table, naming ``path.key`` on any error."""
    if not isinstance(table, dict):
        raise ScenarioError(f"{path or 'scenario'}: expected a table, got {_kind(table)}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    for key in table:
        if key not in fields:
            known = ", ".join(sorted(fields))
            raise ScenarioError(f"{_join(path, key)}: unknown key (known: {known})")
    values: dict[str, Any] = {}
    for name, fld in fields.items():
        if name in table:
            key = _join(path, name)
            values[name] = _check(hints[name], table[name], key)
            _check_bounds(fld, values[name], key)
    return cls(**values)


def _check(tp: Any, value: Any, key: str) -> Any:
    origin = typing.get_origin(tp)
    if dataclasses.is_dataclass(tp):
        return build(tp, value, key)  # type: ignore[arg-type]
    if origin is tuple:
        (item_tp, _) = typing.get_args(tp)
        if not isinstance(value, list):
            raise ScenarioError(f"{key}: expected an array, got {_kind(value)}")
        return tuple(_check(item_tp, v, f"{key}[{i}]") for i, v in enumerate(value))
    if origin is dict:
        _, val_tp = typing.get_args(tp)
        if not isinstance(value, dict):
            raise ScenarioError(f"{key}: expected a table, got {_kind(value)}")
        return {str(k): _check(val_tp, v, f"{key}.{k}") for k, v in value.items()}
    if origin in (typing.Union, types.UnionType):
        return _check(typing.get_args(tp)[0], value, key)
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ScenarioError(f"{key}: expected a number, got {_kind(value)}")
        return float(value)
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ScenarioError(f"{key}: expected an integer, got {_kind(value)}")
        return value
    if tp is bool or tp is str:
        if type(value) is not tp:
            raise ScenarioError(f"{key}: expected {tp.__name__}, got {_kind(value)}")
        return value
    raise ScenarioError(f"{key}: unsupported schema type {tp!r}")  # a bug in the schema


def _check_bounds(fld: dataclasses.Field[Any], value: Any, key: str) -> None:
    lo, hi = fld.metadata.get("lo"), fld.metadata.get("hi")
    items = value if isinstance(value, tuple) else (value,)
    for item in items:
        if not isinstance(item, int | float) or isinstance(item, bool):
            continue
        if (lo is not None and item < lo) or (hi is not None and item > hi):
            raise ScenarioError(f"{key}: {item} is outside [{lo}, {hi}]")


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _kind(value: Any) -> str:
    return f"{type(value).__name__} {value!r:.40}"


def parse_value(text: str) -> Any:
    """Parse a command-line override value as TOML would (``0.1``, ``true``, ``"eu"``)."""
    import tomllib

    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text  # a bare word is a string


def apply_override(raw: dict[str, Any], dotted: str, value: Any) -> None:
    """Set ``a.b.c = value`` in a parsed TOML tree (validated later by :func:`build`)."""
    parts = dotted.split(".")
    node = raw
    for part in parts[:-1]:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise ScenarioError(f"{dotted}: {part} is not a table")
        node = child
    node[parts[-1]] = value
