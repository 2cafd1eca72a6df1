"""Which of a requester's verdicts go in the public work record (:mod:`protocol.record`).

Theory of operation
-------------------
A requester publishes a ``WorkRecord`` for the verdict its job machine decided
a task on, and gathers the verdicts of that task's dispute for a
``DisputeRecord``. Which verdict that is, the machine's commands in answer to
it say: the verdict whose checker fee it pays (``CheckerFeeDue`` to that
checker for that task) and that decides the task (its frame accepted, or its worker
told of the rejection), unless the machine asks another checker of the same
task in the same breath (a pass before the plan's next checker decides
nothing: the last one's verdict does); never a verdict on a task revoked while it
was checked (paid, deciding nothing); never a verdict on one of our own
planted results (``PlantJudged``: a test of the checker, not a word about the
worker). The first deciding verdict of a task is its WorkRecord; a later one
(the task's record is out) is a dispute checker's vote. A pass before the next
checker is *held*: when the machine then accepts the task with no further verdict
(``FrameAccepted`` for it in answer to another input: no other checker could be
asked, ``JobMachine.checkers_exhausted``), the last held pass is its WorkRecord
(:func:`accepted_on_held`).

One rule for both drivers: the node (``node.roles.job_record``, which wraps
the signed wires) and the simulator (``simulations.public_record``, which
builds the counted task from the messages it carried).
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Sequence

from protocol.market import (
    CheckerFeeDue,
    Command,
    FrameAccepted,
    PlantJudged,
    RequestVerification,
    Send,
)
from protocol.messages import LeaseRevoked


class VerdictUse(enum.Enum):
    NONE = "none"  # not public: a plant's verdict or an unpaid one
    HELD = "held"  # a pass before the plan's next checker: the WorkRecord if no verdict follows
    WORK = "work"  # the task's WorkRecord
    DISPUTE = "dispute"  # a vote for the task's DisputeRecord


def verdict_use(
    task_id: bytes, checker: bytes, commands: Sequence[Command], *, recorded: bool
) -> VerdictUse:
    """What ``checker``'s verdict about ``task_id`` is for the public record, given the
    ``commands`` the machine returned for it and whether the task was ``recorded``."""
    if any(isinstance(c, PlantJudged) for c in commands):
        return VerdictUse.NONE
    paid = any(isinstance(c, CheckerFeeDue) and c.task_id == task_id and c.checker == checker
               and not c.late for c in commands)  # fmt: skip
    if not paid:
        return VerdictUse.NONE
    if not recorded and _decides(task_id, commands):
        # before the next-checker test: a rejection that opens the requester's own dispute
        # (its confirmation) asks checkers in the same breath and is still the task's
        # record (review of stop 39: an upheld confirmation left none at all)
        return VerdictUse.WORK
    if any(isinstance(c, RequestVerification) and c.task_id == task_id for c in commands):
        return VerdictUse.NONE if recorded else VerdictUse.HELD
    return VerdictUse.DISPUTE if recorded else VerdictUse.NONE


def _decides(task_id: bytes, commands: Sequence[Command]) -> bool:
    """Whether ``commands`` decide ``task_id``: they accept its frame, or tell its worker
    of the rejection it may dispute (``LeaseRevoked`` naming the verdict). A verdict paid
    without either came on a revoked task (an orphaned check, paid because the checker
    could not know): a rejection there was one no dispute could answer, and it stood in
    the record after the worker's dispute of its other result cleared it
    (tests/e2e/test_dispute.py under load, stop 39)."""
    for c in commands:
        if isinstance(c, FrameAccepted) and c.task_id == task_id:
            return True
        if isinstance(c, Send) and isinstance(c.message, LeaseRevoked):
            if c.message.task_id == task_id and c.message.verdict_digest is not None:
                return True
    return False


def accepted_on_held(commands: Sequence[Command], held: Iterable[bytes]) -> list[bytes]:
    """Of the tasks with a held pass (``held``, none recorded yet), those ``commands``
    accept: the driver publishes each one's held pass as its WorkRecord. Call it for
    the commands of every input but a verdict (a verdict's own are ``verdict_use``'s)."""
    waiting = set(held)
    return [c.task_id for c in commands if isinstance(c, FrameAccepted) and c.task_id in waiting]


def given_up_on_held(commands: Sequence[Command], held: Iterable[bytes]) -> list[bytes]:
    """Of the tasks with a held pass, those ``commands`` give up (their lease revoked:
    abandoned, or the worker blocklisted): no acceptance will ever publish that pass, so
    the driver drops it (they were kept until the job ended). Call it as
    :func:`accepted_on_held`."""
    waiting = set(held)
    return [c.message.task_id for c in commands
            if isinstance(c, Send) and isinstance(c.message, LeaseRevoked)
            and c.message.task_id in waiting]  # fmt: skip
