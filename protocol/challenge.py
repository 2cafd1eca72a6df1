"""Capacity challenges: what a requester asks a new bidder to render, and how it judges.

Theory of operation
-------------------
A requester that keeps unproven bidders to trial frames (protocol.capacity)
lets a bidder prove itself with a timed render. The challenge is *derived*,
not described: ``CapacityChallenge`` names only a fresh ``challenge_id`` and
the job, and both sides compute the rest here — the job's own scene, build
and engine at a ``1 / CHALLENGE_SCALE`` resolution on each side
(:func:`challenge_settings`), its first frame, and a seed drawn from the
challenge id, so no answer can be cached or copied from another worker, and
a requester cannot dress a paid frame up as a free challenge (the worker
answers only the derived settings of a job it bid on: :func:`challenge_of`).

The worker renders it and answers ``ChallengeAnswer`` with the frame's CID.
The challenger times the exchange on its own clock — from the challenge
sent to the answer received; the worker's own render time is not believed —
then fetches the frame and re-renders *one* tile of it, chosen from a secret
drawn after the answer came (protocol.verification.select_tiles): exact
within one build and device class, the cross-hardware tolerance otherwise.
It never renders the whole challenge itself.

:func:`judge` turns that into an :class:`Outcome`: the score to believe is
``protocol.capacity.capped_score`` of the bidder's claim (the larger of its
advert's score and the speed its bid's ETA implies: :func:`claimed_score`;
a bidder whose advert has no score claims nothing, and the measured speed is
believed);
the challenge *passes* only when the tile matched and the claim was within
the margin, and the bidder is then proven. A wrong tile or a claim beyond the
margin *catches* it: its speed is capped and the job awards it nothing more
(``JobMachine.capacity_judged``) — a trial frame is for the unknown, not for
an identity seen lying. No answer in time decides nothing: the bidder stays
on trial frames (a busy honest worker may drop a challenge).

Timing includes what is not rendering: the scene's transfer (the worker
fetches it when challenged), the renderer's start, the messages. A fast GPU
on a light scene renders a quarter frame in a fraction of a second and spends
seconds on the rest, so a margin alone caught exactly the workers the network
wants (found in review: the e2e runs used a slow CPU). Each challenge
therefore carries an *allowance* for those (:func:`allowance_ms`: a fixed
start plus the scene at a floor bandwidth), and :func:`judge` catches only a
claim the answer missed by more than the margin *after* the allowance; the
score it then believes is at most the margin times the speed seen with
everything included. So no honest worker whose overheads fit the allowance
is caught, and no bidder is believed more than ``margin`` times faster than
it showed (``tests/protocol/market/test_challenge.py``, two properties): a
challenge too small to time a claim proves the bidder (it leaves its trial)
but caps its believed speed.

:class:`ChallengeBook` is the challenger's bounded state: at most
``max_in_flight`` challenges open at once, one outcome remembered per worker
(``max_remembered``, oldest forgotten) for ``remember_ms``, an open challenge
failed once :func:`answer_timeout_ms` passed: ``timeout_ms``, or as long as the
claim itself allows within the margin (an answer that late still passes, so it
is awaited), never more than ``max_timeout_ms`` (a slow claim holds a challenge
slot that long at most), plus the challenge's allowance. A flood of fresh
identities therefore costs the requester at most ``max_in_flight`` tile
re-renders at a time. What to do with a bid is :meth:`ChallengeBook.on_bid`'s
one decision (feed a fresh outcome, nothing for a proven bidder, challenge now,
or queue); the book queues at most ``max_waiting`` bidders and
:meth:`ChallengeBook.next_waiting` gives the longest-waiting one still worth a
challenge when one closes. Bidders never challenged stay on trial frames. The
node's requester (``node.roles.challenger``) and the simulator's
(``simulations/challenges.py``) both drive it.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, replace
from enum import Enum
from typing import Generic, TypeVar

from protocol.capacity import (
    DEFAULT_MARGIN_PERMILLE,
    MS_PER_HOUR,
    capped_score,
    is_proven,
    measured_score,
)
from protocol.errors import IllegalMessage, LocalProtocolError
from protocol.messages import ChallengeAnswer, JobSpec, RenderSettings

CHALLENGE_DOMAIN = b"pictor/capacity/challenge/v1\x00"
CHALLENGE_SCALE = 2  # each side: a quarter of the frame's pixels
MIN_SIDE_PX = 16
# What a challenge's time may hold besides rendering (allowance_ms): Blender's start
# and scene load (1.5-3 s measured, docs/VERIFICATION.md), preflight, the messages
# (the e2e runs answered in 2.9-8.2 s, render included), and the scene's transfer at
# a floor of 1 MiB/s (relayed transfers measured 2.5 MiB/s, bench/reach.py).
START_ALLOWANCE_MS = 10_000
FETCH_FLOOR_BYTES_PER_S = 1 << 20


def challenge_settings(spec: JobSpec, challenge_id: bytes) -> RenderSettings:
    """The job's settings at 1/CHALLENGE_SCALE per side, seeded by ``challenge_id``."""
    return scaled_settings(spec.settings, challenge_id)


