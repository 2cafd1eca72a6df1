"""The fixed inputs of the wire test vectors: test identities, one message of
every type, job specs and content, all deterministic (see ``vectors_gen``)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from eth_account import Account

from ledger import fraud
from ledger import vouchers as ledger_vouchers
from node.content.cid import cid_of_bytes
from node.content.manifest import Manifest, chunk_count_for
from node.content.source import DEFAULT_CHUNK_BYTES
from protocol import NodeKey, PaymentBinding, encode_envelope
from protocol.market.records import verdict_digest_of
from protocol.messages import (
    Assurance,
    Award,
    AwardDeclined,
    Bid,
    CapacityAdvert,
    CapacityChallenge,
    ChallengeAnswer,
    CleanSigned,
    CleanSignRequest,
    ClosedOutcome,
    Dispute,
    DisputeRecord,
    Escrow,
    Failure,
    FailureReason,
    FetchRequest,
    FraudSigned,
    FraudSignRequest,
    GpuInfo,
    Heartbeat,
    JobAnnounce,
    JobCancelled,
    JobClosed,
    JobSpec,
    LeaseExtended,
    LeaseRevoked,
    Message,
    RenderSettings,
    Result,
    Role,
    TileEvidence,
    Verdict,
    VerifyRequest,
    Voucher,
    WorkRecord,
    job_id_of,
)
from protocol.slashing import tiles_commitment

VECTORS_DIR = Path(__file__).resolve().parents[2] / "docs" / "vectors"
NOW_MS = 1_767_225_600_000  # 2026-01-01T00:00:00Z: every vector's "now"
CHAIN_ID = 31337
ESCROW = bytes.fromhex("5fbdb2315678afecb367f032d93f642f64180aa3")


@dataclass(frozen=True)
class TestIdentity:
    name: str
    role: str
    node_seed: bytes
    payment_key: bytes

    @property
    def key(self) -> NodeKey:
        return NodeKey(self.node_seed)

    @property
    def address(self) -> bytes:
        return bytes.fromhex(Account.from_key(self.payment_key).address[2:])

    @property
    def binding(self) -> PaymentBinding:
        return PaymentBinding.create(self.key, self.payment_key)


def _seed(text: str) -> bytes:
    return hashlib.sha256(text.encode()).digest()


IDENTITIES = {
    name: TestIdentity(
        name,
        role,
        _seed(f"pictor test vector node {name}"),
        _seed(f"pictor test vector pay {name}"),
    )
    for name, role in (("alice", "requester"), ("bob", "worker"), ("carol", "checker"))
}
ALICE, BOB, CAROL = IDENTITIES["alice"], IDENTITIES["bob"], IDENTITIES["carol"]


def jsonable(obj: object) -> Any:
    """A decoded msgpack tree as JSON: ``bin`` becomes ``{"bin": hex}``, the rest as is."""
    if isinstance(obj, bytes):
        return {"bin": obj.hex()}
    if isinstance(obj, dict):
        return {k: jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [jsonable(v) for v in obj]
    return obj


# ------------------------------------------------------------------ samples


def sample_spec(with_escrow: bool = True) -> JobSpec:
    escrow = Escrow(CHAIN_ID, ESCROW, bytes.fromhex("ab" * 32)) if with_escrow else None
    return JobSpec(
        requester=ALICE.key.node_id.raw,
        requester_address=ALICE.address,
        scene_cid=cid_of_bytes(b"scene.blend bytes"),
        scene_size_bytes=17,
        renderer_build="blender-3.4.1",
        settings=RenderSettings("CYCLES", 640, 360, 16, 1234, "PNG"),
        frames=(1, 2, 3),
        ru_per_frame=10,
        max_price_wei_per_frame=10**16,
        budget_wei=3 * 10**16,
        deadline_ms=NOW_MS + 3_600_000,
        assurance=Assurance.NORMAL,
        checker_fee_bps=1000,
        escrow=escrow,
        created_ms=NOW_MS - 1000,
    )


def task_id_of(job_id: bytes, award_number: int) -> bytes:
    """How the reference requester names its tasks (opaque to everyone else)."""
    return hashlib.sha256(b"pictor/task/v1\x00" + job_id + award_number.to_bytes(8, "big")).digest()


def signed_voucher(payee: bytes, cumulative_wei: int) -> Voucher:
    """The wire voucher, signed by ledger/ with alice's payment key."""
    spec = sample_spec()
    unsigned = Voucher(CHAIN_ID, ESCROW, spec.requester_address, job_id_of(spec), payee,
                       cumulative_wei)  # fmt: skip
    return ledger_vouchers.sign(unsigned, ALICE.payment_key)


