"""Worker reputation: one pure score from a worker's observed history.

Theory of operation
-------------------
Every node keeps, per worker identity, counters of what it saw happen: frames
accepted by a checker, frames rejected by one, signed render failures, leases
that timed out, and how long ago it first saw the identity (``age_ms``, the
caller's ``now`` minus first-seen, passed in as data). :func:`score` maps that
history to a number in ``[0, 1)``::

    bad    = w_rej * rejected + w_fail * failed + w_timeout * timed_out
    trust  = accepted / (accepted + bad + prior_bad)
    mature = min(1, age_ms / maturity_ms)
    score  = trust * mature

``prior_bad`` is a pessimistic prior: every identity starts as if it had
already been caught ``prior_bad`` times, so trust has to be *earned* with
verified, accepted frames (90 clean frames for 0.9 with the defaults), and
time has to pass (``maturity_ms``, 14 days) before it counts fully.

Whitewashing: a fresh identity scores exactly 0, the minimum of the range, so
no history — however bad — is treated worse than a brand-new key. Dropping a
bad identity for a new one therefore never buys lighter checking, a better
award rank or a better bid position; it only throws away whatever accepted
work the old key had banked. Earning reputation back costs real, verified
renders (checked at the maximum rate while the score is low) and wall time,
which a Sybil factory cannot skip. The score is monotone non-decreasing in
``accepted`` and ``age_ms``, non-increasing in every bad counter, and bounded.

Users: sampling (:func:`protocol.verification.plan_frame_check` checks low
scores more), awarding (:func:`award_weight` ranks bids), and the blocklist
(:func:`blocklisted`). Floats are fine here: the score is a local decision of
each node, never a wire value.

Where the history comes from: the requester's job machine says what it
judged (``protocol.market.commands.WorkerJudged``: a checker passed or
rejected a result, a signed failure, an expired lease, a rejection struck by a
won dispute), and every driver folds those into one :class:`ReputationBook`
with :meth:`ReputationBook.judge` — the same function in the node and the
simulator. What a requester's machine is given is :func:`with_public`: its own
record merged with the worker's history in the public work record
(:mod:`protocol.record`), so a requester that never met a worker ranks it by
what others recorded. The book keeps counts and the time the worker was first judged
(``first_seen_ms``); ``age_ms`` is computed from the caller's ``now``. It holds
at most ``max_workers`` identities, dropping the least recently judged one
when full: a dropped identity reads as fresh, which no identity can exploit
(fresh is the minimum score, see above).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, replace

from protocol.errors import LocalProtocolError

DAY_MS = 86_400_000


@dataclass(frozen=True)
class WorkerHistory:
    """What one node observed about one worker identity."""

    accepted: int = 0
    rejected: int = 0
    failed: int = 0
    timed_out: int = 0
    age_ms: int = 0

    def __post_init__(self) -> None:
        for name in ("accepted", "rejected", "failed", "timed_out", "age_ms"):
            value = getattr(self, name)
            if type(value) is not int or value < 0:
                raise LocalProtocolError(f"WorkerHistory.{name} must be an int >= 0")


FRESH = WorkerHistory()


@dataclass(frozen=True)
class ReputationConfig:
    """Weights of the score. Defaults and why are in docs/VERIFICATION.md."""

    prior_bad: float = 10.0
    rejected_weight: float = 25.0  # a rejection is evidence of cheating
    failed_weight: float = 1.0  # an honest, signed failure still cost the requester time
    timed_out_weight: float = 2.0  # a silent drop costs a whole lease
    maturity_ms: int = 14 * DAY_MS
    blocklist_rejections: int = 3
    blocklist_rejected_share: float = 0.05

    def __post_init__(self) -> None:
        if self.prior_bad <= 0 or self.maturity_ms <= 0:
            raise LocalProtocolError("prior_bad and maturity_ms must be positive")
        weights = (self.rejected_weight, self.failed_weight, self.timed_out_weight)
        if min(weights) < 0:
            raise LocalProtocolError("weights must be >= 0")
        if self.blocklist_rejections < 1 or not 0 < self.blocklist_rejected_share <= 1:
            raise LocalProtocolError("blocklist thresholds out of range")


DEFAULT_REPUTATION = ReputationConfig()


def score(history: WorkerHistory, config: ReputationConfig = DEFAULT_REPUTATION) -> float:
    """The worker's reputation in ``[0, 1)``; a fresh identity scores 0."""
    bad = (
        config.rejected_weight * history.rejected
        + config.failed_weight * history.failed
        + config.timed_out_weight * history.timed_out
    )
    trust = history.accepted / (history.accepted + bad + config.prior_bad)
    mature = min(1.0, history.age_ms / config.maturity_ms)
    return trust * mature


