"""What the requester remembers about each frame and each award (task).

Plain mutable records owned by :class:`protocol.market.requester.JobMachine`;
their ``state`` fields only ever change through the tables in
:mod:`protocol.market.tables`. :class:`JobStatistics` is the read-only view a
driver or a test gets from ``JobMachine.statistics()``.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field, replace

from protocol.codec import packb, to_wire
from protocol.market.tables import FrameState, JobState, TaskState
from protocol.messages import Result, Verdict


@dataclass
class TaskRecord:
    """One award: one attempt of one frame by one worker."""

    task_id: bytes
    frame: int
    worker: bytes
    price_wei: int
    fee_wei: int
    payee_address: bytes
    lease_deadline_ms: int
    hard_deadline_ms: int  # heartbeats never extend the lease past this
    state: TaskState = TaskState.LEASED
    result: Result | None = None  # a resent copy (new envelope, same body) is no news
    result_digest: bytes = b""
    frame_cid: str = ""
    checkers: set[bytes] = field(default_factory=set)
    # checker -> the frame CID its request named (the driver's copy for checkers, e.g.
    # a re-encoding; the worker's by default): what its signed pass must name
    check_cids: dict[bytes, str] = field(default_factory=dict)
    tiles: int = 0  # k of the check plan for its result (0: not checked)
    checks_needed: int = 1  # different checkers that must each pass it (the plan's)
    passed_by: set[bytes] = field(default_factory=set)  # checkers that passed it so far
    # their passing verdicts (signed, at an escrowed job): claimed if another rejects it
    passes: dict[bytes, Verdict] = field(default_factory=dict)
    # checkers asked since its last pass (none yet: since the first ask): the plan's next
    # check asks none of them again, nor one in passed_by (VerifyDesk.checkers_refused)
    asked_since_pass: set[bytes] = field(default_factory=set)
    verify_deadline_ms: int = 0
    verify_asks: int = 0  # checkers asked about this result (timeouts ask again)
    waits_for_room: bool = False  # its latest request waits for a checker (check_waits)
    request_out: bool = False  # its latest request went to a checker (assign_checker)
    fee_paid: bool = False
    attempt_charged: bool = False  # its failure cost the frame an attempt (not on trial)
    # the dispute path (see the requester module): the rejecting verdict's
    # evidence, then the extra checkers asked and their votes
    rejected_by: bytes = b""
    verdict_digest: bytes = b""
    dispute_until_ms: int = 0
    disputed: bool = False
    dispute_checkers: set[bytes] = field(default_factory=set)
    dispute_fallbacks: set[bytes] = field(default_factory=set)  # of them: used before
    dispute_votes: dict[bytes, bool] = field(default_factory=dict)
    # body digests (records.verdict_digest_of) of the rejecting verdict and the dispute's:
    # what a fraud claim's ``tiles`` commit to (protocol.slashing)
    rejection_body: bytes = b""
    dispute_digests: dict[bytes, bytes] = field(default_factory=dict)  # checker -> verdict
    # the verdicts themselves: the commitment's preimage, published with a claim
    # (protocol.fraud_evidence); only rejecting ones are kept
    rejection_verdict: Verdict | None = None
    # dispute checker -> its tile secret, aimed at the rejection's worst tile (JobBook._tile_secret)
    dispute_secrets: dict[bytes, bytes] = field(default_factory=dict)
    dispute_rejects: dict[bytes, Verdict] = field(default_factory=dict)  # checker -> verdict
    dispute_reserved_wei: int = 0


@dataclass
class FrameRecord:
    state: FrameState = FrameState.PENDING
    failed_attempts: int = 0
    failed_workers: set[bytes] = field(default_factory=set)


@dataclass(frozen=True)
class JobStatistics:
    state: JobState
    frames_total: int
    frames_pending: int
    frames_leased: int
    frames_verifying: int
    frames_accepted: int
    frames_failed: int
    awards: int
    bidders: int
    workers_blocklisted: int
    owed_wei: int
    fees_wei: int
    reserved_wei: int
    budget_wei: int
    # accepted on fewer checkers' passes than planned: no other checker could be asked
    # (JobMachine.checkers_exhausted, at a level with Level.accept_short)
    frames_short_checked: int = 0

    @property
    def committed_wei(self) -> int:
        """Paid or promised: never more than the budget."""
        return self.owed_wei + self.fees_wei + self.reserved_wei


def result_digest_of(result: Result) -> bytes:
    """Stand-in for the envelope digest when a driver has no envelope."""
    return hashlib.sha256(b"pictor/result/v1\x00" + packb(to_wire(result))).digest()


def verdict_digest_of(verdict: Verdict) -> bytes:
    """A verdict's body digest: what fraud claims and signed passes commit to
    (``protocol.slashing.tiles_commitment``), the same for a resent verdict (an envelope
    digest is not). Taken with ``pass_sig`` cleared: the pass signature signs this
    digest, so it cannot be inside it."""
    body = replace(verdict, pass_sig=None)
    return hashlib.sha256(b"pictor/verdict/v1\x00" + packb(to_wire(body))).digest()