def scaled_settings(s: RenderSettings, challenge_id: bytes) -> RenderSettings:
    """``s`` as a challenge renders it (:func:`challenge_settings` of a job with ``s``)."""
    # 31 bits: Blender's Cycles seed is a signed 32-bit int (a larger one fails the render)
    digest = hashlib.sha256(CHALLENGE_DOMAIN + challenge_id).digest()
    seed = int.from_bytes(digest[:4], "big") & 0x7FFF_FFFF
    return replace(
        s,
        resolution_x=max(min(MIN_SIDE_PX, s.resolution_x), s.resolution_x // CHALLENGE_SCALE),
        resolution_y=max(min(MIN_SIDE_PX, s.resolution_y), s.resolution_y // CHALLENGE_SCALE),
        seed=seed,
    )


def max_answer_bytes(settings: RenderSettings) -> int:
    """The largest challenge frame a challenger fetches: 8 bytes a pixel (16-bit RGBA,
    uncompressed) plus 64 KiB of headers. A bigger answer is a wrong one."""
    return settings.resolution_x * settings.resolution_y * 8 + (64 << 10)


def challenge_ru(spec: JobSpec, settings: RenderSettings) -> int:
    """Render units of the challenge: the frame's, scaled by pixels (at least 1)."""
    full = spec.settings.resolution_x * spec.settings.resolution_y
    part = settings.resolution_x * settings.resolution_y
    return max(1, -(-spec.ru_per_frame * part // full))


def allowance_ms(spec: JobSpec) -> int:
    """What a challenge of ``spec``'s job may spend on anything but rendering."""
    return START_ALLOWANCE_MS + spec.scene_size_bytes * 1000 // FETCH_FLOOR_BYTES_PER_S


@dataclass(frozen=True)
class Challenge:
    """One derived challenge: what to render, what it is worth, and the time it may
    take beyond rendering (``allowance_ms``)."""

    challenge_id: bytes
    job_id: bytes
    frame: int
    settings: RenderSettings
    ru: int
    allowance_ms: int = 0


def challenge_of(spec: JobSpec, job_id: bytes, challenge_id: bytes) -> Challenge:
    """What ``challenge_id`` asks for the job: the one derivation both sides use."""
    if len(challenge_id) != 32:
        raise IllegalMessage("a challenge id is 32 bytes")
    settings = challenge_settings(spec, challenge_id)
    ru = challenge_ru(spec, settings)
    return Challenge(challenge_id, job_id, min(spec.frames), settings, ru, allowance_ms(spec))


def claimed_score(advert_score_ru_per_hour: int, ru_per_frame: int, eta_s: int) -> int:
    """The speed a bidder claims: its advert's score or what its bid's ETA implies,
    whichever is higher; 0 (no claim) when its advert has no score — its ETA is then
    the worker's placeholder of 1 s per RU, not a measurement (WorkerConfig)."""
    if advert_score_ru_per_hour <= 0:
        return 0
    return max(advert_score_ru_per_hour, ru_per_frame * 3600 // max(1, eta_s))


@dataclass(frozen=True)
class Outcome:
    passed: bool  # proven: the tile matched and the claim held within the margin
    caught: bool  # a wrong answer, or a claim beyond the margin: out of awarding
    score_ru_per_hour: int  # the score to believe from now on
    measured_ms: int | None  # None: no answer in time, or the answer was wrong
    reason: str

    @property
    def decides(self) -> bool:
        """Whether a job is given it (``JobMachine.capacity_judged``): no answer in time
        decides nothing, the bidder stays on trial frames."""
        return self.passed or self.caught


UNANSWERED = Outcome(False, False, 1, None, "no answer in time")


def judge(
    claimed_ru_per_hour: int, ru: int, measured_ms: int | None, output_ok: bool,
    margin_permille: int = DEFAULT_MARGIN_PERMILLE, allowance_ms: int = 0,
) -> Outcome:  # fmt: skip
    """The outcome of one challenge (see the module docstring): caught when the claim
    was missed by more than the margin once ``allowance_ms`` is taken off the time;
    passed, believed at most ``margin`` times the speed seen, everything included."""
    if measured_ms is None:
        return UNANSWERED
    if not output_ok:
        return Outcome(False, True, 1, None, "the answer's tile did not match")
    seen = max(1, measured_score(ru, measured_ms))
    if claimed_ru_per_hour <= 0:  # nothing claimed: the measured speed is believed
        return Outcome(True, False, seen, measured_ms, "passed")
    rendering_ms = max(1, measured_ms - allowance_ms)
    if capped_score(claimed_ru_per_hour, ru, rendering_ms, margin_permille) < claimed_ru_per_hour:
        return Outcome(False, True, seen, measured_ms, "slower than claimed beyond the margin")
    believed = min(claimed_ru_per_hour, max(1, seen * margin_permille // 1000))
    return Outcome(True, False, believed, measured_ms, "passed")


@dataclass(frozen=True)
class ChallengeConfig:
    max_in_flight: int = 4
    timeout_ms: int = 120_000
    remember_ms: int = 24 * 3_600_000
    max_remembered: int = 10_000
    margin_permille: int = DEFAULT_MARGIN_PERMILLE
    max_timeout_ms: int = 15 * 60_000  # a claim of a slow render is awaited this long at most
    max_waiting: int = 256  # bidders queued for a challenge slot (more stay on trial frames)

    def __post_init__(self) -> None:
        if min(self.max_in_flight, self.timeout_ms, self.max_remembered) < 1:
            raise LocalProtocolError("max_in_flight, timeout_ms and max_remembered must be >= 1")
        if self.margin_permille < 1000:
            raise LocalProtocolError("margin_permille must be >= 1000 (1x: no slack)")
        if self.max_timeout_ms < self.timeout_ms or self.max_waiting < 0:
            raise LocalProtocolError("max_timeout_ms must be >= timeout_ms, max_waiting >= 0")


def answer_timeout_ms(
    config: ChallengeConfig, claimed_ru_per_hour: int, ru: int, allowance_ms: int = 0
) -> int:
    """How long a challenge of ``ru`` render units waits for its answer: ``timeout_ms``,
    or the claim's own render time times the margin when that is longer (an answer
    within it passes: a quarter of a 20-minute frame outlasts 120 s on an honest card),
    at most ``max_timeout_ms``; plus the challenge's ``allowance_ms``. No claim:
    ``timeout_ms`` plus the allowance."""
    wait_ms = config.timeout_ms
    if claimed_ru_per_hour > 0:
        claimed_ms = -(-ru * MS_PER_HOUR // claimed_ru_per_hour)
        allowed_ms = claimed_ms * config.margin_permille // 1000
        wait_ms = min(config.max_timeout_ms, max(config.timeout_ms, allowed_ms))
    return wait_ms + allowance_ms


@dataclass(frozen=True)
class Open:
    """A challenge sent and not yet answered."""

    challenge: Challenge
    worker: bytes
    claimed_ru_per_hour: int
    sent_ms: int


class OnBid(Enum):
    """What a requester does with a bid of a job that keeps the unproven to trial frames."""

    FEED = "feed"  # a fresh outcome of the bidder's: give it to the job (if it decides)
    PROVEN = "proven"  # staked or with an accepted frame: no challenge
    ISSUE = "issue"  # challenge it now (ChallengeBook.issue)
    QUEUED = "queued"  # challenged when a challenge closes (ChallengeBook.next_waiting)
    NOTHING = "nothing"  # its challenge is open, or the queue is full: it stays on trial


T = TypeVar("T")


class ChallengeBook(Generic[T]):
    """The challenger's open challenges, remembered outcomes and the bidders waiting for a
    challenge slot (each with the driver's ``T``: what it needs to issue it later), bounded."""

    def __init__(self, config: ChallengeConfig = ChallengeConfig()) -> None:
        self.config = config
        self._open: dict[bytes, Open] = {}  # challenge id -> open challenge
        self._outcomes: OrderedDict[bytes, tuple[Outcome, int]] = OrderedDict()  # worker ->
        self._judging = 0  # answered, being judged (a tile re-render each): they count too
        self._waiting: dict[bytes, T] = {}  # worker -> the driver's bid, oldest first

    def on_bid(
        self, worker: bytes, stake_wei: int | None, accepted_frames: int, bid: T, now_ms: int
    ) -> OnBid:
        """Before a bid of ``worker`` is fed to its job (see :class:`OnBid`); ``stake_wei``
        is its payment address's confirmed stake, ``accepted_frames`` its record's."""
        if self.outcome(worker, now_ms) is not None:
            return OnBid.FEED
        if is_proven(stake_wei, accepted_frames, False):
            return OnBid.PROVEN
        if self.wants(worker, now_ms):
            return OnBid.ISSUE
        room = worker in self._waiting or len(self._waiting) < self.config.max_waiting
        if room and not self.open_for(worker):
            self._waiting[worker] = bid  # a newer bid replaces its older one, in its place
            return OnBid.QUEUED
        return OnBid.NOTHING

    def next_waiting(self, now_ms: int, live: Callable[[T], bool]) -> tuple[bytes, T] | None:
        """A challenge closed: the longest-waiting bidder to challenge now, or None (none
        waiting, or no room yet). Waiting bidders settled meanwhile (an outcome, an open
        challenge) or whose bid is no longer ``live`` (its job ended) leave the queue."""
        while self._waiting:
            worker, bid = next(iter(self._waiting.items()))
            settled = self.outcome(worker, now_ms) is not None or self.open_for(worker)
            worth = not settled and live(bid)
            if worth and not self.wants(worker, now_ms):
                return None  # no room yet
            del self._waiting[worker]
            if worth:
                return worker, bid
        return None

    def outcome(self, worker: bytes, now_ms: int) -> Outcome | None:
        """``worker``'s remembered outcome, if it is still fresh."""
        kept = self._outcomes.get(worker)
        if kept is None or now_ms - kept[1] >= self.config.remember_ms:
            return None
        return kept[0]

    def wants(self, worker: bytes, now_ms: int) -> bool:
        """Whether to challenge ``worker`` now: no fresh outcome, none open, room left."""
        if self.outcome(worker, now_ms) is not None:
            return False
        if self.open_for(worker):
            return False
        return len(self._open) + self._judging < self.config.max_in_flight

    def open_for(self, worker: bytes) -> bool:
        """Whether a challenge of ``worker`` is open."""
        return any(o.worker == worker for o in self._open.values())

    def issue(
        self, spec: JobSpec, job_id: bytes, worker: bytes, claimed_ru_per_hour: int,
        challenge_id: bytes, now_ms: int,
    ) -> Challenge:  # fmt: skip
        """Open a challenge (the driver checked :meth:`wants`; ``challenge_id`` is fresh
        randomness of the driver's)."""
        if not self.wants(worker, now_ms):
            raise LocalProtocolError("issue() without wants(): one challenge per worker")
        challenge = challenge_of(spec, job_id, challenge_id)
        self._open[challenge_id] = Open(challenge, worker, claimed_ru_per_hour, now_ms)
        return challenge

    def answered(self, sender: bytes, answer: ChallengeAnswer, now_ms: int) -> tuple[Open, int]:
        """The open challenge ``answer`` closes and the ms it took on our clock; raises
        ``IllegalMessage`` for an answer to nothing we asked ``sender``."""
        pending = self._open.get(answer.challenge_id)
        if pending is None or pending.worker != sender or pending.challenge.job_id != answer.job_id:
            raise IllegalMessage("an answer to a challenge we did not send this peer")
        del self._open[answer.challenge_id]
        self._judging += 1
        return pending, max(1, now_ms - pending.sent_ms)

    def judged(self, pending: Open, outcome: Outcome | None, now_ms: int) -> None:
        """The answer to ``pending`` was judged (``outcome``; None: we could not tell)."""
        self._judging = max(0, self._judging - 1)
        if outcome is not None:
            self.record(pending.worker, outcome, now_ms)

    def expire(self, now_ms: int) -> list[tuple[Open, Outcome]]:
        """Open challenges past ``timeout_ms``: failed (recorded)."""
        late = [o for o in self._open.values() if now_ms >= self._deadline_ms(o)]
        out = []
        for pending in late:
            del self._open[pending.challenge.challenge_id]
            out.append((pending, self.record(pending.worker, UNANSWERED, now_ms)))
        return out

    def record(self, worker: bytes, outcome: Outcome, now_ms: int) -> Outcome:
        """Remember ``worker``'s outcome (the oldest forgotten past ``max_remembered``)."""
        self._outcomes.pop(worker, None)
        self._outcomes[worker] = (outcome, now_ms)
        while len(self._outcomes) > self.config.max_remembered:
            self._outcomes.popitem(last=False)
        return outcome

    def next_timeout_ms(self) -> int | None:
        if not self._open:
            return None
        return min(self._deadline_ms(o) for o in self._open.values())

    def _deadline_ms(self, pending: Open) -> int:
        """An open challenge fails unanswered after :func:`answer_timeout_ms`."""
        challenge = pending.challenge
        return pending.sent_ms + answer_timeout_ms(self.config, pending.claimed_ru_per_hour,
                                                   challenge.ru, challenge.allowance_ms)  # fmt: skip

    def statistics(self) -> tuple[int, int, int]:
        """(open challenges, answers being judged, remembered outcomes)."""
        return len(self._open), self._judging, len(self._outcomes)

    def waiting(self) -> int:
        """Bidders queued for a challenge slot."""
        return len(self._waiting)
