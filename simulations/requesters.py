"""Requester driver: runs the real ``protocol.market.JobMachine`` per job.

It does what ``node/`` does for a requester and nothing more: lock the budget
in escrow, start the machine once the deposit is confirmed, carry out its
commands (send, gossip, pick a checker, send vouchers, claim the refund) and
keep its timer armed. Every decision — whom to award, when a lease expired,
what a frame costs, what is owed — is the machine's.

Lanes as in the node (``node/roles/lanes.py``): a job's ``Send`` and
``FundLanes`` commands leave in the machine's order, and a message leaves only
after every funding before it was mined (a reverted funding is final: the
worker whose lane stayed short declines its award).

A free-riding requester carries out everything except ``RecordPayment`` (for
frames and checks alike): it never signs a voucher. A clawback requester
(``node/roles/adversary.py``'s ``clawback``) does, once per job before its
first voucher: it funds a lane of its own second address (a sock puppet) with
everything still unallocated, signs that address a voucher for all the job
still holds and redeems it; lanes keep the workers' funded pay out of its reach.

Reputation as in the node: one ``ReputationBook`` per requester, fed by the
machines' ``WorkerJudged``; a worker's record — the book merged with the public
work record's history (``with_public``; :mod:`simulations.public_record`, which
this driver publishes into as the node's requester does) — goes to a machine
before its bids and results whenever it changed; each job's ``check_secret`` is drawn from the
seeded RNG. ``verification.reputation = false`` feeds no records (every worker
reads as fresh: every frame checked, awards by price). ``prior_accepted`` and
``prior_age_days`` start every book with the first workers already known
(``prior_cheaters = false``: only the honest ones).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from protocol import RemoteProtocolError
from protocol.forced_errors import plant_goes
from protocol.market import (
    UNVERIFIABLE,
    CheckerFeeDue,
    Command,
    DisputeResolved,
    FrameAccepted,
    FrameFailed,
    FundLanes,
    JobFinished,
    JobMachine,
    MarketConfig,
    PassClaimDue,
    PlantJudged,
    Publish,
    RecordPayment,
    RefundDue,
    RequestPlant,
    RequestVerification,
    Send,
    SlashDue,
    TaskState,
    WorkerBlocklisted,
    WorkerJudged,
)
from protocol.market.awarding import count_matters, lanes_elsewhere, planned_unmined
from protocol.market.quote import budget_wei
from protocol.messages import (
    Assurance,
    Award,
    Bid,
    ChallengeAnswer,
    Escrow,
    JobAnnounce,
    JobCancelled,
    JobSpec,
    LeaseRevoked,
    Message,
    RenderSettings,
    Result,
    Verdict,
    VerifyRequest,
    Voucher,
    job_id_of,
)
from protocol.reputation import DAY_MS, ReputationBook, WorkerRecord, with_public
from protocol.slashing import claim_possible
from protocol.verification import (
    CHECKER_WAIT_MS,
    DEFAULT_POLICY,
    VerificationPolicy,
    checks_per_frame,
    choose_checker,
    prefer_unasked,
    with_room,
)
from simulations.challenges import Challenger
from simulations.lanes import Clawback, JobQueues
from simulations.metrics import JobRecord
from simulations.models import JobDraw
from simulations.pass_claims import (
    asks,
    checker_stake_wei,
    claim_contradicted_pass,
    claim_missed_plant,
)
from simulations.public_record import PublicRecord, shared_record
from simulations.slip import CheatFates
from simulations.world import SimNode, World

RENDERER_BUILD = "blender-3.4.1"
CHAIN_ID = 31337
ESCROW_CONTRACT = bytes.fromhex("e5c0" * 10)
ESCROW = Escrow(CHAIN_ID, ESCROW_CONTRACT, bytes(32))  # as node/roles/submit.py names it
NO_SIGNATURE = bytes(65)  # vouchers are checked by the chain model's lookup


_DECISIONS = (FrameAccepted, FrameFailed, WorkerBlocklisted, JobFinished)


class RequesterDriver:
    def __init__(self, world: World, node: SimNode) -> None:
        self.world = world
        self.node = node
        self.free_rider = node.behaviour == "free_rider"
        self.clawback = node.behaviour == "clawback"
        self._clawed: set[bytes] = set()  # jobs clawed back (once each)
        self._queues = JobQueues(world, node)
        self.jobs: dict[bytes, JobMachine] = {}
        self._reached: dict[bytes, dict[int, None]] = {}  # job id -> workers any announce reached
        self._paid: dict[tuple[bytes, bytes], int] = {}  # (job, payee) -> cumulative voucher
        self._job_count = 0
        self._rejected: set[bytes] = set()  # task ids already counted as rejected
        self._checked: set[bytes] = set()  # task ids a checker was asked about
        # job -> frame CID -> when its copy for checkers is ready (verification.prepare_s)
        self._prepared: dict[bytes, dict[str, int]] = {}
        self._prepare_free_ms: dict[bytes, int] = {}  # job -> when its next may start
        self.fates = CheatFates(world)  # what became of each cheat: the slip's books
        self.struck: set[bytes] = set()  # checkers that passed one of our plants
        # checker -> checks given it, real checks and plants apart (as the node counts)
        self._given: dict[str, dict[bytes, int]] = {"check": {}, "plant": {}}
        self._plants: set[tuple[bytes, bytes]] = set()  # (task id, checker) of plants sent
        # Checks and plants waiting for a checker with room (verification.with_room), in
        # order: (task id, "check" or "plant") -> (job id, the command). A verdict frees a
        # place (_drain); the machine's verify timeout renews a waiting check's request.
        self._waiting: dict[tuple[bytes, str], tuple[bytes, Any]] = {}
        self._draining = False
        self._drain_at_ms: int | None = None  # a drain scheduled for a request going stale
        self.tested: dict[bytes, int] = {}  # checker -> our plants it rejected (probation)
        self._verdict: Verdict | None = None  # the verdict being fed to a machine
        v = world.scenario.verification
        self.reputation = ReputationBook()
        self._use_reputation = v.reputation
        self._policy = scenario_policy(v.tiles_per_check, v.checkers_fresh, v.tiles_fresh)
        self._fed: dict[bytes, dict[bytes, WorkerRecord | None]] = {}  # job -> worker -> record
        # the network's public work record (with reputation only: else nobody reads it)
        self.public: PublicRecord | None = (
            shared_record(world) if v.reputation and v.public_record else None
        )
        self._depth = 0  # nested _run calls (a command carried out feeds the machine)
        if v.prior_accepted:
            first_seen_ms = world.epoch_ms() - int(v.prior_age_days * DAY_MS)
            for worker in world.workers:
                if worker.behaviour != "honest" and not v.prior_cheaters:
                    continue
                record = WorkerRecord(accepted=v.prior_accepted, first_seen_ms=first_seen_ms)
                self.reputation.load(worker.node_id, record)
        m = world.scenario.market
        self._config = MarketConfig(
            lease_ms=int(m.lease_s * 1000),
            heartbeat_interval_ms=int(m.heartbeat_interval_s * 1000),
            bid_window_ms=int(m.bid_window_s * 1000),
            max_attempts_per_frame=m.max_attempts_per_frame,
            blocklist_after_failures=m.blocklist_after_failures,
            blocklist_after_rejections=m.blocklist_after_rejections,
            max_tasks_per_worker=m.max_tasks_per_worker,
            verify_timeout_ms=int(m.verify_timeout_s * 1000),
            task_timeout_factor=m.task_timeout_factor,
            min_task_timeout_ms=int(m.min_task_timeout_s * 1000),
            reannounce_interval_ms=int(m.reannounce_interval_s * 1000),
            # The contract's grace is the market's: a refund before it would revert.
            refund_grace_ms=int(world.scenario.chain.grace_s * 1000),
            plant_rate_ppm=m.plant_rate_ppm,
            trial_leases=m.trial_leases,
            checks_per_checker=m.checks_per_checker,
            min_stake_wei=m.min_stake_wei,
        )
        # capacity challenges of unproven bidders, as the node's (with trial leases only)
        self.challenges = Challenger(self) if m.trial_leases else None
        self._checker_stake_wei = checker_stake_wei(world.scenario)  # asked of checkers

    def submit(self, draw: JobDraw) -> None:
        """A new job arrives: deposit its budget, start the machine when confirmed."""
        world, now = self.world, self.world.epoch_ms()
        self._job_count += 1
        assurance = Assurance(world.scenario.verification.assurance)
        w = world.scenario.workload
        settings = RenderSettings(
            "cycles", w.resolution_x, w.resolution_y, 128, self._job_count, "png"
        )
        scene = hashlib.sha256(self.node.node_id + self._job_count.to_bytes(4, "big")).hexdigest()
        fee_bps = world.scenario.verification.checker_fee_bps
        budget = draw.budget_wei or budget_wei(  # the node's escrow (node.roles.submit)
            draw.frames, draw.max_price_wei_per_frame, fee_bps, checks_per_frame(assurance, self._policy))
        spec = JobSpec(
            self.node.node_id, self.node.address, f"bafk{scene[:52]}", 50_000_000,
            RENDERER_BUILD, settings, tuple(range(draw.frames)), draw.ru_per_frame,
            draw.max_price_wei_per_frame, budget, now + draw.deadline_ms, assurance,
            fee_bps, ESCROW, now,
        )  # fmt: skip
        job_id = job_id_of(spec)
        world.scenes[job_id] = draw
        world.metrics.jobs[job_id] = JobRecord(world.loop.now_ms, draw.frames, draw.ru_per_frame)
        world.metrics.open_jobs += 1
        world.invariants.open_job(job_id, spec.budget_wei, spec.max_price_wei_per_frame)
        deadline_ms = spec.deadline_ms - world.start_ms

        def deposited(ok: bool) -> None:
            if ok:
                self._start(job_id, spec)
            else:
                self._finish(job_id, "deposit_failed")

        def deposit(_: object) -> None:
            world.chain.deposit(self.node.address, job_id, spec.budget_wei, deadline_ms, deposited)

        preflight_ms = int(world.scenario.rendering.preflight_s * 1000)  # the node's own, first
        if preflight_ms:
            world.loop.call_later(preflight_ms, deposit, None, "preflight")
        else:
            deposit(None)

    def _start(self, job_id: bytes, spec: JobSpec, check_secret: bytes | None = None) -> None:
        secret = check_secret or self.world.loop.rng.randbytes(32)
        machine = JobMachine(job_id, spec, self._config, self.world.epoch_ms(),
                             check_secret=secret, verification=self._policy)  # fmt: skip
        self.jobs[job_id] = machine
        self._fed[job_id] = {}
        if self._checker_stake_wei:  # the node journals it before its first check
            machine.set_pass_claim_stake(self._checker_stake_wei)
        if self.public is not None:
            self.public.job_started(JobAnnounce(job_id, spec))
        self._run(machine, machine.start(self.world.epoch_ms()))

    def record_for(self, worker: bytes) -> WorkerRecord | None:
        """What the machines are given of ``worker``'s record (None: reputation off): our
        book merged with the public record's history, as the node's ``worker_record``."""
        if not self._use_reputation:
            return None
        if self.public is None:
            return self.reputation.record(worker)
        now_ms = self.world.epoch_ms()
        public = self.public.history(worker, now_ms)
        return with_public(self.reputation.record(worker), public, now_ms)

    def feed(self, machine: JobMachine, worker: bytes) -> None:
        """Give ``machine`` the worker's record from the book, when it changed."""
        record = self.record_for(worker)
        fed = self._fed.setdefault(machine.job_id, {})
        if fed.get(worker) != record:
            fed[worker] = record
            machine.set_worker_record(worker, record)

    def feed_stake(self, machine: JobMachine, address: bytes) -> None:
        """A bidder's confirmed stake and, when the job asks a minimum its stake meets
        (``protocol.market.awarding.count_matters``), the other jobs it backs
        (``Escrow.open_lanes_of`` less this job's own lane), as the node's
        ``RequesterJob.feed_stake`` feeds them, awarding what a changed reading allows
        (``JobMachine.stake_confirmed``)."""
        chain = self.world.chain
        stake_wei, lanes = chain.stakes.get(address, 0), 0
        if count_matters(stake_wei, machine.config.min_stake_wei):
            job = chain.jobs.get(machine.job_id)
            own = job is not None and job.lanes.get(address, 0) > 0
            lanes = lanes_elsewhere(chain.open_lanes_of(address), own,
                                    self._planned_elsewhere(address, machine))  # fmt: skip
        self._run(machine, machine.stake_confirmed(address, stake_wei, lanes, self.world.epoch_ms()))

    def _planned_elsewhere(self, address: bytes, machine: JobMachine) -> int:
        """This requester's other jobs that planned ``address`` a lane not yet mined
        (``protocol.market.awarding.planned_unmined``), as the node's
        ``RequesterRole.planned_elsewhere``."""
        chain = self.world.chain
        n = 0
        for job_id, other in self.jobs.items():
            if other is not machine:
                job = chain.jobs.get(job_id)
                mined = {a for a, wei in job.lanes.items() if wei > 0} if job is not None else set()
                n += address in planned_unmined(other.lanes_wei(), mined)
        return n

    def _refresh_backing(self, machine: JobMachine) -> None:
        """Every standing bid's reading again, before a message or a timer of a job asking
        a minimum (the node's ``RequesterJob._run_backing`` reads them every minute and
        once a lane of its own was mined: the simulator's readings are live, the node's
        up to two minutes old)."""
        if machine.config.min_stake_wei:
            for address in sorted(machine.bidder_addresses()):
                self.feed_stake(machine, address)

    def on_message(self, sender: bytes, message: Message, digest: bytes | None) -> None:
        if isinstance(message, ChallengeAnswer):  # the node's challenger, not its machine
            if self.challenges is not None:
                self.challenges.on_answer(sender, message)
            return
        machine = self.jobs.get(getattr(message, "job_id", b""))
        if machine is None:
            return  # a job that ended (or never was ours): late messages are ignored
        if isinstance(message, Bid | Result):  # the decisions that read reputation
            self.feed(machine, sender)
        if isinstance(message, Bid) and machine.reads_stakes:  # as the node
            self.feed_stake(machine, message.payment_address)
        self._refresh_backing(machine)
        if isinstance(message, Bid) and self.challenges is not None:  # its outcome, or a challenge
            self.challenges.on_bid(machine, sender, message)
        try:
            commands = machine.receive(
                sender, message, self.world.epoch_ms(), envelope_digest=digest
            )
        except RemoteProtocolError as exc:
            self.world.metrics.machine_errors += 1
            self.world.loop.note("machine-error", f"requester: {exc}")
            return
        if self.public is not None and isinstance(message, Result | Verdict):
            self.public.taken(self.node.node_id, sender, message, digest or b"", commands)
        if isinstance(message, Verdict) and not message.passed:
            self._count_rejection(machine, message.task_id, message.worker)
        elif isinstance(message, Verdict) and (message.task_id, sender) not in self._plants:
            self.fates.passed(message.task_id, sender)
        elif isinstance(message, Result):
            self.fates.delivered(machine.job_id, message.task_id)
        self._verdict = message if isinstance(message, Verdict) else None  # a claim's evidence
        self._run(machine, commands)
        if isinstance(message, Verdict):
            self._drain()  # its checker has room again

    def _count_rejection(self, machine: JobMachine, task_id: bytes, worker: bytes) -> None:
        """A checker's failing verdict that the machine acted on: caught or false."""
        if machine.task_state(task_id) is not TaskState.REJECTED or task_id in self._rejected:
            return
        self._rejected.add(task_id)
        self.world.invariants.cheater_seen(machine.job_id, worker)
        if self.world.result_kind.get(task_id, "honest") == "honest":
            self.world.metrics.false_rejects += 1
        else:
            self.world.metrics.cheats_caught += 1

    def stop(self) -> None:
        for job_id in self.jobs:
            self.world.disarm((self.node.index, job_id))

    def _on_timer(self, job_id: bytes) -> None:
        machine = self.jobs.get(job_id)
        if machine is not None:
            self._refresh_backing(machine)
            self._run(machine, machine.handle_timer(self.world.epoch_ms()))

    def run(self, machine: JobMachine, commands: list[Command]) -> None:
        self._run(machine, commands)

    def _run(self, machine: JobMachine, commands: list[Command]) -> None:
        self._depth += 1
        try:
            for command in commands:
                self._carry_out(machine, command)
        finally:
            self._depth -= 1
        if self.public is not None:
            self.public.decided(self.node.node_id, machine.job_id, commands)
        if self.public is not None and not self._depth:  # once the whole input was applied
            self.public.flush(self.node, machine)
        job_id = machine.job_id
        if job_id in self.jobs:
            self.world.arm(
                (self.node.index, job_id), machine.get_timer(), lambda: self._on_timer(job_id)
            )

    def _carry_out(self, machine: JobMachine, cmd: Command) -> None:
        world = self.world
        if isinstance(cmd, _DECISIONS):
            world.loop.note(type(cmd).__name__, cmd)  # decisions belong in the trace
        if isinstance(cmd, Send):
            if isinstance(cmd.message, Award):
                world.invariants.award_sent(machine.job_id, cmd.message.frame, cmd.to)
            elif isinstance(cmd.message, LeaseRevoked) and cmd.message.reason == UNVERIFIABLE:
                world.metrics.results_abandoned += 1
            elif isinstance(cmd.message, VerifyRequest):
                self._checked.add(cmd.message.task_id)
                world.metrics.checks_requested += 1
                if cmd.message.frame_cid in world.plants:
                    world.metrics.plants_sent += 1
                    self._plants.add((cmd.message.task_id, cmd.to))
                world.metrics.tiles_requested += cmd.message.tiles
            self._queues.put(machine.job_id, cmd)
        elif isinstance(cmd, FundLanes):
            self._queues.put(machine.job_id, cmd)
        elif isinstance(cmd, WorkerJudged):
            self.reputation.judge(cmd.worker, cmd.judgement, world.epoch_ms())
        elif isinstance(cmd, DisputeResolved):
            if self.public is not None:
                self.public.dispute_resolved(self.node.node_id, cmd)
            world.metrics.disputes_resolved += 1
            if not cmd.upheld:
                world.metrics.disputes_overturned += 1
                self.fates.overturned(cmd.task_id)
                if cmd.task_id in self._rejected and world.result_kind.get(cmd.task_id, "honest") != "honest":
                    world.metrics.cheats_caught -= 1  # not caught after all: a miss if accepted
                still = cmd.worker in machine.blocklisted()
                world.invariants.rejection_struck(cmd.job_id, cmd.worker, still)
        elif isinstance(cmd, Publish):
            self._publish(machine.job_id, cmd.message)
        elif isinstance(cmd, RequestVerification):
            self._pick_checker(machine, cmd)
        elif isinstance(cmd, RequestPlant):
            self._plant(machine, cmd)
        elif isinstance(cmd, SlashDue):
            self._slash(cmd)
        elif isinstance(cmd, PassClaimDue):  # a pass a dispute's majority showed false
            claim_contradicted_pass(world, self.node, cmd.job_id, cmd.task_id,
                                    world.by_id[cmd.checker], cmd.verdict)  # fmt: skip
        elif isinstance(cmd, PlantJudged):
            if cmd.void:  # (the simulator's frames show every cell: never, as the node does)
                pass
            elif cmd.missed:
                world.metrics.plants_missed += 1
                claim_missed_plant(world, self.node, machine.job_id, world.by_id[cmd.checker],
                                   self._verdict)  # fmt: skip
                self._strike(cmd.checker)
            else:
                self.tested[cmd.checker] = self.tested.get(cmd.checker, 0) + 1
        elif isinstance(cmd, RecordPayment):
            world.invariants.payment_recorded(cmd.job_id, cmd.payee_address, cmd.cumulative_wei)
            world.metrics.owed_wei[(cmd.job_id, cmd.payee_address)] = cmd.cumulative_wei
            self._pay(cmd.job_id, cmd.payee_address, cmd.cumulative_wei)
        elif isinstance(cmd, CheckerFeeDue):
            world.invariants.fee_due(cmd.job_id, cmd.payee_address, cmd.fee_wei)
            if not self.free_rider:
                world.metrics.fees_wei += cmd.fee_wei  # its RecordPayment follows
                fees = world.metrics.checker_fees_wei
                fees[cmd.checker] = fees.get(cmd.checker, 0) + cmd.fee_wei
                if (cmd.task_id, cmd.checker) in self._plants:
                    world.metrics.plant_fees_wei += cmd.fee_wei
        elif isinstance(cmd, FrameAccepted):
            self._accepted(cmd)
        elif isinstance(cmd, FrameFailed):
            world.metrics.frames_failed += 1
            if self.public is not None:
                self.public.frame_failed(cmd.job_id)
        elif isinstance(cmd, WorkerBlocklisted):
            world.invariants.worker_blocklisted(cmd.job_id, cmd.worker)
            world.sybil_caught(cmd.worker)
        elif isinstance(cmd, JobFinished):
            if self.public is not None:
                accepted = world.metrics.jobs[cmd.job_id].frames_accepted
                self.public.job_closed(cmd.job_id, cmd.outcome.value, accepted)
            self._finish(cmd.job_id, cmd.outcome.value)
        elif isinstance(cmd, RefundDue):
            at_ms = max(cmd.not_before_ms - world.start_ms, world.chain.refund_at_ms(cmd.job_id))
            world.loop.call_at(
                at_ms, lambda _: world.chain.refund(cmd.job_id, None), None, "refund"
            )

    def _publish(self, job_id: bytes, message: Message) -> None:
        world = self.world
        if isinstance(message, JobAnnounce):
            # Each (re-)announce reaches its own sample; a cancel reaches all of them.
            targets = world.gossip_targets()
            self._reached.setdefault(job_id, {}).update(dict.fromkeys(targets))
        else:
            targets = list(self._reached.get(job_id, {}))
        world.publish(self.node, message, targets)

    def _strike(self, checker_id: bytes) -> None:
        """Ask ``checker_id`` nothing again (it passed our plant); a whitewashing lazy
        checker comes back under a fresh key, which we know nothing of."""
        checker = self.world.by_id[checker_id]
        whitewash = self.world.scenario.adversaries.lazy_checker_whitewash
        if not (whitewash and checker.behaviour == "lazy_checker"):
            self.struck.add(checker_id)
            return
        from simulations.checkers import CheckerDriver  # it imports us (through workers)

        assert isinstance(checker.driver, CheckerDriver)
        self.tested.pop(checker_id, None)
        for given in self._given.values():
            given.pop(checker_id, None)
        checker.driver.whitewashed(self.node.node_id)

    def _plant(self, machine: JobMachine, cmd: RequestPlant) -> None:
        """A plant of the task's result: every cell wrong (modelled by its CID). As the
        node's, its checker is picked before the task's real check's (protocol.market.
        plants): it waits for the frame's preparation and runs first when it is ready
        (the real check's pick is scheduled for the same instant after it), and a plant
        waiting for room is drained before the real check that waited after it. (The node
        makes the plant on its loop, in milliseconds; not modelled.)"""
        ready_ms = self._ready_ms(machine, cmd.frame_cid)
        if ready_ms > self.world.loop.now_ms:  # its pick runs before the real check's
            self.world.loop.call_at(ready_ms, self._resume, (machine.job_id, self._plant, cmd),
                                    "plant-wait")  # fmt: skip
            return
        world = self.world
        exclude = ({cmd.worker} | cmd.exclude | machine.checkers_excluded(cmd.task_id)
                   | machine.checkers_refused(cmd.task_id) | self.struck)  # fmt: skip
        checkers = [c for c in world.online_checkers()
                    if c.node_id not in exclude and asks(world, machine, c)]  # fmt: skip
        if not machine.plant_spares_checks(cmd.task_id, len(checkers)):
            return  # the result's own checks need every checker about (as the node)
        checkers = self._with_room(checkers)
        if not checkers:  # as a real check: it waits for a checker with room
            self._wait(machine, (cmd.task_id, "plant"), cmd)
            return
        checker = self._choose(checkers, "plant")
        tested = self.tested.get(checker.node_id, 0)
        if not plant_goes(cmd.position, tested, machine.config.plant_rate_ppm):
            return  # probation: this checker's rate is below the machine's draw
        cid = "bafkplant" + cmd.key.hex()[:48]
        world.plants.add(cid)
        now_ms = world.epoch_ms()
        self._run(machine, machine.assign_plant(cmd.task_id, checker.node_id, cid, now_ms,
                                                checker.address))  # fmt: skip

    def _with_room(self, checkers: list[SimNode]) -> list[SimNode]:
        """Those of ``checkers`` that hold fewer of our requests than the cap, over all
        our jobs (``verification.with_room``, as the node's RequesterRole.checks_out)."""
        ids, cap = [c.node_id for c in checkers], self._config.checks_per_checker
        if not cap:
            return checkers  # no cap (the default): nothing to count
        out = JobMachine.checks_out_over(self.jobs.values(), self.world.epoch_ms())
        roomy = set(with_room(ids, out, cap))
        return [c for c in checkers if c.node_id in roomy]

    def _wait(self, machine: JobMachine, key: tuple[bytes, str], cmd: Any) -> None:
        """Hold ``cmd`` until a checker has room: a verdict frees one (``_drain``), and so
        does a request of ours going stale at its checker, when a drain is scheduled."""
        self._waiting[key] = (machine.job_id, cmd)
        world, now_ms = self.world, self.world.epoch_ms()
        stale = [t for m in self.jobs.values() if (t := m.next_check_stale_ms(now_ms)) is not None]
        if stale and (self._drain_at_ms is None or min(stale) < self._drain_at_ms):
            self._drain_at_ms = min(stale)
            world.loop.call_at(min(stale) - world.start_ms, self._timed_drain, None, "drain")

    def _timed_drain(self, _: object) -> None:
        if self._drain_at_ms is not None and self.world.epoch_ms() >= self._drain_at_ms:
            self._drain_at_ms = None
            self._drain()

    def _drain(self) -> None:
        """Give the checks and plants waiting for room, in order, another pick."""
        if self._draining or not self._waiting:
            return
        self._draining = True
        try:
            for key in list(self._waiting):
                job_id, cmd = self._waiting.pop(key, (b"", None))
                machine = self.jobs.get(job_id)
                if machine is None:
                    continue  # the job ended (or the entry went meanwhile)
                if isinstance(cmd, RequestPlant):
                    self._plant(machine, cmd)
                elif machine.check_waiting(cmd.task_id):  # else a renewal went out, or decided
                    self._pick_now(machine, cmd)
        finally:
            self._draining = False

    def _resume(self, arg: tuple[bytes, Callable[[JobMachine, Any], None], Any]) -> None:
        """Carry out a command that waited for its frame's preparation (the job's still on)."""
        job_id, carry_out, cmd = arg
        machine = self.jobs.get(job_id)
        if machine is not None:  # else the job ended meanwhile
            carry_out(machine, cmd)

    def _choose(self, checkers: list[SimNode], kind: str) -> SimNode:
        """The node's choice (``protocol.verification.choose_checker``), drawn from the run's rng."""
        by_id = {c.node_id: c for c in checkers}
        given = self._given[kind]
        chosen = choose_checker(list(by_id), given, self.world.loop.rng.getrandbits(64))
        return by_id[chosen]

    def _pick_checker(self, machine: JobMachine, cmd: RequestVerification) -> None:
        """As the node's requester (node.roles.requester_job): a result's first check
        waits for the frame's copy checkers are served (``verification.prepare_s``: its
        fetch from the worker and re-encoding, node.roles.plants; one at a time per job,
        once a frame); a later check of the same frame, for the copy to be ready."""
        ready_ms = self._ready_ms(machine, cmd.frame_cid)
        if ready_ms > self.world.loop.now_ms:
            self.world.loop.call_at(ready_ms, self._resume,
                                    (machine.job_id, self._pick_now, cmd), "prepare")  # fmt: skip
            return
        self._pick_now(machine, cmd)

    def _ready_ms(self, machine: JobMachine, frame_cid: str) -> int:
        """When the copy of ``frame_cid`` checkers are served is ready (its preparation
        starts now if it has not, after the job's previous one)."""
        prepare_ms = int(self.world.scenario.verification.prepare_s * 1000)
        if not prepare_ms:
            return 0
        now_ms = self.world.loop.now_ms
        ready = self._prepared.setdefault(machine.job_id, {})
        ready_ms = ready.get(frame_cid)
        if ready_ms is None:
            free_ms = self._prepare_free_ms.get(machine.job_id, now_ms)
            ready_ms = ready[frame_cid] = max(now_ms, free_ms) + prepare_ms
            self._prepare_free_ms[machine.job_id] = ready_ms
        return ready_ms

    def _pick_now(
        self, machine: JobMachine, cmd: RequestVerification, waited: bool = False
    ) -> None:
        world = self.world

        def candidates(exclude: frozenset[bytes] | set[bytes]) -> list[SimNode]:
            return [c for c in world.online_checkers()
                    if c.node_id not in exclude and asks(world, machine, c)]  # fmt: skip

        exclude = machine.checkers_refused(cmd.task_id) | cmd.exclude | self.struck
        checkers = candidates(exclude)
        fallback = machine.dispute_fallback(cmd.task_id)
        if not checkers and fallback:
            # a dispute with no fresh checker: after the wait for one, one used before
            # that did not reject the result (as the node)
            if not waited:
                world.loop.call_later(CHECKER_WAIT_MS, self._resume,
                                      (machine.job_id, self._after_dispute_wait, cmd), "wait")  # fmt: skip
                return
            checkers = candidates(exclude - fallback | self.struck)
        if checkers and machine.task_state(cmd.task_id) is TaskState.VERIFYING:
            ids = prefer_unasked([c.node_id for c in checkers], machine.checkers_silent(cmd.task_id))
            checkers = self._with_room([c for c in checkers if c.node_id in ids])
            if not checkers:  # every checker we could ask is busy with ours: wait for one
                self._wait(machine, (cmd.task_id, "check"), cmd)
                machine.check_waits(cmd.task_id)
                return
            self._waiting.pop((cmd.task_id, "check"), None)  # a renewal found room
        if not checkers:
            if machine.wants_further_check(cmd.task_id):
                # the plan's next checker, and nobody else to ask: as the node, at once if
                # no checker of the world could give it or after a wait for one
                short_of = machine.checkers_short_of(cmd.task_id)
                if waited or all(c.node_id in short_of for c in world.checkers):
                    self._exhaust(machine, cmd)
                else:
                    world.loop.call_later(CHECKER_WAIT_MS, self._resume,
                                          (machine.job_id, self._after_wait, cmd), "wait")  # fmt: skip
            return  # else the machine's verify timeout asks again later
        checker = self._choose(checkers, "check")
        now_ms = world.epoch_ms()
        self._run(machine, machine.assign_checker(cmd.task_id, checker.node_id, now_ms,
                                                  checker.address))  # fmt: skip

    def _after_wait(self, machine: JobMachine, cmd: RequestVerification) -> None:
        """A further check's wait for a checker ended (node.roles.requester_job)."""
        if machine.wants_further_check(cmd.task_id):
            self._pick_now(machine, cmd, waited=True)

    def _after_dispute_wait(self, machine: JobMachine, cmd: RequestVerification) -> None:
        """A dispute's wait for a fresh checker ended: the dispute may still be open."""
        if machine.task_state(cmd.task_id) is TaskState.DISPUTED:
            self._pick_now(machine, cmd, waited=True)

    def _exhaust(self, machine: JobMachine, cmd: RequestVerification) -> None:
        """No checker to ask for ``cmd``'s further check: the machine decides, told every
        checker reached now (online, not struck, qualifying), as the node tells it."""
        world = self.world
        reachable = [c.node_id for c in world.online_checkers()
                     if c.node_id not in self.struck and asks(world, machine, c)]  # fmt: skip
        self._run(machine, machine.checkers_exhausted(cmd.task_id, world.epoch_ms(), reachable))

    def _slash(self, due: SlashDue) -> None:
        """The node's slasher, in one step: a claim by the rejecting checkers (when they
        are a quorum) for the escrow's cap, executed (no answer is modelled)."""
        world, chain = self.world, self.world.scenario.chain
        if not claim_possible(len(due.rejecters), chain.slash_quorum):
            world.metrics.slashes_impossible += 1
            return
        world.metrics.slashes += 1
        claimers = [world.by_id[c].address for c in due.rejecters if c in world.by_id]
        world.chain.slash(due.job_id, due.worker_address, claimers, self.node.address,
                          chain.slash_cap_wei)  # fmt: skip

    def _accepted(self, cmd: FrameAccepted) -> None:
        world, metrics = self.world, self.world.metrics
        worker = world.by_id[cmd.worker]
        world.invariants.frame_accepted(
            cmd.job_id, cmd.frame, cmd.worker, worker.address, cmd.price_wei
        )
        metrics.frames_accepted += 1
        if not self.free_rider:
            metrics.paid_wei += cmd.price_wei  # its RecordPayment follows
        metrics.ru_accepted += world.scenes[cmd.job_id].ru_per_frame
        metrics.jobs[cmd.job_id].frames_accepted += 1
        if cmd.task_id not in self._checked:
            metrics.results_unchecked += 1
        self.fates.accepted(cmd.task_id, checked=cmd.task_id in self._checked)
        if world.result_kind.get(cmd.task_id, "honest") != "honest":
            if self.node.behaviour == "honest":
                metrics.bad_frames_paid_wei += cmd.price_wei
            world.loop.note("cheat-missed", cmd.task_id)

    def _pay(self, job_id: bytes, payee: bytes, cumulative_wei: int) -> None:
        world = self.world
        last = self._paid.get((job_id, payee), 0)
        self._paid[(job_id, payee)] = cumulative_wei
        if self.free_rider:
            world.metrics.unpaid_wei += cumulative_wei - last
            return
        if self.clawback and job_id not in self._clawed:
            self._clawed.add(job_id)
            self._queues.put(job_id, Clawback())
        world.chain.issued.add((job_id, payee, cumulative_wei))
        voucher = Voucher(CHAIN_ID, ESCROW_CONTRACT, self.node.address, job_id, payee,
                          cumulative_wei, NO_SIGNATURE)  # fmt: skip
        self._queues.put(job_id, Send(world.by_address[payee].node_id, voucher))

    def _finish(self, job_id: bytes, outcome: str) -> None:
        self._tell_payees_it_is_over(job_id, outcome)
        self.fates.job_over(job_id, self.jobs.get(job_id))
        record = self.world.metrics.jobs[job_id]
        if record.finished_ms is None:
            self.world.metrics.open_jobs -= 1
        record.finished_ms = self.world.loop.now_ms
        record.outcome = outcome
        self.jobs.pop(job_id, None)
        self._fed.pop(job_id, None)
        self._prepared.pop(job_id, None)
        self._prepare_free_ms.pop(job_id, None)
        if self.challenges is not None:
            self.challenges.job_over(job_id)
        self._reached.pop(job_id, None)
        self.world.disarm((self.node.index, job_id))


    def _tell_payees_it_is_over(self, job_id: bytes, outcome: str) -> None:
        """As the node's requester does once a job is done: every payee holds its last
        voucher, so it redeems once instead of waiting for a batch worth 10,000× gas."""
        world = self.world
        payees = sorted(p for (j, p) in self._paid if j == job_id)
        for payee in payees:
            self._paid.pop((job_id, payee))
            if not self.free_rider:
                over = JobCancelled(job_id, f"finished: {outcome}")
                self._queues.put(job_id, Send(world.by_address[payee].node_id, over))


def scenario_policy(
    tiles_per_check: int, checkers_fresh: int = 0, tiles_fresh: int = 0
) -> VerificationPolicy:
    """The default policy, or one whose every checking level asks ``tiles_per_check``
    and/or wants ``checkers_fresh`` checkers to pass a fresh worker's result, each on
    ``tiles_fresh`` tiles (0: the protocol's, for each)."""
    if not tiles_per_check and not checkers_fresh and not tiles_fresh:
        return DEFAULT_POLICY
    k = tiles_per_check
    levels = {
        assurance: replace(level,
                           k_fresh=(tiles_fresh or k or level.k_fresh) if level.k_fresh else 0,
                           k_trusted=(k or level.k_trusted) if level.k_trusted else 0,
                           checkers_fresh=checkers_fresh or level.checkers_fresh)
        for assurance, level in DEFAULT_POLICY.sampling.levels.items()
    }  # fmt: skip
    sampling = replace(DEFAULT_POLICY.sampling, levels=levels)
    return replace(DEFAULT_POLICY, sampling=sampling)
