"""Peer scoring policy: pure, synchronous, time passed in.

Theory of operation. Every inbound message from a peer first spends a token
from that peer's bucket (``rate_per_s`` refill, ``burst`` capacity); a peer
over its rate is throttled (its message is dropped unread) and nudged with a
small penalty. A message that fails decoding, signature, replay or skew checks
adds the error's ``penalty`` hint to the peer's score. Scores decay
exponentially (half-life ``half_life_s``) so an honest peer with an occasional
clock hiccup recovers, while a peer that keeps sending garbage crosses
``ban_score`` and is banned for ``ban_s``: the node disconnects it and refuses
its traffic until the ban ends.

Records are bounded (``max_records``): past the cap, the least telling ones
go first — records whose score has decayed to nothing, then unbanned ones by
lowest score, and only then bans, soonest-ending first — so a stranger who
mints identities can neither grow memory nor wash a bad peer's record out.

This module never reads a clock: every call takes ``now_s`` (seconds, any
monotonic origin), so tests and simulations drive it directly.
"""

from __future__ import annotations

import enum
import math
from collections import Counter
from dataclasses import dataclass, field


class Admission(enum.Enum):
    ALLOWED = "allowed"
    THROTTLED = "throttled"
    BANNED = "banned"


class Action(enum.Enum):
    NONE = "none"
    DISCONNECT = "disconnect"


@dataclass(frozen=True)
class ScoreConfig:
    rate_per_s: float = 50.0
    burst: float = 200.0
    half_life_s: float = 600.0
    ban_score: float = 100.0
    ban_s: float = 3600.0
    throttle_penalty: float = 1.0
    max_records: int = 10_000


@dataclass
class PeerRecord:
    score: float = 0.0
    score_at_s: float = 0.0
    tokens: float = 0.0
    tokens_at_s: float = 0.0
    banned_until_s: float = -math.inf
    rejected: Counter[str] = field(default_factory=Counter)


@dataclass(frozen=True)
class PeerScoreView:
    peer: str
    score: float
    banned: bool
    rejected: dict[str, int]


class PeerScorer:
    """Scores, rate limits and bans peers. Peers are plain strings (peer id text)."""

    def __init__(self, config: ScoreConfig | None = None) -> None:
        self.config = config or ScoreConfig()
        self._peers: dict[str, PeerRecord] = {}

    def _record(self, peer: str, now_s: float) -> PeerRecord:
        record = self._peers.get(peer)
        if record is None:
            if len(self._peers) >= self.config.max_records:
                self._evict(now_s)
            record = PeerRecord(tokens=self.config.burst, tokens_at_s=now_s, score_at_s=now_s)
            self._peers[peer] = record
        return record

    def _evict(self, now_s: float) -> None:
        """Make room: drop about a tenth of the records, least telling first."""
        self.forget_idle(now_s)
        keep = self.config.max_records - max(1, self.config.max_records // 10)
        excess = len(self._peers) - keep
        if excess <= 0:
            return

        def value(item: tuple[str, PeerRecord]) -> tuple[bool, float, float]:
            _, record = item
            banned = now_s < record.banned_until_s
            return (banned, record.banned_until_s, self._decayed(record, now_s))

        for peer, _ in sorted(self._peers.items(), key=value)[:excess]:
            del self._peers[peer]

    def __len__(self) -> int:
        return len(self._peers)

    def _decayed(self, record: PeerRecord, now_s: float) -> float:
        elapsed_s = max(0.0, now_s - record.score_at_s)
        return float(record.score * 0.5 ** (elapsed_s / self.config.half_life_s))

    def is_banned(self, peer: str, now_s: float) -> bool:
        record = self._peers.get(peer)
        return record is not None and now_s < record.banned_until_s

    def end_ban(self, peer: str, now_s: float) -> None:
        """End ``peer``'s ban now (its score keeps decaying): the node's ban list ended
        it early to stay bounded (node.net.bans), and the scorer must agree, or the
        network would take the peer's gossip while its requests read banned."""
        record = self._peers.get(peer)
        if record is not None:
            record.banned_until_s = min(record.banned_until_s, now_s)

    def admit(self, peer: str, now_s: float, *, throttle_penalty: bool = True) -> Admission:
        """Spend one token for a message from ``peer``; say whether to process it.

        ``throttle_penalty=False``: over the rate, drop without blame (a relay
        forwarding other peers' gossip is busy, not hostile).
        """
        record = self._record(peer, now_s)
        if now_s < record.banned_until_s:
            return Admission.BANNED
        refill = (now_s - record.tokens_at_s) * self.config.rate_per_s
        record.tokens = min(self.config.burst, record.tokens + max(0.0, refill))
        record.tokens_at_s = now_s
        if record.tokens < 1.0:
            penalty = self.config.throttle_penalty if throttle_penalty else 0.0
            self.penalize(peer, penalty, "throttled", now_s)
            return Admission.BANNED if self.is_banned(peer, now_s) else Admission.THROTTLED
        record.tokens -= 1.0
        return Admission.ALLOWED

    def penalize(self, peer: str, penalty: float, reason: str, now_s: float) -> Action:
        """Add ``penalty`` for ``reason``; DISCONNECT when this crosses the ban score."""
        record = self._record(peer, now_s)
        record.rejected[reason] += 1
        record.score = self._decayed(record, now_s) + penalty
        record.score_at_s = now_s
        already_banned = now_s < record.banned_until_s
        if record.score >= self.config.ban_score and not already_banned:
            record.banned_until_s = now_s + self.config.ban_s
            return Action.DISCONNECT
        return Action.NONE

    def score(self, peer: str, now_s: float) -> float:
        record = self._peers.get(peer)
        return 0.0 if record is None else self._decayed(record, now_s)

    def view(self, now_s: float) -> list[PeerScoreView]:
        return [
            PeerScoreView(
                peer=peer,
                score=round(self._decayed(record, now_s), 3),
                banned=now_s < record.banned_until_s,
                rejected=dict(record.rejected),
            )
            for peer, record in sorted(self._peers.items())
        ]

    def forget_idle(self, now_s: float, min_score: float = 0.01) -> None:
        """Drop records of unbanned peers whose score has decayed away (bounded memory)."""
        for peer, record in list(self._peers.items()):
            idle = self._decayed(record, now_s) < min_score and now_s >= record.banned_until_s
            refilled = record.tokens + (now_s - record.tokens_at_s) * self.config.rate_per_s
            if idle and refilled >= self.config.burst:
                del self._peers[peer]
