"""Generate the message tables of ``docs/PROTOCOL.md`` from the schemas.

``python -m protocol.specgen`` prints the tables; ``--write PATH`` replaces the
text between the ``<!-- messages:begin -->`` / ``<!-- messages:end -->``
markers. ``tests/protocol/test_spec.py`` fails when the document and the code
disagree, so the spec cannot silently fall behind a new message or field.
"""

from __future__ import annotations

import dataclasses
import enum
import sys
import types
import typing
from typing import Annotated, Union

from protocol.codec import DEFAULT_LIMITS, ExactLen, MaxLen, Range
from protocol.messages import MESSAGE_CLASSES

BEGIN = "<!-- messages:begin -->"
END = "<!-- messages:end -->"


def describe(tp: object, extras: tuple[object, ...] = ()) -> str:
    """Human-readable wire type of an annotation, limits included."""
    origin = typing.get_origin(tp)
    if origin is Annotated:
        base, *meta = typing.get_args(tp)
        return describe(base, (*extras, *meta))
    if origin in (Union, types.UnionType):
        inner = next(a for a in typing.get_args(tp) if a is not type(None))
        return f"{describe(inner, extras)} or nil"
    if origin is tuple:
        cap = _cap(extras, DEFAULT_LIMITS.max_collection_len)
        return f"array (≤ {cap}) of {describe(typing.get_args(tp)[0])}"
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        return f"map `{tp.__name__}`"
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        return "str, one of " + ", ".join(f"`{m.value}`" for m in tp)
    return _scalar(tp, extras)


def _scalar(tp: object, extras: tuple[object, ...]) -> str:
    if tp is bool:
        return "bool"
    if tp is int:
        bounds = next((e for e in extras if isinstance(e, Range)), None)
        if bounds is None:
            return "int (i64/u64)"
        if bounds.hi > 2**64 - 1:
            return f"uint256 as bin 32 (big-endian), ≤ 2^{bounds.hi.bit_length()} − 1"
        return f"int {bounds.lo}..{bounds.hi}"
    if tp is str:
        return f"str (≤ {_cap(extras, DEFAULT_LIMITS.max_str_len)} code points)"
    if tp is bytes:
        exact = next((e for e in extras if isinstance(e, ExactLen)), None)
        if exact is not None:
            return f"bin {exact.n}"
        return f"bin (≤ {_cap(extras, DEFAULT_LIMITS.max_bytes_len)})"
    raise TypeError(f"undocumentable type {tp!r}")


def _cap(extras: tuple[object, ...], default: int) -> int:
    return next((e.n for e in extras if isinstance(e, MaxLen)), default)


def _structs() -> list[type]:
    """Every dataclass reachable from the messages, messages first."""
    seen: list[type] = []

    def visit(tp: object) -> None:
        if isinstance(tp, type) and dataclasses.is_dataclass(tp):
            if tp not in seen:
                seen.append(tp)
                for hint in typing.get_type_hints(tp, include_extras=True).values():
                    visit(hint)
            return
        for arg in typing.get_args(tp):
            visit(arg)

    for cls in MESSAGE_CLASSES:
        visit(cls)
    return seen


def tables() -> str:
    out: list[str] = []
    for cls in _structs():
        msg_type = getattr(cls, "TYPE", None)
        title = f"`{msg_type}` — {cls.__name__}" if msg_type else f"{cls.__name__} (struct)"
        out.append(f"#### {title}\n")
        doc = " ".join((cls.__doc__ or "").strip().split("\n\n")[0].split())
        if doc and not doc.startswith(cls.__name__ + "("):
            out.append(f"{doc}\n")
        out.append("| field | wire type |\n|---|---|")
        hints = typing.get_type_hints(cls, include_extras=True)
        for field in dataclasses.fields(cls):
            out.append(f"| `{field.name}` | {describe(hints[field.name])} |")
        out.append("")
    return "\n".join(out)


def splice(document: str) -> str:
    head, _, rest = document.partition(BEGIN)
    _, _, tail = rest.partition(END)
    return f"{head}{BEGIN}\n{tables()}\n{END}{tail}"


def main(argv: list[str]) -> int:
    if len(argv) == 2 and argv[0] == "--write":
        with open(argv[1], encoding="utf-8") as handle:
            text = handle.read()
        with open(argv[1], "w", encoding="utf-8") as handle:
            handle.write(splice(text))
        return 0
    sys.stdout.write(tables())
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