def signed_result(spec: JobSpec, job: bytes, task: bytes, frame_cid: str) -> Result:
    """Bob's result of the escrowed sample job, signed with his payment key (ledger.fraud)."""
    unsigned = Result(job, task, 1, frame_cid, 17, 21_500, "blender-3.4.1", "cuda")
    return replace(unsigned, result_sig=fraud.sign_result(spec, unsigned, BOB.payment_key))


def signed_fraud(
    spec: JobSpec, job: bytes, task: bytes, frame_cid: str, verdict: bytes
) -> FraudSigned:
    """Carol's Fraud signature on a claim against Bob's sample result."""
    ref = fraud.result_ref(spec, job, task, 1, frame_cid)
    assert ref is not None
    claim = fraud.FraudClaim(ref, BOB.address, tiles_commitment([verdict]), 10**17)
    return FraudSigned(job, task, fraud.sign(claim, CAROL.payment_key))


# the signers of the sample claim the rung vectors name (the claim's commit holds them)
SAMPLE_CLAIMERS = (bytes.fromhex("11" * 20), bytes.fromhex("22" * 20))


def sample_vote(spec: JobSpec, job: bytes, task: bytes, frame_cid: str, verdict: bytes) -> fraud.RungVote:
    """Rung 0 (the answer) of the ladder of a claim on Bob's sample result by
    ``SAMPLE_CLAIMERS``: what a checker signs to answer it for Bob."""
    ref = fraud.result_ref(spec, job, task, 1, frame_cid)
    assert ref is not None
    return fraud.CleanAnswer(ref, BOB.address, tiles_commitment([verdict])).rung(SAMPLE_CLAIMERS, 0)


def signed_clean(
    spec: JobSpec, job: bytes, task: bytes, frame_cid: str, verdict: bytes
) -> CleanSigned:
    """Carol's signature on rung 0 of that claim's ladder, answering it for Bob."""
    vote = sample_vote(spec, job, task, frame_cid, verdict)
    return CleanSigned(job, task, fraud.sign(vote, CAROL.payment_key), 0)


def signed_pass(spec: JobSpec, verdict: Verdict, frame_cid: str) -> Verdict:
    """Carol's passing verdict with its pass signature (``Verdict.pass_sig``: her
    payment key's EIP-712 Pass over the frame she judged, ledger.fraud)."""
    return replace(verdict, pass_sig=fraud.sign_pass(spec, verdict, frame_cid, CAROL.payment_key))


def sample_verdict(spec: JobSpec, result_digest: bytes, frame_cid: str) -> Verdict:
    """Carol's signed pass of Bob's sample result (the ``verdict`` envelope; the ``pass``
    vector of claims.json is its signature)."""
    job = job_id_of(spec)
    tiles = sample_tiles()
    verdict = Verdict(job, task_id_of(job, 1), 1, BOB.key.node_id.raw, result_digest, True,
                      _seed("checker secret"), tiles, "blender-3.4.1", "cpu", digests_for(tiles))  # fmt: skip
    return signed_pass(spec, verdict, frame_cid)


def sample_tiles() -> tuple[TileEvidence, ...]:
    return (TileEvidence(64, 32, 64, 64, 48_250, 3), TileEvidence(320, 192, 64, 64, 51_000, 2))


SAMPLE_RESULT_DIGEST = hashlib.sha256(b"stand-in for the result envelope's bytes").digest()
SAMPLE_FRAME_CID_BYTES = b"frame 1 png bytes"


