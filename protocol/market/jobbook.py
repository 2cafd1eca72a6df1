"""JobBook: everything the requester's job machine knows, and how it changes.

Theory of operation
-------------------
The state of one job, split from the decisions in
:mod:`protocol.market.requester` (as h11 splits ``_state.py`` from
``_connection.py``): the frame and task records, the standing bids, failure
counts and blocklist, and the money — owed per payee, checker fees spent, and
``reserved``, the price plus fee of every live task. ``owed + fees + reserved``
is what the job has paid or promised; awarding keeps it within the budget.
Every change of a ``state`` field goes through a transition table; the few
commands made here are pure consequences of bookkeeping (a revoked lease, the
refund left over).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import replace

from protocol.capacity import eta_floor_s, is_proven
from protocol.errors import IllegalMessage, IllegalTransition
from protocol.market import events as ev
from protocol.market.awarding import Bidder, checker_qualifies, stake_qualifies
from protocol.market.commands import (
    CheckerFeeDue,
    Command,
    FrameAccepted,
    FundLanes,
    JobFinished,
    JobOutcome,
    RecordPayment,
    RefundDue,
    Send,
)
from protocol.market.config import MarketConfig
from protocol.market.lanes import LaneBook
from protocol.market.records import FrameRecord, JobStatistics, TaskRecord
from protocol.market.settled import PlanMark
from protocol.market.tables import (
    FRAME_TRANSITIONS,
    JOB_TRANSITIONS,
    TASK_TRANSITIONS,
    FrameState,
    JobState,
    TaskState,
    next_state,
)
from protocol.messages import Assurance, JobSpec, LeaseRevoked, TileEvidence, Verdict, job_id_of
from protocol.reputation import (
    FRESH,
    WorkerHistory,
    WorkerRecord,
    award_weight,
    blocklisted,
    score,
)
from protocol.signed_pass import PassSigner, unsigned_pass_refusal
from protocol.tile_secret import (
    CheckKind,
    aimed_tile_secret,
    request_tile_secret,
    verdict_draw_refusal,
)
from protocol.verification import (
    DEFAULT_POLICY,
    VerificationPolicy,
    cell_of,
    checks_per_frame,
    plan_check,
    plan_frame_check,
)

SETTLED = (FrameState.ACCEPTED, FrameState.FAILED)


class JobBook:
    """The job's records and their bookkeeping; no decisions."""

    def __init__(
        self, job_id: bytes, spec: JobSpec, config: MarketConfig, now_ms: int,
        check_secret: bytes | None = None, verification: VerificationPolicy = DEFAULT_POLICY,
    ) -> None:  # fmt: skip
        if job_id != job_id_of(spec):
            raise IllegalTransition("job_id is not the hash of the spec")
        if check_secret is not None and len(check_secret) != 32:
            raise IllegalTransition("check_secret must be 32 bytes")
        # Reputation (protocol.reputation): the requester's records of workers as the
        # driver last fed them, and the secret that decides which results are checked.
        self._check_secret = check_secret
        self._verification = verification
        self._worker_records: dict[bytes, WorkerRecord] = {}
        self.job_id = job_id
        self.spec = spec
        self.config = config
        self.state = JobState.CREATED
        self.created_ms = now_ms
        self._frames = {frame: FrameRecord() for frame in spec.frames}
        self._pending: set[int] = set(spec.frames)
        self._tasks: dict[bytes, TaskRecord] = {}
        self._active: dict[bytes, TaskRecord] = {}  # LEASED or VERIFYING
        self._bidders: dict[bytes, Bidder] = {}
        self._stakes: dict[bytes, int] = {}  # payment address -> confirmed stake (set_stake)
        self._lanes_elsewhere: dict[bytes, int] = {}  # payment address -> other jobs it backs
        self.pass_claim_wei = 0  # stake a checker must hold for a claim of its pass (set_...)
        # worker -> (challenge-capped score, whether its challenge passed)
        self._capacity: dict[bytes, tuple[int, bool]] = {}
        self._failures: dict[bytes, int] = {}
        self._rejections: dict[bytes, int] = {}
        self._blocklist: set[bytes] = set()
        # A blocklisted worker's bid, kept while a dispute may still clear it.
        self._parked_bids: dict[bytes, Bidder] = {}
        self._disputes: dict[bytes, TaskRecord] = {}  # DISPUTED tasks
        # rejected task id -> (budget held for its dispute, its window's end): a dispute
        # within the window finds the room (protocol.market.verifying)
        self._dispute_rooms: dict[bytes, tuple[int, int]] = {}
        # a rejection's confirmation is about to open: the job must not end first
        # (set and cleared around VerifyDesk._charge in _on_verdict)
        self._confirm_pending = False
        self._overruled: set[bytes] = set()  # checkers a dispute overruled (ones we asked)
        self._owed_wei: dict[bytes, int] = {}
        # payment address -> (worker, price) of its latest award: what a lane's slack pays
        self._last_award: dict[bytes, tuple[bytes, int]] = {}
        # Lanes (protocol.market.lanes): funded totals per payment address, the
        # checkers' payment addresses, fees earned per address, fees of assigned
        # checks not yet answered ((task_id, checker) -> fee).
        self._lanes = LaneBook(spec.budget_wei)
        self._checker_addresses: dict[bytes, bytes] = {}
        # Recovers a passing verdict's pass_sig (the driver's crypto, set by the job
        # machine: ledger.fraud.pass_signer); None checks no pass signature.
        self._pass_signer: PassSigner | None = None
        self._fees_by_address: dict[bytes, int] = {}
        self._fees_pending: dict[tuple[bytes, bytes], int] = {}
        self._short_checked = 0  # results accepted on fewer passes than planned: no checker
        # Checks out when their task was revoked (its worker shut out): task id -> (the
        # fee still reserved for them, their verify deadline). See VerifyDesk._orphan.
        self._orphans: dict[bytes, tuple[int, int]] = {}
        # Checks still out when their task was decided without them (asked, timed out,
        # another checker answered first): (task id, checker, kind) -> (the fee reserved
        # for its verdict, paid until); and how many checks' late fees each checker was
        # paid in this job (at most MarketConfig.late_fees_per_checker). See
        # VerifyDesk._keep_late_checks.
        self._late_checks: dict[tuple[bytes, bytes, CheckKind], tuple[int, int]] = {}
        self._late_paid: dict[bytes, int] = {}  # checks' late fees paid, by checker
        # Requests out at each checker: (task id, checker) -> when the checker drops each
        # unanswered (check_stale: a verify timeout after it came), oldest first (a task
        # may be asked of one checker again). A verdict the machine takes ends the oldest.
        # What the driver's pick counts (checks_out, verification.with_room).
        self._asked_out: dict[tuple[bytes, bytes], list[int]] = {}
        self._fees_wei = 0
        self._reserved_wei = 0
        self._awards = 0
        self._settled = 0
        self._window_end_ms = 0
        self._window_pending = False
        self._next_announce_ms = 0
        # Settled: an award plan ran and left every bidder blocked (``PlanMark``); since
        # then bids came, or bidders' standing changed (``_touched``); the next plan
        # walks only those and the bidders whose leases ended, unless the mark no longer
        # holds (protocol.market.settled; requester.py ``_walk``; a bidder's blocklisting
        # by its record does not change with time alone). A flood of late bids cost one
        # plan over every bidder each, quadratic: 1,000 took ~26 s of CPU.
        self._quiet = False
        self._touched: set[bytes] = set()
        self._mark: PlanMark | None = None

    def _unsettle(self) -> None:
        """The next plan walks every bidder (an input the mark does not see changed)."""
        self._quiet = False
        self._touched.clear()

    def _mark_settled(
        self, leases: dict[bytes, int], free_wei: int, reserve_wei: int, slack: dict[bytes, int],
        trial_room: int,
    ) -> None:  # fmt: skip
        """A plan ran; these are the inputs it left every bidder blocked under."""
        self._quiet = True
        self._mark = PlanMark(frozenset(self._pending), free_wei, reserve_wei, slack, leases,
                              trial_room)  # fmt: skip

    def _touch(self, workers: Iterable[bytes]) -> None:
        """``workers``' standing changed (a bid, a record, a stake, a capacity proof).
        A lease holder's standing also decides the trial room every other bidder may
        get (a holder proven frees a trial lease for a bidder that got nothing; found
        in review: the quick plan missed it): the next plan compares the trial room
        with its mark's and walks every bidder when it grew."""
        if self._quiet:
            self._touched.update(workers)

    # ---- introspection ----

    def statistics(self) -> JobStatistics:
        counts = {state: 0 for state in FrameState}
        for frame in self._frames.values():
            counts[frame.state] += 1
        return JobStatistics(
            self.state, len(self._frames), counts[FrameState.PENDING],
            counts[FrameState.LEASED], counts[FrameState.VERIFYING],
            counts[FrameState.ACCEPTED], counts[FrameState.FAILED], self._awards,
            len(self._bidders), len(self._blocklist), sum(self._owed_wei.values()),
            self._fees_wei, self._reserved_wei, self.spec.budget_wei, self._short_checked,
        )  # fmt: skip

    def frame_states(self) -> dict[int, FrameState]:
        return {number: frame.state for number, frame in self._frames.items()}

    def owed_wei_by_payee(self) -> dict[bytes, int]:
        """Per payment address, what accepted frames earned it (checks not included)."""
        return dict(self._owed_wei)

    def due_wei_by_payee(self) -> dict[bytes, int]:
        """Per payment address, everything the job owes it, frames and checks: the
        cumulative amount of its latest :class:`RecordPayment`."""
        due = dict(self._owed_wei)
        for address, fees_wei in self._fees_by_address.items():
            due[address] = due.get(address, 0) + fees_wei
        return due

    def lanes_wei(self) -> dict[bytes, int]:
        """What the machine has had funded into each payee's lane so far."""
        return dict(self._lanes.lanes_wei)

    def lane_needs_wei(self) -> dict[bytes, int]:
        """Per payment address: owed so far plus its tasks and checks in flight."""
        return self._lane_needs()

    def has_bidder(self, worker: bytes) -> bool:
        """Whether ``worker``'s bid stands (or is parked while a dispute may clear it)."""
        return worker in self._bidders or worker in self._parked_bids

    def blocklisted(self) -> frozenset[bytes]:
        return frozenset(self._blocklist)

    def task_state(self, task_id: bytes) -> TaskState | None:
        task = self._tasks.get(task_id)
        return None if task is None else task.state

    # ---- reputation ----

    def set_worker_record(self, worker: bytes, record: WorkerRecord | None) -> list[Command]:
        """The driver's reputation record of ``worker`` (from its ``ReputationBook``),
        fed before that worker's bids and results whenever it changed. Bounded: past
        ``max_bidders`` workers a new one reads as fresh."""
        if self._worker_records.get(worker) == record:
            return []
        self._touch((worker,))
        if record is None:
            self._worker_records.pop(worker, None)
        elif worker in self._worker_records or len(self._worker_records) < self.config.max_bidders:
            self._worker_records[worker] = record
        return []

    def set_stake(self, address: bytes, stake_wei: int, lanes_elsewhere: int = 0) -> list[Command]:
        """The chain-confirmed free stake of payment ``address`` (a bidder's or a
        checker's), fed by the driver before the bid or assignment it decides (or later:
        ``JobMachine.stake_confirmed``, which also awards), and the other jobs the escrow
        counts it open in (``protocol.market.awarding.lanes_elsewhere``: a bidder's stake
        must back them too). Bounded like the records: past ``max_bidders`` addresses a
        new one reads as unknown."""
        if lanes_elsewhere < 0:
            raise IllegalTransition("lanes elsewhere are >= 0")
        if (
            self._stakes.get(address) == stake_wei
            and self._lanes_elsewhere.get(address, 0) == lanes_elsewhere
        ):
            return []
        self._touch(b.worker for b in self._bidders.values() if b.payment_address == address)
        if address in self._stakes or len(self._stakes) < self.config.max_bidders:
            self._stakes[address] = stake_wei
            self._lanes_elsewhere[address] = lanes_elsewhere
        return []

    def set_capacity_proof(
        self, worker: bytes, score_ru_per_hour: int, passed: bool = True
    ) -> list[Command]:
        """``worker``'s timed capacity challenge was judged (protocol.challenge.judge):
        believe at most this score (``protocol.capacity.capped_score``) and, when it
        ``passed``, count it as proven; when not, it was caught (a wrong answer or a
        claim beyond the margin) and gets no award (:meth:`caught`). Bounded like
        stakes."""
        self._touch((worker,))
        if worker in self._capacity or len(self._capacity) < self.config.max_bidders:
            self._capacity[worker] = (max(1, score_ru_per_hour), passed)
        return []

    def caught(self, worker: bytes) -> bool:
        """Whether ``worker`` failed its capacity challenge: no award from this job."""
        return not self._capacity.get(worker, (0, True))[1]

    def set_pass_claim_stake(self, stake_wei: int) -> list[Command]:
        """Checkers must hold ``stake_wei`` besides the job's minimum: what a claim of a
        missed plant takes (the node: the escrow's SLASH_CAP, read from its chain before
        the first check it assigns, journalled). 0: not required."""
        if stake_wei < 0:
            raise IllegalTransition("a checker's stake requirement is >= 0")
        self.pass_claim_wei = stake_wei
        return []

    def stake_reading(self, address: bytes) -> tuple[int | None, int]:
        """What was fed for ``address``: its stake (None: never) and lanes elsewhere."""
        return self._stakes.get(address), self._lanes_elsewhere.get(address, 0)

    def bidder_addresses(self) -> set[bytes]:
        """The payment addresses of the standing bids (a driver reads their stakes)."""
        return {b.payment_address for b in self._bidders.values()}

    def stake_qualifies(self, address: bytes) -> bool:
        """Whether ``address`` may work for this job (its minimum stake)."""
        return stake_qualifies(self._stakes.get(address), self.config.min_stake_wei,
                               self._lanes_elsewhere.get(address, 0))  # fmt: skip

    def checker_qualifies(self, address: bytes) -> bool:
        """Whether the checker paid at ``address`` may be asked a check or sent a plant."""
        return checker_qualifies(self._stakes.get(address), self.config.min_stake_wei,
                                 self.pass_claim_wei)  # fmt: skip

    def checks_out(self, now_ms: int) -> dict[bytes, int]:
        """Requests of this job each checker holds now: sent (checks, plants, dispute
        seats), not answered, and not yet dropped by the checker as stale
        (``verification.check_stale``). A driver sums them over its jobs for
        ``verification.with_room``."""
        out: dict[bytes, int] = {}
        for (_, checker), untils in self._asked_out.items():
            if n := sum(now_ms < until_ms for until_ms in untils):
                out[checker] = out.get(checker, 0) + n
        return out

    @staticmethod
    def checks_out_over(books: Iterable[JobBook], now_ms: int) -> dict[bytes, int]:
        """``checks_out`` summed over a requester's jobs (what ``verification.with_room``
        is given; both drivers call this)."""
        out: dict[bytes, int] = {}
        for book in books:
            for checker, n in book.checks_out(now_ms).items():
                out[checker] = out.get(checker, 0) + n
        return out

    def next_check_stale_ms(self, now_ms: int) -> int | None:
        """When the next of our requests a checker holds goes stale there (its place
        frees without a verdict), or None: a driver waiting for room wakes then."""
        return min((u for untils in self._asked_out.values() for u in untils if u > now_ms),
                   default=None)  # fmt: skip

    def _asked(self, task_id: bytes, checker: bytes, now_ms: int) -> None:
        """A request about ``task_id`` goes to ``checker`` now (see ``checks_out``)."""
        until_ms = now_ms + self.config.verify_timeout_ms
        self._asked_out.setdefault((task_id, checker), []).append(until_ms)

    def _answered(self, task_id: bytes, checker: bytes) -> None:
        """``checker``'s verdict about ``task_id`` was taken: its oldest request is done."""
        untils = self._asked_out.get((task_id, checker))
        if untils:
            untils.pop(0)
            if not untils:
                del self._asked_out[(task_id, checker)]

    def _asked_timeouts(self, now_ms: int) -> None:
        for key in list(self._asked_out):
            untils = [u for u in self._asked_out[key] if u > now_ms]
            if untils:
                self._asked_out[key] = untils
            else:
                del self._asked_out[key]

    def _capped(self, bidder: Bidder) -> Bidder:
        """The bid as the plan ranks it: its ETA no shorter than a capacity challenge
        showed the worker can render (protocol.capacity)."""
        proof = self._capacity.get(bidder.worker)
        if proof is None:
            return bidder
        floor_s = eta_floor_s(self.spec.ru_per_frame, proof[0])
        return bidder if bidder.eta_s >= floor_s else replace(bidder, eta_s=floor_s)

    def _trial(self, bidders: list[Bidder], leases: dict[bytes, int]) -> tuple[set[bytes], int]:
        """Unproven bidders and how many new trial leases they may take together."""
        if not self.config.trial_leases:
            return set(), 0
        trial = self._unproven(bidders)
        held = sum(leases.get(worker, 0) for worker in trial)
        # a caught bidder is no bidder any more, but the trial lease it won before its
        # challenge was judged still counts: the unproven never hold more together
        held += sum(
            n for worker, n in leases.items() if worker not in trial and self.caught(worker)
        )
        return trial, max(0, self.config.trial_leases - held)

    def _unproven(self, bidders: list[Bidder]) -> set[bytes]:
        """The bidders kept to trial frames (none when trial leases are off)."""
        if not self.config.trial_leases:
            return set()
        return {b.worker for b in bidders if not self._proven(b)}

    def _on_trial(self, worker: bytes, payment_address: bytes) -> bool:
        """Whether ``worker`` is kept to trial frames now (unproven, trial leases on)."""
        if not self.config.trial_leases:
            return False
        return not self._proven(Bidder(worker, 0, 0, payment_address, 0))

    def _proven(self, bidder: Bidder) -> bool:
        record = self._worker_records.get(bidder.worker)
        return is_proven(self._stakes.get(bidder.payment_address),
                         0 if record is None else record.accepted,
                         self._capacity.get(bidder.worker, (0, False))[1])  # fmt: skip

    def _history(self, worker: bytes, now_ms: int) -> WorkerHistory:
        record = self._worker_records.get(worker)
        return FRESH if record is None else record.history(now_ms)

    def _offender(self, worker: bytes, now_ms: int) -> bool:
        """Blocklisted by its history (across jobs), not only by this job's counts."""
        return blocklisted(self._history(worker, now_ms))

    def _award_weights(self, workers: list[bytes], now_ms: int) -> dict[bytes, float]:
        return {w: award_weight(score(self._history(w, now_ms))) for w in workers}

    def _plan_tiles(self, task: TaskRecord, now_ms: int) -> int:
        """k for ``task``'s result; 0: accepted unchecked (protocol.verification)."""
        return self.check_plan(task.worker, task.result_digest, now_ms, task.payee_address)

    @property
    def reads_stakes(self) -> bool:
        """Whether this job's decisions read bidders' confirmed stakes, so that a driver
        reads a bidder's stake when it bids (the node and the simulator alike): a minimum
        stake, trial leases (stake proves a bidder), or a claim's stake asked of checkers
        (it backs a worker's record for the check plan: :meth:`_check_reputation`)."""
        c = self.config
        return bool(c.min_stake_wei or c.trial_leases or self.pass_claim_wei)

    def _check_reputation(self, worker: bytes, now_ms: int, address: bytes | None) -> float:
        """The reputation the check plan reads: ``worker``'s score while a caught cheat
        could cost it a claim (the confirmed stake of its payment ``address`` holds what
        one claim takes, ``pass_claim_wei``, as a checker's must), else 0: checked as a
        fresh worker is. A job without that requirement (no chain) reads the score.

        Why: a record is bought with honest frames, and at ``normal`` a trusted worker
        is checked on a quarter of them, so a cheater that built one first had two
        thirds of its cheats accepted (the long con, docs/VERIFICATION.md) and lost no
        more than its record when caught. Backed by stake, each caught cheat now costs
        it a claim (the requester's confirmation, protocol.market.verifying)."""
        reputation = score(self._history(worker, now_ms))
        if reputation == 0.0 or self.pass_claim_wei == 0:
            return reputation
        if address is None and (bid := self._bidders.get(worker)) is not None:
            address = bid.payment_address
        stake_wei = None if address is None else self._stakes.get(address)
        if not stake_qualifies(stake_wei, self.pass_claim_wei):
            return score(FRESH)  # its record is not at stake: checked as a fresh key is
        return reputation

    def _tiles_expected(self, task: TaskRecord) -> int:
        """How many tiles a verdict on ``task`` must carry: ``min(k, cells)``."""
        settings, tile_px = self.spec.settings, self._verification.sampling.tile_px
        cells = -(-settings.resolution_x // tile_px) * -(-settings.resolution_y // tile_px)
        return min(task.tiles, cells)

    def _tile_secret(self, task: TaskRecord, checker: bytes, kind: CheckKind) -> bytes:
        """The tile secret a request about ``task``'s result to ``checker`` carries; a
        dispute checker's is aimed at the rejecting verdict's worst tile
        (:func:`protocol.tile_secret.aimed_tile_secret`), computed once per checker."""
        secret = request_tile_secret(
            self._check_secret, task.task_id, task.result_digest, checker, kind
        )
        rejection = task.rejection_verdict
        if kind is not CheckKind.DISPUTE or rejection is None or not rejection.tiles:
            return secret
        aimed = task.dispute_secrets.get(checker)
        if aimed is None:
            settings, tile_px = self.spec.settings, self._verification.sampling.tile_px
            worst = worst_tile(rejection)
            aimed = task.dispute_secrets[checker] = aimed_tile_secret(
                secret, task.result_digest, settings.resolution_x, settings.resolution_y,
                self._tiles_expected(task), tile_px,
                cell_of(worst, settings.resolution_x, tile_px),
            )  # fmt: skip
        return aimed

    def _refuse_off_draw(
        self, task: TaskRecord, checker: bytes, verdict: Verdict, kind: CheckKind
    ) -> None:
        """Refuse a verdict not on the tiles our request's secret selects (a checker
        must not choose its cells: protocol.tile_secret), scored as a malformed one."""
        settings = self.spec.settings
        why = verdict_draw_refusal(
            verdict, self._tile_secret(task, checker, kind), settings.resolution_x,
            settings.resolution_y, self._tiles_expected(task), self._verification.sampling.tile_px,
        )  # fmt: skip
        if why is not None:
            raise IllegalMessage(why, penalty=50)

    def _refuse_unsigned_pass(self, checker: bytes, verdict: Verdict, frame_cid: str) -> None:
        """Refuse a passing verdict of an escrowed job whose ``pass_sig`` is not the
        checker's (protocol.signed_pass), scored as one off the tile draw."""
        address = self._checker_addresses.get(checker)
        why = unsigned_pass_refusal(self.spec, verdict, frame_cid, address, self._pass_signer)
        if why is not None:
            raise IllegalMessage(why, penalty=50)

    def checkers_needed(self, worker: bytes, now_ms: int, address: bytes | None = None) -> int:
        """How many different checkers must each pass a checked result of ``worker``."""
        reputation = self._check_reputation(worker, now_ms, address)
        return plan_check(self.spec.assurance, reputation, self._verification).checkers

    def check_plan(
        self, worker: bytes, result_digest: bytes, now_ms: int, address: bytes | None = None
    ) -> int:
        """What this machine decides for a result of ``worker`` (paid at ``address``;
        None: its bid's) with this digest now: the tiles to check it with, 0 for none
        (drivers and tests compare plans)."""
        reputation = self._check_reputation(worker, now_ms, address)
        return plan_frame_check(
            self.spec.assurance, reputation, self._check_secret, result_digest, self._verification
        )

    # ---- bookkeeping ----

    def _shut_out(self, worker: bytes) -> list[Command]:
        """A blocklisted worker's live tasks go back to pending: its work is not trusted.
        Each is revoked, a delivered result's too: the worker must know it will not be
        paid for it (its pay check counted it, and a lone worker's next frame of this
        job then read as uncovered: the e2e dispute test stalled)."""
        out: list[Command] = []
        for task in [t for t in self._active.values() if t.worker == worker]:
            out.append(Send(worker, LeaseRevoked(self.job_id, task.task_id, "blocklisted")))
            was = task.state
            self._task_step(task, ev.TaskRevoked(task.task_id))
            if was is TaskState.VERIFYING:
                self._orphan(task)
            self._release(task)
            self._frame_step(task.frame, ev.AttemptReturned(task.frame))
            self._pending.add(task.frame)
        return out

    def _orphan(self, task: TaskRecord) -> None:
        raise NotImplementedError  # protocol.market.verifying

    def _drop_late_check(self, key: tuple[bytes, bytes, CheckKind]) -> None:
        raise NotImplementedError  # protocol.market.verifying

    def _drop_orphans(self) -> None:
        raise NotImplementedError  # protocol.market.verifying

    def _pay(self, task: TaskRecord) -> list[Command]:
        """``task``'s frame is accepted: its worker is owed its price."""
        address = task.payee_address
        self._owed_wei[address] = self._owed_wei.get(address, 0) + task.price_wei
        accepted = FrameAccepted(
            self.job_id, task.frame, task.task_id, task.worker, task.frame_cid, task.price_wei
        )
        return [accepted, self._payment(address, task.worker)]

    def _fee_due(self, task: TaskRecord, checker: bytes, *, late: bool = False) -> list[Command]:
        """``checker`` answered about ``task``: it is owed the fee at its address."""
        return self._fee_due_wei(task.task_id, checker, task.fee_wei, late=late)

    def _fee_due_wei(
        self, task_id: bytes, checker: bytes, fee_wei: int, *, late: bool = False
    ) -> list[Command]:
        """``checker`` answered about ``task_id`` (a real check or a plant): it is owed
        ``fee_wei`` at its address (``late``: its verdict decided nothing; its pending
        fee, if any, is another request's then: a dispute's fallback seat)."""
        if not late:
            self._fees_pending.pop((task_id, checker), None)
        self._fees_wei += fee_wei
        address = self._checker_addresses[checker]
        due = CheckerFeeDue(self.job_id, task_id, checker, fee_wei, address, late=late)
        if fee_wei == 0:
            return [due]
        self._fees_by_address[address] = self._fees_by_address.get(address, 0) + fee_wei
        return [due, self._payment(address, checker)]

    def _payment(self, address: bytes, node: bytes) -> RecordPayment:
        cumulative_wei = self._owed_wei.get(address, 0) + self._fees_by_address.get(address, 0)
        return RecordPayment(address, cumulative_wei, self.job_id, node)

    def _settle(self, outcome: JobOutcome) -> list[Command]:
        for key in list(self._late_checks):  # the job is over: late verdicts go unpaid now
            self._drop_late_check(key)
        self._drop_orphans()  # a cancel or deadline left them (second review of stop 39)
        out: list[Command] = [JobFinished(self.job_id, outcome)]
        refund_wei = self.spec.budget_wei - sum(self._owed_wei.values()) - self._fees_wei
        if refund_wei > 0:
            not_before_ms = self.spec.deadline_ms + self.config.refund_grace_ms
            out.append(RefundDue(self.job_id, refund_wei, not_before_ms))
        return out

    def _held(self, sender: bytes, task_id: bytes, frame: int | None = None) -> TaskRecord:
        task = self._tasks.get(task_id)
        if task is None or task.worker != sender:
            raise IllegalMessage("a message about a task the sender does not hold")
        if frame is not None and frame != task.frame:
            raise IllegalMessage("a message naming the wrong frame for its task")
        return task

    def _new_task(self, bidder: Bidder, frame: int, now_ms: int) -> TaskRecord:
        """Record an award of ``frame`` to ``bidder``: a live task, its cost reserved."""
        self._awards += 1
        seed = b"pictor/task/v1\x00" + self.job_id + self._awards.to_bytes(8, "big")
        timeout_ms = max(
            self.config.min_task_timeout_ms, self.config.task_timeout_factor * bidder.eta_s * 1000
        )
        task = TaskRecord(
            hashlib.sha256(seed).digest(), frame, bidder.worker, bidder.price_wei,
            self._fee_wei(bidder.price_wei), bidder.payment_address,
            now_ms + min(self.config.lease_ms, timeout_ms), now_ms + timeout_ms,
        )  # fmt: skip
        self._tasks[task.task_id] = self._active[task.task_id] = task
        self._last_award[bidder.payment_address] = (bidder.worker, bidder.price_wei)
        self._pending.discard(frame)
        self._reserved_wei += task.price_wei + task.fee_wei
        return task

    def _release(self, task: TaskRecord) -> None:
        """``task`` left LEASED/VERIFYING: drop it from the live set and the reserve,
        and its checks' pending fees: a verdict now is no longer paid (but an orphaned
        check's, until its deadline). They stayed counted in the lanes' needs for the
        rest of the job (a timed-out checker's, a losing second verdict's: review)."""
        self._active.pop(task.task_id, None)
        self._reserved_wei -= task.price_wei + (0 if task.fee_paid else task.fee_wei)
        if task.task_id not in self._orphans:
            self._keep_late_checks(task)

    def _keep_late_checks(self, task: TaskRecord) -> None:
        raise NotImplementedError  # protocol.market.verifying

    def _fee_wei(self, price_wei: int) -> int:
        if self.spec.assurance is Assurance.NONE:
            return 0
        return price_wei * self.spec.checker_fee_bps // 10_000

    def _committed_wei(self) -> int:
        return sum(self._owed_wei.values()) + self._fees_wei + self._reserved_wei

    def _lane_needs(self) -> dict[bytes, int]:
        needs = self.due_wei_by_payee()
        # the DISPUTED tasks are _disputes (scanning every task made this O(tasks) per
        # bid and decline: 85 of 200 s of CPU in a 6 h baseline simulation)
        for task in [*self._active.values(), *self._disputes.values()]:
            needs[task.payee_address] = needs.get(task.payee_address, 0) + task.price_wei
        for (_, checker), fee in self._fees_pending.items():
            address = self._checker_addresses[checker]
            needs[address] = needs.get(address, 0) + fee
        for (_, checker, _), (fee, _) in self._late_checks.items():
            address = self._checker_addresses[checker]
            needs[address] = needs.get(address, 0) + fee
        return needs

    def _checks_owed_wei(self) -> int:
        """The fees of the checks open results' plans still want beyond the one each has
        reserved (a leased frame: as many as the job's assurance may ask; a result in
        verification: its own plan's). Plants and lane chunks leave it to them: they spent
        the room of ``high``'s second checks and later frames were accepted on one pass
        (tests/roles/test_second_checker_roles.py, about one run in ten)."""
        most = checks_per_frame(self.spec.assurance, self._verification)
        owed = 0
        for task in self._active.values():
            if task.state is TaskState.LEASED:
                owed += max(0, most - 1) * task.fee_wei
            elif task.state is TaskState.VERIFYING:
                owed += max(0, task.checks_needed - len(task.passed_by) - 1) * task.fee_wei
        return owed

    def _award_fees_wei(self, price_wei: int) -> int:
        """The fees an award at ``price_wei`` may cost: as many checks as the job's
        assurance may ask of a frame (one at ``normal``, two at ``high``), so that
        awards never spend what a ``high`` frame's second check needs."""
        return self._fee_wei(price_wei) * checks_per_frame(self.spec.assurance, self._verification)

    def _fees_ahead_wei(self) -> int:
        """What an optional spend (a plant, a lane's advance chunk) must leave: the
        further checks of open results (``_checks_owed_wei``) and every check of the frames
        not yet awarded. Without the second part one checker's advance chunk (its share of
        the job's remaining fees, while it was the only checker known) took the fees of
        frames awarded later, and a job at ``high`` expired with 3 of 20 frames unpaid
        for (review, stop 34)."""
        pending_wei = self._award_fees_wei(self.spec.max_price_wei_per_frame) * len(self._pending)
        return self._checks_owed_wei() + pending_wei

    def _credits_wei(self, addresses: Iterable[bytes]) -> dict[bytes, int]:
        """What each payee may hold in its lane beyond its need (protocol.market.lanes):
        what it has earned in this job, or, for a bidder, the frames the requester's own
        checks accepted of it before (``WorkerRecord.own_accepted``) at its price,
        whichever is more. Not the record's merged count: puppet identities can pad the
        public record for each other, and with that credit a cheat with a padded record
        stranded its whole share again (20 frames, 4 workers: 17 done; review of stop
        35)."""
        credits = {a: self._owed_wei.get(a, 0) + self._fees_by_address.get(a, 0) for a in addresses}
        for bidder in self._bidders.values():
            record = self._worker_records.get(bidder.worker)
            if record is not None and bidder.payment_address in credits:
                own_wei = record.own_accepted * bidder.price_wei
                credits[bidder.payment_address] = max(credits[bidder.payment_address], own_wei)
        return credits

    def _free_wei(self, needs: dict[bytes, int]) -> int:
        """Budget neither committed nor parked in a lane beyond its payee's need."""
        slack = sum(self._lanes.slack(needs).values())
        return self.spec.budget_wei - self._committed_wei() - slack

    def _fund(self, chunks: dict[bytes, int]) -> list[Command]:
        """A ``FundLanes`` for the payees of ``chunks`` whose lanes fall short of their
        need (topped up by their chunk, as far as protocol.market.lanes lets), or
        nothing."""
        needs = self._lane_needs()
        spare_wei = self._free_wei(needs) - self._fees_ahead_wei()  # the checks' fees first
        credits = self._credits_wei(chunks)
        fundings = self._lanes.top_up(needs, chunks, spare_wei, credits)
        if not fundings:
            return []
        totals = tuple((a, self._lanes.lanes_wei[a]) for a, _ in fundings)
        return [FundLanes(self.job_id, fundings, totals)]

    def _job_step(self, event: object) -> None:
        self.state = next_state(JOB_TRANSITIONS, self.state, event)

    def _frame_step(self, number: int, event: object) -> None:
        frame = self._frames[number]
        frame.state = next_state(FRAME_TRANSITIONS, frame.state, event)
        self._settled += frame.state in SETTLED

    def _task_step(self, task: TaskRecord, event: object) -> None:
        task.state = next_state(TASK_TRANSITIONS, task.state, event)


def worst_tile(verdict: Verdict) -> TileEvidence:
    """The rejecting ``verdict``'s worst tile (lowest PSNR): the cell a dispute checker's
    draw is aimed at, and the one a claimed pass should cover (``_claimable_pass``)."""
    return min(verdict.tiles, key=lambda t: t.psnr_millidb)
