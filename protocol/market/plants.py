"""The requester's plant desk: forced errors that test its checkers.

Theory of operation
-------------------
Part of :class:`protocol.market.requester.JobMachine` (state in
:mod:`protocol.market.jobbook`). When a result goes to verification the
machine draws, from its ``check_secret`` and the result digest
(:func:`protocol.forced_errors.plant_position`), whether to plant as well, at
the highest rate probation gives (``plant_rate_ppm(0, MarketConfig.plant_rate_ppm)``);
if so it emits :class:`RequestPlant`, and the driver keeps the plant only if the
same draw is below the rate for the checker it chose (``plant_kept``). The driver
makes the plant (the worker's frame perturbed in every cell but the blank ones,
``protocol.forced_errors.blank_cells``, with the command's key) and picks its checker *before* the task's real check is picked (the
machine emits ``RequestPlant`` ahead of ``RequestVerification``; the real check
excludes the plant's checker, ``plant_holder_refused``): a checker other than
the worker and the task's checkers, unless that would leave the result's plan
short of checkers (:meth:`PlantDesk.plant_spares_checks`: then no plant). Picked
second, a plant never reached the checker that took a task's real check, so a
checker that is always free (a lazy one answers at once) took the first check of
nearly every result and escaped every plant once checks went to a checker with
room (tests/e2e/test_lazy_checker.py, stop 40). The driver then calls
:meth:`PlantDesk.assign_plant` with the plant's CID: the machine reserves and
funds the check's fee as for a real check and sends a ``VerifyRequest`` equal
to the real one but for ``frame_cid`` and its own ``tile_secret`` (a draw of its
own kind, :class:`protocol.tile_secret.CheckKind`: as unpredictable to the checker
as a real check's).

The plant's verdict never touches the task, its frame or its worker (a plant
is never paid and never a worker's strike). A verdict that rejects the plant
earns its fee like any verdict; one that passes it is a miss
(:func:`protocol.forced_errors.plant_missed`): the fee is withheld and
:class:`PlantJudged` ``missed`` tells the driver to strike the checker. No
verdict before the verify timeout: the reservation is released, nothing owed,
no strike (a checker that leaves checks unanswered loses the real fees too,
since it cannot tell which are plants). At most one plant per task.

A job whose frames are all settled ends only once its open plants are decided
(or time out), so that an honest checker's late verdict on a plant is still
paid from the job and the refund never counts on a fee it still owes; past the
job's deadline open plants are dropped (nothing owed).
"""

from __future__ import annotations

from dataclasses import dataclass

from protocol.errors import IllegalMessage, IllegalTransition
from protocol.forced_errors import (
    plant_covers,
    plant_kept,
    plant_key,
    plant_missed,
    plant_position,
    plant_rate_ppm,
)
from protocol.market.commands import Command, PassClaimDue, PlantJudged, RequestPlant, Send
from protocol.market.jobbook import JobBook
from protocol.market.records import TaskRecord, verdict_digest_of
from protocol.market.tables import TaskState
from protocol.messages import Verdict, VerifyRequest
from protocol.tile_secret import CheckKind
from protocol.verification import Tile


@dataclass
class PlantRecord:
    task_id: bytes
    checker: bytes
    frame_cid: str
    fee_wei: int
    deadline_ms: int
    # cells the plant left alone (protocol.forced_errors.blank_cells: under a transparent
    # film): a pass that looked only there is no miss, and no claim
    blank: frozenset[Tile] = frozenset()