def sample_messages() -> list[tuple[str, TestIdentity, Message]]:
    """One message of every type, with its signer (name, identity, message)."""
    spec = sample_spec()
    job = job_id_of(spec)
    task = task_id_of(job, 1)
    bob_id = BOB.key.node_id
    result_digest = SAMPLE_RESULT_DIGEST
    verdict_digest = hashlib.sha256(b"stand-in for the verdict envelope's bytes").digest()
    frame_cid = cid_of_bytes(SAMPLE_FRAME_CID_BYTES)
    voucher = signed_voucher(BOB.address, 10**16)
    advert = CapacityAdvert(
        roles=(Role.WORKER,),
        gpus=(GpuInfo("NVIDIA GeForce RTX 4090", 24_564),),
        renderer_builds=("blender-3.4.1",),
        score_ru_per_hour=1200,
        price_wei_per_ru=10**12,
        stake_wei=0,
        payment=BOB.binding,
        addrs=(f"/ip4/203.0.113.7/tcp/4001/p2p/{bob_id}",),
        free_slots=1,
        device_class="cuda",
    )
    tiles = sample_tiles()
    return [
        ("capacity_advert", BOB, advert),
        (
            "capacity_advert_client",
            ALICE,
            CapacityAdvert(
                (Role.CLIENT,),
                (),
                (),
                0,
                0,
                0,
                ALICE.binding,
                (f"/ip4/198.51.100.2/tcp/4001/p2p/{ALICE.key.node_id}",),
                0,
            ),
        ),
        ("job_announce", ALICE, JobAnnounce(job, spec)),
        ("bid", BOB, Bid(job, 1, 10**16, 30, BOB.address)),
        ("award", ALICE, Award(job, task, 1, bob_id.raw, 10**16, NOW_MS + 60_000, 15_000)),
        ("award_declined", BOB, AwardDeclined(job, task, "no free slot")),
        ("heartbeat", BOB, Heartbeat(job, task, 500)),
        ("lease_extended", ALICE, LeaseExtended(job, task, NOW_MS + 120_000)),
        (
            "lease_revoked",
            ALICE,
            LeaseRevoked(job, task, "rejected by a checker", verdict_digest),
        ),
        ("result", BOB, signed_result(spec, job, task, frame_cid)),
        ("failure", BOB, Failure(job, task, 1, FailureReason.OUT_OF_MEMORY, "CUDA out of memory")),
        (
            "verify_request",
            ALICE,
            VerifyRequest(
                job,
                task,
                1,
                bob_id.raw,
                result_digest,
                frame_cid,
                spec.scene_cid,
                10**15,
                24,
                hashlib.sha256(b"alice's tile secret").digest(),
                "cuda",
            ),
        ),
        ("verdict", CAROL, sample_verdict(spec, result_digest, frame_cid)),
        ("dispute", BOB, Dispute(job, task, verdict_digest, "rendered as specified")),
        ("voucher", ALICE, voucher),
        ("job_cancelled", ALICE, JobCancelled(job, "cancelled by the user")),
        ("fetch_request", ALICE, FetchRequest(spec.scene_cid, 0, 1 << 20)),
        ("voucher_to_checker", ALICE, signed_voucher(CAROL.address, 10**15)),
        ("work_record", ALICE, sample_work_record(job, task, frame_cid, tiles)),
        ("job_closed", ALICE, JobClosed(job, ClosedOutcome.COMPLETED, 3, 0)),
        (
            "fraud_sign_request",
            ALICE,
            FraudSignRequest(job, task, 1, BOB.address, frame_cid, (verdict_digest,), 10**17),
        ),
        ("fraud_signed", CAROL, signed_fraud(spec, job, task, frame_cid, verdict_digest)),
        ("clean_sign_request", BOB, CleanSignRequest(job, task, 1, BOB.address, frame_cid, "cuda", 0)),
        ("clean_signed", CAROL, signed_clean(spec, job, task, frame_cid, verdict_digest)),
        (
            "verdict_rejecting",
            CAROL,
            Verdict(
                job,
                task,
                1,
                bob_id.raw,
                result_digest,
                False,
                _seed("checker secret 2"),
                tiles[:1],
                "blender-3.4.1",
                "cpu",
                digests_for(tiles[:1]),
            ),
        ),
        ("dispute_record", ALICE, sample_dispute_record(job, task, frame_cid, tiles)),
        ("capacity_challenge", ALICE, CapacityChallenge(_seed("challenge 1"), job)),
        (
            "challenge_answer",
            BOB,
            ChallengeAnswer(
                _seed("challenge 1"), job, cid_of_bytes(b"challenge png"), 9, "blender-3.4.1", "cuda"
            ),
        ),
        ("fraud_sign_request_pass", ALICE, pass_claim_request(spec, job, result_digest, frame_cid)),
        (
            "fraud_sign_request_rung",  # a place on rung 1 of the claim's ladder, once answered
            ALICE,
            FraudSignRequest(
                job, task, 1, BOB.address, frame_cid, (verdict_digest,), 10**17, None, 1, SAMPLE_CLAIMERS
            ),
        ),
        (
            "fraud_sign_request_reclaim",  # a reopened frame's claim (round 3), asked of a pick
            ALICE,
            reclaim_request(spec, job, task, result_digest, frame_cid),
        ),
    ]


