"""The market's transition tables: the spec of every lifecycle, as data.

Everything that decides *which state follows which* lives here (after h11's
``_state.py``); the machines in :mod:`protocol.market.requester` and
:mod:`protocol.market.worker` only decide *which event happened* and what to
send about it. A table is ``{STATE: {EventType: NEXT_STATE}}``; an event with
no entry for the current state is illegal, and the machine raises
``IllegalMessage`` when a peer caused it or ``IllegalTransition`` when its own
driver did.

Four lifecycles:

* ``JOB_TRANSITIONS`` — the requester's job: created, open (announced, taking
  bids and awarding), then finished, expired or cancelled.
* ``FRAME_TRANSITIONS`` — one frame of the job, across all its attempts.
* ``TASK_TRANSITIONS`` — one award (one attempt of one frame by one worker), as
  the requester sees it. A lease is kept alive by heartbeats until a result
  arrives; the result is verified, then accepted or rejected.
* ``WORKER_TASK_TRANSITIONS`` — the same award as the worker sees it.

Self-loops in end states (e.g. ``EXPIRED: {ResultReceived: EXPIRED}``) are
*stale* messages that crossed a decision on the wire: legal, ignored, and not
held against the sender. :func:`format_tables` prints all tables as Markdown
for ``docs/MARKET.md``.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from typing import Any, TypeVar

from protocol.errors import IllegalMessage, IllegalTransition
from protocol.market import events as ev

S = TypeVar("S", bound=enum.Enum)
AnyTable = Mapping[Any, Mapping[type, Any]]


class JobState(enum.Enum):
    CREATED = "created"
    OPEN = "open"
    FINISHED = "finished"
    EXPIRED = "expired"
    CANCELLED = "cancelled"


class FrameState(enum.Enum):
    PENDING = "pending"
    LEASED = "leased"
    VERIFYING = "verifying"
    ACCEPTED = "accepted"
    FAILED = "failed"


class TaskState(enum.Enum):
    LEASED = "leased"
    VERIFYING = "verifying"
    ACCEPTED = "accepted"
    REJECTED = "rejected"
    DISPUTED = "disputed"
    OVERTURNED = "overturned"
    FAILED = "failed"
    DECLINED = "declined"
    EXPIRED = "expired"
    REVOKED = "revoked"


class WorkerTaskState(enum.Enum):
    RENDERING = "rendering"
    SUBMITTED = "submitted"
    REJECTED = "rejected"  # a checker rejected our result (the requester said which verdict)
    DISPUTED = "disputed"  # and we contested it: the requester's majority decides
    FAILED = "failed"
    DECLINED = "declined"
    ABANDONED = "abandoned"
    REVOKED = "revoked"


JOB_TRANSITIONS: dict[JobState, dict[type, JobState]] = {
    JobState.CREATED: {
        ev.JobStarted: JobState.OPEN,
        ev.JobCancelledLocally: JobState.CANCELLED,
    },
    JobState.OPEN: {
        ev.FramesSettled: JobState.FINISHED,
        ev.DeadlinePassed: JobState.EXPIRED,
        ev.JobCancelledLocally: JobState.CANCELLED,
    },
    JobState.FINISHED: {},
    JobState.EXPIRED: {},
    JobState.CANCELLED: {},
}

FRAME_TRANSITIONS: dict[FrameState, dict[type, FrameState]] = {
    FrameState.PENDING: {
        ev.FrameAwarded: FrameState.LEASED,
        ev.DisputeWon: FrameState.ACCEPTED,  # a live attempt is revoked (returned) first
        ev.JobClosed: FrameState.FAILED,
    },
    FrameState.LEASED: {
        ev.FrameRendered: FrameState.VERIFYING,
        ev.AttemptReturned: FrameState.PENDING,
        ev.AttemptFailed: FrameState.PENDING,
        ev.AttemptsExhausted: FrameState.FAILED,
        ev.JobClosed: FrameState.FAILED,
    },
    FrameState.VERIFYING: {
        ev.FrameVerified: FrameState.ACCEPTED,
        ev.AttemptReturned: FrameState.PENDING,  # its worker was blocklisted meanwhile
        ev.AttemptFailed: FrameState.PENDING,
        ev.AttemptsExhausted: FrameState.FAILED,
        ev.JobClosed: FrameState.FAILED,
    },
    FrameState.ACCEPTED: {},
    FrameState.FAILED: {},
}

_STALE_FOR_REQUESTER = (
    ev.HeartbeatReceived,
    ev.ResultReceived,
    ev.FailureReported,
    ev.AwardRefused,
    ev.VerdictPassed,  # a second checker answering after the first decided
    ev.VerdictFailed,
    # the driver acting on a RequestVerification issued before a later command
    # in the same batch revoked the task (its worker got blocklisted)
    ev.CheckerAssigned,
)

TASK_TRANSITIONS: dict[TaskState, dict[type, TaskState]] = {
    TaskState.LEASED: {
        ev.HeartbeatReceived: TaskState.LEASED,
        ev.ResultReceived: TaskState.VERIFYING,
        ev.ResultInvalid: TaskState.REJECTED,
        ev.FailureReported: TaskState.FAILED,
        ev.AwardRefused: TaskState.DECLINED,
        ev.LeaseExpired: TaskState.EXPIRED,
        ev.TaskRevoked: TaskState.REVOKED,
    },
    TaskState.VERIFYING: {
        ev.CheckerAssigned: TaskState.VERIFYING,
        ev.VerificationWaived: TaskState.ACCEPTED,
        ev.VerificationTimedOut: TaskState.VERIFYING,
        ev.VerificationAbandoned: TaskState.EXPIRED,
        ev.CheckPassed: TaskState.VERIFYING,
        ev.ChecksCut: TaskState.ACCEPTED,
        ev.VerdictPassed: TaskState.ACCEPTED,
        ev.VerdictFailed: TaskState.REJECTED,
        ev.TaskRevoked: TaskState.REVOKED,
        # a heartbeat or duplicate result sent before ours was processed
        ev.HeartbeatReceived: TaskState.VERIFYING,
        ev.ResultReceived: TaskState.VERIFYING,
    },
    # Rejected by a verdict: the worker may dispute within the dispute window.
    TaskState.REJECTED: {
        **{event: TaskState.REJECTED for event in _STALE_FOR_REQUESTER},
        ev.DisputeOpened: TaskState.DISPUTED,
    },
    TaskState.DISPUTED: {
        ev.CheckerAssigned: TaskState.DISPUTED,
        ev.VerdictPassed: TaskState.DISPUTED,
        ev.VerdictFailed: TaskState.DISPUTED,
        ev.DisputeUpheld: TaskState.REJECTED,
        ev.DisputeOverturned: TaskState.OVERTURNED,
        ev.HeartbeatReceived: TaskState.DISPUTED,
        ev.ResultReceived: TaskState.DISPUTED,
        ev.FailureReported: TaskState.DISPUTED,
        ev.AwardRefused: TaskState.DISPUTED,
    },
    **{
        state: {event: state for event in _STALE_FOR_REQUESTER}
        for state in (
            TaskState.ACCEPTED,
            TaskState.OVERTURNED,
            TaskState.FAILED,
            TaskState.DECLINED,
            TaskState.EXPIRED,
            TaskState.REVOKED,
        )
    },
}

_STALE_FOR_WORKER = (
    ev.LeaseRenewed,
    ev.LeaseWithdrawn,
    ev.RenderFinished,
    ev.RenderFailed,
    ev.ProgressReported,
)

WORKER_TASK_TRANSITIONS: dict[WorkerTaskState, dict[type, WorkerTaskState]] = {
    WorkerTaskState.RENDERING: {
        ev.ProgressReported: WorkerTaskState.RENDERING,
        ev.HeartbeatDue: WorkerTaskState.RENDERING,
        ev.LeaseRenewed: WorkerTaskState.RENDERING,
        ev.RenderFinished: WorkerTaskState.SUBMITTED,
        ev.RenderFailed: WorkerTaskState.FAILED,
        ev.PayUnsecured: WorkerTaskState.DECLINED,
        ev.SceneRefused: WorkerTaskState.DECLINED,
        ev.FrameTooSlow: WorkerTaskState.DECLINED,
        ev.LeaseLapsed: WorkerTaskState.ABANDONED,
        ev.LeaseWithdrawn: WorkerTaskState.REVOKED,
    },
    # After submitting, lease messages may still cross the Result on the wire.
    WorkerTaskState.SUBMITTED: {
        ev.LeaseRenewed: WorkerTaskState.SUBMITTED,
        ev.LeaseWithdrawn: WorkerTaskState.SUBMITTED,
        ev.ResultRejected: WorkerTaskState.REJECTED,
    },
    # The machine decides at once whether to contest (WorkerConfig.dispute_rejections);
    # a resent revocation is a stale echo.
    WorkerTaskState.REJECTED: {
        ev.DisputeSent: WorkerTaskState.DISPUTED,
        ev.LeaseRenewed: WorkerTaskState.REJECTED,
        ev.LeaseWithdrawn: WorkerTaskState.REJECTED,
        ev.ResultRejected: WorkerTaskState.REJECTED,
    },
    # The outcome reaches us as a voucher (won) or not at all (upheld).
    WorkerTaskState.DISPUTED: {
        ev.LeaseRenewed: WorkerTaskState.DISPUTED,
        ev.LeaseWithdrawn: WorkerTaskState.DISPUTED,
        ev.ResultRejected: WorkerTaskState.DISPUTED,
    },
    WorkerTaskState.FAILED: {
        ev.LeaseRenewed: WorkerTaskState.FAILED,
        ev.LeaseWithdrawn: WorkerTaskState.FAILED,
    },
    WorkerTaskState.DECLINED: {
        ev.LeaseRenewed: WorkerTaskState.DECLINED,
        ev.LeaseWithdrawn: WorkerTaskState.DECLINED,
    },
    # The renderer may finish or fail before CancelRender reaches it.
    WorkerTaskState.ABANDONED: {event: WorkerTaskState.ABANDONED for event in _STALE_FOR_WORKER},
    WorkerTaskState.REVOKED: {event: WorkerTaskState.REVOKED for event in _STALE_FOR_WORKER},
}

# Events a peer's message causes; the rest come from our own driver or timer.
REMOTE_EVENTS: frozenset[type] = frozenset(
    {
        ev.HeartbeatReceived,
        ev.ResultReceived,
        ev.ResultInvalid,
        ev.FailureReported,
        ev.AwardRefused,
        ev.VerdictPassed,
        ev.VerdictFailed,
        ev.DisputeOpened,
        ev.LeaseRenewed,
        ev.LeaseWithdrawn,
        ev.ResultRejected,
    }
)


def next_state(table: Mapping[S, Mapping[type, S]], state: S, event: object) -> S:
    """The state after ``event``; raises if the table has no such transition."""
    target = table[state].get(type(event))
    if target is None:
        text = f"{type(event).__name__} is not allowed in state {state.name}"
        if type(event) in REMOTE_EVENTS:
            raise IllegalMessage(text)
        raise IllegalTransition(text)
    return target


def is_stale(table: AnyTable, state: enum.Enum) -> bool:
    """True for end states, where any listed event is only a stale echo."""
    return all(target is state for target in table[state].values())


ALL_TABLES: dict[str, AnyTable] = {
    "Job (requester)": JOB_TRANSITIONS,
    "Frame (requester)": FRAME_TRANSITIONS,
    "Task (requester)": TASK_TRANSITIONS,
    "Task (worker)": WORKER_TASK_TRANSITIONS,
}


def format_tables() -> str:
    """All transition tables as Markdown, one section each."""
    out: list[str] = []
    for title, table in ALL_TABLES.items():
        out += [f"### {title}", "", "| state | event | next state |", "|---|---|---|"]
        for state, row in table.items():
            if not row:
                out.append(f"| `{state.name}` | — (end state) | |")
            for event, target in row.items():
                mark = " (stale, ignored)" if target is state and is_stale(table, state) else ""
                out.append(f"| `{state.name}` | `{event.__name__}`{mark} | `{target.name}` |")
        out.append("")
    return "\n".join(out)
