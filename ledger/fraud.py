"""Fraud claims and their answers, off-chain: the EIP-712 typed data the escrow checks.

Four messages, all in the "Pictor Escrow" domain of the vouchers:

- ``Result(address requester,bytes32 jobId,bytes32 taskId,uint256 frame,bytes32 frameDigest)``
  is signed by the WORKER's payment key when it delivers a frame (``frameDigest``:
  sha256 of the frame file). A fraud claim must carry it, so only a worker that
  delivered that very result can be accused.
- ``Fraud(address requester,bytes32 jobId,address worker,bytes32 taskId,uint256 frame,
  bytes32 frameDigest,bytes32 tiles,uint256 amount,uint256 round)`` is signed by each
  claiming checker; ``tiles`` commits to the tiles it re-rendered, ``round`` is the size
  of the answer that ended the frame's last claim (the escrow's ``answered_by``; 0 for
  the first), so a claim's signatures open no later claim on the frame.
- ``Rung(bytes32 claimId,bytes32 commit,uint256 rung)`` is signed by each checker on
  one rung of a contested claim's ladder (``escalate``): even rungs (0: the accused's
  answer) found the result right where the claim's tiles are, odd ones found it wrong.
  ``claimId`` is the escrow's ``claim_id(ref, worker)`` and ``commit`` the claim's own
  (``claim_commit``: its frame digest, tiles and claimers), so a signature counts on
  that rung of that claim only: never replayed onto another rung, or onto a later
  claim on the same frame (``RungVote``).
- ``Pass(address requester,bytes32 jobId,address checker,bytes32 taskId,uint256 frame,
  bytes32 frameDigest,bytes32 tiles)`` is signed by a CHECKER that passed the frame
  (for a plant: the plant's digest); ``tiles`` commits to its own tiles and the digests
  it committed. It makes the pass claimable (``claim_pass``): the claimers sign
  ``Fraud`` with ``worker`` = the checker and the same ``tiles``
  (``CheckerPass.claim``), and the claim is then answered and executed as a worker's.

Whoever submits signatures orders them by ascending signer address
(``order_signatures``), which is how the contract proves they are distinct.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from eth_abi.abi import encode as abi_encode
from eth_account import Account
from eth_account.messages import SignableMessage, encode_typed_data
from eth_utils.address import to_canonical_address, to_checksum_address
from eth_utils.crypto import keccak

from ledger.vouchers import escrow_domain, split_signature
from protocol.cid import sha256_of_cid
from protocol.market.records import verdict_digest_of
from protocol.messages import JobSpec, Result, Verdict
from protocol.slashing import tiles_commitment

RESULT_TYPE = [
    {"name": "requester", "type": "address"},
    {"name": "jobId", "type": "bytes32"},
    {"name": "taskId", "type": "bytes32"},
    {"name": "frame", "type": "uint256"},
    {"name": "frameDigest", "type": "bytes32"},
]
_WORKER_RESULT = [RESULT_TYPE[0], RESULT_TYPE[1], {"name": "worker", "type": "address"}, *RESULT_TYPE[2:]]
FRAUD_TYPE = [*_WORKER_RESULT, {"name": "tiles", "type": "bytes32"}, {"name": "amount", "type": "uint256"},
              {"name": "round", "type": "uint256"}]  # fmt: skip
RUNG_TYPE = [{"name": "claimId", "type": "bytes32"}, {"name": "commit", "type": "bytes32"},
             {"name": "rung", "type": "uint256"}]  # fmt: skip
PASS_TYPE = [RESULT_TYPE[0], RESULT_TYPE[1], {"name": "checker", "type": "address"},
             *RESULT_TYPE[2:], {"name": "tiles", "type": "bytes32"}]  # fmt: skip


@dataclass(frozen=True, slots=True)
class ResultRef:
    """One delivered result, as the worker signs it and the contract identifies a claim."""

    chain_id: int
    contract: bytes  # 20-byte escrow address
    requester: bytes  # 20 bytes: jobs are keyed by (requester, job_id)
    job_id: bytes  # 32 bytes
    task_id: bytes  # 32 bytes
    frame: int
    frame_digest: bytes  # 32 bytes: sha256 of the delivered frame file

    def arg(self) -> tuple[Any, ...]:
        """The contract's ``ResultRef`` struct."""
        return (to_checksum_address(self.requester), self.job_id, self.task_id, self.frame,
                self.frame_digest)  # fmt: skip

    def _fields(self) -> dict[str, Any]:
        return {"requester": to_checksum_address(self.requester), "jobId": self.job_id,
                "taskId": self.task_id, "frame": self.frame, "frameDigest": self.frame_digest}  # fmt: skip