def reclaim_request(
    spec: JobSpec, job: bytes, task: bytes, result_digest: bytes, frame_cid: str
) -> FraudSignRequest:
    """Alice asks a checker that did not reject Bob's frame to sign its claim in round 3
    (an answer of three stood against the frame's last claim), sending the sample rejecting
    verdict itself."""
    rejecting = replace(sample_verdict(spec, result_digest, frame_cid), passed=False, pass_sig=None)
    return FraudSignRequest(job, task, rejecting.frame, BOB.address, frame_cid,
                            (verdict_digest_of(rejecting),), 10**17, round=3,
                            rejections=(rejecting,))  # fmt: skip


def pass_claim_request(
    spec: JobSpec, job: bytes, result_digest: bytes, frame_cid: str
) -> FraudSignRequest:
    """Alice asks a staked checker to sign a claim against Carol's signed pass of
    ``frame_cid`` (as if a plant): Carol's address accused, her verdict's body digest
    alone as the evidence, the verdict itself in ``pass_verdict``."""
    verdict = sample_verdict(spec, result_digest, frame_cid)
    return FraudSignRequest(job, verdict.task_id, verdict.frame, CAROL.address, frame_cid,
                            (verdict_digest_of(verdict),), 10**17, verdict)  # fmt: skip


def sample_work_record(
    job: bytes, task: bytes, frame_cid: str, tiles: tuple[TileEvidence, ...]
) -> WorkRecord:
    """Bob's signed result and Carol's signed verdict on it, recorded by Alice."""
    result = Result(job, task, 1, frame_cid, 17, 21_500, "blender-3.4.1", "cuda")
    result_wire = encode_envelope(BOB.key, result, nonce=7, now_ms=NOW_MS - 5_000)
    verdict = Verdict(job, task, 1, BOB.key.node_id.raw, hashlib.sha256(result_wire).digest(),
                      True, _seed("checker secret"), tiles, "blender-3.4.1", "cpu",
                      digests_for(tiles))  # fmt: skip
    verdict = signed_pass(sample_spec(), verdict, frame_cid)
    verdict_wire = encode_envelope(CAROL.key, verdict, nonce=8, now_ms=NOW_MS - 2_000)
    return WorkRecord(job, True, result_wire, verdict_wire)


def sample_dispute_record(
    job: bytes, task: bytes, frame_cid: str, tiles: tuple[TileEvidence, ...]
) -> DisputeRecord:
    """Carol's passing verdict on Bob's disputed result, recorded by Alice (the disputed
    rejection's digest stands for another checker's verdict)."""
    record = sample_work_record(job, task, frame_cid, tiles)
    return DisputeRecord(job, task, _seed("the disputed verdict"), record.result, (record.verdict,))


def digests_for(tiles: tuple[TileEvidence, ...]) -> tuple[bytes, ...]:
    """The checker's commitment: one re-rendered tile digest per tile (sample values)."""
    return tuple(_seed(f"tile {t.x},{t.y}") for t in tiles)


def nonce_for(index: int) -> int:
    # Small and 64-bit-wide nonces both appear, to show the integer forms.
    return 0xFEDCBA9876543210 if index % 2 else 1000 + index


def pattern_bytes(size: int) -> bytes:
    """The content of the large content vector: byte i is i mod 251."""
    return bytes(i % 251 for i in range(size))


SMALL_CONTENT = b"Pictor test vector content\n"
LARGE_CONTENT_BYTES = 2_500_000


def manifest_of(data: bytes, chunk_bytes: int = DEFAULT_CHUNK_BYTES) -> Manifest:
    chunks = [data[i : i + chunk_bytes] for i in range(0, len(data), chunk_bytes)]
    assert len(chunks) == chunk_count_for(len(data), chunk_bytes)
    digests = tuple(hashlib.sha256(c).digest() for c in chunks)
    return Manifest(hashlib.sha256(data).digest(), len(data), chunk_bytes, digests)