def blocklisted(history: WorkerHistory, config: ReputationConfig = DEFAULT_REPUTATION) -> bool:
    """Repeat offenders: enough rejections, and more than a small share of verdicts.

    The share keeps a long-lived honest worker that hit a rare false reject
    (a cross-hardware edge case, a disputed verdict) from being banned for it.
    """
    if history.rejected < config.blocklist_rejections:
        return False
    verdicts = history.accepted + history.rejected
    return history.rejected > config.blocklist_rejected_share * verdicts


def award_weight(reputation: float) -> float:
    """Multiplier on a bid's attractiveness: 0.5 for a fresh key up to 1.0.

    Awarding divides price by this weight, so a fresh identity must underbid
    an established one by up to half to win: cheap to enter, costly to fake.
    """
    if not 0.0 <= reputation <= 1.0:
        raise LocalProtocolError("reputation must be in [0, 1]")
    return 0.5 + 0.5 * reputation


# --- the book a requester keeps ---------------------------------------------------


class Judgement(enum.Enum):
    """What a requester observed about one result or lease of a worker."""

    ACCEPTED = "accepted"  # a checker passed its result
    REJECTED = "rejected"  # a checker rejected its result
    FAILED = "failed"  # a signed failure, or a result from the wrong renderer build
    TIMED_OUT = "timed_out"  # its lease ran out
    CLEARED = "cleared"  # a dispute overturned a rejection: that strike is struck


@dataclass(frozen=True)
class WorkerRecord:
    """The stored form of a history: counts and when the worker was first judged."""

    accepted: int = 0
    rejected: int = 0
    failed: int = 0
    timed_out: int = 0
    first_seen_ms: int = 0
    # Of ``accepted``, what this requester's own checks accepted (set by with_public, for
    # the machine): unlike the public record's counts, puppets cannot pad it. A lane's
    # credit (protocol.market.lanes) counts only these.
    own_accepted: int = 0

    def history(self, now_ms: int) -> WorkerHistory:
        return WorkerHistory(self.accepted, self.rejected, self.failed, self.timed_out,
                             max(0, now_ms - self.first_seen_ms))  # fmt: skip


def judged(record: WorkerRecord | None, judgement: Judgement, now_ms: int) -> WorkerRecord:
    """``record`` (None: never judged) after ``judgement`` at ``now_ms``."""
    r = record if record is not None else WorkerRecord(first_seen_ms=now_ms)
    if judgement is Judgement.ACCEPTED:
        return replace(r, accepted=r.accepted + 1)
    if judgement is Judgement.REJECTED:
        return replace(r, rejected=r.rejected + 1)
    if judgement is Judgement.FAILED:
        return replace(r, failed=r.failed + 1)
    if judgement is Judgement.TIMED_OUT:
        return replace(r, timed_out=r.timed_out + 1)
    return replace(r, rejected=max(0, r.rejected - 1))  # CLEARED


def with_public(
    own: WorkerRecord | None, public: WorkerHistory, now_ms: int
) -> WorkerRecord | None:
    """What a requester's machine is given about a worker: its own book and the public record.

    The public record holds this requester's own verdicts too (it publishes
    every one it acts on), so verdict counts take the larger of the two,
    never the sum — a verdict is never counted twice, and one the record has
    not (yet) got still counts. Failures and expired leases only the
    requester that suffered them saw. First seen: the earlier of the two.
    ``own_accepted``: the own book's accepted count.
    None when neither knows the worker (fresh: the minimum score).
    """
    if public == FRESH:
        return None if own is None else replace(own, own_accepted=own.accepted)
    first_ms = now_ms - public.age_ms
    if own is None:
        return WorkerRecord(public.accepted, public.rejected, public.failed, public.timed_out,
                            first_ms)  # fmt: skip
    return WorkerRecord(
        max(own.accepted, public.accepted), max(own.rejected, public.rejected),
        own.failed, own.timed_out, min(own.first_seen_ms, first_ms), own.accepted,
    )  # fmt: skip


class ReputationBook:
    """One requester's view of the workers it judged (bounded; see the module doc)."""

    def __init__(self, max_workers: int = 100_000) -> None:
        if max_workers < 1:
            raise LocalProtocolError("max_workers must be at least 1")
        self.max_workers = max_workers
        self._records: dict[bytes, WorkerRecord] = {}

    def __len__(self) -> int:
        return len(self._records)

    def record(self, worker: bytes) -> WorkerRecord | None:
        return self._records.get(worker)

    def history(self, worker: bytes, now_ms: int) -> WorkerHistory:
        record = self._records.get(worker)
        return FRESH if record is None else record.history(now_ms)

    def judge(self, worker: bytes, judgement: Judgement, now_ms: int) -> WorkerRecord:
        """Fold one judgement in; returns the worker's new record (to store)."""
        record = judged(self._records.pop(worker, None), judgement, now_ms)
        self.load(worker, record)
        return record

    def load(self, worker: bytes, record: WorkerRecord) -> None:
        """Put a stored record back (a restart); the most recent goes last."""
        self._records.pop(worker, None)
        self._records[worker] = record
        while len(self._records) > self.max_workers:
            del self._records[next(iter(self._records))]  # the least recently judged
