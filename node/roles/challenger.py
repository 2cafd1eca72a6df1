"""The requester's capacity challenges: issue, time, check one tile, feed the job.

Theory of operation. A job that keeps unproven bidders to trial frames
(``MarketConfig.trial_leases``) challenges each new bidder once: before its
bid is fed to the machine, a bidder that has no fresh outcome here, no
confirmed stake and no accepted frame on record is sent a ``CapacityChallenge``
(``protocol.challenge.ChallengeBook.on_bid`` decides, queues the bidders met
while every challenge slot is taken and keeps it all bounded).
The answer is timed on our market clock from the send (judged with the
challenge's allowance for the scene's transfer and the renderer's start:
``protocol.challenge``); then the answer's
frame is fetched from the worker and one tile of it, chosen from a secret
drawn now, is re-rendered with our own tile renderer (``node.verify.check_frame``:
exact within one build and device class). ``protocol.challenge.judge`` gives
the outcome, which is remembered per worker and fed to every live job the
worker bid on as a journalled ``capacity`` input (a replay decides the same).

A challenge we cannot judge ourselves (no renderer of the job's build, our
re-render failed) decides nothing: the bidder stays on trial frames, which an
accepted frame ends anyway. No answer in time fails it: ``protocol.challenge.answer_timeout_ms``,
longer than the book's timeout when the claim itself says the render takes longer.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
from typing import TYPE_CHECKING

import trio

from node.log import log_event
from node.render.base import RendererIdentity, RenderError
from node.roles.common import peer_of
from node.verify.checker import BuildMismatch, check_frame
from node.verify.images import ImageError, load_image
from protocol.challenge import (
    ChallengeBook,
    OnBid,
    Open,
    Outcome,
    answer_timeout_ms,
    claimed_score,
    judge,
    max_answer_bytes,
)
from protocol.codec import packb, unpackb
from protocol.messages import Bid, CapacityChallenge, ChallengeAnswer

if TYPE_CHECKING:
    from node.roles.requester import RequesterRole
    from node.roles.requester_job import RequesterJob

logger = logging.getLogger(__name__)


def pack_outcome(outcome: Outcome) -> bytes:
    """A ``capacity`` journal entry's data."""
    return packb([outcome.score_ru_per_hour, outcome.passed])  # caught when not passed


def unpack_outcome(data: bytes) -> tuple[int, bool]:
    score, passed = unpackb(data)
    return int(score), bool(passed)


