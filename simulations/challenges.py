"""Capacity challenges in the simulator: the node's challenger and answerer over
modelled renders (issue 17, item 3; node/roles/challenger.py, challenge_answer.py).

Requester (:class:`Challenger`), when the market keeps unproven bidders to trial
frames (``market.trial_leases`` > 0), as the node's: before a bid is fed to its
machine, ``protocol.challenge.ChallengeBook.on_bid`` decides — feed the bidder's
fresh outcome, nothing for a staked bidder or one with an accepted frame, a
challenge now, or a place in the book's queue. A challenge is a real
``CapacityChallenge`` (its id from the run's rng) whose answer is timed on the
requester's clock from the send (``ChallengeBook.answered``); the claim is the
node's (``protocol.challenge.claimed_score`` of the worker's advertised score and
its bid's ETA). Judging — fetching the answer's frame (a quarter of
``rendering.result_size_bytes``, at most ``max_answer_bytes``) and re-rendering one tile — takes that
transfer plus ``verification.challenge_judge_s``; the tile matches exactly when
the answer's CID is the challenge's true one (:func:`challenge_cid`: the
simulator's ground truth, as ``workers.true_cid`` for frames). ``judge`` and the
job's ``capacity_judged`` then decide, exactly as in the node.

Worker (:class:`ChallengeAnswerer`), as the node's: answers only the requester of
a job it bid on, once per job, one challenge at a time (a second one meanwhile
is dropped: the requester's timeout leaves it on trial). Its answer takes the
scene's transfer (``JobSpec.scene_size_bytes`` over the network model, the first
time the worker meets the job) plus ``rendering.job_setup_s`` (likewise), plus a
render of the challenge's render units on its modelled card
(``models.render_outcome``: it may fail, then no answer) plus
``rendering.challenge_start_s`` (a small render's fixed cost; both measured by
bench/sim_fidelity.py). The render is
unpaid: an honest worker's is booked at its ask in ``work_cost_wei`` and
``challenge_cost_wei``. A flood identity answers as it renders frames: a wrong
frame in a tenth of the time, and its operator replaces an identity a
challenge caught with a fresh one (as one a job blocklisted). The node renders a challenge in the job's
warm Blender process (node.render.warm: one command at a time), so a frame of
the job awarded while the answer renders starts after it (:meth:`ChallengeAnswerer.holds_ms`);
the answer does not wait for paid renders of other jobs, nor they for it.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from typing import TYPE_CHECKING

from protocol.challenge import (
    CHALLENGE_SCALE,
    Challenge,
    ChallengeBook,
    OnBid,
    Open,
    Outcome,
    answer_timeout_ms,
    challenge_of,
    claimed_score,
    judge,
    max_answer_bytes,
)
from protocol.errors import IllegalMessage
from protocol.market import JobMachine
from protocol.messages import Bid, CapacityChallenge, ChallengeAnswer, JobSpec
from simulations.models import render_outcome
from simulations.world import SimNode, World

if TYPE_CHECKING:
    from simulations.requesters import RequesterDriver
    from simulations.workers import WorkerDriver

MAX_ANSWERED = 4096  # node/roles/challenge_answer.py: jobs whose challenge was answered


def challenge_cid(challenge_id: bytes) -> str:
    """The CID an honest render of a challenge has (the simulator's ground truth)."""
    return "bafk" + hashlib.sha256(b"challenge" + challenge_id).hexdigest()[:52]


def answer_size_bytes(world: World, challenge: Challenge) -> int:
    """A quarter of a frame's modelled size, no more than the challenger fetches (the
    modelled frame size need not match the job's resolution)."""
    quarter = world.scenario.rendering.result_size_bytes // CHALLENGE_SCALE**2
    return max(1, min(quarter, max_answer_bytes(challenge.settings)))


class Challenger:
    """A requester's challenges (see the module docstring)."""

    def __init__(self, driver: RequesterDriver) -> None:
        self.driver = driver
        self.world = driver.world
        self.book: ChallengeBook[tuple[bytes, Bid]] = ChallengeBook()  # queue: (job id, bid)
        self._fed: dict[bytes, dict[bytes, tuple[int, bool]]] = {}  # job -> worker -> given

    def on_bid(self, machine: JobMachine, worker: bytes, bid: Bid) -> None:
        """Before ``bid`` is fed: feed the worker's known outcome, or challenge it."""
        world = self.world
        now_ms = world.epoch_ms()
        record = self.driver.record_for(worker)
        stake_wei = world.chain.stakes.get(bid.payment_address, 0)  # as the machine was fed
        accepted = 0 if record is None else record.accepted
        step = self.book.on_bid(worker, stake_wei, accepted, (machine.job_id, bid), now_ms)
        if step is OnBid.FEED:
            outcome = self.book.outcome(worker, now_ms)
            assert outcome is not None
            self._feed(machine, worker, outcome)
        elif step is OnBid.ISSUE:
            self._issue(machine, worker, bid, now_ms)

    def _issue(self, machine: JobMachine, worker: bytes, bid: Bid, now_ms: int) -> None:
        world, spec = self.world, machine.spec
        advert = world.adverts.get(worker, 0)
        claimed = claimed_score(advert, spec.ru_per_frame, bid.eta_s_per_frame)
        challenge = self.book.issue(spec, machine.job_id, worker, claimed,
                                    world.loop.rng.randbytes(32), now_ms)  # fmt: skip
        world.metrics.challenges_sent += 1
        world.send(self.driver.node, worker, CapacityChallenge(challenge.challenge_id,
                                                               machine.job_id))  # fmt: skip
        timeout_ms = answer_timeout_ms(self.book.config, claimed, challenge.ru,
                                       challenge.allowance_ms)  # fmt: skip
        world.loop.call_later(timeout_ms, self._expire, None, "challenge-timeout")

    def on_answer(self, sender: bytes, answer: ChallengeAnswer) -> None:
        world = self.world
        try:
            pending, measured_ms = self.book.answered(sender, answer, world.epoch_ms())
        except IllegalMessage as exc:
            world.metrics.machine_errors += 1
            world.loop.note("machine-error", f"challenger: {exc}")
            return
        fetch_ms = 0
        node = world.by_id.get(sender)
        if answer.frame_size_bytes <= max_answer_bytes(pending.challenge.settings) and node:
            fetch_ms = int(world.net.latency_ms(node.index, self.driver.node.index,
                                                answer.frame_size_bytes))  # fmt: skip
        delay_ms = fetch_ms + int(world.scenario.verification.challenge_judge_s * 1000)
        world.loop.call_later(delay_ms, self._judge, (pending, measured_ms, answer), "challenge-judge")

    def _judge(self, arg: tuple[Open, int, ChallengeAnswer]) -> None:
        pending, measured_ms, answer = arg
        challenge = pending.challenge
        outcome = None
        if challenge.job_id in self.driver.jobs:  # else: not judged, as the node (no scene)
            ok = (answer.frame_size_bytes <= max_answer_bytes(challenge.settings)
                  and answer.frame_cid == challenge_cid(challenge.challenge_id))  # fmt: skip
            outcome = judge(pending.claimed_ru_per_hour, challenge.ru, measured_ms, ok,
                            self.book.config.margin_permille, challenge.allowance_ms)  # fmt: skip
        self.book.judged(pending, outcome, self.world.epoch_ms())
        if outcome is not None:
            self._decided(pending, outcome)
        self._next()

    def _expire(self, _: object) -> None:
        for pending, outcome in self.book.expire(self.world.epoch_ms()):
            self._decided(pending, outcome)
        self._next()

    def _next(self) -> None:
        """A challenge closed: challenge the longest-waiting bidder still worth it."""
        jobs = self.driver.jobs
        now_ms = self.world.epoch_ms()
        waiting = self.book.next_waiting(now_ms, lambda bid: bid[0] in jobs)
        if waiting is not None:
            worker, (job_id, bid) = waiting
            self._issue(jobs[job_id], worker, bid, now_ms)

    def _decided(self, pending: Open, outcome: Outcome) -> None:
        metrics = self.world.metrics
        metrics.challenges_passed += outcome.passed
        metrics.challenges_caught += outcome.caught
        metrics.challenges_unanswered += not outcome.decides
        self.world.loop.note("challenge-judged", (pending.worker.hex()[:16], outcome.reason))
        for machine in list(self.driver.jobs.values()):
            if machine.has_bidder(pending.worker):
                self._feed(machine, pending.worker, outcome)
        if outcome.caught:  # a flood identity seen lying comes back under a fresh key
            self.world.sybil_caught(pending.worker)

    def _feed(self, machine: JobMachine, worker: bytes, outcome: Outcome) -> None:
        """Give the job the outcome unless it has it (no answer decides nothing)."""
        if not outcome.decides or machine.job_id not in self.driver.jobs:
            return
        fed = self._fed.setdefault(machine.job_id, {})
        data = (outcome.score_ru_per_hour, outcome.passed)
        if fed.get(worker) != data:
            fed[worker] = data
            now_ms = self.world.epoch_ms()
            self.driver.run(machine, machine.capacity_judged(worker, *data, now_ms))

    def job_over(self, job_id: bytes) -> None:
        self._fed.pop(job_id, None)


class ChallengeAnswerer:
    """A worker's answers to capacity challenges (see the module docstring)."""

    def __init__(self, driver: WorkerDriver, build: str) -> None:
        self.driver = driver
        self.world = driver.world
        self.build = build
        self._answered: OrderedDict[bytes, None] = OrderedDict()  # job ids
        self._busy = False
        self._holding: tuple[bytes, int] | None = None  # (job id, render's end ms)

    def holds_ms(self, job_id: bytes) -> int:
        """How much longer the answer's render holds ``job_id``'s renderer: the node
        renders a challenge in the job's warm process, so a frame of the job awarded
        meanwhile waits for it (node.render.warm: one command at a time)."""
        if self._holding is None or self._holding[0] != job_id:
            return 0
        return max(0, self._holding[1] - self.world.loop.now_ms)

    def receive(self, sender: bytes, message: CapacityChallenge) -> None:
        world, driver = self.world, self.driver
        spec = driver.machine.job_spec(message.job_id)
        if spec is None or spec.requester != sender or message.job_id in self._answered:
            world.metrics.machine_errors += 1  # the node refuses it (IllegalMessage)
            world.loop.note("machine-error", "worker: an uninvited capacity challenge")
            return
        if self._busy:
            return  # one at a time: the challenger times out, we stay on trial frames
        self._answered[message.job_id] = None
        while len(self._answered) > MAX_ANSWERED:
            self._answered.popitem(last=False)
        self._busy = True
        challenge = challenge_of(spec, message.job_id, message.challenge_id)
        duration_ms, ok = self._render_ms(sender, spec, challenge)
        self._holding = (message.job_id, world.loop.now_ms + duration_ms)
        world.loop.call_later(duration_ms, self._done, (sender, challenge, ok), "challenge-render")

    def _render_ms(self, requester: bytes, spec: JobSpec, challenge: Challenge) -> tuple[int, bool]:
        """How long the answer takes and whether the render succeeds (see the docstring)."""
        world, driver = self.world, self.driver
        node: SimNode = driver.node
        assert node.gpu is not None
        setup_ms = 0
        if challenge.job_id not in driver.set_up:  # the scene, fetched and inspected once
            driver.set_up.add(challenge.job_id)
            source = world.by_id[requester].index
            setup_ms = int(world.net.latency_ms(source, node.index, spec.scene_size_bytes)
                           + world.scenario.rendering.job_setup_s * 1000)  # fmt: skip
        scene = world.scenes[challenge.job_id]
        outcome = render_outcome(world.loop.rng, world.scenario.rendering, node.gpu, challenge.ru,
                                 scene.scene_vram_mib)  # fmt: skip
        render_ms = outcome.duration_ms + int(world.scenario.rendering.challenge_start_s * 1000)
        honest = node.behaviour != "flood"
        if outcome.ok and not honest:
            render_ms = render_ms // 10 + 1  # a wrong frame, as its paid ones
        if outcome.ok:
            cost_wei = challenge.ru * world.scenario.workload.price_wei_per_ru // (1 if honest else 10)
            costs = world.metrics.work_cost_wei
            costs[node.node_id] = costs.get(node.node_id, 0) + cost_wei
            if node.behaviour == "honest":
                world.metrics.challenge_cost_wei += cost_wei
        return setup_ms + render_ms, outcome.ok

    def _done(self, arg: tuple[bytes, Challenge, bool]) -> None:
        requester, challenge, ok = arg
        self._busy = False
        self._holding = None
        driver = self.driver
        if not driver.alive or not ok:
            return  # crashed meanwhile, or the render failed: no answer
        node = driver.node
        assert node.gpu is not None
        cid = challenge_cid(challenge.challenge_id)
        if node.behaviour == "flood":
            cid = "bafk" + hashlib.sha256(cid.encode() + b"wrong").hexdigest()[:52]
        answer = ChallengeAnswer(challenge.challenge_id, challenge.job_id, cid,
                                 answer_size_bytes(self.world, challenge), self.build, node.gpu.name)  # fmt: skip
        self.world.send(node, requester, answer)
