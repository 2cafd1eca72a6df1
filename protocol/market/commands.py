"""Commands: what the market machines ask their driver to do.

A machine never performs I/O; every method returns a list of commands, in the
order they should be carried out. The node carries them out over libp2p and
its renderer; the simulator over its modelled network; tests inspect them.
Node keys are the 32-byte Ed25519 public keys; payment addresses 20 bytes.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from protocol.messages import JobSpec, Message, Verdict, Voucher
from protocol.reputation import Judgement


class JobOutcome(enum.Enum):
    COMPLETED = "completed"  # every frame accepted
    PARTIAL = "partial"  # every frame settled before the deadline, some failed
    EXPIRED = "expired"  # the deadline passed with frames still open
    CANCELLED = "cancelled"  # the requester cancelled


# ---- network ----


@dataclass(frozen=True)
class Send:
    """Sign ``message`` and send it to the node ``to`` on the market stream."""

    to: bytes
    message: Message


@dataclass(frozen=True)
class Publish:
    """Sign ``message`` and gossip it on ``topic``."""

    topic: str
    message: Message


# ---- requester side ----


@dataclass(frozen=True)
class RequestVerification:
    """Pick a checker (never ``worker`` nor one in ``exclude``) and call
    ``JobMachine.assign_checker``. A dispute asks for several at once; ``exclude``
    then names the checkers already used on the task."""

    task_id: bytes
    frame: int
    worker: bytes
    result_digest: bytes
    frame_cid: str
    exclude: frozenset[bytes] = frozenset()


@dataclass(frozen=True)
class RecordPayment:
    """Sign a Voucher for ``cumulative_wei`` on this job to ``payee_address`` and send it
    to ``node``, the payee that just earned more. The amount is everything the job
    owes that address (frames rendered and checks done): sign exactly this, never a
    sum of one's own."""

    payee_address: bytes
    cumulative_wei: int
    job_id: bytes
    node: bytes = b""


@dataclass(frozen=True)
class CheckerFeeDue:
    """A checker answered; it has earned ``fee_wei`` at ``payee_address`` (the address
    named at its assignment). A record: the :class:`RecordPayment` that follows pays it."""

    job_id: bytes
    task_id: bytes
    checker: bytes
    fee_wei: int
    payee_address: bytes = b""
    # A verdict that decided nothing, paid all the same: on a task revoked while it was
    # checked, or decided meanwhile by another checker (a late one). Never public.
    late: bool = False


@dataclass(frozen=True)
class FundLanes:
    """Move escrow into payees' lanes (``fundings``: (payment address, wei) pairs) and
    only then carry out the rest of the batch: the awards or checker assignment it
    secures. ``lane_totals`` are those lanes' totals after this funding (a driver
    that lost track, e.g. after a crash, funds up to them)."""

    job_id: bytes
    fundings: tuple[tuple[bytes, int], ...]
    lane_totals: tuple[tuple[bytes, int], ...]


@dataclass(frozen=True)
class FrameAccepted:
    job_id: bytes
    frame: int
    task_id: bytes
    worker: bytes
    frame_cid: str
    price_wei: int


@dataclass(frozen=True)
class FrameFailed:
    job_id: bytes
    frame: int
    reason: str


@dataclass(frozen=True)
class WorkerBlocklisted:
    """``worker`` failed this job too often and gets no more of its frames."""

    job_id: bytes
    worker: bytes
    failures: int


@dataclass(frozen=True)
class WorkerJudged:
    """Fold ``judgement`` into the requester's ``ReputationBook`` for ``worker``
    (``protocol.reputation``): the one feed of a requester's reputation view."""

    job_id: bytes
    worker: bytes
    judgement: Judgement


@dataclass(frozen=True)
class RequestPlant:
    """Make a plant of this task's result (protocol.forced_errors.perturb with ``key``
    on the worker's frame ``frame_cid``), store it, pick a checker (never ``worker``
    nor one in ``exclude``) and call ``JobMachine.assign_plant`` with the plant's CID.
    The machine drew at the highest (probation) rate: the driver keeps the plant only
    if ``position`` is also below the chosen checker's rate
    (``protocol.forced_errors.plant_kept`` with ``plant_rate_ppm``)."""

    task_id: bytes
    frame: int
    worker: bytes
    frame_cid: str
    key: bytes
    exclude: frozenset[bytes] = frozenset()
    position: int = 0  # the result's plant draw (protocol.forced_errors.plant_position)


