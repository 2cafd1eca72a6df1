"""Every message of the Pictor market, as frozen dataclasses.

The field annotations *are* the wire schema (see :mod:`protocol.codec`):
amounts are integers in wei (``*_wei``), times are integer milliseconds since
the Unix epoch (``*_ms``) or durations (``*_s`` / ``*_ms``), sizes in bytes.
No floats travel. Each message class has a ``TYPE`` string that goes in the
envelope and names it in ``docs/PROTOCOL.md``.

Flow (DESIGN.md, "The market, message by message"):
CapacityAdvert (gossip) -> JobAnnounce (gossip) -> Bid -> Award -> Heartbeat*
-> Result | Failure -> VerifyRequest -> Verdict -> Voucher; plus AwardDeclined,
LeaseRevoked, JobCancelled and Dispute for the unhappy paths;
CapacityChallenge -> ChallengeAnswer for a bidder's timed capacity challenge. The public work
record (gossip ``/pictor/1/record``, :mod:`protocol.record`): WorkRecord per
checked task, DisputeRecord per dispute decided on verdicts and JobClosed per
finished job, all signed by the requester.
"""

from __future__ import annotations

import enum
import hashlib
from dataclasses import dataclass
from typing import Annotated, ClassVar

from protocol.codec import (
    U16,
    U32,
    U64,
    U256,
    Bytes20,
    Bytes32,
    Bytes65,
    MaxLen,
    Name,
    Range,
    Text,
    packb,
    to_wire,
)
from protocol.errors import IllegalMessage
from protocol.identity import PaymentBinding

Cid = Annotated[str, MaxLen(128)]
Multiaddr = Annotated[str, MaxLen(256)]
Frame = Annotated[int, Range(0, 1_000_000)]
Permille = Annotated[int, Range(0, 1000)]
Bps = Annotated[int, Range(0, 10_000)]
MAX_FRAMES_PER_JOB = 10_000
MAX_CHECK_TILES = 256  # bounds a checker's work per request (the largest plan asks 48)
CheckTiles = Annotated[int, Range(1, MAX_CHECK_TILES)]


class Role(enum.StrEnum):
    WORKER = "worker"
    CHECKER = "checker"
    CLIENT = "client"


class Assurance(enum.StrEnum):
    """How hard checkers look (see protocol.verification when it lands)."""

    NONE = "none"
    NORMAL = "normal"
    HIGH = "high"


class FailureReason(enum.StrEnum):
    SCENE_UNAVAILABLE = "scene_unavailable"
    RENDER_ERROR = "render_error"
    OUT_OF_MEMORY = "out_of_memory"
    TIMEOUT = "timeout"
    UNSUPPORTED = "unsupported"
    SHUTTING_DOWN = "shutting_down"


class DeclineReason(enum.StrEnum):
    """Why a worker declines an award: an ``AwardDeclined.reason`` starts with one of
    these (``"scene refused: <detail>"``). The requester decides nothing from it (a
    decline returns the frame and drops the bid, whatever the reason); people read it."""

    JOB_CANCELLED = "job cancelled"
    PRICE_BELOW_ASK = "price below ask"
    LEASE_EXPIRED = "lease already expired"
    NO_FREE_SLOT = "no free slot"
    PAY_UNSECURED = "pay not secured"
    SCENE_REFUSED = "scene refused"  # the worker's own preflight refused the scene
    TOO_SLOW = "cannot finish before the deadline"

    def text(self, detail: str = "") -> str:
        """The wire reason: this code, then the detail (cut to fit ``Text``)."""
        return (f"{self.value}: {detail}" if detail else self.value)[:200]


@dataclass(frozen=True)
class GpuInfo:
    model: Name
    vram_mib: U32


