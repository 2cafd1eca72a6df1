"""What became of every cheated result: the books behind the slip figure.

A cheated result (``World.result_kind`` not honest) ends one of four ways:
accepted (``cheats_missed``, the slip, by cause: ``metrics.MISS_CAUSES``),
rejected by a verdict (``cheats_caught``, counted by the requester driver),
dropped unjudged because its worker was blocklisted for another result
(``cheats_revoked``), or given up unverified when no checker answered in time
(``cheats_unverified``: the frame is re-awarded, so that frame's next result
is decided on again). The rest of ``cheats_submitted`` never reached a live
task: results after their lease expired or their job ended. One
``CheatFates`` per requester driver; it reads the ground truth, the machine
decides nothing here. docs/SIMULATIONS.md, "The slip figure".
"""

from __future__ import annotations

from protocol.market import JobMachine, TaskState
from simulations.world import World

_BY_BEHAVIOUR = {"colluder": "colluder", "lazy_checker": "lazy"}


class CheatFates:
    def __init__(self, world: World) -> None:
        self.world = world
        self._passed_by: dict[bytes, list[bytes]] = {}  # task id -> checkers that passed it
        self._overturned: set[bytes] = set()  # task ids whose rejection a dispute overturned
        self._delivered: dict[bytes, set[bytes]] = {}  # job id -> task ids with a result

    def delivered(self, job_id: bytes, task_id: bytes) -> None:
        self._delivered.setdefault(job_id, set()).add(task_id)

    def passed(self, task_id: bytes, checker: bytes) -> None:
        """A checker's passing verdict on the task's result (not on a plant of it)."""
        passers = self._passed_by.setdefault(task_id, [])
        if checker not in passers:
            passers.append(checker)

    def overturned(self, task_id: bytes) -> None:
        self._overturned.add(task_id)

    def accepted(self, task_id: bytes, checked: bool) -> None:
        """The machine accepted the task's result; a cheat is a miss, booked by cause: a
        dishonest passer's behaviour before "sampled" (a plan of two checkers whose honest
        one's tiles missed a partial fake and whose other colludes is the colluder's miss:
        the honest pass alone would not have let it through)."""
        passers = self._passed_by.pop(task_id, [])
        if self.world.result_kind.get(task_id, "honest") == "honest":
            return
        if task_id in self._overturned:
            cause = "overturned"
        elif not checked:
            cause = "unchecked"
        else:
            causes = {_BY_BEHAVIOUR.get(n.behaviour, "sampled") for c in passers
                      if (n := self.world.by_id.get(c)) is not None}  # fmt: skip
            cause = next((c for c in ("colluder", "lazy") if c in causes), "sampled")
            if task_id in self.world.pair_passed:  # a lazy pair's pass, unrendered
                cause = "lazy"
        metrics = self.world.metrics
        metrics.cheats_missed += 1
        metrics.cheats_missed_by[cause] = metrics.cheats_missed_by.get(cause, 0) + 1

    def job_over(self, job_id: bytes, machine: JobMachine | None) -> None:
        """The job ended: its cheated results nobody judged, by what became of them."""
        metrics = self.world.metrics
        for task_id in sorted(self._delivered.pop(job_id, ())):
            if machine is None or self.world.result_kind.get(task_id, "honest") == "honest":
                continue
            state = machine.task_state(task_id)
            if state is TaskState.REVOKED:
                metrics.cheats_revoked += 1
            elif state in (TaskState.EXPIRED, TaskState.VERIFYING):
                metrics.cheats_unverified += 1
