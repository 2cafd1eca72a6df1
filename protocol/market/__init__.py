"""The market machines: the requester's job and the worker's tasks.

Sans-I/O like the rest of :mod:`protocol`: every method takes ``now_ms`` and
returns a list of :mod:`~protocol.market.commands` for the driver to carry
out; a machine's ``get_timer()`` says when to call ``handle_timer(now_ms)``
next. The transition tables in :mod:`protocol.market.tables` are the spec.

* :class:`JobMachine` (``requester.py``) — announce, bids, awards, leases,
  results, verification, payment, deadline and refund.
* :class:`WorkerMachine` (``worker.py``) — bids on jobs it can render, takes
  awards, heartbeats, reports results or failures, abandons expired leases.
"""

from protocol.market.commands import (
    CancelRender,
    CheckerFeeDue,
    CheckerOverruled,
    Command,
    DisputeResolved,
    FrameAccepted,
    FrameFailed,
    FundLanes,
    JobFinished,
    JobOutcome,
    PassClaimDue,
    PlantJudged,
    Publish,
    RecordPayment,
    RefundDue,
    RequestPlant,
    RequestVerification,
    Send,
    SlashDue,
    StartRender,
    VoucherReceived,
    WorkerBlocklisted,
    WorkerJudged,
)
from protocol.market.config import MarketConfig, WorkerConfig
from protocol.market.requester import UNVERIFIABLE, JobMachine, JobStatistics, result_digest_of
from protocol.market.tables import (
    FrameState,
    JobState,
    TaskState,
    WorkerTaskState,
    format_tables,
)
from protocol.market.worker import WorkerMachine, WorkerStatistics

__all__ = [
    "UNVERIFIABLE",
    "CancelRender",
    "CheckerFeeDue",
    "CheckerOverruled",
    "Command",
    "DisputeResolved",
    "FrameAccepted",
    "FrameFailed",
    "FrameState",
    "FundLanes",
    "JobFinished",
    "JobMachine",
    "JobOutcome",
    "JobState",
    "JobStatistics",
    "MarketConfig",
    "PassClaimDue",
    "PlantJudged",
    "Publish",
    "RecordPayment",
    "RefundDue",
    "RequestPlant",
    "RequestVerification",
    "Send",
    "SlashDue",
    "StartRender",
    "TaskState",
    "VoucherReceived",
    "WorkerBlocklisted",
    "WorkerConfig",
    "WorkerJudged",
    "WorkerMachine",
    "WorkerStatistics",
    "WorkerTaskState",
    "format_tables",
    "result_digest_of",
]