@dataclass(frozen=True)
class CapacityAdvert:
    """Gossiped by every node about every 30 s on ``/pictor/1/capacity``."""

    TYPE: ClassVar[str] = "capacity_advert"
    roles: Annotated[tuple[Role, ...], MaxLen(3)]
    gpus: Annotated[tuple[GpuInfo, ...], MaxLen(16)]
    renderer_builds: Annotated[tuple[Name, ...], MaxLen(16)]
    score_ru_per_hour: U32
    price_wei_per_ru: U256
    stake_wei: U256
    payment: PaymentBinding
    addrs: Annotated[tuple[Multiaddr, ...], MaxLen(16)]
    free_slots: U16
    device_class: Name = ""  # what it renders on ("cpu-x86_64-avx2", "optix-sm90"); "": nothing


@dataclass(frozen=True)
class Escrow:
    """Where the job's budget is locked: chain, contract and deposit tx."""

    chain_id: U64
    contract: Bytes20
    deposit_tx: Bytes32


@dataclass(frozen=True)
class RenderSettings:
    """The pinned settings that make renders reproducible (DESIGN.md, Blender)."""

    engine: Name
    resolution_x: Annotated[int, Range(1, 16_384)]
    resolution_y: Annotated[int, Range(1, 16_384)]
    samples: Annotated[int, Range(1, 1 << 20)]
    seed: U32
    output_format: Name


@dataclass(frozen=True)
class JobSpec:
    """What a job is. ``job_id`` is the SHA-256 of its canonical encoding."""

    requester: Bytes32
    requester_address: Bytes20
    scene_cid: Cid
    scene_size_bytes: U64
    renderer_build: Name
    settings: RenderSettings
    frames: Annotated[tuple[Frame, ...], MaxLen(MAX_FRAMES_PER_JOB)]
    ru_per_frame: U32
    max_price_wei_per_frame: U256
    budget_wei: U256
    deadline_ms: U64
    assurance: Assurance
    checker_fee_bps: Bps
    escrow: Escrow | None
    created_ms: U64

    def __post_init__(self) -> None:
        if len(set(self.frames)) != len(self.frames) or not self.frames:
            raise ValueError("frames must be a non-empty list without repeats")


@dataclass(frozen=True)
class JobAnnounce:
    """Gossiped on ``/pictor/1/jobs``; workers bid by direct stream."""

    TYPE: ClassVar[str] = "job_announce"
    job_id: Bytes32
    spec: JobSpec


@dataclass(frozen=True)
class Bid:
    TYPE: ClassVar[str] = "bid"
    job_id: Bytes32
    frames_wanted: Annotated[int, Range(1, MAX_FRAMES_PER_JOB)]
    price_wei_per_frame: U256
    eta_s_per_frame: U32
    payment_address: Bytes20


@dataclass(frozen=True)
class Award:
    """Grants one frame to one worker under a lease kept alive by heartbeats."""

    TYPE: ClassVar[str] = "award"
    job_id: Bytes32
    task_id: Bytes32
    frame: Frame
    worker: Bytes32
    price_wei: U256
    lease_deadline_ms: U64
    heartbeat_interval_ms: U32


@dataclass(frozen=True)
class AwardDeclined:
    TYPE: ClassVar[str] = "award_declined"
    job_id: Bytes32
    task_id: Bytes32
    reason: Text


@dataclass(frozen=True)
class Heartbeat:
    TYPE: ClassVar[str] = "heartbeat"
    job_id: Bytes32
    task_id: Bytes32
    progress_permille: Permille


@dataclass(frozen=True)
class LeaseExtended:
    """The requester's answer to a heartbeat: the lease's new deadline."""

    TYPE: ClassVar[str] = "lease_extended"
    job_id: Bytes32
    task_id: Bytes32
    lease_deadline_ms: U64


@dataclass(frozen=True)
class LeaseRevoked:
    """Requester -> worker: the task is over for you. ``verdict_digest`` names the
    rejecting verdict (its envelope digest) when a checker rejected the result:
    the reference a ``Dispute`` must quote; nil for every other revocation."""

    TYPE: ClassVar[str] = "lease_revoked"
    job_id: Bytes32
    task_id: Bytes32
    reason: Text
    verdict_digest: Bytes32 | None = None


