"""Replay and clock-skew guard for decoded envelopes (pure; takes ``now``).

An envelope is accepted when its timestamp is within ``skew_ms`` of ``now``
and its (sender, nonce) has not been accepted before. Because anything older
than ``now - skew_ms`` is refused on its timestamp alone, the guard only has
to remember nonces whose timestamps are still inside the window: memory is
bounded by the message rate, not by uptime, and restarts of the sender need no
persisted sequence numbers (a random u64 nonce is enough).

``max_per_sender`` caps what one sender can make us remember; a sender over
it is told it floods (``ReplayDetected`` with a high penalty) rather than
evicting other senders' entries.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass, field

from protocol.envelope import Envelope
from protocol.errors import ClockSkew, ReplayDetected


@dataclass
class ReplayGuard:
    skew_ms: int = 60_000
    max_per_sender: int = 100_000
    _seen: dict[tuple[bytes, int], int] = field(default_factory=dict)
    _expiry: list[tuple[int, bytes, int]] = field(default_factory=list)
    _per_sender: dict[bytes, int] = field(default_factory=dict)

    def check(self, envelope: Envelope, now_ms: int) -> None:
        """Accept (and remember) the envelope or raise ``ClockSkew``/``ReplayDetected``."""
        self._expire(now_ms)
        ts = envelope.timestamp_ms
        if not now_ms - self.skew_ms <= ts <= now_ms + self.skew_ms:
            raise ClockSkew(
                f"timestamp {ts} is {ts - now_ms:+d} ms from now; accepted: ±{self.skew_ms} ms"
            )
        sender = envelope.sender.raw
        key = (sender, envelope.nonce)
        if key in self._seen:
            raise ReplayDetected(f"nonce {envelope.nonce} from {envelope.sender} seen before")
        count = self._per_sender.get(sender, 0)
        if count >= self.max_per_sender:
            raise ReplayDetected(f"{envelope.sender} sent too many messages", penalty=50)
        self._seen[key] = ts
        self._per_sender[sender] = count + 1
        # Forget it once its timestamp can no longer pass the skew check.
        heapq.heappush(self._expiry, (ts + self.skew_ms, sender, envelope.nonce))

    def _expire(self, now_ms: int) -> None:
        while self._expiry and self._expiry[0][0] < now_ms:
            _, sender, nonce = heapq.heappop(self._expiry)
            if self._seen.pop((sender, nonce), None) is not None:
                left = self._per_sender[sender] - 1
                if left:
                    self._per_sender[sender] = left
                else:
                    del self._per_sender[sender]

    def statistics(self) -> dict[str, int]:
        return {"remembered": len(self._seen), "senders": len(self._per_sender)}