class PlantDesk(JobBook):
    """Plants of one job (see the module docstring)."""

    def _plants_init(self) -> None:
        self._plants: dict[bytes, PlantRecord] = {}  # task id -> its plant (one per task)
        self._plants_asked: set[bytes] = set()  # task ids a plant was requested for
        self._plant_misses: dict[bytes, int] = {}  # checker -> plants it passed
        # task id -> the checker its plant went to, kept after the plant is decided or
        # expired: that checker's verdicts on the task are plant verdicts for good (a late
        # one taken as the real check's verdict rejected an honest result)
        self._plant_holders: dict[bytes, bytes] = {}
        # task id -> the body digest of its plant's verdict, once judged: a resend of it
        # is ignored, and the holder may then sit in the task's dispute (with three
        # checkers a holder barred for good left a dispute without its two checkers:
        # "no majority before the timeout" upheld a liar's rejection of an honest worker)
        self._plant_verdicts: dict[bytes, bytes] = {}

    @property
    def plant_misses(self) -> dict[bytes, int]:
        """Checkers that passed a plant in this job, and how many."""
        return dict(self._plant_misses)

    def _maybe_plant(self, task: TaskRecord) -> list[Command]:
        """The result of ``task`` goes to verification: a plant too, if the draw says so."""
        rate = plant_rate_ppm(0, self.config.plant_rate_ppm)  # the highest: probation's
        secret = self._check_secret
        if rate == 0 or secret is None or task.fee_wei == 0 or task.task_id in self._plants_asked:
            return []
        position = plant_position(secret, task.result_digest)
        if not plant_kept(position, rate):
            return []
        self._plants_asked.add(task.task_id)
        key = plant_key(secret, task.result_digest)
        exclude = frozenset(task.checkers | {task.worker} | set(self._plant_misses))
        return [RequestPlant(task.task_id, task.frame, task.worker, task.frame_cid, key, exclude,
                             position)]  # fmt: skip

    def plant_spares_checks(self, task_id: bytes, candidates: int) -> bool:
        """Whether the plant of ``task_id`` may take one of ``candidates`` (the checkers
        the driver could give it: neither the worker nor one asked about the task) and
        still leave the checks the result's plan wants: a plant's checker never checks
        the real result, so a job at ``high`` (two checkers) with two checkers about
        gave one the plant and waited for a second real checker that never came; the
        result was abandoned after its asks and the worker's frame, passed once, went
        unpaid and was rendered again (found by tests/roles/test_second_checker_roles.py).
        Called by both drivers before they pick."""
        task = self._tasks.get(task_id)
        if task is None:
            return False
        return candidates > max(0, task.checks_needed - len(task.checkers))

    def assign_plant(
        self, task_id: bytes, checker: bytes, plant_cid: str, now_ms: int, checker_address: bytes,
        blank: frozenset[Tile] = frozenset(),
    ) -> list[Command]:  # fmt: skip
        """The driver made the plant of ``task_id`` (``plant_cid``, leaving ``blank`` cells
        alone: ``protocol.forced_errors.blank_cells``) and chose ``checker``, paid at
        ``checker_address``: reserve and fund its fee, send the request."""
        if len(checker_address) != 20:
            raise IllegalTransition("a checker is assigned with its 20-byte payment address")
        task = self._tasks.get(task_id)
        if task is None or task_id not in self._plants_asked:
            raise IllegalTransition("no plant was asked for this task")
        if checker == task.worker:
            raise IllegalTransition("a worker cannot check a plant of its own result")
        if checker in task.checkers:
            return []  # it checks the real result (a driver's race): no plant
        if plant_cid == task.frame_cid:
            raise IllegalTransition("a plant must name a frame other than the worker's")
        if task_id in self._plants or task.result is None:
            return []  # already planted (a replayed driver), or nothing to plant on
        if task.state is not TaskState.VERIFYING:
            return []  # decided, disputed or abandoned while the plant waited: its fee saved
        fee = task.fee_wei
        address = self._checker_addresses.get(checker, checker_address)
        if not self.checker_qualifies(address):
            return []  # below the stake a checker needs, as for a real check: no plant
        if fee + self._fees_ahead_wei() > self._free_wei(self._lane_needs()):
            return []  # the budget cannot pay this check and the checks to come: no plant
        self._checker_addresses.setdefault(checker, checker_address)
        self._plants[task_id] = PlantRecord(
            task_id, checker, plant_cid, fee, now_ms + self.config.verify_timeout_ms, blank
        )
        self._plant_holders[task_id] = checker
        self._asked(task_id, checker, now_ms)
        self._reserved_wei += fee
        self._fees_pending[(task_id, checker)] = fee
        request = VerifyRequest(
            self.job_id, task_id, task.frame, task.worker, task.result_digest,
            plant_cid, self.spec.scene_cid, fee, task.tiles,
            self._tile_secret(task, checker, CheckKind.PLANT), task.result.device_class,
        )  # fmt: skip
        return [*self._fund({address: fee}), Send(checker, request)]

    def plant_open(self, task_id: bytes) -> bool:
        """Whether ``task_id`` has a plant out without a verdict yet."""
        return task_id in self._plants

    def plant_checker(self, task_id: bytes) -> bytes | None:
        """The checker ``task_id``'s plant went to, if any, open or not: never its real
        checker (it would receive two requests naming one task: one is a plant)."""
        return self._plant_holders.get(task_id)

    def plant_holder_refused(self, task_id: bytes, checker: bytes) -> bool:
        """Whether ``checker`` holds ``task_id``'s plant and may not check the task now:
        never its real check; in a dispute, only while its plant is not judged (an open
        or expired plant's verdict could still come and read as a dispute verdict)."""
        if self._plant_holders.get(task_id) != checker:
            return False
        if checker in self._plant_misses:
            return True  # it passed a plant of this job: no vote in its disputes either
        task = self._tasks.get(task_id)
        disputed = task is not None and task.state is TaskState.DISPUTED
        return not (disputed and task_id in self._plant_verdicts)

    def _is_plant_verdict(self, sender: bytes, verdict: Verdict) -> bool:
        if self._plant_holders.get(verdict.task_id) != sender:
            return False
        task = self._tasks.get(verdict.task_id)
        if task is None or sender not in task.dispute_checkers:
            return True
        # a dispute checker that held the judged plant: its dispute verdict, unless it is
        # the plant verdict resent (the same body)
        return self._plant_verdicts.get(verdict.task_id) == verdict_digest_of(verdict)

    def _on_plant_verdict(
        self, sender: bytes, verdict: Verdict, now_ms: int, digest: bytes | None
    ) -> list[Command]:
        plant = self._plants.get(verdict.task_id)
        if plant is None:
            return []  # after its timeout (or a resend of a judged one): unpaid, no penalty
        task = self._tasks[verdict.task_id]
        if (verdict.worker, verdict.frame, verdict.result_digest) != (
            task.worker, task.frame, task.result_digest
        ):  # fmt: skip
            raise IllegalMessage("a verdict about another result")
        if len(verdict.tiles) != self._tiles_expected(task):
            raise IllegalMessage("a verdict on another number of tiles than asked", penalty=50)
        if len(verdict.tile_digests) != len(verdict.tiles):
            raise IllegalMessage("a verdict must commit to one digest per tile", penalty=50)
        self._refuse_off_draw(task, sender, verdict, CheckKind.PLANT)
        self._refuse_unsigned_pass(sender, verdict, plant.frame_cid)
        del self._plants[verdict.task_id]
        self._plant_verdicts[verdict.task_id] = verdict_digest_of(verdict)
        self._reserved_wei -= plant.fee_wei
        digest = digest if digest is not None else verdict_digest_of(verdict)
        missed = plant_missed(verdict, plant.blank)
        void = verdict.passed and not missed  # it looked only where the plant changed nothing
        judged = PlantJudged(self.job_id, task.task_id, sender, missed, digest, void)
        if missed:
            self._fees_pending.pop((task.task_id, sender), None)
            self._plant_misses[sender] = self._plant_misses.get(sender, 0) + 1
            return [judged, *self._pass_claim(task, plant, verdict), *self._after_change(now_ms)]
        fee = self._fee_due_wei(task.task_id, sender, plant.fee_wei)
        return [judged, *fee, *self._after_change(now_ms)]

    def _pass_claim(self, task: TaskRecord, plant: PlantRecord, verdict: Verdict) -> list[Command]:
        """A missed plant of an escrowed job whose verdict signed its pass: claim the
        checker's stake, when every cell it names was perturbed (``plant_covers``)."""
        address = self._checker_addresses.get(plant.checker)
        settings, tile_px = self.spec.settings, self._verification.sampling.tile_px
        if self.spec.escrow is None or verdict.pass_sig is None or address is None:
            return []
        if not plant_covers(
            verdict, settings.resolution_x, settings.resolution_y, tile_px, plant.blank
        ):
            return []
        return [PassClaimDue(self.job_id, task.task_id, task.frame, plant.frame_cid,
                             plant.checker, address, verdict)]  # fmt: skip

    def _plant_timeouts(self, now_ms: int, *, everything: bool = False) -> bool:
        """Plants unanswered by their deadline (``everything``: all of them, the job's
        deadline passed): nothing owed, the reservation released. True if any went."""
        expired = [p for p in self._plants.values() if everything or now_ms >= p.deadline_ms]
        for plant in expired:
            del self._plants[plant.task_id]
            self._reserved_wei -= plant.fee_wei
            self._fees_pending.pop((plant.task_id, plant.checker), None)
        return bool(expired)

    def _plant_deadlines(self) -> list[int]:
        return [p.deadline_ms for p in self._plants.values()]

    def _after_change(self, now_ms: int) -> list[Command]:
        raise NotImplementedError  # the job machine's (protocol.market.requester)