@dataclass(frozen=True)
class Result:
    """A worker's rendered frame. ``result_sig`` is the worker's payment key's EIP-712
    signature over ``Result(requester, jobId, taskId, frame, frameDigest)``
    (``ledger.fraud``; ``frameDigest`` is the sha2-256 inside ``frame_cid``): what a
    fraud claim must carry, so only the worker that delivered this result can be
    slashed for it. An escrowed job's requester refuses a result without a valid
    one (``protocol.market.requester``); nil when the job has no escrow."""

    TYPE: ClassVar[str] = "result"
    job_id: Bytes32
    task_id: Bytes32
    frame: Frame
    frame_cid: Cid
    frame_size_bytes: U64
    render_time_ms: U64
    renderer_build: Name
    device_class: Name
    result_sig: Bytes65 | None = None


@dataclass(frozen=True)
class Failure:
    TYPE: ClassVar[str] = "failure"
    job_id: Bytes32
    task_id: Bytes32
    frame: Frame
    reason: FailureReason
    detail: Text


@dataclass(frozen=True)
class VerifyRequest:
    """Requester -> checker: re-render tiles of this result and judge it."""

    TYPE: ClassVar[str] = "verify_request"
    job_id: Bytes32
    task_id: Bytes32
    frame: Frame
    worker: Bytes32
    result_digest: Bytes32
    frame_cid: Cid
    scene_cid: Cid
    fee_wei: U256
    tiles: CheckTiles  # k: how many grid cells to re-render (protocol.verification)
    # The requester's draw (protocol.tile_secret.request_tile_secret): the checker MUST
    # select its tiles from (result_digest, tile_secret) and reveal it in Verdict.secret;
    # a verdict with any other secret is refused (a checker must not choose its cells).
    tile_secret: Bytes32
    # The worker's Result.device_class: a checker of the same build and class compares
    # exactly, any other with the tolerance (protocol.verification.compare_tile).
    worker_device_class: Name = ""


@dataclass(frozen=True)
class TileEvidence:
    x: U16
    y: U16
    width: U16
    height: U16
    psnr_millidb: U32
    max_abs_diff: U16


@dataclass(frozen=True)
class Verdict:
    """A checker's judgement of a result. ``pass_sig``: for a passing verdict of an
    escrowed job, the checker's payment key's EIP-712 signature over ``Pass(requester,
    jobId, checker, taskId, frame, frameDigest, tiles)`` (``ledger.fraud.checker_pass``;
    ``frameDigest`` is the sha2-256 inside the request's ``frame_cid``, the frame judged,
    ``tiles`` = ``protocol.slashing.tiles_commitment([verdict_digest_of(verdict)])``). It
    makes the pass claimable if the frame was wrong; the requester refuses a passing
    verdict of an escrowed job without a valid one. The verdict's body digest
    (``protocol.market.records.verdict_digest_of``) is taken with ``pass_sig`` cleared,
    so the signature is not inside what it signs. Nil for a rejection or without escrow."""

    TYPE: ClassVar[str] = "verdict"
    job_id: Bytes32
    task_id: Bytes32
    frame: Frame
    worker: Bytes32
    result_digest: Bytes32
    passed: bool
    secret: Bytes32
    tiles: Annotated[tuple[TileEvidence, ...], MaxLen(256)]
    checker_build: Name
    checker_device_class: Name
    # one per tile, in order: protocol.verification.tile_digest of the checker's own
    # re-render of that tile (a commitment: one later re-render proves a lying checker)
    tile_digests: Annotated[tuple[Bytes32, ...], MaxLen(256)]
    pass_sig: Bytes65 | None = None


@dataclass(frozen=True)
class Dispute:
    """A worker contests a rejecting verdict; more checkers are then asked."""

    TYPE: ClassVar[str] = "dispute"
    job_id: Bytes32
    task_id: Bytes32
    verdict_digest: Bytes32
    reason: Text


MAX_CLAIMERS = 16  # the escrow's MAX_SIGNERS: no claim has more signers
# A rung of a contested claim's ladder (``ledger.fraud.RungVote``): 0 the accused's answer,
# even rungs its side, odd ones the claim's; at most MAX_CLAIMERS - 1 rungs (sizes grow)
Rung = Annotated[int, Range(0, MAX_CLAIMERS - 2)]