@dataclass(frozen=True, slots=True)
class CleanAnswer:
    """A worker's answer to a claim: the same tiles re-checked and found right (what the
    even rungs of its ladder stand for; their signers sign ``rung``)."""

    ref: ResultRef
    worker: bytes  # 20 bytes
    tiles: bytes  # 32 bytes: commitment to the re-rendered tiles (the claim's)

    def rung(self, claimers: Sequence[bytes], index: int) -> RungVote:
        """What a checker signs to stand on rung ``index`` (even) of the claim's ladder."""
        return RungVote(self.ref, self.worker, self.tiles, tuple(claimers), index)


@dataclass(frozen=True, slots=True)
class FraudClaim:
    ref: ResultRef
    worker: bytes  # 20-byte address of the accused worker (who signed ``ref``)
    tiles: bytes  # 32 bytes: commitment to the tiles the claimers re-rendered
    amount_wei: int  # per-frame slash, at most the contract's SLASH_CAP
    # the answer size that ended the frame's last claim (ClaimState.answered_by; 0: none)
    round: int = 0

    @property
    def answer(self) -> CleanAnswer:
        """The claim's answer: what its ladder's even rungs stand for."""
        return CleanAnswer(self.ref, self.worker, self.tiles)

    def rung(self, claimers: Sequence[bytes], index: int) -> RungVote:
        """What a checker signs to stand on rung ``index`` (odd) of this claim's ladder."""
        return RungVote(self.ref, self.worker, self.tiles, tuple(claimers), index)


@dataclass(frozen=True, slots=True)
class RungVote:
    """One signer's place on one rung of one claim's ladder (``Escrow.escalate``): rung
    ``index`` of the claim on ``worker``'s ``ref`` whose ``tiles`` and ``claimers`` (in
    the claim's ascending order) the escrow committed to. Even rungs stand for the
    accused, odd ones for the claim."""

    ref: ResultRef
    worker: bytes  # 20 bytes: the accused
    tiles: bytes  # 32 bytes: the claim's
    claimers: tuple[bytes, ...]  # the claim's signers, ascending
    index: int

    @property
    def fraud(self) -> bool:
        """Whether this rung stands for the claim (odd) rather than the accused (even)."""
        return self.index % 2 == 1

    def _fields(self) -> dict[str, Any]:
        return {"claimId": claim_id(self.ref, self.worker),
                "commit": claim_commit(self.ref.frame_digest, self.tiles, self.claimers),
                "rung": self.index}  # fmt: skip


@dataclass(frozen=True, slots=True)
class CheckerPass:
    """A checker's signed pass of a result: the evidence that makes it claimable."""

    ref: ResultRef  # the frame it judged (a plant's: the plant's digest)
    checker: bytes  # 20-byte payment address of the checker (the signer)
    tiles: bytes  # 32 bytes: commitment to its own tiles and committed digests

    def claim(self, amount_wei: int, round: int = 0) -> FraudClaim:
        """What claimers sign to accuse this pass: Fraud with the checker as the accused
        and the pass's own ``tiles`` (the contract takes no other)."""
        return FraudClaim(self.ref, self.checker, self.tiles, amount_wei, round)


def claim_id(ref: ResultRef, worker: bytes) -> bytes:
    """The escrow's ``claim_id(ref, worker)``: one claim at a time per frame and accused."""
    encoded = abi_encode(["address", "bytes32", "address", "bytes32", "uint256"],
                         [to_checksum_address(ref.requester), ref.job_id, to_checksum_address(worker),
                          ref.task_id, ref.frame])  # fmt: skip
    return bytes(keccak(encoded))


def claim_commit(frame_digest: bytes, tiles: bytes, claimers: Sequence[bytes]) -> bytes:
    """The escrow's ``Claim.commit``: keccak256(abi_encode(frame_digest, tiles, claimers))."""
    encoded = abi_encode(["bytes32", "bytes32", "address[]"],
                         [frame_digest, tiles, [to_checksum_address(c) for c in claimers]])  # fmt: skip
    return bytes(keccak(encoded))


Message = ResultRef | FraudClaim | RungVote | CheckerPass


def signable(message: Message) -> SignableMessage:
    if isinstance(message, ResultRef):
        ref, name, types, data = message, "Result", RESULT_TYPE, message._fields()
    elif isinstance(message, RungVote):
        ref, name, types, data = message.ref, "Rung", RUNG_TYPE, message._fields()
    elif isinstance(message, CheckerPass):
        ref, name, types = message.ref, "Pass", PASS_TYPE
        data = {**ref._fields(), "checker": to_checksum_address(message.checker),
                "tiles": message.tiles}  # fmt: skip
    else:
        ref, name, types = message.ref, "Fraud", FRAUD_TYPE
        data = {**ref._fields(), "worker": to_checksum_address(message.worker),
                "tiles": message.tiles, "amount": message.amount_wei, "round": message.round}  # fmt: skip
    return encode_typed_data(
        domain_data=escrow_domain(ref.chain_id, ref.contract),
        message_types={name: types},
        message_data=data,
    )