@dataclass(frozen=True)
class PlantJudged:
    """A checker's verdict on a plant: ``missed`` (it passed a known-bad frame: its
    fee is withheld, a strike for the checker) or not (it rejected it: paid as usual).
    ``verdict_digest`` names the verdict, the evidence of a miss. ``void``: it passed,
    but only cells the plant left alone (a transparent film): paid, and no test of the
    checker either way."""

    job_id: bytes
    task_id: bytes
    checker: bytes
    missed: bool
    verdict_digest: bytes
    void: bool = False


@dataclass(frozen=True)
class CheckerOverruled:
    """A dispute's majority passed a result ``checker`` rejected: a reputation strike."""

    checker: bytes
    job_id: bytes
    task_id: bytes


@dataclass(frozen=True)
class DisputeResolved:
    """A dispute ended: ``upheld`` means the rejection stands.

    ``paid`` says whether the disputed result became the frame's accepted one
    (its worker is then paid its awarded price); an overturned dispute of a
    frame settled meanwhile only clears the worker's record.
    """

    job_id: bytes
    task_id: bytes
    worker: bytes
    upheld: bool
    paid: bool
    reason: str


@dataclass(frozen=True)
class SlashDue:
    """A dispute's majority rejected a signed result of an escrowed job: claim the
    worker's stake for this frame (``protocol.slashing``). ``rejecters`` are the
    checkers whose verdicts rejected it (the claim's signers), ``verdict_digests``
    those verdicts' body digests (``records.verdict_digest_of``: the same for every
    resend of a verdict), which the claim's ``tiles`` commit to; ``verdicts`` are those
    verdicts themselves, in the same order: the claim publishes them
    (``protocol.fraud_evidence``) so answering checkers re-check the same tiles;
    ``rejecter_addresses`` the payment addresses they were assigned under."""

    job_id: bytes
    task_id: bytes
    frame: int
    worker: bytes
    worker_address: bytes
    frame_cid: str
    result_sig: bytes
    rejecters: tuple[bytes, ...]
    verdict_digests: tuple[bytes, ...]
    verdicts: tuple[Verdict, ...] = ()
    # the payment address each rejecter was assigned under, in ``rejecters``' order: the
    # only key whose fraud signature counts for it (another key's would spoil the claim)
    rejecter_addresses: tuple[bytes, ...] = ()


@dataclass(frozen=True)
class PassClaimDue:
    """A checker of an escrowed job signed a pass (``Verdict.pass_sig``) of a frame
    shown to be wrong: a plant of ours it passed (``protocol.market.plants``), or a
    worker's result it passed whose rejection a dispute's majority then upheld
    (``VerifyDesk._contradicted_passes``: one such pass a task). Claim its stake for the frame
    (``Escrow.claim_pass``; ``protocol.fraud_evidence.may_sign_pass`` says what its
    claimers check: its own cells of that frame, re-rendered, are wrong).
    ``frame_cid`` is the frame it judged, ``checker_address`` the payment address its
    fee was owed at (the pass's signer), ``verdict`` its passing verdict: the claim's
    ``tiles`` commit to it and the claim publishes it. Replayed from the journal like
    :class:`SlashDue`: a claim stored before wins."""

    job_id: bytes
    task_id: bytes
    frame: int
    frame_cid: str
    checker: bytes
    checker_address: bytes
    verdict: Verdict


@dataclass(frozen=True)
class JobFinished:
    job_id: bytes
    outcome: JobOutcome


@dataclass(frozen=True)
class RefundDue:
    """Reclaim the unspent escrow once ``not_before_ms`` has passed."""

    job_id: bytes
    refund_wei: int
    not_before_ms: int


# ---- worker side ----


@dataclass(frozen=True)
class StartRender:
    task_id: bytes
    job_id: bytes
    frame: int
    spec: JobSpec


@dataclass(frozen=True)
class CancelRender:
    task_id: bytes


@dataclass(frozen=True)
class VoucherReceived:
    """Store the voucher (after checking its EIP-712 signature) to redeem later."""

    voucher: Voucher


Command = (
    Send
    | Publish
    | RequestVerification
    | RecordPayment
    | CheckerFeeDue
    | FundLanes
    | FrameAccepted
    | FrameFailed
    | WorkerBlocklisted
    | WorkerJudged
    | CheckerOverruled
    | RequestPlant
    | PlantJudged
    | DisputeResolved
    | SlashDue
    | PassClaimDue
    | JobFinished
    | RefundDue
    | StartRender
    | CancelRender
    | VoucherReceived
)