@dataclass(frozen=True)
class FraudSignRequest:
    """Requester -> a checker whose verdict rejected a result that a dispute's majority
    rejected too: sign the EIP-712 ``Fraud`` claim (``ledger.fraud``) over the worker's
    signed Result, ``tiles`` = ``protocol.slashing.tiles_commitment(verdict_digests)``.
    A checker signs only for a result it rejected itself (``protocol.slashing.may_sign``).

    With ``pass_verdict`` it is a claim against a CHECKER that passed a plant
    (``Escrow.claim_pass``): ``worker_address`` is that checker's address, ``frame_cid``
    the plant it was served, ``verdict_digests`` the passing verdict's body digest
    alone, and the asked checker (any staked one, not the accused) re-renders exactly
    that verdict's cells of the frame and signs only when they are wrong
    (``protocol.fraud_evidence.may_sign_pass``).

    With ``rung`` (odd) it asks for a place on that rung of the contested claim's ladder
    instead (``Escrow.escalate``): the signature is over ``ledger.fraud.RungVote`` of the
    claim whose signers are ``claimers`` (ascending, as the escrow logged them), which
    the signer checks against its own reading of the claim (a rejecter: the frame and
    evidence it rejected; anyone else: the chain). Without ``rung``, ``round`` is the
    claim's (``Fraud.round``, ``ledger.fraud``): 0 for a frame's first claim.

    With ``round`` above 0 (the frame reopened: an answer stood against its last claim)
    the requester may also ask staked checkers that did not reject the result, and then
    sends the rejecting verdicts themselves in ``rejections`` (the preimage of
    ``verdict_digests``): such a checker re-renders every cell they name and signs only
    when its own render rejects the frame (``protocol.fraud_evidence.may_sign_reclaim``)."""

    TYPE: ClassVar[str] = "fraud_sign_request"
    job_id: Bytes32
    task_id: Bytes32
    frame: Frame
    worker_address: Bytes20
    frame_cid: Cid
    verdict_digests: Annotated[tuple[Bytes32, ...], MaxLen(MAX_CLAIMERS)]
    amount_wei: U256
    pass_verdict: Verdict | None = None
    rung: Rung | None = None
    claimers: Annotated[tuple[Bytes20, ...], MaxLen(MAX_CLAIMERS)] = ()
    # the claim's round (``Fraud.round``): the size of the answer that ended the frame's
    # last claim, 0 for its first
    round: Annotated[int, Range(0, MAX_CLAIMERS)] = 0
    # a reopened frame's claim asked of a checker that did not reject it: the rejecting
    # verdicts ``verdict_digests`` names, in that order (empty otherwise)
    rejections: Annotated[tuple[Verdict, ...], MaxLen(MAX_CLAIMERS)] = ()


@dataclass(frozen=True)
class FraudSigned:
    """Checker -> requester: its ``Fraud`` signature for the claim it was asked to sign
    (of ``round``), or, with ``rung``, its ``Rung`` signature for that rung of the
    claim's ladder."""

    TYPE: ClassVar[str] = "fraud_signed"
    job_id: Bytes32
    task_id: Bytes32
    signature: Bytes65
    rung: Rung | None = None
    round: Annotated[int, Range(0, MAX_CLAIMERS)] = 0


@dataclass(frozen=True)
class CleanSignRequest:
    """Worker -> a staked checker, while a fraud claim against the worker's result is
    pending on the escrow: re-check that result (the scene and the frame fetched from
    the worker by CID) and, if it passes, sign rung ``rung`` (even: 0 the answer) of the
    claim's ladder (EIP-712 ``Rung``, ``ledger.fraud.RungVote``) for the claim whose
    ``tiles`` and claimers the checker reads from the escrow itself, as it reads that
    the claim is pending or contested and that it is not on the claim's side.
    ``worker_device_class``: the class the frame was rendered on."""

    TYPE: ClassVar[str] = "clean_sign_request"
    job_id: Bytes32
    task_id: Bytes32
    frame: Frame
    worker_address: Bytes20
    frame_cid: Cid
    worker_device_class: Name = ""
    rung: Rung = 0


