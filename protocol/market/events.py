"""Events of the market machines: what happened to a job, a frame or a task.

Events are the keys of the transition tables in :mod:`protocol.market.tables`.
Each names something that has already happened (past tense), carries the id of
the thing it happened to, and is only ever created inside the machines: a
driver feeds messages and calls methods, the machine turns them into events,
looks the event up in its table and refuses it if the table has no entry.
"""

from __future__ import annotations

from dataclasses import dataclass

# ---- job lifecycle (requester) ----


@dataclass(frozen=True)
class JobStarted:
    job_id: bytes


@dataclass(frozen=True)
class FramesSettled:
    """Every frame is accepted or failed before the deadline."""

    job_id: bytes


@dataclass(frozen=True)
class DeadlinePassed:
    job_id: bytes


@dataclass(frozen=True)
class JobCancelledLocally:
    job_id: bytes


# ---- frame lifecycle (requester) ----


@dataclass(frozen=True)
class FrameAwarded:
    frame: int


@dataclass(frozen=True)
class FrameRendered:
    frame: int


@dataclass(frozen=True)
class FrameVerified:
    frame: int


@dataclass(frozen=True)
class DisputeWon:
    """A disputed result was vindicated while the frame was still open: accept it."""

    frame: int


@dataclass(frozen=True)
class AttemptReturned:
    """The award came back without the worker being at fault (declined)."""

    frame: int


@dataclass(frozen=True)
class AttemptFailed:
    """A worker failed the frame; attempts are left."""

    frame: int


@dataclass(frozen=True)
class AttemptsExhausted:
    """A worker failed the frame and it was the last attempt allowed."""

    frame: int


@dataclass(frozen=True)
class JobClosed:
    """Deadline or cancellation while the frame was still open."""

    frame: int


# ---- task lifecycle (requester side: one award of one frame to one worker) ----


@dataclass(frozen=True)
class HeartbeatReceived:
    task_id: bytes


@dataclass(frozen=True)
class ResultReceived:
    task_id: bytes


@dataclass(frozen=True)
class ResultInvalid:
    """A result that cannot be right whatever the pixels (wrong renderer build)."""

    task_id: bytes


@dataclass(frozen=True)
class FailureReported:
    task_id: bytes


@dataclass(frozen=True)
class AwardRefused:
    task_id: bytes


@dataclass(frozen=True)
class LeaseExpired:
    task_id: bytes


@dataclass(frozen=True)
class CheckerAssigned:
    task_id: bytes


@dataclass(frozen=True)
class VerificationWaived:
    task_id: bytes


@dataclass(frozen=True)
class ChecksCut:
    """The plan wants another checker's pass and the driver knows none it could ask: at
    a level that allows it (``verification.Level.accept_short``) the passes decide."""

    task_id: bytes


@dataclass(frozen=True)
class VerificationTimedOut:
    task_id: bytes


@dataclass(frozen=True)
class VerificationAbandoned:
    """``verify_attempts`` checkers in a row gave no verdict in time: the result is
    given up as unverifiable (most often its worker no longer serves its content)."""

    task_id: bytes


@dataclass(frozen=True)
class VerdictPassed:
    task_id: bytes


@dataclass(frozen=True)
class CheckPassed:
    """One checker passed the result and the plan wants another, different one
    (``verification.Level.checkers_*``): the result waits for the next verdict."""

    task_id: bytes


@dataclass(frozen=True)
class VerdictFailed:
    task_id: bytes


@dataclass(frozen=True)
class TaskRevoked:
    task_id: bytes


@dataclass(frozen=True)
class DisputeOpened:
    """The worker disputed the rejecting verdict in time: more checkers are asked."""

    task_id: bytes


@dataclass(frozen=True)
class DisputeUpheld:
    """The majority rejected too (or none formed in time): the rejection stands."""

    task_id: bytes


@dataclass(frozen=True)
class DisputeOverturned:
    """The majority passed the result: the first checker was wrong."""

    task_id: bytes


# ---- task lifecycle (worker side; a task is born RENDERING or DECLINED) ----


@dataclass(frozen=True)
class ProgressReported:
    task_id: bytes


@dataclass(frozen=True)
class HeartbeatDue:
    task_id: bytes


@dataclass(frozen=True)
class LeaseRenewed:
    task_id: bytes


@dataclass(frozen=True)
class ResultRejected:
    """LeaseRevoked naming the verdict that rejected our submitted result."""

    task_id: bytes


@dataclass(frozen=True)
class DisputeSent:
    """We contested that verdict (a Dispute quoting its digest went out)."""

    task_id: bytes


@dataclass(frozen=True)
class LeaseLapsed:
    """The worker's own copy of the lease deadline passed: it stops rendering."""

    task_id: bytes


@dataclass(frozen=True)
class LeaseWithdrawn:
    """LeaseRevoked or JobCancelled from the requester."""

    task_id: bytes


@dataclass(frozen=True)
class RenderFinished:
    task_id: bytes


@dataclass(frozen=True)
class PayUnsecured:
    """The worker's driver found the award's pay not secured on chain: it declines."""

    task_id: bytes


@dataclass(frozen=True)
class SceneRefused:
    """The worker's own preflight refused the job's scene (or the frame is more work than
    it can finish in time): it declines this award and every later one of the job."""

    task_id: bytes


@dataclass(frozen=True)
class FrameTooSlow:
    """The worker's probe render says this frame would not end before the job's deadline."""

    task_id: bytes


@dataclass(frozen=True)
class RenderFailed:
    task_id: bytes