def sign(message: Message, key: bytes) -> bytes:
    """A 65-byte signature over ``message`` (the worker signs a ``ResultRef``, checkers
    sign a ``FraudClaim``, a ``RungVote`` or their own ``CheckerPass``)."""
    return bytes(Account.sign_message(signable(message), key).signature)


def recover(message: Message, signature: bytes) -> bytes:
    """The 20-byte signer of ``signature`` over ``message`` (rejects malleable ones)."""
    split_signature(signature)
    return to_canonical_address(Account.recover_message(signable(message), signature=signature))


def sign_claim(claim: FraudClaim, checker_key: bytes) -> bytes:
    return sign(claim, checker_key)


def order_signatures(message: Message, signatures: Iterable[bytes]) -> list[bytes]:
    """Signatures sorted by ascending signer, duplicates (same signer) dropped."""
    by_signer = {recover(message, sig): sig for sig in signatures}
    return [by_signer[signer] for signer in sorted(by_signer)]


def signers(message: Message, ordered_signatures: Iterable[bytes]) -> list[bytes]:
    """The signers, in order: a claim's settlement names its claimers."""
    return [recover(message, sig) for sig in ordered_signatures]


def result_ref(spec: JobSpec, job_id: bytes, task_id: bytes, frame: int, frame_cid: str) -> ResultRef | None:
    """What the worker signs for a frame of an escrowed job; None without an escrow
    (nothing to slash) or for a frame CID that is not our one shape."""
    digest = sha256_of_cid(frame_cid)
    if spec.escrow is None or digest is None:
        return None
    escrow = spec.escrow
    return ResultRef(escrow.chain_id, escrow.contract, spec.requester_address, job_id, task_id,
                     frame, digest)  # fmt: skip


def checker_pass(spec: JobSpec, verdict: Verdict, frame_cid: str, checker: bytes) -> CheckerPass | None:
    """What a checker signs for its passing ``verdict`` of the frame ``frame_cid`` (a
    plant's CID for a plant): its ``tiles`` commit to that verdict's body digest, hence to
    its tile rectangles and committed digests (``tiles_commitment`` of one verdict, so the
    verdict is the claim's published evidence: ``protocol.fraud_evidence.claimed_pass``).
    None without an escrow or for a verdict that did not pass."""
    ref = result_ref(spec, verdict.job_id, verdict.task_id, verdict.frame, frame_cid)
    if ref is None or not verdict.passed:
        return None
    return CheckerPass(ref, checker, tiles_commitment([verdict_digest_of(verdict)]))


def sign_result(spec: JobSpec, result: Result, key: bytes) -> bytes | None:
    """The worker's ``Result.result_sig`` for ``result`` (None when the job has no escrow)."""
    ref = result_ref(spec, result.job_id, result.task_id, result.frame, result.frame_cid)
    return None if ref is None else sign(ref, key)


def result_signer(spec: JobSpec, result: Result) -> bytes | None:
    """The payment address that signed ``result`` (its ``result_sig``), or None when it
    carries no signature the contract would take (missing, malleable, unrecoverable)."""
    ref = result_ref(spec, result.job_id, result.task_id, result.frame, result.frame_cid)
    return _signer(ref, result.result_sig)


def _signer(message: Message | None, signature: bytes | None) -> bytes | None:
    """``recover``, or None for no message, no signature or one the contract would refuse."""
    if message is None or signature is None:
        return None
    try:
        return recover(message, signature)
    except Exception:  # eth_keys/eth_account raise several unrelated types for bad bytes
        return None


def sign_pass(spec: JobSpec, verdict: Verdict, frame_cid: str, key: bytes) -> bytes | None:
    """The checker's ``Verdict.pass_sig`` for its passing ``verdict`` of ``frame_cid``
    (None without an escrow or for a rejection: nothing to sign)."""
    checker = to_canonical_address(Account.from_key(key).address)
    signed = checker_pass(spec, verdict, frame_cid, checker)
    return None if signed is None else sign(signed, key)


def pass_signer(spec: JobSpec, verdict: Verdict, frame_cid: str, checker: bytes) -> bytes | None:
    """The address that signed ``verdict.pass_sig`` as the ``Pass`` of ``checker`` (the
    payment address the checker was assigned under: the Pass names its signer, so the
    signature is recovered over the Pass that names it). ``checker`` itself when the
    signature is that checker's; None when there is nothing the contract would take
    (no escrow, a rejection, missing, malleable or unrecoverable signature)."""
    return _signer(checker_pass(spec, verdict, frame_cid, checker), verdict.pass_sig)