@dataclass(frozen=True)
class CleanSigned:
    """Checker -> worker: its ``Rung`` signature for the rung it was asked to sign."""

    TYPE: ClassVar[str] = "clean_signed"
    job_id: Bytes32
    task_id: Bytes32
    signature: Bytes65
    rung: Rung = 0


@dataclass(frozen=True)
class CapacityChallenge:
    """Requester -> a bidder it has no proof of: render the challenge ``challenge_id``
    derives for this job now (protocol.challenge.challenge_of: the job's scene at a
    quarter of its pixels, seeded by the id) and answer with a ``ChallengeAnswer``."""

    TYPE: ClassVar[str] = "capacity_challenge"
    challenge_id: Bytes32
    job_id: Bytes32


@dataclass(frozen=True)
class ChallengeAnswer:
    """Worker -> the challenger: the rendered challenge frame, by CID (the challenger
    times the exchange on its own clock and re-renders one tile of it)."""

    TYPE: ClassVar[str] = "challenge_answer"
    challenge_id: Bytes32
    job_id: Bytes32
    frame_cid: Cid
    frame_size_bytes: U64
    renderer_build: Name
    device_class: Name


@dataclass(frozen=True)
class Voucher:
    """A cumulative EIP-712 payment voucher signed by the requester's address.

    Typed data: domain ``{name: "Pictor Escrow", version: "1", chainId,
    verifyingContract}``, type ``Voucher(address requester,bytes32 jobId,address
    payee,uint256 cumulative)``. The escrow keys jobs by (requester, job id), so
    the voucher names the requester's payment address. Each new voucher for
    (requester, job, payee) supersedes the last.

    The one voucher type of the code base: ledger/ hashes, signs and redeems
    it, the node stores and sends it. ``signature`` is empty until
    ``ledger.vouchers.sign`` fills it; an unsigned voucher cannot be encoded.
    """

    TYPE: ClassVar[str] = "voucher"
    chain_id: U64
    contract: Bytes20
    requester: Bytes20  # the requester's payment address: the job is (requester, job_id)
    job_id: Bytes32
    payee: Bytes20
    cumulative_wei: U256
    signature: Bytes65 = b""

    def key(self) -> tuple[int, bytes, bytes, bytes, bytes]:
        """The (chain, escrow, requester, job, payee) lane this voucher pays from."""
        return (self.chain_id, self.contract, self.requester, self.job_id, self.payee)


@dataclass(frozen=True)
class JobCancelled:
    TYPE: ClassVar[str] = "job_cancelled"
    job_id: Bytes32
    reason: Text


class ClosedOutcome(enum.StrEnum):
    """How a job ended (``protocol.market.JobOutcome``'s values)."""

    COMPLETED = "completed"
    PARTIAL = "partial"
    EXPIRED = "expired"
    CANCELLED = "cancelled"


MAX_RESULT_ENVELOPE_BYTES = 4096  # a Result envelope is ~0.4 kB
MAX_VERDICT_ENVELOPE_BYTES = 16_384  # a Verdict with 256 tiles is ~7 kB


@dataclass(frozen=True)
class WorkRecord:
    """The requester's public record of one checked task (gossip ``/pictor/1/record``).

    ``result`` is the worker's own signed Result envelope and ``verdict`` the
    checker's signed Verdict envelope about it, byte for byte as received; by
    signing the record the requester says this verdict is the one it acted on
    and ``accepted`` is what it did. What makes it count: protocol.record.
    """

    TYPE: ClassVar[str] = "work_record"
    job_id: Bytes32
    accepted: bool
    result: Annotated[bytes, MaxLen(MAX_RESULT_ENVELOPE_BYTES)]
    verdict: Annotated[bytes, MaxLen(MAX_VERDICT_ENVELOPE_BYTES)]


