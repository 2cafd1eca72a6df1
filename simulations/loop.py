"""The simulator's own discrete-event loop: a heap of (time, sequence) events.

Theory of operation
-------------------
An event is a callable with one argument, due at an integer millisecond. The
heap orders by ``(time_ms, seq)``; ``seq`` is a counter, so two events due at
the same millisecond run in the order they were scheduled, and nothing about
the order depends on hashing, object ids or threads. All randomness comes from
the one ``random.Random`` the loop owns, so a seed reproduces a run exactly.

After every event the loop calls its ``after_event`` hooks (the invariant
checker, and in tests a fault injector); a hook raising
:class:`InvariantViolation` stops the run, and the report carries the seed and
the tail of the event trace (a ring buffer of the last few hundred events).
"""

from __future__ import annotations

import dataclasses
import heapq
import random
from collections import deque
from collections.abc import Callable
from typing import Any

import msgpack

Action = Callable[[Any], None]


class InvariantViolation(AssertionError):
    """A safety or liveness property failed; ``report`` says how to replay it."""

    def __init__(self, what: str, seed: int, time_ms: int, trace_tail: list[str]) -> None:
        self.what = what
        self.seed = seed
        self.time_ms = time_ms
        self.trace_tail = trace_tail
        super().__init__(self.report())

    def report(self) -> str:
        lines = [
            f"invariant violated: {self.what}",
            f"seed={self.seed} at t={self.time_ms / 1000:.3f} s (replay: --seed {self.seed})",
            f"last {len(self.trace_tail)} events:",
            *(f"  {line}" for line in self.trace_tail),
        ]
        return "\n".join(lines)


class EventLoop:
    """A deterministic scheduler over simulated milliseconds."""

    def __init__(self, seed: int, trace_len: int = 200) -> None:
        self.seed = seed
        self.rng = random.Random(seed)
        self.now_ms = 0
        self.events_run = 0
        self._heap: list[tuple[int, int, Action, Any, str]] = []
        self._seq = 0
        self._trace: deque[tuple[int, str, Any]] = deque(maxlen=trace_len)
        self._last_label = ""
        self.after_event: list[Callable[[EventLoop], None]] = []

    def call_at(self, time_ms: int, action: Action, arg: Any = None, label: str = "") -> None:
        """Run ``action(arg)`` at ``time_ms`` (never in the past)."""
        self._seq += 1
        heapq.heappush(self._heap, (max(time_ms, self.now_ms), self._seq, action, arg, label))

    def call_later(self, delay_ms: float, action: Action, arg: Any = None, label: str = "") -> None:
        self.call_at(self.now_ms + int(delay_ms), action, arg, label)

    def note(self, label: str, detail: Any = None) -> None:
        """Add a line to the trace (formatted only if a violation is reported)."""
        self._trace.append((self.now_ms, label, detail))

    def run_until(self, end_ms: int, stop: Callable[[], bool] | None = None) -> None:
        """Run events due up to ``end_ms`` (inclusive), or until ``stop()`` is true."""
        heap = self._heap
        hooks = self.after_event
        trace = self._trace
        while heap and heap[0][0] <= end_ms:
            time_ms, _, action, arg, label = heapq.heappop(heap)
            self.now_ms = time_ms
            self._last_label = label
            trace.append((time_ms, label, arg))
            action(arg)
            self.events_run += 1
            for hook in hooks:
                hook(self)
            if stop is not None and stop():
                return
        self.now_ms = max(self.now_ms, end_ms)

    def pending(self) -> int:
        return len(self._heap)

    def last_event(self) -> tuple[int, str]:
        """The time and label of the event run last (an ``after_event`` hook's view; not a
        ``note`` its action wrote)."""
        return self.now_ms, self._last_label

    def violation(self, what: str) -> InvariantViolation:
        return InvariantViolation(what, self.seed, self.now_ms, self.trace_tail())

    def trace_tail(self, n: int = 40) -> list[str]:
        tail = list(self._trace)[-n:]
        return [f"t={t / 1000:10.3f}s {label:<18} {_short(detail)}" for t, label, detail in tail]


def _short(detail: Any) -> str:
    """A readable one-liner for a trace entry (only formatted when reported)."""
    if detail is None:
        return ""
    if isinstance(detail, bytes | bytearray):
        return _bytes(bytes(detail))
    if isinstance(detail, tuple | list):
        return " ".join(_short(item) for item in detail)
    if dataclasses.is_dataclass(detail):
        fields = [f"{f.name}={_short(getattr(detail, f.name))}" for f in dataclasses.fields(detail)
                  if f.name in _TRACE_FIELDS]  # fmt: skip
        return f"{type(detail).__name__}({', '.join(fields)})"
    text = repr(detail)
    return text if len(text) <= 60 else text[:57] + "..."


_TRACE_FIELDS = ("job_id", "task_id", "frame", "worker", "passed", "to", "message", "data")


def _bytes(data: bytes) -> str:
    if len(data) <= 32:
        return data.hex()[:12]
    try:  # a signed envelope: [version, type, sender, nonce, time, body, signature]
        head = msgpack.unpackb(data)
        return f"<{head[1]} {len(data)} B from {head[2].hex()[:12]}>"
    except Exception:  # not an envelope: just its size
        return f"<{len(data)} B>"