class Challenger:
    def __init__(self, role: RequesterRole) -> None:
        self.role = role
        # its queue holds the (job, bid) of bidders met while every challenge slot was taken
        self.book: ChallengeBook[tuple[RequesterJob, Bid]] = ChallengeBook()
        self.judged = 0  # challenges judged (passed, caught or unanswered)
        self.passed = 0
        self.caught = 0
        self._judged_event = trio.Event()

    async def wait_judged(self, count: int) -> None:
        """Return once ``count`` challenges were judged (passed, caught or unanswered)."""
        while self.judged < count:
            await self._judged_event.wait()

    async def on_bid(self, job: RequesterJob, worker: bytes, bid: Bid) -> None:
        """Before ``bid`` is fed: feed the worker's known outcome, or challenge it."""
        now_ms = self.role.clock.now_ms()
        record = self.role.worker_record(worker)
        accepted = 0 if record is None else record.accepted
        step = self.book.on_bid(worker, job.stakes_fed.get(bid.payment_address), accepted,
                                (job, bid), now_ms)  # fmt: skip
        if step is OnBid.FEED:
            outcome = self.book.outcome(worker, now_ms)
            assert outcome is not None
            await self.feed(job, worker, outcome)
        elif step is OnBid.ISSUE:
            self._issue(job, worker, bid, now_ms)

    def _issue(self, job: RequesterJob, worker: bytes, bid: Bid, now_ms: int) -> None:
        seen = self.role.ctx.node.capacity.get(peer_of(worker))
        advert_score = seen.advert.score_ru_per_hour if seen is not None else 0
        claimed = claimed_score(advert_score, job.spec.ru_per_frame, bid.eta_s_per_frame)
        challenge = self.book.issue(job.spec, job.job_id, worker, claimed, secrets.token_bytes(32),
                                    now_ms)  # fmt: skip
        self.role.ctx.outbox.send(worker, CapacityChallenge(challenge.challenge_id, job.job_id))
        log_event(logger, logging.INFO, "capacity challenge sent", worker=worker.hex()[:16],
                  claimed_ru_per_hour=claimed, challenge_ru=challenge.ru)  # fmt: skip
        timeout_ms = answer_timeout_ms(self.book.config, claimed, challenge.ru,
                                       challenge.allowance_ms)  # fmt: skip
        self.role.spawn(self._expire_after, timeout_ms)

    def _next(self) -> None:
        """A challenge closed: challenge the longest-waiting bidder still worth it."""
        now_ms = self.role.clock.now_ms()
        waiting = self.book.next_waiting(now_ms, lambda bid: bid[0].view.outcome is None)
        if waiting is not None:
            worker, (job, bid) = waiting
            self._issue(job, worker, bid, now_ms)

    def on_answer(self, sender: bytes, answer: ChallengeAnswer) -> None:
        """Raises ``IllegalMessage`` for an answer to nothing we asked ``sender``."""
        pending, measured_ms = self.book.answered(sender, answer, self.role.clock.now_ms())
        self.role.spawn(self._judge, pending, measured_ms, answer)

    async def _judge(self, pending: Open, measured_ms: int, answer: ChallengeAnswer) -> None:
        outcome = None
        try:
            ok = await self._tile_matches(pending, answer)
            if ok is not None:  # None: we could not judge it; the bidder stays on trial
                outcome = judge(pending.claimed_ru_per_hour, pending.challenge.ru, measured_ms,
                                ok, self.book.config.margin_permille,
                                pending.challenge.allowance_ms)  # fmt: skip
        finally:
            self.book.judged(pending, outcome, self.role.clock.now_ms())
        if outcome is not None:
            await self._decided(pending, outcome)
        self._next()

    async def _tile_matches(self, pending: Open, answer: ChallengeAnswer) -> bool | None:
        """Whether one re-rendered tile matches the answer (None: we could not tell)."""
        ctx, challenge = self.role.ctx, pending.challenge
        job = self.role.jobs.get(challenge.job_id)
        if job is None or not ctx.content.has(job.spec.scene_cid):
            return None
        limit = max_answer_bytes(challenge.settings)
        if answer.frame_size_bytes > limit:
            return False  # no frame of that size is this challenge's: we fetch none
        try:
            path = await ctx.fetch_from(pending.worker, answer.frame_cid, max_bytes=limit)
            image = load_image(path)
            outcome = await check_frame(
                ctx.render.tiles, ctx.content.path_of(job.spec.scene_cid), challenge.settings,
                challenge.frame, image, k=1,
                result_digest=hashlib.sha256(answer.frame_cid.encode()).digest(),
                worker=RendererIdentity(answer.renderer_build, answer.device_class),
                job_build=job.spec.renderer_build,
            )  # fmt: skip
        except ImageError:
            return False  # the worker's image: unreadable, wrong size or format
        except (BuildMismatch, RenderError) as exc:
            log_event(logger, logging.WARNING, "capacity challenge not judged", error=str(exc)[:200])
            return None
        except Exception as exc:  # a failed fetch: the network's fault or the worker's,
            # we cannot tell, so nothing is decided (the bidder stays on trial frames)
            log_event(logger, logging.INFO, "capacity challenge answer not fetched",
                      error=f"{type(exc).__name__}: {exc}"[:200])  # fmt: skip
            return None
        return outcome.accepted

    async def _expire_after(self, timeout_ms: int) -> None:
        await trio.sleep(timeout_ms / 1000)
        for pending, outcome in self.book.expire(self.role.clock.now_ms()):
            await self._decided(pending, outcome)
        self._next()

    async def _decided(self, pending: Open, outcome: Outcome) -> None:
        """``outcome`` is recorded in the book: log it, feed the jobs the worker bid on."""
        self.judged += 1
        self.passed += outcome.passed
        self.caught += outcome.caught
        self._judged_event.set()
        self._judged_event = trio.Event()
        log_event(logger, logging.INFO, "capacity challenge judged", worker=pending.worker.hex()[:16],
                  passed=outcome.passed, score_ru_per_hour=outcome.score_ru_per_hour,
                  measured_ms=outcome.measured_ms, reason=outcome.reason)  # fmt: skip
        for job in list(self.role.jobs.values()):
            if job.view.outcome is None and job.machine.has_bidder(pending.worker):
                await self.feed(job, pending.worker, outcome)

    async def feed(self, job: RequesterJob, worker: bytes, outcome: Outcome) -> None:
        """Give ``job``'s machine the outcome (journalled) unless it has it already; no
        answer decides nothing (the bidder stays on trial)."""
        if not outcome.decides:
            return
        data = pack_outcome(outcome)
        if job.capacity_fed.get(worker) != data:
            await job.step("capacity", worker, data, self.role.clock.now_ms())
