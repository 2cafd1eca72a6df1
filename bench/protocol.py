"""Protocol throughput: encode+sign and decode+verify rates, and message sizes.

    python bench/protocol.py [--seconds 2]

Prints messages/s for a typical Result envelope, the same rates for a bare
Ed25519 sign/verify of the same bytes as the baseline measured in this run
(so the ratio shows what the codec and schema checks cost on top of the
cryptography), and the encoded size of every message type.
"""

from __future__ import annotations

import argparse
import dataclasses
import enum
import sys
import time
import types
import typing
from collections.abc import Callable
from pathlib import Path

# Run as a script, this file's folder would shadow the `protocol` package.
_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]
sys.path.insert(0, str(_HERE.parent))

from rich.console import Console
from rich.table import Table

from protocol import NodeKey, decode_envelope, encode_envelope
from protocol.codec import ExactLen, Range
from protocol.messages import MESSAGE_CLASSES, JobSpec, Result

KEY = NodeKey(bytes(range(32)))
RESULT = Result(
    job_id=bytes(32),
    task_id=bytes(range(32)),
    frame=42,
    frame_cid="bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku",
    frame_size_bytes=2_345_678,
    render_time_ms=41_250,
    renderer_build="blender-3.4.1",
    device_class="cuda-sm90",
)


def typical(tp: object, extras: tuple[object, ...] = ()) -> object:
    """A representative value: 2-item arrays, 20-char strings, mid-size numbers."""
    origin = typing.get_origin(tp)
    if origin is typing.Annotated:
        base, *meta = typing.get_args(tp)
        return typical(base, (*extras, *meta))
    if origin in (typing.Union, types.UnionType):
        return typical(next(a for a in typing.get_args(tp) if a is not type(None)), extras)
    if origin is tuple:
        item = typing.get_args(tp)[0]
        return tuple(typical(item) for _ in range(2)) if item is not int else (1, 2)
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        hints = typing.get_type_hints(tp, include_extras=True)
        values = {f.name: typical(hints[f.name]) for f in dataclasses.fields(tp)}
        if tp is JobSpec:
            values["frames"] = tuple(range(1, 49))  # a typical 48-frame shot
        return tp(**values)
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        return next(iter(tp))
    if tp is bool:
        return True
    if tp is int:
        bounds = next((e for e in extras if isinstance(e, Range)), Range(0, 2**32))
        return min(bounds.hi, max(bounds.lo, 10**15 if bounds.hi > 2**64 else 30_000))
    if tp is str:
        return "x" * 20
    exact = next((e for e in extras if isinstance(e, ExactLen)), None)
    return bytes(range(exact.n)) if exact else b"y" * 20


def rate(fn: Callable[[], object], seconds: float) -> float:
    count, started = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - started) < seconds:
        for _ in range(200):
            fn()
        count += 200
    return count / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=2.0)
    args = parser.parse_args()
    wire = encode_envelope(KEY, RESULT, nonce=1, now_ms=1_800_000_000_000)
    verify_key = KEY.node_id
    sig = KEY.sign(wire)
    enc = rate(lambda: encode_envelope(KEY, RESULT, nonce=1, now_ms=1), args.seconds)
    dec = rate(lambda: decode_envelope(wire), args.seconds)
    sign = rate(lambda: KEY.sign(wire), args.seconds)
    verify = rate(lambda: verify_key.verify(wire, sig), args.seconds)
    console = Console()
    table = Table(title=f"Result envelope ({len(wire)} bytes)")
    for col in ("operation", "msgs/s", "bare Ed25519 /s", "ratio"):
        table.add_column(col, justify="right")
    table.add_row("encode+sign", f"{enc:,.0f}", f"{sign:,.0f}", f"{enc / sign:.2f}")
    table.add_row("decode+verify", f"{dec:,.0f}", f"{verify:,.0f}", f"{dec / verify:.2f}")
    console.print(table)
    sizes = Table(title="Encoded envelope size by message type (typical example)")
    sizes.add_column("type")
    sizes.add_column("bytes", justify="right")
    for cls in MESSAGE_CLASSES:
        example = typical(cls)
        sizes.add_row(cls.TYPE, str(len(encode_envelope(KEY, example, nonce=1, now_ms=1))))  # type: ignore[attr-defined]
    console.print(sizes)


if __name__ == "__main__":
    main()