MAX_DISPUTE_VERDICTS = 8  # protocol.market.MarketConfig.dispute_checkers is bounded by it


@dataclass(frozen=True)
class DisputeRecord:
    """The requester's public record of a dispute's verdicts (gossip ``/pictor/1/record``).

    ``verdict_digest`` is the disputed (rejecting) verdict's envelope digest,
    as in the task's WorkRecord and the worker's Dispute; ``result`` is the
    disputed Result envelope and ``verdicts`` the dispute checkers' signed
    Verdict envelopes about it, byte for byte as received. The outcome is not
    stated: every reader counts it from the signed verdicts (protocol.record).
    """

    TYPE: ClassVar[str] = "dispute_record"
    job_id: Bytes32
    task_id: Bytes32
    verdict_digest: Bytes32
    result: Annotated[bytes, MaxLen(MAX_RESULT_ENVELOPE_BYTES)]
    verdicts: Annotated[
        tuple[Annotated[bytes, MaxLen(MAX_VERDICT_ENVELOPE_BYTES)], ...],
        MaxLen(MAX_DISPUTE_VERDICTS),
    ]


@dataclass(frozen=True)
class JobClosed:
    """The requester's public word that its job ended, and how (``/pictor/1/record``)."""

    TYPE: ClassVar[str] = "job_closed"
    job_id: Bytes32
    outcome: ClosedOutcome
    frames_accepted: Annotated[int, Range(0, MAX_FRAMES_PER_JOB)]
    frames_failed: Annotated[int, Range(0, MAX_FRAMES_PER_JOB)]


@dataclass(frozen=True)
class FetchRequest:
    """Ask a peer for a byte range of content by CID (content stream)."""

    TYPE: ClassVar[str] = "fetch_request"
    cid: Cid
    offset_bytes: U64
    length_bytes: Annotated[int, Range(1, 4 * 1024 * 1024)]


MESSAGE_CLASSES: tuple[type, ...] = (
    CapacityAdvert,
    JobAnnounce,
    Bid,
    Award,
    AwardDeclined,
    Heartbeat,
    LeaseExtended,
    LeaseRevoked,
    Result,
    Failure,
    VerifyRequest,
    Verdict,
    Dispute,
    Voucher,
    JobCancelled,
    FetchRequest,
    WorkRecord,
    JobClosed,
    FraudSignRequest,
    FraudSigned,
    DisputeRecord,
    CleanSignRequest,
    CleanSigned,
    CapacityChallenge,
    ChallengeAnswer,
)
MESSAGE_TYPES: dict[str, type] = {cls.TYPE: cls for cls in MESSAGE_CLASSES}  # type: ignore[attr-defined]
Message = (
    CapacityAdvert
    | JobAnnounce
    | Bid
    | Award
    | AwardDeclined
    | Heartbeat
    | LeaseExtended
    | LeaseRevoked
    | Result
    | Failure
    | VerifyRequest
    | Verdict
    | Dispute
    | Voucher
    | JobCancelled
    | FetchRequest
    | WorkRecord
    | JobClosed
    | FraudSignRequest
    | FraudSigned
    | DisputeRecord
    | CleanSignRequest
    | CleanSigned
    | CapacityChallenge
    | ChallengeAnswer
)


def job_id_of(spec: JobSpec) -> bytes:
    """SHA-256 of the spec's canonical encoding: the job's id everywhere."""
    return hashlib.sha256(b"pictor/job-spec/v1\x00" + packb(to_wire(spec))).digest()


def check_announce(announce: JobAnnounce, sender: bytes) -> None:
    """Raise ``IllegalMessage`` unless ``announce`` is its requester's, under its own id.

    Every node checks this before it forwards an announce (so a relay that
    forwards a bad one is to blame), and a worker again before it bids.
    """
    if announce.job_id != job_id_of(announce.spec):
        raise IllegalMessage("job_id is not the hash of the spec", penalty=50)
    if sender != announce.spec.requester:
        raise IllegalMessage("a job announced by someone other than its requester")
